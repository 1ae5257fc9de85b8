"""A nominal profile from the inventory, for previews (``--check``) before DRUPE measured.

Only what the inventory says: each node's ``cpu_share`` as its relative speed and each
directed link's ``link_mbit`` (``jupiter_links`` or the smaller uplink) as its bandwidth,
no latency, no execution profile. It is marked ``"nominal": true`` and is never written
where a measured profile is expected. Pure.
"""

from __future__ import annotations

from typing import Any

from jupiter.profile import SCHEMA


def nominal_profile(inventory: dict[str, Any]) -> dict[str, Any]:
    """``inventory``: the Inventory contract (jupiter.inventory.Inventory.to_dict())."""
    nodes = inventory.get("nodes") or []
    names = [n["name"] for n in nodes]
    matrix = inventory.get("link_mbit") or {}
    links: dict[str, dict[str, Any]] = {}
    for src in names:
        for dst in names:
            if src == dst:
                continue
            mbit = float((matrix.get(src) or {}).get(dst) or 100.0)
            links.setdefault(src, {})[dst] = {
                "latency_s": 0.0,
                "bandwidth_bps": mbit * 1e6,
                # time(ms) = x(Kbit) / (Mbit/s): Jupiter's quadratic with a = c = 0
                "quad_ms_kbit": [0.0, 1.0 / mbit, 0.0],
                "samples": 0,
                "updated": 0.0,
            }
    return {
        "schema": SCHEMA,
        "complete": True,
        "nominal": True,
        "generated_at": 0.0,
        "nodes": {n["name"]: {"cpu_count": 1, "speed": float(n.get("cpu_share") or 1.0),
                              "mem_total": 0, "mem_free": 0, "cpu_percent": 0.0,
                              "mem_percent": 0.0, "updated": 0.0, "stale": False,
                              "burst_speed": 0.0, "host": ""}
                  for n in nodes},
        "links": links,
        "exec": {},
    }
