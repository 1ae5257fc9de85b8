"""Filters ``jupiter_schedule`` and ``jupiter_predict`` (thin over jupiter.wave.api).

``{{ app | jupiter_schedule(profile, nodes, 'stream', use_home=false) }}`` returns the
mapping contract (schema jupiter.mapping/v1); ``nodes`` is a list of node names or of
inventory node objects with ``name``. ``{{ app | jupiter_predict(profile, mapping) }}``
returns ``{latency_s, period_s, throughput_per_s, bottleneck}`` for a given mapping.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from jupiter.errors import JupiterError
from jupiter.wave.api import HOME, predict_dicts, schedule_dicts


def jupiter_schedule(app: dict[str, Any], profile: dict[str, Any], nodes: list[Any] | None,
                     algorithm: str = "stream", **options: Any) -> dict[str, Any]:
    try:
        return schedule_dicts(app, profile, nodes, algorithm, **options)
    except JupiterError as exc:
        raise AnsibleFilterError(f"jupiter_schedule: {exc}") from exc


def jupiter_predict(app: dict[str, Any], profile: dict[str, Any], mapping: dict[str, Any],
                    home: str = HOME, **options: Any) -> dict[str, Any]:
    try:
        return predict_dicts(app, profile, mapping, home, **options)
    except JupiterError as exc:
        raise AnsibleFilterError(f"jupiter_predict: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"jupiter_schedule": jupiter_schedule, "jupiter_predict": jupiter_predict}
