#!/usr/bin/python
"""Ansible module: the local emulated testbed (thin wrapper over jupiter.local.testbed)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_testbed
short_description: Emulate the inventory's nodes on this machine (namespaces, shaped links, CPU)
description:
  - As root with iproute2, every node becomes a network namespace C(jn-<deployment>-<i>) on the
    bridge C(jb-<deployment>) with address C(<subnet>.(i+2)); each directed link is shaped with
    htb; each node's CPU share is a cgroup v1 C(cpu) quota where that controller exists.
  - Without root (or with I(mode=loopback), or C(JUPITER_LOCAL_MODE=loopback) in the
    environment) each node gets C(127.0.1.(i+2)) and nothing is shaped (I(shaped=false), I(reason)).
  - Idempotent against the kernel's actual state; supports check mode.
  - Runs on the controller with the bundle's Python (C(import jupiter)).
options:
  deployment:
    description: Deployment name (DNS label, at most 40 characters).
    type: str
    required: true
  state_dir:
    description: The deployment's state folder; the testbed is recorded in C(testbed.json) there.
    type: path
    required: true
  nodes:
    description:
      - Ordered node list; node I(i) gets address C(.(i+2)). Keys used are C(name), C(cpu_share)
        (fraction of one core, omit for no limit), C(uplink_mbit) and C(delay_ms) (one-way delay
        to the network core; a link waits both ends' sum); other keys are ignored.
    type: list
    elements: dict
    default: []
  links:
    description:
      - "Directed link rates in Mbit/s, either C({src: {dst: mbit}}) or a list of
        C({src, dst, mbit}). A pair not listed is not shaped."
    type: raw
    default: {}
  subnet:
    description: IPv4 network of the bridge (netns mode); the host holds its first address.
    type: str
    default: 10.77.0.0/24
  tcp_congestion:
    description:
      - TCP congestion control of every node's namespace (netns mode); C("") keeps the host's
        default. It must be one the host allows (C(net.ipv4.tcp_allowed_congestion_control)),
        else the module fails before it changes anything.
    type: str
    default: reno
  mode:
    description: C(auto) picks C(netns) when possible (C(JUPITER_LOCAL_MODE) overrides auto).
    type: str
    choices: [auto, netns, loopback]
    default: auto
  state:
    description: C(absent) removes namespaces, links, bridge, cgroups and C(testbed.json).
    type: str
    choices: [present, absent]
    default: present
author: Jupiter bundle
"""

EXAMPLES = r"""
- name: Create the testbed
  jupiter_testbed:
    deployment: jupiter
    state_dir: /srv/jupiter/.jupiter/jupiter
    nodes: [{name: home, cpu_share: 1.0}, {name: edge1, cpu_share: 0.5}]
    links: {home: {edge1: 20}, edge1: {home: 20}}
"""

RETURN = r"""
addresses:
  description: Address of every node.
  type: dict
  returned: state=present
shaped:
  description: Whether links are shaped (netns mode).
  type: bool
  returned: state=present
reason:
  description: Why the testbed is not shaped (null when it is).
  type: str
  returned: state=present
mode:
  description: C(netns) or C(loopback).
  type: str
  returned: state=present
cgroups:
  description: Whether CPU shares are applied; C(cgroups_reason) says why not.
  type: bool
  returned: state=present
changes:
  description: What was (or in check mode would be) changed.
  type: list
  returned: state=present
testbed:
  description: The full recorded testbed (nodes, links, names).
  type: dict
  returned: state=present
programs:
  description:
    - The testbed's own programs, to run as group C(testbed) with M(jupiter_local_programs)
      - the delay process that holds the packets of delayed links (C(delay_ms)); empty
        without delays.
  type: list
  returned: state=present
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "deployment": {"type": "str", "required": True},
            "state_dir": {"type": "path", "required": True},
            "nodes": {"type": "list", "elements": "dict", "default": []},
            "links": {"type": "raw", "default": {}},
            "subnet": {"type": "str", "default": "10.77.0.0/24"},
            "tcp_congestion": {"type": "str", "default": "reno"},
            "mode": {"type": "str", "choices": ["auto", "netns", "loopback"], "default": "auto"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    try:
        from jupiter.errors import InvalidInput, JupiterError
        from jupiter.local import delay, testbed
        from jupiter.local.spec import TestbedSpec
    except ImportError as exc:
        module.fail_json(msg=f"cannot import jupiter ({exc}): run with the bundle's Python")
        return
    p = module.params
    check = module.check_mode
    try:
        if p["state"] == "absent":
            changed = testbed.destroy(p["deployment"], p["state_dir"], dry_run=check)
            module.exit_json(changed=changed)
            return
        spec = TestbedSpec.from_dict(
            {
                "deployment": p["deployment"],
                "subnet": p["subnet"],
                "nodes": p["nodes"],
                "links": p["links"] or {},
                "tcp_congestion": p["tcp_congestion"],
            },
            "jupiter_testbed arguments",
        )
        mode = None if p["mode"] == "auto" else p["mode"]
        changed, state = testbed.apply(spec, p["state_dir"], mode=mode, dry_run=check)
    except InvalidInput as exc:
        module.fail_json(msg=str(exc), problems=[pr.to_dict() for pr in exc.problems])
        return
    except JupiterError as exc:
        module.fail_json(msg=str(exc))
        return
    module.exit_json(
        changed=changed,
        addresses={n["name"]: n["address"] for n in state["nodes"]},
        shaped=state["shaped"],
        reason=state["reason"],
        mode=state["mode"],
        cgroups=state["cgroups"],
        cgroups_reason=state["cgroups_reason"],
        changes=state["changes"],
        testbed={k: v for k, v in state.items() if k not in ("changes", "spec")},
        programs=delay.programs(state),
    )


if __name__ == "__main__":
    main()
