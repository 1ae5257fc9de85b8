"""WAVE: map DAG tasks to nodes from DRUPE's profile, and predict how the mapping runs.

Public API (pure functions, no network)::

    from jupiter.wave import schedule, predict, Mapping
    m = schedule(app, profile, nodes, algorithm="heft")      # -> Mapping
    p = predict(app, profile, m, "home")                      # -> Prediction

See ``jupiter.wave.api`` for the algorithms and options, docs/scheduling.md for the
model. The HTTP service lives in ``jupiter.wave.service``.
"""

from jupiter.wave.api import ALGORITHMS, predict, schedule
from jupiter.wave.mapping import SCHEMA, Mapping
from jupiter.wave.simulate import Prediction

__all__ = ["ALGORITHMS", "SCHEMA", "Mapping", "Prediction", "predict", "schedule"]
