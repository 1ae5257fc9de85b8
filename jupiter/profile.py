"""The profile contract (``schema: jupiter.profile/v1``) and its fits.

A profile is what DRUPE measured and what WAVE schedules from::

    {
      "schema": "jupiter.profile/v1",
      "complete": true,
      "generated_at": 1764096000.0,            # unix seconds
      "nodes": {name: {"cpu_count": 2, "speed": 0.27, "mem_total": ..., "mem_free": ...,
                       "cpu_percent": ..., "mem_percent": ..., "updated": ..., "stale": false,
                       "burst_speed": 1.05, "host": "9f3c0a1b2d4e5f60"}},
      "links": {src: {dst: {"latency_s": 0.0004, "bandwidth_bps": 2.0e7,
                            "burst_bytes": 12500.0,
                            "quad_ms_kbit": [a, b, c], "samples": 24, "updated": ...}}},
      "exec": {task: {node: {"seconds": 0.012, "output_bytes": 5400, "input_bytes": 1200,
                             "digest": "3f0c9a1b2d4e5f60", "warm_seconds": 0.004}}}
    }

``speed`` is relative (1.0 = the reference benchmark speed); bigger is faster. It is the
sustained rate, stalls of a CPU quota included. ``burst_speed`` (same scale, >= speed) is the
rate of a short run that fits in one quota slice; 0.0 = unknown (use ``speed``). ``host`` is
an opaque id of the machine (kernel) the node runs on: nodes with the same non-empty ``host``
share its ``cpu_count`` cores; "" = unknown.
``quad_ms_kbit`` is Jupiter's model time(ms) = a*x^2 + b*x + c, x in Kbit.
``burst_bytes`` is how much a link passes at once before its rate limit applies (the bucket of
a token-bucket shaper, as in htb, tbf or a cloud NIC's burst allowance); 0.0 = none seen.
``input_bytes`` is what the profiled run of the task received (its input files; 0 if not recorded).
``digest`` names what was profiled (the app's files and the sample input, hashed): an entry whose
digest differs from the app's current one is out of date; "" = not recorded.
``seconds`` is one run of the task after its process idled (what an item meets when it comes
alone); ``warm_seconds`` one run right after another (what a busy stream meets); 0.0 = unknown.
``burst_speed``, ``host``, ``burst_bytes``, ``input_bytes``, ``digest`` and ``warm_seconds``
are optional: older profiles parse as unknown.
This module is pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA = "jupiter.profile/v1"


@dataclass
class NodeProfile:
    cpu_count: int = 1
    speed: float = 1.0
    mem_total: int = 0
    mem_free: int = 0
    cpu_percent: float = 0.0
    mem_percent: float = 0.0
    updated: float = 0.0
    stale: bool = False
    burst_speed: float = 0.0  # speed of a run inside one CFS quota slice; 0.0 = unknown
    host: str = ""  # opaque machine (kernel) id: equal ids share cpu_count cores; "" = unknown

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LinkProfile:
    latency_s: float
    bandwidth_bps: float
    quad_ms_kbit: tuple[float, float, float] = (0.0, 0.0, 0.0)
    samples: int = 0
    updated: float = 0.0
    burst_bytes: float = 0.0  # passed at once before the rate applies; 0.0 = no burst seen

    def transfer_seconds(self, nbytes: float) -> float:
        """Time to move ``nbytes`` over this link on its own: latency + the bytes beyond the
        burst / bandwidth."""
        if nbytes <= 0:
            return 0.0
        return self.latency_s + 8.0 * max(0.0, nbytes - self.burst_bytes) / self.bandwidth_bps

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["quad_ms_kbit"] = list(self.quad_ms_kbit)
        return d

    @classmethod
    def from_dict(cls, v: Any, where: str) -> LinkProfile:
        """One link entry; raises ``ValueError`` naming the field (``where`` is the entry's
        path). ``quad_ms_kbit`` is kept as given (its length is the reader's check)."""
        if not isinstance(v, dict):
            raise ValueError(f"field '{where}': must be an object")
        try:
            lp = cls(latency_s=float(v["latency_s"]), bandwidth_bps=float(v["bandwidth_bps"]),
                     quad_ms_kbit=tuple(float(x) for x in v.get("quad_ms_kbit", (0, 0, 0))),
                     samples=int(v.get("samples", 0)), updated=float(v.get("updated", 0.0)),
                     burst_bytes=float(v.get("burst_bytes", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"field '{where}': {exc!r} (needs latency_s, bandwidth_bps; "
                             "optional quad_ms_kbit [a, b, c], samples, updated, "
                             "burst_bytes)") from exc
        if not lp.bandwidth_bps > 0 or lp.latency_s < 0:
            raise ValueError(f"field '{where}': bandwidth must be > 0 and latency >= 0")
        if not 0 <= lp.burst_bytes < float("inf"):
            raise ValueError(f"field '{where}.burst_bytes': burst_bytes must be a finite number "
                             f">= 0 (0 = none), got {lp.burst_bytes!r}")
        return lp


@dataclass
class ExecProfile:
    seconds: float  # one run after the process idled: what a lone item meets
    output_bytes: int
    input_bytes: int = 0  # what the profiled run received (its input files); 0 if not recorded
    digest: str = ""  # what was profiled (app files + sample input); "" = not recorded
    warm_seconds: float = 0.0  # one run right after another (a busy stream); 0.0 = unknown

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, v: Any, where: str) -> ExecProfile:
        """One ``exec.<task>.<node>`` entry; raises ``ValueError`` naming the field
        (``where`` is that entry's path)."""
        if not isinstance(v, dict):
            raise ValueError(f"field '{where}': expected an object {{seconds, output_bytes[, "
                             f"input_bytes, digest, warm_seconds]}}, got {v!r}")

        def number(name: str, kind: type[float] | type[int], default: float | None = None
                   ) -> Any:
            if name not in v and default is None:
                raise ValueError(f"field '{where}.{name}': missing (needs seconds, "
                                 "output_bytes; optional input_bytes, digest, warm_seconds)")
            raw = v.get(name, default)
            try:
                value = kind(raw)
            except (TypeError, ValueError, OverflowError):
                value = None
            if isinstance(raw, bool) or value is None or not 0 <= value < float("inf"):
                raise ValueError(f"field '{where}.{name}': must be a finite number >= 0, "
                                 f"got {raw!r}")
            return value

        digest = v.get("digest", "")
        if not isinstance(digest, str) or len(digest) > 64:
            raise ValueError(f"field '{where}.digest': must be a string of at most 64 "
                             f"characters, got {digest!r}")
        return cls(seconds=number("seconds", float), output_bytes=number("output_bytes", int),
                   input_bytes=number("input_bytes", int, 0), digest=digest,
                   warm_seconds=number("warm_seconds", float, 0.0))


@dataclass
class Profile:
    nodes: dict[str, NodeProfile] = field(default_factory=dict)
    links: dict[str, dict[str, LinkProfile]] = field(default_factory=dict)
    exec: dict[str, dict[str, ExecProfile]] = field(default_factory=dict)
    complete: bool = False
    generated_at: float = 0.0

    def link(self, src: str, dst: str) -> LinkProfile | None:
        return self.links.get(src, {}).get(dst)

    def missing_links(self, names: Sequence[str] | None = None) -> list[tuple[str, str]]:
        names = list(names if names is not None else self.nodes)
        return [(s, d) for s in names for d in names if s != d and self.link(s, d) is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "complete": self.complete,
            "generated_at": self.generated_at,
            "nodes": {n: p.to_dict() for n, p in self.nodes.items()},
            "links": {
                s: {d: lp.to_dict() for d, lp in dsts.items()} for s, dsts in self.links.items()
            },
            "exec": {t: {n: e.to_dict() for n, e in per.items()} for t, per in self.exec.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Parse a profile; raises ``ValueError`` naming the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("profile: expected a JSON object")
        if data.get("schema") != SCHEMA:
            raise ValueError(
                f"profile: field 'schema' must be {SCHEMA!r}, got {data.get('schema')!r}"
            )
        try:
            nodes = {n: NodeProfile(**v) for n, v in (data.get("nodes") or {}).items()}
        except TypeError as exc:
            raise ValueError(f"profile: field 'nodes': {exc}") from exc
        for n, np_ in nodes.items():
            b = np_.burst_speed
            if isinstance(b, bool) or not isinstance(b, int | float) or not b >= 0:
                raise ValueError(f"profile: field 'nodes.{n}.burst_speed': must be a number "
                                 f">= 0 (0 = unknown), got {b!r}")
            if not isinstance(np_.host, str):
                raise ValueError(f"profile: field 'nodes.{n}.host': must be a string, "
                                 f"got {np_.host!r}")
        links: dict[str, dict[str, LinkProfile]] = {}
        for s, dsts in (data.get("links") or {}).items():
            for d, v in dsts.items():
                try:
                    links.setdefault(s, {})[d] = LinkProfile.from_dict(v, f"links.{s}.{d}")
                except ValueError as exc:
                    raise ValueError(f"profile: {exc}") from exc
        exec_: dict[str, dict[str, ExecProfile]] = {}
        for t, per in (data.get("exec") or {}).items():
            for n, v in per.items():
                try:
                    exec_.setdefault(t, {})[n] = ExecProfile.from_dict(v, f"exec.{t}.{n}")
                except ValueError as exc:
                    raise ValueError(f"profile: {exc}") from exc
        return cls(
            nodes=nodes,
            links=links,
            exec=exec_,
            complete=bool(data.get("complete", False)),
            generated_at=float(data.get("generated_at", 0.0)),
        )


def fit_quadratic(
    sizes_kbit: Sequence[float], times_ms: Sequence[float]
) -> tuple[float, float, float]:
    """Least-squares fit of time(ms) = a*x^2 + b*x + c (Jupiter's DRUPE model), x in Kbit.

    Needs at least three distinct sizes; with fewer, falls back to a line (a = 0).
    """
    x = np.asarray(sizes_kbit, dtype=float)
    y = np.asarray(times_ms, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError("fit_quadratic: sizes and times must be non-empty and of equal length")
    distinct = np.unique(x).size
    if distinct >= 3:
        a, b, c = np.polyfit(x, y, 2)
    elif distinct == 2:
        b, c = np.polyfit(x, y, 1)
        a = 0.0
    else:
        a, b, c = 0.0, 0.0, float(np.mean(y))
    return float(a), float(b), float(c)


def fit_line(sizes_bytes: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares time = intercept + slope * bytes; returns (intercept_s, slope_s_per_byte),
    the intercept unclamped (below the round trip when the link bursts)."""
    x = np.asarray(sizes_bytes, dtype=float)
    y = np.asarray(seconds, dtype=float)
    if x.size < 2 or np.unique(x).size < 2:
        raise ValueError("fit_line: need samples of at least two distinct sizes")
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)

