"""Predictions for a mapping: single-item latency, stream period and the bottleneck.

Latency: a discrete-event simulation of how CIRCE runs one item through the mapping.
Home injects the item at time 0 (so the transfers home -> ingress tasks count), a task
starts when all its inputs have arrived and its node is free, a node runs one task at a
time and, when several are waiting, the one with the longest remaining path (upward rank
under this mapping) first; transfers are delays of ``latency + bytes/bandwidth`` that do
not contend. The item is done when every result is back at home.

Period: with a stream of items, each node and each directed link is a stage of a
pipeline. Per item a node is busy for the sum of the compute of its tasks, a link for
the sum of the bandwidth-time (bytes/bandwidth; latency overlaps with other transfers)
of the edges crossing it. The busiest stage bounds the steady-state rate: period = its
busy time, throughput = 1/period, bottleneck = its name ("node edge1" or
"link cloud1->pi1").
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from jupiter.wave.cost import CostModel
from jupiter.wave.listsched import Plan


@dataclass
class Prediction:
    latency_s: float
    period_s: float
    bottleneck: str
    plan: Plan
    node_load: np.ndarray  # [N] busy seconds per item
    link_load: np.ndarray  # [N, N] busy seconds per item

    @property
    def throughput_per_s(self) -> float | None:
        return 1.0 / self.period_s if self.period_s > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "latency_s": self.latency_s,
            "period_s": self.period_s,
            "throughput_per_s": self.throughput_per_s,
            "bottleneck": self.bottleneck,
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
    dur = cm.W[np.arange(V), assign].tolist()
    rank = mapped_rank(cm, assign, edge_cost)
    pos = cm.topo_pos
    nodes = assign.tolist()
    start = [0.0] * V
    finish = [0.0] * V
    arrival = [0.0] * V
    remaining = [len(p) for p in cm.pred]
    running = [False] * cm.N
    queues: list[list[tuple[float, int, int]]] = [[] for _ in range(cm.N)]
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
            n = nodes[v]
            if kind == 0:
                if v < T:
                    running[n] = False
                    touched.append(n)
                for e in succ[v]:
                    c = edst[e]
                    t = now + edge_cost[e]
                    if t > arrival[c]:
                        arrival[c] = t
                    remaining[c] -= 1
                    if remaining[c] == 0:
                        seq += 1
                        push(events, (arrival[c], 1, seq, c))
            elif v >= T:  # home's source/sink occupy no node
                start[v] = finish[v] = now
                seq += 1
                push(events, (now, 0, seq, v))
            else:
                push(queues[n], (-rank[v], pos[v], v))
                touched.append(n)
        if len(touched) > 1:
            touched = sorted(set(touched))
        for n in touched:
            if not running[n] and queues[n]:
                _, _, v = pop(queues[n])
                running[n] = True
                start[v] = now
                finish[v] = f = now + dur[v]
                seq += 1
                push(events, (f, 0, seq, v))
    return Plan(assign=assign.copy(), start=np.array(start), finish=np.array(finish))


def loads(cm: CostModel, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Busy seconds per item of every node ([N]) and every directed link ([N, N])."""
    node = np.zeros(cm.N)
    np.add.at(node, assign, cm.W[np.arange(cm.V), assign])
    link = np.zeros((cm.N, cm.N))
    if cm.E:
        pu, pv = assign[cm.esrc], assign[cm.edst]
        np.add.at(link, (pu, pv), cm.edge_occupancy(assign))
        np.fill_diagonal(link, 0.0)
    return node, link


def period_of(node: np.ndarray, link: np.ndarray) -> float:
    return float(max(node.max(initial=0.0), link.max(initial=0.0)))


def bottleneck_name(cm: CostModel, node: np.ndarray, link: np.ndarray) -> str:
    nmax = node.max(initial=0.0)
    lmax = link.max(initial=0.0)
    if nmax <= 0 and lmax <= 0:
        return "none"
    if nmax >= lmax:
        return f"node {cm.nodes[int(np.argmax(node))]}"
    p, q = np.unravel_index(int(np.argmax(link)), link.shape)
    return f"link {cm.nodes[int(p)]}->{cm.nodes[int(q)]}"


def evaluate(cm: CostModel, assign: np.ndarray) -> Prediction:
    """Latency (simulated), period and bottleneck of the mapping ``assign``."""
    plan = simulate(cm, assign)
    node, link = loads(cm, assign)
    return Prediction(
        latency_s=plan.makespan,
        period_s=period_of(node, link),
        bottleneck=bottleneck_name(cm, node, link),
        plan=plan,
        node_load=node,
        link_load=link,
    )
