"""Mapping policies that do not plan a schedule: Jupiter's two WAVE policies, a
network-blind round robin, and a user-given mapping.

Each returns a node index per vertex (``[V]``); home's source/sink go to home.

* ``wave_greedy`` (Jupiter's greedy WAVE): tasks are placed in topological order; for
  each candidate node the cost is the predicted delay (ms) of bringing every parent's
  real output to it from the parent's node, plus the node's CPU and memory load (percent)
  from the profile: ``w_net*delay_ms + w_cpu*cpu_percent + w_mem*mem_percent``. Jupiter
  gave every task its own node; here, with ``distinct`` (default), a task chooses among
  the allowed nodes that hold the fewest tasks so far, which is the same while nodes
  last and spreads evenly after.
* ``random`` (Jupiter's random WAVE): a random allowed node per task, seeded; with
  ``distinct``, among the least used ones.
* ``spread``: round robin over the allowed nodes in topological order, the stand-in for
  a network-blind default scheduler.
* ``static``: the user's ``{task: node}``.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC

import numpy as np

from jupiter.errors import InvalidInput, Problem
from jupiter.wave.cost import CostModel


def _start(cm: CostModel) -> np.ndarray:
    assign = np.full(cm.V, -1, dtype=np.int64)
    for v in (cm.source, cm.sink):
        if v is not None:
            assign[v] = cm.home
    return assign


def _least_used(candidates: np.ndarray, used: np.ndarray, distinct: bool) -> np.ndarray:
    if not distinct or candidates.size <= 1:
        return candidates
    counts = used[candidates]
    return candidates[counts == counts.min()]


def wave_greedy(
    cm: CostModel,
    *,
    distinct: bool = True,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    w_net, w_cpu, w_mem = weights
    assign = _start(cm)
    used = np.zeros(cm.N, dtype=np.int64)
    load = w_cpu * cm.cpu_load + w_mem * cm.mem_load
    for v in cm.topo:
        if assign[v] >= 0:
            continue
        delay = np.zeros(cm.N)
        for e in cm.pred[v]:
            u = int(cm.esrc[e])
            delay += cm.comm_row(e, int(assign[u]))
        cost = w_net * 1000.0 * delay + load
        candidates = _least_used(np.flatnonzero(cm.allowed[v]), used, distinct)
        q = int(candidates[np.argmin(cost[candidates])])
        assign[v] = q
        used[q] += 1
    return assign


def random_policy(cm: CostModel, *, seed: int = 0, distinct: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    assign = _start(cm)
    used = np.zeros(cm.N, dtype=np.int64)
    for v in cm.topo:
        if assign[v] >= 0:
            continue
        candidates = _least_used(np.flatnonzero(cm.allowed[v]), used, distinct)
        q = int(rng.choice(candidates))
        assign[v] = q
        used[q] += 1
    return assign


def spread(cm: CostModel) -> np.ndarray:
    assign = _start(cm)
    cursor = 0
    for v in cm.topo:
        if assign[v] >= 0:
            continue
        if cm.pin[v] >= 0:  # pinned: does not take a turn
            assign[v] = int(cm.pin[v])
            continue
        allowed = cm.allowed[v]
        for k in range(cm.N):
            q = (cursor + k) % cm.N
            if allowed[q]:
                assign[v] = q
                cursor = q + 1
                break
    return assign


def static(cm: CostModel, mapping: MappingABC[str, str], *, source: str = "options") -> np.ndarray:
    """The user's ``{task: node}``; every task must be mapped, to a known node, and
    agree with its pin. Raises :class:`InvalidInput` naming each wrong entry."""
    problems: list[Problem] = []
    if not isinstance(mapping, MappingABC):
        raise InvalidInput([Problem(source, "must be an object {task: node}",
                                    field="mapping")], "mapping")
    index = {t: i for i, t in enumerate(cm.tasks)}
    assign = _start(cm)
    for task, node in mapping.items():
        if task not in index:
            problems.append(Problem(source, f"unknown task {task!r}; the app's tasks are "
                                    f"{', '.join(cm.tasks)}", field=f"mapping.{task}"))
            continue
        if node not in cm.node_index:
            problems.append(Problem(source, f"task {task!r} is mapped to unknown node {node!r}; "
                                    f"known nodes: {', '.join(cm.nodes)}",
                                    field=f"mapping.{task}"))
            continue
        v, q = index[task], cm.node_index[node]
        if cm.pin[v] >= 0 and cm.pin[v] != q:
            pin = cm.nodes[int(cm.pin[v])]
            problems.append(Problem(source, f"task {task!r} is pinned to {pin!r} but mapped "
                                    f"to {node!r}", field=f"mapping.{task}"))
            continue
        assign[v] = q
    for task in cm.tasks:
        if task not in mapping:
            problems.append(Problem(source, f"task {task!r} has no node", field=f"mapping.{task}"))
    if problems:
        raise InvalidInput(problems, "mapping")
    return assign
