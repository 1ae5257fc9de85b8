"""List scheduling with insertion, shared by HEFT and PEFT.

A node runs one task at a time. Each node keeps a :class:`Timeline` of busy intervals; a
task may be inserted into an idle gap between two already scheduled tasks when the gap
is long enough and its inputs are there (the "insertion-based policy" of HEFT).

For speed, the earliest finish time on every node is first computed without insertion
(vectorised); gaps are only searched on the few nodes where insertion could still beat
the best non-insertion choice.

A node under a CPU quota takes a task only while the item's runs placed there so far plus
this one fit in its ``CostModel.item_cpu_cap`` (a share of the quota of one CFS period):
past it, an item landing within one period is throttled until the next, which no finish
time here accounts for. When no allowed node has room left, every allowed node is a
candidate again. Without quotas (the literature's models) nothing changes.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from jupiter.wave.cost import CostModel


class Timeline:
    """Busy intervals of one node, sorted and disjoint."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def earliest(self, ready: float, duration: float) -> float:
        """Earliest start >= ``ready`` of an idle stretch of ``duration`` seconds."""
        starts, ends = self.starts, self.ends
        t = ready
        for j in range(bisect_right(ends, ready), len(starts)):
            if starts[j] - t >= duration:
                return t
            t = max(t, ends[j])
        return t

    def insert(self, start: float, end: float) -> None:
        i = bisect_right(self.starts, start)
        # an instant (zero-length task) goes before a task starting at the same time,
        # so that the ends stay sorted too
        while i > 0 and self.starts[i - 1] == start and self.ends[i - 1] > end:
            i -= 1
        self.starts.insert(i, start)
        self.ends.insert(i, end)


@dataclass
class Plan:
    """A schedule of every vertex of a cost model: node, start and finish seconds."""

    assign: np.ndarray  # [V] node index
    start: np.ndarray  # [V]
    finish: np.ndarray  # [V]

    @property
    def makespan(self) -> float:
        return float(self.finish.max()) if self.finish.size else 0.0


def priority_key(value: float) -> float:
    """Round a priority so that float noise does not reorder ties (kept in graph order)."""
    return -round(float(value), 9)


def data_ready(cm: CostModel, v: int, assign: np.ndarray, finish: np.ndarray) -> np.ndarray:
    """When all of ``v``'s inputs could be on each node, given its placed parents."""
    ready = np.zeros(cm.N)
    esrc = cm.esrc
    for e in cm.pred[v]:
        u = int(esrc[e])
        np.maximum(ready, finish[u] + cm.comm_row(e, int(assign[u])), out=ready)
    return ready


def list_schedule(
    cm: CostModel, priority: np.ndarray, bias: np.ndarray | None = None
) -> Plan:
    """Schedule ready vertices by decreasing ``priority`` on the allowed node that
    minimises ``EFT + bias[v, node]`` (insertion-based EFT; HEFT has no bias, PEFT's
    bias is its optimistic cost table). Ties go to the earlier vertex / lower node index.
    """
    V, N = cm.V, cm.N
    assign = np.full(V, -1, dtype=np.int64)
    start = np.zeros(V)
    finish = np.zeros(V)
    timelines = [Timeline() for _ in range(N)]
    avail = np.zeros(N)
    indeg = [len(p) for p in cm.pred]
    pos = np.empty(V, dtype=np.int64)
    pos[cm.topo] = np.arange(V)
    heap = [(priority_key(priority[v]), int(pos[v]), v) for v in range(V) if indeg[v] == 0]
    heapq.heapify(heap)
    inf = np.inf
    cap, capped = cm.item_cpu_cap, cm.item_cpu_capped
    placed_cpu = np.zeros(N)  # the item's CPU placed on each node so far
    while heap:
        _, _, v = heapq.heappop(heap)
        ready = data_ready(cm, v, assign, finish)
        if v >= cm.T:  # home's source/sink: bookkeeping, they occupy no node
            q = int(np.flatnonzero(cm.allowed[v])[0])
            assign[v] = q
            start[v] = finish[v] = ready[q]
            _release(cm, v, indeg, heap, priority, pos)
            continue
        dur = cm.W[v]
        est = np.maximum(ready, avail)
        eft = est + dur
        extra = bias[v] if bias is not None else 0.0
        allowed = cm.allowed[v]
        if capped:
            room = allowed & (placed_cpu + dur <= cap)
            if room.any():
                allowed = room
        score = np.where(allowed, eft + extra, inf)
        best = score.min()
        lower = ready + dur + extra
        for q in np.flatnonzero(allowed & (ready < avail) & (lower <= best)).tolist():
            s = timelines[q].earliest(float(ready[q]), float(dur[q]))
            est[q] = s
            eft[q] = s + dur[q]
            score[q] = eft[q] + (extra[q] if bias is not None else 0.0)
        q = int(np.argmin(score))
        placed_cpu[q] += dur[q]
        assign[v] = q
        start[v] = est[q]
        finish[v] = eft[q]
        timelines[q].insert(float(est[q]), float(eft[q]))
        if eft[q] > avail[q]:
            avail[q] = eft[q]
        _release(cm, v, indeg, heap, priority, pos)
    return Plan(assign=assign, start=start, finish=finish)


def _release(cm: CostModel, v: int, indeg: list[int], heap: list, priority: np.ndarray,
             pos: np.ndarray) -> None:
    for e in cm.succ[v]:
        c = int(cm.edst[e])
        indeg[c] -= 1
        if indeg[c] == 0:
            heapq.heappush(heap, (priority_key(priority[c]), int(pos[c]), c))
