"""The mapping contract (``schema: jupiter.mapping/v1``)::

    {
      "schema": "jupiter.mapping/v1",
      "algorithm": "heft",
      "mapping": {task name: node},
      "predicted": {"latency_s": 0.41, "period_s": 0.12, "throughput_per_s": 8.3,
                    "bottleneck": "node edge1", "task_cpu_s": {task name: 0.004},
                    "over_quota": {node: {"item_cpu_s": 0.055, "cap_s": 0.04}}},
      "home": "home",
      "nodes": [candidate nodes, home included],
      "options": {schedule options used, JSON values},
      "created_at": 1764096000.0
    }

``nodes`` and ``options`` let anyone (the WAVE service) recompute the mapping the same
way from a new profile. ``throughput_per_s`` is null when the period is 0. ``task_cpu_s``
is each task's CPU seconds per item in a stream on its node (what the node's CPU share must
sustain; the report sets it beside what the task processes used). ``over_quota`` names the
nodes under a CPU quota where one item's CPU passes the share of the quota per CFS period
the mapping may use (``item_quota_share``): lone items there may wait for the next period,
which the latency does not include (empty for the mappings of ``heft``, ``peft`` and
``stream`` unless no node had room).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupiter.errors import InvalidInput, Problem

SCHEMA = "jupiter.mapping/v1"
PREDICTED_KEYS = ("latency_s", "period_s", "throughput_per_s", "bottleneck", "task_cpu_s",
                  "over_quota")


@dataclass
class Mapping:
    algorithm: str
    mapping: dict[str, str]
    predicted: dict[str, Any]
    home: str | None
    nodes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    def __getitem__(self, task: str) -> str:
        return self.mapping[task]

    @property
    def latency_s(self) -> float:
        return float(self.predicted["latency_s"])

    @property
    def period_s(self) -> float:
        return float(self.predicted["period_s"])

    @property
    def throughput_per_s(self) -> float | None:
        return self.predicted.get("throughput_per_s")

    @property
    def bottleneck(self) -> str:
        return str(self.predicted["bottleneck"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "algorithm": self.algorithm,
            "mapping": dict(self.mapping),
            "predicted": {k: self.predicted.get(k) for k in PREDICTED_KEYS},
            "home": self.home,
            "nodes": list(self.nodes),
            "options": dict(self.options),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "mapping") -> Mapping:
        """Parse the contract; raises :class:`InvalidInput` naming every wrong field."""
        if not isinstance(data, dict):
            raise InvalidInput([Problem(source, "expected a JSON object")], "mapping")
        problems: list[Problem] = []
        if data.get("schema") != SCHEMA:
            problems.append(Problem(source, f"must be {SCHEMA!r}, got {data.get('schema')!r}",
                                    field="schema"))
        mapping = data.get("mapping")
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            problems.append(Problem(source, "must be an object {task: node}", field="mapping"))
        if not isinstance(data.get("algorithm"), str):
            problems.append(Problem(source, "must be a string", field="algorithm"))
        predicted = data.get("predicted")
        if not isinstance(predicted, dict):
            problems.append(Problem(source, "must be an object", field="predicted"))
        else:
            for k in ("latency_s", "period_s"):
                if not isinstance(predicted.get(k), int | float):
                    problems.append(Problem(source, "must be a number", field=f"predicted.{k}"))
        home = data.get("home")
        if home is not None and not isinstance(home, str):
            problems.append(Problem(source, "must be a node name", field="home"))
        nodes = data.get("nodes", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            problems.append(Problem(source, "must be a list of node names", field="nodes"))
        options = data.get("options", {})
        if not isinstance(options, dict):
            problems.append(Problem(source, "must be an object", field="options"))
        created = data.get("created_at", 0.0)
        if not isinstance(created, int | float):
            problems.append(Problem(source, "must be unix seconds", field="created_at"))
        if problems:
            raise InvalidInput(problems, "mapping")
        return cls(
            algorithm=data["algorithm"],
            mapping=dict(mapping),
            predicted=dict(predicted),
            home=home,
            nodes=list(nodes),
            options=dict(options),
            created_at=float(created),
        )
