"""CIRCE: the data plane. One process per task plus a home (ingress and egress).

Modules: :mod:`config` (the deployment's CIRCE configuration), :mod:`transport` (HTTP
protocol helpers: auth, hashing, name rules, a retrying sender), :mod:`spool` (durable
on-disk queues), :mod:`join` (pure per-item joins and output routing), :mod:`runner`
(loading and running task code), :mod:`task` (the task server), :mod:`home` (the home
server), :mod:`reference` (an in-process run of the whole DAG), :mod:`submit` (the client).
See docs/circe.md for the protocol.
"""
