#!/usr/bin/python
"""Ansible module: a Helm release of a local chart, through pyhelm3 (thin over jupiter.k8s.helm)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_helm_release
short_description: Install, upgrade or uninstall a Helm release of a local chart
description:
  - Drives the Helm 3 CLI through pyhelm3 (logic in C(jupiter.k8s.helm)).
  - With I(state=present) the release is installed or upgraded only when the chart, the
    values or the rendered manifests (hooks included) differ from the deployed revision;
    otherwise nothing happens and C(changed) is false.
  - In check mode nothing is changed; the chart is rendered with C(helm template) and
    compared with the deployed revision when the cluster is reachable, else with nothing
    (C(compared_with) says which). Works without any cluster.
  - Cluster access follows the standard rules - I(kubeconfig), else C($KUBECONFIG), else
    C(~/.kube/config), else the in-cluster service account.
options:
  name:
    description: Release name.
    type: str
    required: true
  namespace:
    description: Namespace of the release.
    type: str
    required: true
  chart:
    description: Path of the chart directory (required with I(state=present)).
    type: path
  values:
    description: Values handed to the chart (validated by its values.schema.json).
    type: dict
    default: {}
  state:
    description: Whether the release should exist.
    type: str
    choices: [present, absent]
    default: present
  create_namespace:
    description: Let Helm create the namespace (unmarked; prefer jupiter_k8s_namespace).
    type: bool
    default: false
  wait:
    description: Wait (helm --wait) until the release's resources are ready / deleted.
    type: bool
    default: true
  atomic:
    description: Roll back a failed upgrade (helm --atomic).
    type: bool
    default: false
  timeout:
    description: Seconds Helm may take.
    type: int
    default: 300
  kubeconfig:
    description: Kubeconfig file; empty = $KUBECONFIG, then ~/.kube/config.
    type: path
  context:
    description: Kubeconfig context; empty = the current context.
    type: str
  helm_binary:
    description: Helm executable; empty = the bundle's .tools/bin/helm, then helm on PATH.
    type: str
author: Jupiter bundle developers
"""

EXAMPLES = r"""
- name: Install DRUPE
  jupiter_helm_release:
    name: jupiter-drupe
    namespace: jupiter
    chart: "{{ jupiter_root }}/charts/drupe"
    values: "{{ drupe_chart_values }}"
"""

RETURN = r"""
action:
  description: install, upgrade, none, uninstall or absent.
  type: str
  returned: always
revision:
  description: Revision number after the run (deployed revision when unchanged).
  type: int
  returned: when the release exists
status:
  description: Helm status of that revision.
  type: str
  returned: when the release exists
diff_summary:
  description: One line per added (+), changed (~, with the changed fields) or removed (-) object.
  type: list
  elements: str
  returned: always
objects:
  description: Every object of the new render (Kind name [-> pinned hostname] [hook]).
  type: list
  elements: str
  returned: always
compared_with:
  description: What the render was compared with (a revision, or nothing and why).
  type: str
  returned: always
cluster:
  description: How the cluster was reached (kubeconfig source and context).
  type: str
  returned: always
"""

import asyncio  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "chart": {"type": "path"},
            "values": {"type": "dict", "default": {}},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "create_namespace": {"type": "bool", "default": False},
            "wait": {"type": "bool", "default": True},
            "atomic": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 300},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            "helm_binary": {"type": "str"},
        },
        required_if=[("state", "present", ["chart"])],
        supports_check_mode=True,
    )
    try:
        from jupiter.errors import JupiterError
        from jupiter.k8s import helm, kubeconfig
    except ImportError as exc:
        module.fail_json(msg=f"the jupiter package is not importable ({exc}): run the "
                             "playbook with the bundle's virtualenv (make setup)")
    p = module.params
    access = kubeconfig.resolve(p["kubeconfig"], p["context"])
    check = module.check_mode
    if not access.usable and not check:
        module.fail_json(msg=access.problem, cluster=access.describe())
    try:
        client = helm.client(p["helm_binary"], access, p["timeout"])
        if p["state"] == "present":
            release = helm.Release(p["name"], p["namespace"], p["chart"], p["values"])
            outcome = asyncio.run(helm.ensure_present(
                client, release, check_mode=check, reachable=access.usable,
                unreachable_reason=access.problem or "", atomic=p["atomic"], wait=p["wait"],
                timeout_s=p["timeout"], create_namespace=p["create_namespace"]))
        else:
            outcome = asyncio.run(helm.ensure_absent(
                client, p["name"], p["namespace"], check_mode=check, reachable=access.usable,
                wait=p["wait"], timeout_s=p["timeout"]))
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe())
    for warning in outcome.warnings:
        module.warn(warning)
    result = outcome.to_dict()
    result["cluster"] = access.describe()
    if module._diff and outcome.changed:
        result["diff"] = {"before": outcome.before, "after": outcome.after,
                          "before_header": f"{p['name']} (deployed)",
                          "after_header": f"{p['name']} (rendered)"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
