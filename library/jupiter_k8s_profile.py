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
  - With I(wait=true) polls until the profile has C(complete=true) and, with
    I(require_exec_for), until its execution profile has C(exec[task][node]) for every
    task and node listed; on timeout fails saying what is still missing (nodes, links,
    task/node pairs) - logic in C(jupiter.k8s.cluster).
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
  require_exec_for:
    description: Also wait until the execution profile covers every one of I(tasks) on
      every one of I(nodes) (what the execution profiler Jobs post to DRUPE home).
    type: dict
    options:
      tasks:
        description: Task names (the app's).
        type: list
        elements: str
        required: true
      nodes:
        description: Inventory names of the profiled nodes.
        type: list
        elements: str
        required: true
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
summary:
  description: What the profile holds, e.g. C(nodes 4/4; links 12/12; complete=True; exec 8/8).
  type: str
  returned: when read
progress:
  description: One line per change of what was missing while waiting (seconds since start).
  type: list
  elements: str
  returned: when read
exec_missing:
  description: C([task, node]) pairs without an execution profile (with I(require_exec_for)).
  type: list
  elements: list
  returned: when read
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
            "require_exec_for": {"type": "dict", "options": {
                "tasks": {"type": "list", "elements": "str", "required": True},
                "nodes": {"type": "list", "elements": "str", "required": True}}},
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
    need = p["require_exec_for"]
    progress: list[str] = []
    try:
        api = cluster.Api(kubeconfig.api_client(access))
        if p["wait"]:
            profile = cluster.wait_profile(api, p["namespace"], p["name"], p["key"],
                                           nodes=p["nodes"], timeout_s=p["timeout"],
                                           interval_s=p["interval"], require_exec=need,
                                           progress=progress.append)
        else:
            profile = cluster.read_profile(api, p["namespace"], p["name"], p["key"])
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe(), progress=progress)
    summary = cluster.missing(profile, p["nodes"]) if profile is not None else "no profile"
    gaps = cluster.exec_missing(profile, need["tasks"], need["nodes"]) if need else []
    if need and profile is not None:
        summary += "; " + cluster.exec_summary(gaps, need["tasks"], need["nodes"])
    module.exit_json(changed=False, profile=profile, summary=summary, progress=progress,
                     exec_missing=[list(g) for g in gaps], cluster=access.describe())


if __name__ == "__main__":
    main()
