#!/usr/bin/python
"""Ansible module: wait until a release's Deployments/DaemonSets/Jobs and pods are really ready."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_k8s_wait
short_description: Wait until a release's workloads are really ready
description:
  - Polls the workloads of I(kinds) (Deployments and DaemonSets by default; Jobs when
    asked) selected by I(selector) (default C(app.kubernetes.io/instance=<release>)) and
    their pods until every desired replica is updated, ready (pod condition Ready) and
    available, every DaemonSet is scheduled on the nodes it expects, and every Job
    succeeded (logic in C(jupiter.k8s.readiness)).
  - On timeout, or on a state waiting cannot fix (invalid image name, rollout deadline
    exceeded, a Job failed - C(Failed) condition or more failed pods than its
    backoffLimit), fails naming each object that is not ready, why (unschedulable, image
    pull, crash loop, failing readiness probe, failed pod with its exit code ...), its last
    events and, for Jobs, the last log lines of the container that failed or is running.
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
  kinds:
    description: Workload kinds to wait for.
    type: list
    elements: str
    choices: [Deployment, DaemonSet, Job]
    default: [Deployment, DaemonSet]
  allow_none:
    description: Succeed when no workload of I(kinds) matches (e.g. Jobs that finished and
      were deleted after their ttlSecondsAfterFinished); else that is an error on timeout.
    type: bool
    default: false
  log_lines:
    description: Log lines shown per failing Job container in the error message.
    type: int
    default: 10
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

- name: Wait for the DRUPE execution profiler Jobs
  jupiter_k8s_wait:
    release: jupiter-drupe
    namespace: jupiter
    selector: app.kubernetes.io/instance=jupiter-drupe,app.kubernetes.io/component=drupe-exec
    kinds: [Job]
    allow_none: true
    timeout: 900
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
            "kinds": {"type": "list", "elements": "str", "default": ["Deployment", "DaemonSet"],
                      "choices": ["Deployment", "DaemonSet", "Job"]},
            "allow_none": {"type": "bool", "default": False},
            "log_lines": {"type": "int", "default": 10},
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
                                    interval_s=p["interval"], what=f"release {p['release']}",
                                    kinds=p["kinds"], allow_none=p["allow_none"],
                                    log_lines=p["log_lines"])
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe())
    module.exit_json(changed=False, ready=result.ready, cluster=access.describe(),
                     msg=f"release {p['release']}: {result.progress()}"
                         + (" (none found)" if not result.workloads else ""))


if __name__ == "__main__":
    main()
