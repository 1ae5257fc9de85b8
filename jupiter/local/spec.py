"""Input of the local testbed: which nodes to emulate and how their links are shaped.

A :class:`TestbedSpec` is plain data, deliberately independent of the inventory model::

    {
      "deployment": "jupiter",                  # DNS label, names namespaces/bridge/cgroups
      "subnet": "10.77.0.0/24",                 # optional (netns mode only)
      "nodes": [{"name": "home", "cpu_share": 1.0, "uplink_mbit": 100, "delay_ms": 2}, ...],
      "links": {"home": {"edge1": 20.0}, ...},  # directed src -> dst Mbit/s
      "tcp_congestion": "reno"                  # optional (netns mode only)
    }

``links`` may also be a list ``[{"src": "home", "dst": "edge1", "mbit": 20}]``. The node
order matters: node ``i`` gets address ``.(i+2)`` and namespace ``jn-<deployment>-<i>``.
A missing (src, dst) pair is not shaped. ``cpu_share`` is a fraction of ONE core (``0.5`` =
half a core, ``2.0`` = two cores); ``null``/absent means no CPU limit. ``uplink_mbit`` is
informational here (the inventory turns it into the link matrix). ``delay_ms`` is the node's
one-way delay to the network core (default 0): every packet from ``s`` to ``d`` is held
``delay_ms(s) + delay_ms(d)`` (:meth:`TestbedSpec.link_delay_ms`), so a round trip between
them takes twice that.

``tcp_congestion`` is the TCP congestion control every node's namespace uses (default
``reno``; ``""`` keeps the host's default). A window-based algorithm sends a body its window
covers at once, as Linux's usual ``cubic`` does; ``bbr`` paces a connection that sends in
bursts at the low delivery rate it measured between them, so each item's transfer over a
delayed link takes up to a round trip longer. A namespace may only choose an algorithm the
host allows (``net.ipv4.tcp_allowed_congestion_control``), which :mod:`jupiter.local.testbed`
checks before it changes anything.

This module is pure: data in, data out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jupiter.errors import InvalidInput, Problem

DEFAULT_SUBNET = "10.77.0.0/24"
MIN_MBIT = 0.01  # 10 kbit/s
MAX_MBIT = 10000.0  # 10 Gbit/s: beyond that htb rates are meaningless on veth
_NODE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
_DEPLOYMENT = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
MAX_DELAY_MS = 5000.0  # one-way, per node: more than any terrestrial or satellite path
MAX_NODES = 250  # .2 .. .251 in a /24 (and 127.0.1.2 .. 127.0.1.251)
DEFAULT_TCP_CONGESTION = "reno"
_TCP_CONGESTION = re.compile(r"^[a-z][a-z0-9_]{0,15}$")  # a kernel module's algorithm name


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu_share: float | None = None
    uplink_mbit: float | None = None
    delay_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cpu_share": self.cpu_share, "uplink_mbit": self.uplink_mbit,
                "delay_ms": self.delay_ms}


@dataclass(frozen=True)
class TestbedSpec:
    deployment: str
    nodes: tuple[NodeSpec, ...]
    links: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    subnet: str = DEFAULT_SUBNET
    tcp_congestion: str = DEFAULT_TCP_CONGESTION  # "" keeps the host's default

    __test__ = False  # not a pytest test class despite the name

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def index(self, node: str) -> int:
        for i, n in enumerate(self.nodes):
            if n.name == node:
                return i
        raise KeyError(node)

    def link_mbit(self, src: str, dst: str) -> float | None:
        return self.links.get(src, {}).get(dst)

    def link_delay_ms(self, src: str, dst: str) -> float:
        """One-way delay of the directed link src -> dst: both ends' ``delay_ms``."""
        if src == dst:
            return 0.0
        return self.nodes[self.index(src)].delay_ms + self.nodes[self.index(dst)].delay_ms

    @property
    def has_delays(self) -> bool:
        """Whether any link between two nodes is delayed."""
        return len(self.nodes) > 1 and any(n.delay_ms > 0 for n in self.nodes)

    def shaped_links(self) -> list[tuple[str, str, float]]:
        """Every shaped directed link (src, dst, mbit) in node order."""
        names = self.node_names
        out = []
        for src in names:
            for dst in names:
                mbit = self.link_mbit(src, dst)
                if src != dst and mbit is not None:
                    out.append((src, dst, mbit))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "subnet": self.subnet,
            "nodes": [n.to_dict() for n in self.nodes],
            "links": {s: dict(d) for s, d in self.links.items()},
            "tcp_congestion": self.tcp_congestion,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "<testbed spec>") -> TestbedSpec:
        """Validate plain data (see module doc); raise InvalidInput naming every problem."""
        problems: list[Problem] = []

        def bad(fieldname: str, message: str) -> None:
            problems.append(Problem(source, message, field=fieldname))

        if not isinstance(data, Mapping):
            raise InvalidInput([Problem(source, "expected a mapping (JSON object)")], "testbed")
        deployment = data.get("deployment")
        if not isinstance(deployment, str) or not _DEPLOYMENT.match(deployment):
            bad(
                "deployment",
                f"{deployment!r} is not a valid deployment name: use 1-40 lowercase letters, "
                "digits and '-', starting and ending with a letter or digit",
            )
        subnet = data.get("subnet") or DEFAULT_SUBNET
        try:
            net = ipaddress.IPv4Network(str(subnet), strict=True)
            if net.prefixlen > 24 or net.is_loopback:
                bad("subnet", f"{subnet}: use a non-loopback IPv4 network of /24 or larger")
        except ValueError as exc:
            bad("subnet", f"{subnet!r} is not an IPv4 network ({exc}); e.g. 10.77.0.0/24")
        congestion = data.get("tcp_congestion")
        if congestion is None:
            congestion = DEFAULT_TCP_CONGESTION
        problem = tcp_congestion_problem(congestion)
        if problem:
            bad("tcp_congestion", problem)
        nodes: list[NodeSpec] = []
        raw_nodes = data.get("nodes")
        if not isinstance(raw_nodes, list) or not raw_nodes:
            bad("nodes", "give a non-empty list of nodes [{name, cpu_share}]")
            raw_nodes = []
        if len(raw_nodes) > MAX_NODES:
            bad("nodes", f"{len(raw_nodes)} nodes: at most {MAX_NODES} can be emulated")
        seen: set[str] = set()
        for i, raw in enumerate(raw_nodes):
            where = f"nodes[{i}]"
            if isinstance(raw, str):
                raw = {"name": raw}
            if not isinstance(raw, Mapping):
                bad(where, "expected {name, cpu_share, uplink_mbit}")
                continue
            name = raw.get("name")
            if not isinstance(name, str) or not _NODE_NAME.match(name):
                bad(f"{where}.name", f"{name!r}: use letters, digits, '_', '.', '-' (max 63)")
                continue
            if name in seen:
                bad(f"{where}.name", f"node {name!r} is listed twice")
                continue
            seen.add(name)
            share = _number(raw.get("cpu_share"), f"{where}.cpu_share", bad, positive=True)
            uplink = _number(raw.get("uplink_mbit"), f"{where}.uplink_mbit", bad, positive=True)
            delay = _number(raw.get("delay_ms"), f"{where}.delay_ms", bad, positive=False) or 0.0
            if not 0 <= delay <= MAX_DELAY_MS:
                bad(f"{where}.delay_ms", f"{delay!r} ms: give a one-way delay 0..{MAX_DELAY_MS:g}")
                delay = 0.0
            nodes.append(NodeSpec(name, share, uplink, delay))
        links = _links(data.get("links"), seen, bad)
        if problems:
            raise InvalidInput(problems, "testbed spec")
        assert isinstance(deployment, str)
        return cls(deployment, tuple(nodes), links, str(subnet), str(congestion))


def tcp_congestion_problem(value: Any) -> str | None:
    """Why ``value`` is not a TCP congestion control setting (a name, or "" for the host's)."""
    if isinstance(value, str) and (value == "" or _TCP_CONGESTION.match(value)):
        return None
    return (f"{value!r} is not a TCP congestion control name: give one the host allows "
            "(e.g. reno, cubic, bbr), or \"\" to keep the host's default")


def _number(value: Any, where: str, bad, *, positive: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            bad(where, f"{value!r} is not a number")
            return None
    if positive and not value > 0:
        bad(where, f"{value!r} must be > 0 (omit it for no limit)")
        return None
    return float(value)


def _links(raw: Any, names: set[str], bad) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    if raw is None:
        return out
    triples: list[tuple[str, Any, Any, Any]] = []
    if isinstance(raw, Mapping):
        for src, row in raw.items():
            if not isinstance(row, Mapping):
                bad(f"links.{src}", "expected a mapping {dst: mbit}")
                continue
            for dst, mbit in row.items():
                triples.append((f"links.{src}.{dst}", src, dst, mbit))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            if not isinstance(item, Mapping):
                bad(f"links[{i}]", "expected {src, dst, mbit}")
                continue
            triples.append((f"links[{i}]", item.get("src"), item.get("dst"), item.get("mbit")))
    else:
        bad("links", "expected {src: {dst: mbit}} or [{src, dst, mbit}]")
        return out
    for where, src, dst, mbit in triples:
        for role, node in (("src", src), ("dst", dst)):
            if node not in names:
                bad(where, f"{role} {node!r} is not one of the nodes {sorted(names)}")
        if src not in names or dst not in names:
            continue
        if src == dst:
            continue  # a node talking to itself stays on its own loopback
        if mbit is None:
            continue
        value = _number(mbit, where, bad, positive=True)
        if value is None:
            continue
        if not MIN_MBIT <= value <= MAX_MBIT:
            bad(where, f"{value} Mbit/s is outside {MIN_MBIT}..{MAX_MBIT}")
            continue
        out.setdefault(str(src), {})[str(dst)] = value
    return out
