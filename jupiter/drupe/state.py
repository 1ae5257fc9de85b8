"""What home knows: registered agents, links, resources, errors, exec results (no I/O).

Kept apart from the HTTP server so staleness, completeness and report validation are plain
functions of the state and a clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from jupiter.drupe.config import DrupeConfig
from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile

Pair = tuple[str, str]


class ReportError(ValueError):
    """A request body is wrong; the message names the field."""


@dataclass
class AgentState:
    address: str
    registered_at: float
    last_seen: float
    resources: NodeProfile = field(default_factory=NodeProfile)


@dataclass
class CycleStats:
    started: float
    seconds: float
    slots: int
    probe_bytes: int
    errors: int


def _node_profile(data: Any, where: str) -> NodeProfile:
    if not isinstance(data, dict):
        raise ReportError(f"{where}: must be an object")
    known = set(NodeProfile.__dataclass_fields__)
    extra = set(data) - known
    if extra:
        raise ReportError(f"{where}: unknown field(s) {sorted(extra)}")
    try:
        np_ = NodeProfile(**data)
    except TypeError as exc:
        raise ReportError(f"{where}: {exc}") from exc
    b = np_.burst_speed
    if isinstance(b, bool) or not isinstance(b, int | float) or not b >= 0:
        raise ReportError(f"{where}: 'burst_speed' must be a number >= 0, got {b!r}")
    if not isinstance(np_.host, str):
        raise ReportError(f"{where}: 'host' must be a string, got {np_.host!r}")
    return np_


def _link_profile(data: Any, where: str) -> LinkProfile:
    """An agent's measurement of one link (:meth:`LinkProfile.from_dict`), which must also
    carry the three quadratic coefficients and a sample count >= 0."""
    try:
        lp = LinkProfile.from_dict(data, where)
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    if len(lp.quad_ms_kbit) < 3:
        raise ReportError(f"field '{where}.quad_ms_kbit': needs [a, b, c], got "
                          f"{list(lp.quad_ms_kbit)}")
    if lp.samples < 0:
        raise ReportError(f"field '{where}.samples': must be >= 0, got {lp.samples}")
    return replace(lp, quad_ms_kbit=lp.quad_ms_kbit[:3])


class HomeState:
    def __init__(self, cfg: DrupeConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.agents: dict[str, AgentState] = {}
        self.links: dict[Pair, LinkProfile] = {}
        self.link_errors: dict[Pair, dict[str, Any]] = {}
        self.exec: dict[str, dict[str, ExecProfile]] = {}
        self.speed: dict[str, float] = {}  # from bench slots only
        self.burst_speed: dict[str, float] = {}  # from bench slots only; absent = unknown
        self.benched_at: dict[str, float] = {}
        self.probe_bytes_total = 0
        self.reports_total = 0
        self.cycles: list[CycleStats] = []
        self.first_registration: float | None = None
        self.first_complete_at: float | None = None
        self.started_at = clock()

    # ---- agents --------------------------------------------------------------------------
    def register(self, data: dict[str, Any]) -> str:
        node, address = data.get("node"), data.get("address")
        if not isinstance(node, str) or node not in self.cfg.nodes:
            raise ReportError(f"field 'node': unknown node {node!r}; configured nodes: "
                              f"{', '.join(self.cfg.nodes)}")
        if not isinstance(address, str) or urlsplit(address).scheme not in ("http", "https") \
                or not urlsplit(address).hostname:
            raise ReportError(f"field 'address': expected the agent's http URL, got {address!r}")
        resources = (_node_profile(data["resources"], "field 'resources'")
                     if data.get("resources") is not None else NodeProfile())
        now = self.clock()
        self.agents[node] = AgentState(address=address.rstrip("/"), registered_at=now,
                                       last_seen=now, resources=resources)
        if self.first_registration is None:
            self.first_registration = now
        return node

    def seen(self, node: str) -> None:
        if node in self.agents:
            self.agents[node].last_seen = self.clock()

    def peers_of(self, node: str) -> dict[str, str]:
        """Peer URLs: registered address, else the configured endpoint."""
        return {n: self.agent_url(n) for n in self.cfg.nodes if n != node}

    def agent_url(self, node: str) -> str:
        a = self.agents.get(node)
        return a.address if a else self.cfg.agent_urls[node]

    def stale(self) -> list[str]:
        now = self.clock()
        return [n for n, a in self.agents.items() if now - a.last_seen > self.cfg.stale_after_s]

    def unregistered(self) -> list[str]:
        return [n for n in self.cfg.nodes if n not in self.agents]

    def live(self) -> list[str]:
        stale = set(self.stale())
        return [n for n in self.cfg.nodes if n in self.agents and n not in stale]

    # ---- reports ---------------------------------------------------------------------------
    def apply_report(self, data: dict[str, Any]) -> list[Pair]:
        """Validate and apply an agent report; returns the links it updated."""
        node = data.get("node")
        if node not in self.agents:
            raise ReportError(f"field 'node': {node!r} is not registered")
        links = data.get("links") or {}
        errors = data.get("errors") or {}
        if not isinstance(links, dict) or not isinstance(errors, dict):
            raise ReportError("fields 'links' and 'errors' must be objects keyed by peer")
        parsed: dict[Pair, LinkProfile] = {}
        for dst, v in links.items():
            if dst not in self.cfg.nodes or dst == node:
                raise ReportError(f"field 'links.{dst}': not a peer of {node!r}")
            parsed[(node, dst)] = _link_profile(v, f"links.{dst}")
        resources = (_node_profile(data["resources"], "field 'resources'")
                     if data.get("resources") is not None else None)
        bench = data.get("bench")
        speed = None
        burst = 0.0
        if bench is not None:
            speed = bench.get("speed") if isinstance(bench, dict) else None
            if not isinstance(speed, int | float) or isinstance(speed, bool) or not speed > 0:
                raise ReportError(f"field 'bench.speed': must be a number > 0, got {speed!r}")
            burst = bench.get("burst_speed", 0.0)
            if not isinstance(burst, int | float) or isinstance(burst, bool) or not burst >= 0:
                raise ReportError("field 'bench.burst_speed': must be a number >= 0 "
                                  f"(0 = unknown), got {burst!r}")
        probe_bytes = data.get("probe_bytes", 0)
        if not isinstance(probe_bytes, int) or probe_bytes < 0:
            raise ReportError("field 'probe_bytes': must be a non-negative integer")
        now = self.clock()
        for pair, lp in parsed.items():
            self.links[pair] = lp
            self.link_errors.pop(pair, None)
        for dst, msg in errors.items():
            if dst in self.cfg.nodes and dst != node:
                self.link_errors[(node, dst)] = {"src": node, "dst": dst, "error": str(msg)[:500],
                                                 "at": now}
        if resources is not None:
            self.agents[node].resources = resources
        if speed is not None:
            self.speed[node] = float(speed)
            if burst > 0:
                self.burst_speed[node] = max(float(burst), float(speed))
            else:
                self.burst_speed.pop(node, None)
            self.benched_at[node] = now
        self.probe_bytes_total += probe_bytes
        self.reports_total += 1
        self.agents[node].last_seen = now
        return list(parsed)

    def record_error(self, src: str, dst: str, message: str) -> None:
        self.link_errors[(src, dst)] = {"src": src, "dst": dst, "error": message,
                                        "at": self.clock()}

    # ---- completeness ------------------------------------------------------------------------
    def pairs(self, nodes: list[str] | tuple[str, ...] | None = None) -> list[Pair]:
        names = list(self.cfg.nodes if nodes is None else nodes)
        return [(s, d) for s in names for d in names if s != d]

    def measured(self, pair: Pair) -> bool:
        lp = self.links.get(pair)
        return lp is not None and lp.samples >= self.cfg.min_samples

    def missing(self, nodes: list[str] | None = None) -> list[Pair]:
        return [p for p in self.pairs(nodes) if not self.measured(p)]

    def unbenched(self) -> list[str]:
        return [n for n in self.cfg.nodes if n not in self.benched_at]

    def bench_due(self, nodes: list[str]) -> list[str]:
        now = self.clock()
        return [n for n in nodes
                if now - self.benched_at.get(n, -1e18) >= self.cfg.resource_interval_s]

    def complete(self) -> bool:
        done = (not self.missing() and not self.unregistered() and not self.stale()
                and not self.unbenched())
        if done and self.first_complete_at is None:
            self.first_complete_at = self.clock()
        return done

    # ---- exec -------------------------------------------------------------------------------
    def merge_exec(self, data: dict[str, Any]) -> int:
        """Merge ``{"exec": {task: {node: {seconds, output_bytes[, input_bytes, digest,
        warm_seconds]}}}}``.

        Returns the number of entries merged.
        """
        ex = data.get("exec")
        if not isinstance(ex, dict):
            raise ReportError("field 'exec': expected {task: {node: {seconds, output_bytes}}}")
        parsed: dict[str, dict[str, ExecProfile]] = {}
        for task, per in ex.items():
            if not isinstance(per, dict):
                raise ReportError(f"field 'exec.{task}': expected {{node: {{...}}}}")
            for node, v in per.items():
                if node not in self.cfg.nodes:
                    raise ReportError(f"field 'exec.{task}.{node}': unknown node; configured: "
                                      f"{', '.join(self.cfg.nodes)}")
                try:
                    parsed.setdefault(task, {})[node] = ExecProfile.from_dict(
                        v, f"exec.{task}.{node}")
                except ValueError as exc:
                    raise ReportError(str(exc)) from exc
        for task, per in parsed.items():
            self.exec.setdefault(task, {}).update(per)
        return sum(len(p) for p in parsed.values())

    def load_exec(self, doc: dict[str, Any] | None) -> int:
        """Keep the exec part of a previously published profile (home restarted)."""
        if not doc:
            return 0
        try:
            prev = Profile.from_dict(doc)
        except ValueError:
            return 0
        for task, per in prev.exec.items():
            for node, ep in per.items():
                if node in self.cfg.nodes:
                    self.exec.setdefault(task, {})[node] = ep
        return sum(len(p) for p in self.exec.values())

    # ---- outputs ----------------------------------------------------------------------------
    def profile(self) -> Profile:
        stale = set(self.stale())
        nodes: dict[str, NodeProfile] = {}
        for n in self.cfg.nodes:
            a = self.agents.get(n)
            if a is None:
                continue
            np_ = NodeProfile(**a.resources.to_dict())
            np_.speed = self.speed.get(n, 1.0)
            np_.burst_speed = self.burst_speed.get(n, 0.0)
            np_.stale = n in stale
            nodes[n] = np_
        links: dict[str, dict[str, LinkProfile]] = {}
        for (s, d), lp in sorted(self.links.items()):
            links.setdefault(s, {})[d] = lp
        return Profile(nodes=nodes, links=links, exec={t: dict(p) for t, p in self.exec.items()},
                       complete=self.complete(), generated_at=self.clock())

    def status(self) -> dict[str, Any]:
        pairs = self.pairs()
        missing = self.missing()
        now = self.clock()
        last = self.cycles[-1] if self.cycles else None
        return {
            "deployment": self.cfg.deployment,
            "nodes": list(self.cfg.nodes),
            "registered": [n for n in self.cfg.nodes if n in self.agents],
            "unregistered": self.unregistered(),
            "stale": self.stale(),
            "unbenched": self.unbenched(),
            "speed": dict(self.speed),
            "last_seen_s": {n: round(now - a.last_seen, 3) for n, a in self.agents.items()},
            "done": len(pairs) - len(missing),
            "total": len(pairs),
            "missing": [f"{s}->{d}" for s, d in missing],
            "errors": [dict(e) for _, e in sorted(self.link_errors.items())],
            "complete": self.complete(),
            "min_samples": self.cfg.min_samples,
            "samples": {f"{s}->{d}": lp.samples for (s, d), lp in sorted(self.links.items())},
            "cycles": len(self.cycles),
            "last_cycle": None if last is None else dict(last.__dict__),
            "probe_bytes_total": self.probe_bytes_total,
            "first_complete_s": (None if self.first_complete_at is None
                                 else round(self.first_complete_at - self.started_at, 3)),
            "exec": {t: sorted(p) for t, p in sorted(self.exec.items())},
        }
