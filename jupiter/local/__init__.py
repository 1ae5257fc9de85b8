"""The embedded ``local`` target: every inventory node emulated on this machine.

* :mod:`jupiter.local.spec` - the testbed input (nodes, CPU shares, link matrix).
* :mod:`jupiter.local.testbed` - network namespaces, bridge, htb shaping, cgroups (or
  loopback addresses without root); ``apply``/``destroy``/``status``/``node_addresses``.
* :mod:`jupiter.local.delay` - the delay process holding packets for their link's delay.
* :mod:`jupiter.local.execnode` - ``jupiter local exec``: run a command "on a node".
* :mod:`jupiter.local.supervisor` - one supervisord per deployment running the programs.
* :mod:`jupiter.local.commands` - the CLI (``jupiter testbed ...``, ``jupiter status``).

Nothing here knows about Kubernetes or Ansible. Keep this file free of imports: the
``exec`` wrapper is started for every program and must stay fast.
"""
