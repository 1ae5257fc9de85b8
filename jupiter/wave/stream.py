"""``stream``: a mapping for a stream of items — a short period at near-HEFT latency.

HEFT minimises the latency of one item. With a stream, what counts is the period: the
busy time per item of the busiest node or link (see :mod:`jupiter.wave.simulate`).
HEFT tends to stack the tasks of a chain on one fast node to save transfers, and that
node then caps the throughput. ``stream`` starts from HEFT's mapping and improves it by
local search:

1. Find the bottleneck: the node with the most compute per item (over the cores it
   sustains), the machine shared by several nodes with the most, or the link with the
   most transfer time per item.
2. Candidate moves: every movable task on that node (or at either end of an edge
   crossing that link) to every other node it may run on. For each task the new period
   of all its destinations is computed at once (vectorised: node loads with the task
   moved, link loads with the task's edges re-routed).
3. Try the candidates best first. A move is taken when it lowers ``(period, number of
   stages at the period)`` and the simulated single-item latency stays within
   ``(1 + latency_slack)`` times HEFT's (default slack 0.10). At most ``tries``
   candidates of a round are simulated (default 64). A node under a CPU quota takes a
   task only while one item's CPU there stays within its ``CostModel.item_cpu_cap``,
   as in HEFT's list scheduling.
4. Repeat until no candidate is taken, ``max_moves`` moves were made, or the
   simulation budget is spent: ``budget`` simulated task runs in all (default 200 000,
   i.e. 2000 trial simulations of a 100-task app, 200 of a 1000-task app), which keeps
   1000 tasks on 100 nodes around a second. The budget counts work, not time, so the
   result does not depend on the machine.

Each taken move strictly lowers the objective, so the search ends. Pinned tasks are
never moved and only allowed nodes are used, so the result honours the same rules as
HEFT.
"""

from __future__ import annotations

import numpy as np

from jupiter.wave.cost import CostModel
from jupiter.wave.heft import heft
from jupiter.wave.simulate import simulate, stage_loads

_REL = 1e-9


def _key(node: np.ndarray, link: np.ndarray, host: np.ndarray) -> tuple[float, int]:
    period = max(float(node.max(initial=0.0)), float(link.max(initial=0.0)),
                 float(host.max(initial=0.0)))
    if period <= 0:
        return 0.0, 0
    tol = period * _REL
    count = int((node >= period - tol).sum() + (link >= period - tol).sum()
                + (host >= period - tol).sum())
    return period, count


def _bottleneck_tasks(cm: CostModel, assign: np.ndarray, node: np.ndarray,
                      link: np.ndarray, host: np.ndarray, movable: np.ndarray) -> list[int]:
    nmax, lmax = node.max(initial=0.0), link.max(initial=0.0)
    hmax = host.max(initial=0.0)
    if hmax > max(nmax, lmax):  # every task on the busiest shared machine
        on = cm.host[assign[: cm.T]] == int(np.argmax(host))
        return np.flatnonzero(on & movable).tolist()
    if nmax >= lmax:
        b = int(np.argmax(node))
        tasks = np.flatnonzero((assign[: cm.T] == b) & movable)
        return tasks.tolist()
    p, q = np.unravel_index(int(np.argmax(link)), link.shape)
    pu, pv = assign[cm.esrc], assign[cm.edst]
    on_link = np.flatnonzero((pu == p) & (pv == q))
    found: set[int] = set()
    for e in on_link.tolist():
        for v in (int(cm.esrc[e]), int(cm.edst[e])):
            if v < cm.T and movable[v]:
                found.add(v)
    return sorted(found)


def _move_periods(cm: CostModel, assign: np.ndarray, node: np.ndarray, link: np.ndarray,
                  host: np.ndarray, t: int) -> np.ndarray:
    """[N] period if task ``t`` moved to each node (inf where not allowed / not a move)."""
    a = int(assign[t])
    N = cm.N
    node2 = node.copy()
    node2[a] -= cm.load[t, a]
    order = np.argsort(node2)
    top1 = node2[order[-1]]
    top2 = node2[order[-2]] if N > 1 else 0.0
    others = np.where(np.arange(N) == order[-1], top2, top1)
    result = np.maximum(others, node2 + cm.load[t])
    if cm.shared_hosts:  # the machines' loads: t leaves a's, joins q's
        shared = cm.shared_host
        host2 = host.copy()
        ha = int(cm.host[a])
        if shared[ha]:
            host2[ha] -= cm.cpu[t, a] / cm.host_cores[ha]
        np.maximum(result, host2.max(initial=0.0), out=result)
        joined = host2[cm.host] + cm.cpu[t] / cm.host_cores[cm.host]
        np.maximum(result, np.where(shared[cm.host], joined, 0.0), out=result)
    link2 = link.copy()
    incoming: dict[int, np.ndarray] = {}
    outgoing: dict[int, np.ndarray] = {}
    for e in cm.pred[t]:
        o = int(assign[cm.esrc[e]])
        if o != a:
            link2[o, a] -= cm.occupancy_row(e, o)[a]
        incoming[o] = incoming.get(o, 0.0) + cm.occupancy_row(e, o)
    for e in cm.succ[t]:
        o = int(assign[cm.edst[e]])
        if o != a:
            link2[a, o] -= cm.occupancy_row(e, a)[o]
        outgoing[o] = outgoing.get(o, 0.0) + cm.occupancy_col(e, o)
    np.maximum(result, link2.max(), out=result)
    for o, add in incoming.items():
        np.maximum(result, link2[o] + add, out=result)
    for o, add in outgoing.items():
        np.maximum(result, link2[:, o] + add, out=result)
    result[~cm.allowed[t]] = np.inf
    result[a] = np.inf
    return result


def stream(
    cm: CostModel,
    *,
    latency_slack: float = 0.10,
    max_moves: int | None = None,
    tries: int = 64,
    budget: int = 200_000,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """Return a node index per vertex; see the module documentation."""
    assign = (heft(cm).assign if start is None else start).copy()
    bound = simulate(cm, assign).makespan * (1.0 + latency_slack) * (1 + _REL)
    movable = np.array([cm.pin[v] < 0 and cm.allowed[v].sum() > 1 for v in range(cm.T)],
                       dtype=bool)
    node, link, host = stage_loads(cm, assign)
    key = _key(node, link, host)
    cap, capped = cm.item_cpu_cap, cm.item_cpu_capped
    limit = max_moves if max_moves is not None else 4 * cm.T + 16
    sims_left = budget // max(1, cm.V)
    for _ in range(limit):
        if key[0] <= 0:
            break
        candidates: list[tuple[float, float, int, int]] = []
        if capped:
            item_cpu = cm.item_cpu(assign)
        for t in _bottleneck_tasks(cm, assign, node, link, host, movable):
            periods = _move_periods(cm, assign, node, link, host, t)
            if capped:
                periods[item_cpu + cm.W[t] > cap] = np.inf
            for q in np.flatnonzero(periods <= key[0] * (1 + _REL)).tolist():
                # best period first; among equals, the least loaded destination
                candidates.append((float(periods[q]), float(node[q]), t, q))
        candidates.sort()
        moved = False
        for _, _, t, q in candidates[:tries]:
            trial = assign.copy()
            trial[t] = q
            tnode, tlink, thost = stage_loads(cm, trial)
            tkey = _key(tnode, tlink, thost)
            if not (tkey[0] < key[0] * (1 - _REL) or (tkey[0] <= key[0] and tkey[1] < key[1])):
                continue
            if sims_left <= 0:
                break
            sims_left -= 1
            if simulate(cm, trial).makespan > bound:
                continue
            assign, node, link, host, key = trial, tnode, tlink, thost, tkey
            moved = True
            break
        if not moved:
            break
    return assign
