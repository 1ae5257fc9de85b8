"""DRUPE: network, resource and execution profilers.

* :mod:`jupiter.drupe.agent`: one per node; answers probes, measures links to its peers in the
  slots home hands out, reports links and resources.
* :mod:`jupiter.drupe.home`: registers agents, schedules probe slots as a round-robin
  tournament of disjoint pairs, aggregates reports, publishes the profile.
* :mod:`jupiter.drupe.execprof`: runs each task of an app on sample input on one node.

The algorithms (ladder, fits, smoothing, schedule, benchmark windowing) are pure functions in
:mod:`~jupiter.drupe.estimate`, :mod:`~jupiter.drupe.schedule` and
:mod:`~jupiter.drupe.resources`.
"""
