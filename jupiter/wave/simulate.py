"""Predictions for a mapping: single-item latency, stream period and the bottleneck.

Latency: a discrete-event simulation of how CIRCE runs one item through the mapping.
Home injects the item at time 0 (so the transfers home -> ingress tasks count), a task
starts when all its inputs have arrived, its node is free and a core of its machine is
free; a node runs up to ``cores`` tasks at once (one process each; its CPU quota limits
the CPU they use together) and, when more are waiting, the ones with the longest
remaining path (upward rank under this mapping) first. Nodes on one machine
(the same ``host`` in the profile, e.g. emulated nodes) share its cores; home's ingress
and egress work (``source``, ``sink``) takes a core of home's machine but not home's task
slot. A node under a CPU quota (``share`` < 1) runs at burst speed while the quota of one
CFS period lasts, then at its sustained rate (a token bucket, full when the item
arrives). A transfer takes ``latency + bytes/bandwidth``. On a model built from a
profile with the linear link model (``link_contention``), transfers over one directed link
take turns for the bandwidth part (first come, first served; a parent's pushes in edge
order), and the link's burst (its shaper's bucket, full when the item arrives) serves the
first bytes that cross it, once; the literature's models (``CostModel.from_matrices``) and
Jupiter's quadratic one have no contention. The item is done when every result is back at
home.

Period: with a stream of items, each node, each shared machine and each directed link is
a stage of a pipeline. Per item a node is busy for the CPU of its tasks divided by the
cores it sustains (``share``: its CPU quota), a shared machine for the CPU of every task
on its nodes divided by its cores, a link for the sum of the bandwidth-time
(bytes/bandwidth; latency overlaps with other transfers) of the edges crossing it. The
busiest stage bounds the steady-state rate: period = its busy time, throughput =
1/period, bottleneck = its name ("node edge1", "link cloud1->pi1" or "host
cloud1+cloud2+hub").
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from jupiter.wave.cost import CFS_PERIOD_S, CostModel
from jupiter.wave.listsched import Plan


@dataclass
class Prediction:
    latency_s: float
    period_s: float
    bottleneck: str
    plan: Plan
    node_load: np.ndarray  # [N] busy seconds per item
    link_load: np.ndarray  # [N, N] busy seconds per item
    host_load: np.ndarray  # [H] busy seconds per item of each machine
    cpu: np.ndarray  # [V] CPU seconds per item of each vertex in a stream (stream_cpu)
    tasks: list[str]  # the names of the vertices that are tasks (the first ones)
    # nodes where one item's CPU passes the share of the quota per CFS period its cost model
    # allows (CostModel.item_cpu_cap): {node: {"item_cpu_s", "cap_s"}}. There a lone item
    # may wait for the next period, which the latency above does not include.
    over_quota: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def throughput_per_s(self) -> float | None:
        return 1.0 / self.period_s if self.period_s > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "latency_s": self.latency_s,
            "period_s": self.period_s,
            "throughput_per_s": self.throughput_per_s,
            "bottleneck": self.bottleneck,
            "task_cpu_s": {t: float(self.cpu[i]) for i, t in enumerate(self.tasks)},
            "over_quota": {n: dict(v) for n, v in self.over_quota.items()},
        }


def mapped_rank(cm: CostModel, assign: np.ndarray, edge_cost: list[float]) -> list[float]:
    """Upward rank with the real costs of this mapping (longest path to the end)."""
    dur = cm.W[np.arange(cm.V), assign].tolist()
    rank = [0.0] * cm.V
    edst = cm.edst_list
    succ = cm.succ
    for v in reversed(cm.topo):
        best = 0.0
        for e in succ[v]:
            r = edge_cost[e] + rank[edst[e]]
            if r > best:
                best = r
        rank[v] = dur[v] + best
    return rank


def simulate(cm: CostModel, assign: np.ndarray) -> Plan:
    """Run one item through the mapping ``assign`` ([V] node indices); see module doc."""
    V, T = cm.V, cm.T
    edge_cost = cm.edge_costs(assign).tolist()
    if cm.link_contention:
        shared, turn = _link_turns(cm, assign)
    else:
        shared, turn = [False] * cm.E, None
    dur = cm.W[np.arange(V), assign].tolist()
    rank = mapped_rank(cm, assign, edge_cost)
    pos = cm.topo_pos
    nodes = assign.tolist()
    host_of = cm.host.tolist()
    free = cm.host_cores.astype(np.int64).tolist()  # cores free per machine
    # CPU quotas: a node sustaining share < 1 core runs at burst speed while its quota
    # lasts; as a token bucket of rate ``share`` holding one CFS period's quota, full when
    # the item arrives, a run ends no earlier than its node has earned the CPU it used
    throttled = [s < 1.0 for s in cm.share.tolist()]
    share = cm.share.tolist()
    quota = (cm.share * CFS_PERIOD_S).tolist()
    used = [0.0] * cm.N
    cpu = cm.cpu[np.arange(V), assign].tolist()
    start = [0.0] * V
    finish = [0.0] * V
    arrival = [0.0] * V
    remaining = [len(p) for p in cm.pred]
    running = [0] * cm.N  # tasks running on each node
    slots = cm.cores.astype(np.int64).tolist()  # tasks each node runs at once
    queues: list[list[tuple[float, int, int]]] = [[] for _ in range(cm.H)]  # per machine
    # events: (time, 0 finish | 1 ready, seq, vertex); finishes first at equal times
    events = [(0.0, 1, v, v) for v in range(V) if remaining[v] == 0]
    heapq.heapify(events)
    seq = V
    push, pop = heapq.heappush, heapq.heappop
    succ, edst = cm.succ, cm.edst_list
    while events:
        now = events[0][0]
        touched: list[int] = []
        while events and events[0][0] == now:
            _, kind, _, v = pop(events)
            h = host_of[nodes[v]]
            if kind == 0:
                if v < T:
                    running[nodes[v]] -= 1
                if v < T or dur[v] > 0:
                    free[h] += 1
                    touched.append(h)
                for e in succ[v]:
                    c = edst[e]
                    t = turn(e, now) if shared[e] and turn else now + edge_cost[e]
                    if t > arrival[c]:
                        arrival[c] = t
                    remaining[c] -= 1
                    if remaining[c] == 0:
                        seq += 1
                        push(events, (arrival[c], 1, seq, c))
            elif v >= T and dur[v] <= 0:  # home's source/sink with no work: instant
                start[v] = finish[v] = now
                seq += 1
                push(events, (now, 0, seq, v))
            else:
                push(queues[h], (-rank[v], pos[v], v))
                touched.append(h)
        if len(touched) > 1:
            touched = sorted(set(touched))
        for h in touched:
            queue = queues[h]
            waiting: list[tuple[float, int, int]] = []  # their node is busy
            while free[h] > 0 and queue:
                entry = pop(queue)
                v = entry[2]
                if v < T:
                    if running[nodes[v]] >= slots[nodes[v]]:
                        waiting.append(entry)
                        continue
                    running[nodes[v]] += 1
                free[h] -= 1
                start[v] = now
                f = now + dur[v]
                n = nodes[v]
                if throttled[n]:
                    used[n] += cpu[v]
                    f = max(f, (used[n] - quota[n]) / share[n])
                finish[v] = f
                seq += 1
                push(events, (f, 0, seq, v))
            for entry in waiting:
                push(queue, entry)
    return Plan(assign=assign.copy(), start=np.array(start), finish=np.array(finish))


def _link_turns(cm: CostModel, assign: np.ndarray
                ) -> tuple[list[bool], Callable[[int, float], float]]:
    """Transfers over one directed link take turns for its bandwidth and share its burst (one
    item's worth: the bucket is full when the item arrives). Returns which edges share a
    link with another edge of the item (an edge alone on its link takes ``edge_cost``) and
    the arrival time of such an edge's data, given when its parent finished."""
    pu, pv = assign[cm.esrc], assign[cm.edst]
    key = np.where(pu != pv, pu * cm.N + pv, -1)
    crossing = key >= 0
    per_link = np.bincount(key[crossing], minlength=cm.N * cm.N)
    shared: list[bool] = (crossing & (per_link[np.maximum(key, 0)] > 1)).tolist()
    data_a = cm.edata[np.arange(cm.E), pu]
    keys, data = key.tolist(), data_a.tolist()
    burst = cm.link_burst[pu, pv].tolist()
    lat, inv_bw = cm.lat[pu, pv].tolist(), cm.inv_bw[pu, pv].tolist()
    # the per-byte work at the slower end streams with the bytes (0 without it)
    bytework = (data_a * np.maximum(cm.byte_cpu[pu], cm.byte_cpu[pv])).tolist()
    bucket: dict[int, float] = {}
    free_at: dict[int, float] = {}

    def arrival(e: int, now: float) -> float:
        k, d = keys[e], data[e]
        begin = free_at.get(k, 0.0)
        if begin < now:
            begin = now
        left = bucket.get(k, burst[e])
        if left >= d:
            bucket[k], busy = left - d, 0.0
        else:
            bucket[k], busy = 0.0, (d - left) * inv_bw[e]
        free_at[k] = begin + busy
        t = begin + busy + lat[e]
        w = now + bytework[e]
        return w if w > t else t

    return shared, arrival


def loads(cm: CostModel, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Busy seconds per item of every node ([N]) and every directed link ([N, N])."""
    return _loads(cm, assign, cm.stream_cpu(assign))


def host_loads(cm: CostModel, assign: np.ndarray) -> np.ndarray:
    """Busy seconds per item of every machine shared by several nodes ([H]; 0 for a
    machine of one node, whose node stage already bounds it)."""
    return _host_loads(cm, assign, cm.stream_cpu(assign))


def stage_loads(cm: CostModel, assign: np.ndarray, cpu: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`loads` and :func:`host_loads` at once, the stream's CPU computed once (``cpu``:
    ``cm.stream_cpu(assign)`` when the caller has it)."""
    if cpu is None:
        cpu = cm.stream_cpu(assign)
    node, link = _loads(cm, assign, cpu)
    return node, link, _host_loads(cm, assign, cpu)


def _loads(cm: CostModel, assign: np.ndarray, cpu: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    node = np.zeros(cm.N)
    np.add.at(node, assign, cpu / cm.share[assign])
    link = np.zeros((cm.N, cm.N))
    if cm.E:
        pu, pv = assign[cm.esrc], assign[cm.edst]
        np.add.at(link, (pu, pv), cm.edge_occupancy(assign))
        np.fill_diagonal(link, 0.0)
    return node, link


def _host_loads(cm: CostModel, assign: np.ndarray, cpu: np.ndarray) -> np.ndarray:
    host = np.zeros(cm.H)
    if cm.shared_hosts:
        np.add.at(host, cm.host[assign], cpu)
        host /= cm.host_cores
        host[~cm.shared_host] = 0.0
    return host


def period_of(node: np.ndarray, link: np.ndarray, host: np.ndarray | None = None) -> float:
    busiest = max(node.max(initial=0.0), link.max(initial=0.0))
    return float(busiest if host is None else max(busiest, host.max(initial=0.0)))


def host_name(cm: CostModel, h: int) -> str:
    return "host " + "+".join(n for i, n in enumerate(cm.nodes) if int(cm.host[i]) == h)


def bottleneck_name(cm: CostModel, node: np.ndarray, link: np.ndarray,
                    host: np.ndarray | None = None) -> str:
    nmax = node.max(initial=0.0)
    lmax = link.max(initial=0.0)
    hmax = 0.0 if host is None else host.max(initial=0.0)
    if nmax <= 0 and lmax <= 0 and hmax <= 0:
        return "none"
    if host is not None and hmax > max(nmax, lmax):
        return host_name(cm, int(np.argmax(host)))
    if nmax >= lmax:
        return f"node {cm.nodes[int(np.argmax(node))]}"
    p, q = np.unravel_index(int(np.argmax(link)), link.shape)
    return f"link {cm.nodes[int(p)]}->{cm.nodes[int(q)]}"


def evaluate(cm: CostModel, assign: np.ndarray) -> Prediction:
    """Latency (simulated), period and bottleneck of the mapping ``assign``."""
    plan = simulate(cm, assign)
    cpu = cm.stream_cpu(assign)
    node, link, host = stage_loads(cm, assign, cpu)
    item_cpu = cm.item_cpu(assign)
    over = np.flatnonzero(item_cpu > cm.item_cpu_cap * (1 + 1e-9)).tolist()
    return Prediction(
        latency_s=plan.makespan,
        period_s=period_of(node, link, host),
        bottleneck=bottleneck_name(cm, node, link, host),
        plan=plan,
        node_load=node,
        link_load=link,
        host_load=host,
        cpu=cpu,
        tasks=cm.tasks,
        over_quota={cm.nodes[n]: {"item_cpu_s": float(item_cpu[n]),
                                  "cap_s": float(cm.item_cpu_cap[n])} for n in over},
    )
