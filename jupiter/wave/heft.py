"""HEFT: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri, Wu, IEEE TPDS 2002).

1. Priority: the *upward rank* of each task, ``rank_u(v) = w̄(v) + max over children s of
   (c̄(v, s) + rank_u(s))``, where ``w̄`` is the task's mean compute cost over the nodes it
   may run on and ``c̄`` the edge's mean communication cost over pairs of distinct nodes.
2. Tasks are taken by decreasing rank (a ready list, so precedence holds even with zero
   costs) and each is put on the node giving the earliest finish time, inserting it into
   an idle gap of that node when one is long enough.
"""

from __future__ import annotations

import numpy as np

from jupiter.wave.cost import CostModel
from jupiter.wave.listsched import Plan, list_schedule


def upward_rank(cm: CostModel) -> np.ndarray:
    rank = np.zeros(cm.V)
    mean_w, mean_c, edst = cm.mean_w, cm.mean_comm, cm.edst
    for v in reversed(cm.topo):
        best = 0.0
        for e in cm.succ[v]:
            r = mean_c[e] + rank[edst[e]]
            if r > best:
                best = r
        rank[v] = mean_w[v] + best
    return rank


def heft(cm: CostModel) -> Plan:
    return list_schedule(cm, upward_rank(cm))
