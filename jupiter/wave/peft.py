"""PEFT: Predict Earliest Finish Time (Arabnejad & Barbosa, IEEE TPDS 2014).

The *optimistic cost table* ``OCT[v, p]`` is the longest of the shortest paths from
``v``'s children to the exit, assuming ``v`` runs on node ``p`` and every later task gets
the node that is best for it, ignoring node contention::

    OCT[v, p] = max over children s of  min over nodes w of
                (OCT[s, w] + W[s, w] + (c̄(v, s) if w != p else 0))

Priority is ``rank_oct(v)`` = the mean of ``OCT[v, .]`` over the nodes ``v`` may run on;
each ready task goes to the node minimising ``EFT + OCT[v, node]`` (insertion-based
EFT), which looks one step ahead instead of only at the task itself.
"""

from __future__ import annotations

import numpy as np

from jupiter.wave.cost import CostModel
from jupiter.wave.listsched import Plan, list_schedule


def optimistic_cost_table(cm: CostModel) -> np.ndarray:
    oct_ = np.zeros((cm.V, cm.N))
    cost = np.where(cm.allowed, cm.W, np.inf)
    for v in reversed(cm.topo):
        row = np.zeros(cm.N)
        for e in cm.succ[v]:
            s = int(cm.edst[e])
            m = oct_[s] + cost[s]
            np.maximum(row, np.minimum(m, m.min() + cm.mean_comm[e]), out=row)
        oct_[v] = row
    return oct_


def rank_oct(cm: CostModel, oct_: np.ndarray) -> np.ndarray:
    masked = np.where(cm.allowed, oct_, np.nan)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.nanmean(masked, axis=1), nan=0.0)


def peft(cm: CostModel) -> Plan:
    oct_ = optimistic_cost_table(cm)
    return list_schedule(cm, rank_oct(cm, oct_), bias=oct_)
