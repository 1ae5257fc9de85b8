#!/usr/bin/python
"""Ansible module: read the DRUPE profile ConfigMap, optionally waiting until it is complete."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_k8s_profile
short_description: Read the DRUPE profile from its ConfigMap
description:
  - Reads key I(key) of ConfigMap I(name) (written by DRUPE home), checks it is a
    C(jupiter.profile/v1) document and returns it parsed.
  - With I(wait=true) polls until the profile has C(complete=true); on timeout fails saying
    what is still missing (nodes, links) - logic in C(jupiter.k8s.cluster).
  - Not read in check mode; C(profile) is then the nominal profile of I(preview_inventory)
    (C(jupiter.k8s.preview), marked C(nominal=true)) when given, else null.
options:
  name:
    description: ConfigMap name (the drupe chart makes <deployment>-drupe-profile).
    type: str
    required: true
  namespace:
    description: Namespace of the ConfigMap.
    type: str
    required: true
  key:
    description: Data key holding the profile JSON.
    type: str
    default: profile.json
  wait:
    description: Wait until the profile is complete.
    type: bool
    default: true
  nodes:
    description: Node names the profile must cover (only used to report what is missing).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait.
    type: int
    default: 900
  interval:
    description: Longest pause between two reads (seconds).
    type: float
    default: 5.0
  preview_inventory:
    description: The inventory model (jupiter_nodes filter); in check mode a nominal profile
      is returned from it (node cpu_share, link rates) so a preview can schedule.
    type: dict
  kubeconfig:
    description: Kubeconfig file; empty = $KUBECONFIG, then ~/.kube/config.
    type: path
  context:
    description: Kubeconfig context; empty = the current context.
    type: str
author: Jupiter bundle developers
"""

EXAMPLES = r"""
- name: Wait for the profile
  jupiter_k8s_profile:
    name: jupiter-drupe-profile
    namespace: jupiter
    nodes: [home, edge1, edge2]
  register: drupe_k8s_profile
"""

RETURN = r"""
profile:
  description: The profile (jupiter.profile/v1); null in check mode or when absent (wait=false).
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "key": {"type": "str", "default": "profile.json"},
            "wait": {"type": "bool", "default": True},
            "nodes": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "int", "default": 900},
            "interval": {"type": "float", "default": 5.0},
            "preview_inventory": {"type": "dict"},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        from jupiter.errors import JupiterError
        from jupiter.k8s import cluster, kubeconfig, preview
    except ImportError as exc:
        module.fail_json(msg=f"the jupiter package is not importable ({exc}): run the "
                             "playbook with the bundle's virtualenv (make setup)")
    p = module.params
    if module.check_mode:
        nominal = (preview.nominal_profile(p["preview_inventory"])
                   if p["preview_inventory"] else None)
        module.exit_json(changed=False, profile=nominal, nominal=nominal is not None,
                         msg="check mode: the profile is not read"
                             + ("; nominal profile from the inventory" if nominal else ""))
    access = kubeconfig.resolve(p["kubeconfig"], p["context"])
    try:
        api = cluster.Api(kubeconfig.api_client(access))
        if p["wait"]:
            profile = cluster.wait_profile(api, p["namespace"], p["name"], p["key"],
                                           nodes=p["nodes"], timeout_s=p["timeout"],
                                           interval_s=p["interval"])
        else:
            profile = cluster.read_profile(api, p["namespace"], p["name"], p["key"])
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe())
    summary = cluster.missing(profile, p["nodes"]) if profile is not None else "no profile"
    module.exit_json(changed=False, profile=profile, summary=summary, cluster=access.describe())


if __name__ == "__main__":
    main()
