#!/usr/bin/python
"""Ansible module: wait until a release's Deployments/DaemonSets and pods are really ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_k8s_wait
short_description: Wait until a release's workloads are really ready
description:
  - Polls the Deployments and DaemonSets selected by I(selector) (default
    C(app.kubernetes.io/instance=<release>)) and their pods until every desired replica is
    updated, ready (pod condition Ready) and available, and every DaemonSet is scheduled
    on the nodes it expects (logic in C(jupiter.k8s.readiness)).
  - On timeout, or on a state waiting cannot fix (invalid image name, rollout deadline
    exceeded), fails naming each object that is not ready, why (unschedulable, image pull,
    crash loop, failing readiness probe ...) and its last events.
  - Skipped in check mode.
options:
  release:
    description: Helm release whose workloads to wait for.
    type: str
    required: true
  namespace:
    description: Namespace of the release.
    type: str
    required: true
  selector:
    description: Label selector; empty = app.kubernetes.io/instance=<release>.
    type: str
  timeout:
    description: Seconds to wait.
    type: int
    default: 300
  interval:
    description: Longest pause between two polls (seconds; polling starts faster).
    type: float
    default: 2.0
  kubeconfig:
    description: Kubeconfig file; empty = $KUBECONFIG, then ~/.kube/config.
    type: path
  context:
    description: Kubeconfig context; empty = the current context.
    type: str
author: Jupiter bundle developers
"""

EXAMPLES = r"""
- name: Wait for CIRCE
  jupiter_k8s_wait:
    release: jupiter-circe
    namespace: jupiter
    timeout: 600
"""

RETURN = r"""
ready:
  description: The workloads found ready (Kind name).
  type: list
  elements: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "release": {"type": "str", "required": True},
            "namespace": {"type": "str", "required": True},
            "selector": {"type": "str"},
            "timeout": {"type": "int", "default": 300},
            "interval": {"type": "float", "default": 2.0},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
        },
        supports_check_mode=True,
    )
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: readiness not waited for")
    try:
        from jupiter.errors import JupiterError
        from jupiter.k8s import cluster, kubeconfig
    except ImportError as exc:
        module.fail_json(msg=f"the jupiter package is not importable ({exc}): run the "
                             "playbook with the bundle's virtualenv (make setup)")
    p = module.params
    access = kubeconfig.resolve(p["kubeconfig"], p["context"])
    selector = p["selector"] or f"app.kubernetes.io/instance={p['release']}"
    try:
        api = cluster.Api(kubeconfig.api_client(access))
        result = cluster.wait_ready(api, p["namespace"], selector, timeout_s=p["timeout"],
                                    interval_s=p["interval"], what=f"release {p['release']}")
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe())
    module.exit_json(changed=False, ready=result.ready, cluster=access.describe(),
                     msg=f"release {p['release']}: {result.progress()}")


if __name__ == "__main__":
    main()
