"""Per-link bandwidth shaping with htb: what to configure, and how to read it back.

On the namespace side of node ``s``'s veth (``eth0``) one htb root qdisc ``1:`` holds one
class per destination ``d`` with a shaped link ``s -> d``:

* ``rate = ceil = mbit`` (in kbit/s, so the kernel stores it exactly); classes never
  borrow, so every directed link is shaped on its own (no shared uplink);
* ``burst = cburst = max(2 full frames, 5 ms at the rate)``: small enough not to distort
  a 1-2 s measurement, large enough that a late timer on a busy host does not lose rate;
* ``quantum = rate/10`` clamped to [1 frame, 200000 B] (htb warns outside that range;
  with rate = ceil the quantum only orders siblings, it never changes a class's rate);
* a ``pfifo`` leaf holding about 50 ms at the rate (at least 16 packets) so a bulk
  transfer does not queue seconds of data in front of small messages on the same link;
* a u32 filter matching the destination address sends the packets to the class.

Everything unclassified (traffic to the host address, ARP, IPv6) uses htb's direct queue
(``default 0``) and is not shaped. GSO is switched off on ``eth0`` by the testbed (htb
accounts a 64 KB GSO super-packet correctly on average but releases it at line rate, which
overshoots low rates by 10 % or more).

This module is pure: plans, command lines and parsers, no subprocess.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any

FRAME = 1514  # Ethernet frame of a full 1500-byte MTU packet, as htb counts it
R2Q = 10
QUEUE_SECONDS = 0.05
MIN_QUEUE = 16


@dataclass(frozen=True)
class LinkClass:
    classid: str  # "1:3"
    dst_ip: str
    kbit: int

    @property
    def bytes_per_s(self) -> float:
        return self.kbit * 1000 / 8

    @property
    def burst(self) -> int:
        return max(2 * FRAME, math.ceil(self.bytes_per_s * 0.005))

    @property
    def quantum(self) -> int:
        return int(min(max(self.bytes_per_s / R2Q, FRAME), 200_000))

    @property
    def queue_packets(self) -> int:
        return max(MIN_QUEUE, math.ceil(self.bytes_per_s * QUEUE_SECONDS / FRAME))

    @property
    def leaf_handle(self) -> str:
        return self.classid.split(":")[1] + ":"


def mbit_to_kbit(mbit: float) -> int:
    return max(1, round(mbit * 1000))


def tc_lines(dev: str, classes: list[LinkClass]) -> list[str]:
    """``tc -batch`` lines creating the whole tree (the root must not exist yet)."""
    if not classes:
        return []
    lines = [f"qdisc add dev {dev} root handle 1: htb default 0 r2q {R2Q}"]
    for c in classes:
        lines.append(
            f"class add dev {dev} parent 1: classid {c.classid} htb rate {c.kbit}kbit "
            f"ceil {c.kbit}kbit burst {c.burst} cburst {c.burst} quantum {c.quantum}"
        )
        lines.append(
            f"qdisc add dev {dev} parent {c.classid} handle {c.leaf_handle} "
            f"pfifo limit {c.queue_packets}"
        )
        lines.append(
            f"filter add dev {dev} parent 1: protocol ip prio 1 u32 "
            f"match ip dst {c.dst_ip}/32 flowid {c.classid}"
        )
    return lines


def desired(classes: list[LinkClass]) -> dict[str, Any]:
    """The fingerprint :func:`observed` returns once ``tc_lines(classes)`` is applied."""
    if not classes:
        return {"root": None, "classes": {}, "leaves": {}, "filters": {}}
    return {
        "root": "htb",
        "classes": {c.classid: c.kbit for c in classes},
        "leaves": {c.classid: c.queue_packets for c in classes},
        "filters": {c.dst_ip: c.classid for c in classes},
    }


def parse_rate(text: str) -> float:
    """'2500Kbit' -> 2500000.0 (bit/s), as ``tc`` prints htb rates."""
    m = re.fullmatch(r"([0-9.]+)([KMGT]?)(i?)bit", text.strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"unrecognised tc rate {text!r}")
    base = 1024 if m.group(3) else 1000  # `tc -iec` prints Kibit, Mibit, ...
    factor = base ** " KMGT".index(m.group(2).upper() or " ")
    return float(m.group(1)) * factor


def observed(
    qdiscs: list[dict[str, Any]], class_text: str, filters: list[dict[str, Any]]
) -> dict[str, Any]:
    """Fingerprint of a device's shaping from ``tc -j qdisc show``, ``tc class show``
    (htb classes have no JSON output in iproute2 6.1) and ``tc -j filter show``."""
    root = next((q for q in qdiscs if q.get("root")), None)
    kind = root.get("kind") if root else None
    if kind in (None, "noqueue"):
        kind = None
    elif kind == "htb" and (root or {}).get("handle") != "1:":
        kind = "htb?"  # someone else's tree
    classes: dict[str, int] = {}
    for line in class_text.splitlines():
        m = re.match(r"class htb (\S+) .*?\brate (\S+) ceil (\S+)", line.strip())
        if m:
            rate, ceil = parse_rate(m.group(2)), parse_rate(m.group(3))
            classes[m.group(1)] = round(rate / 1000) if rate == ceil else -1
    leaves: dict[str, int] = {}
    for q in qdiscs:
        if q.get("kind") == "pfifo" and q.get("parent") in classes:
            leaves[q["parent"]] = int(q.get("options", {}).get("limit", -1))
    found: dict[str, str] = {}
    for f in filters:
        opts = f.get("options") or {}
        match = opts.get("match")
        flowid = opts.get("flowid")
        if f.get("kind") != "u32" or not match or not flowid:
            continue
        if match.get("mask") != "ffffffff" or int(match.get("off", -1)) != 16:
            found[f"?{match}"] = flowid
            continue
        found[str(ipaddress.IPv4Address(int(match["value"], 16)))] = flowid
    return {"root": kind, "classes": classes, "leaves": leaves, "filters": found}
