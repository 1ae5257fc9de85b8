#!/usr/bin/python
"""Ansible module: the deployment's namespace, deleted only if the deployment created it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_k8s_namespace
short_description: Create the deployment's namespace, or delete it only if it created it
description:
  - I(state=present) creates the namespace when missing, labelled
    C(app.kubernetes.io/managed-by=jupiter) and annotated C(jupiter.io/created-by=<deployment>);
    an existing namespace is used as it is.
  - I(state=absent) deletes the namespace only when that annotation names I(deployment), so
    a teardown never removes a namespace it did not create (logic in C(jupiter.k8s.cluster)).
  - Check mode reports what would happen; without a reachable cluster it changes nothing
    and says so (C(skipped_reason)).
options:
  name:
    description: Namespace.
    type: str
    required: true
  deployment:
    description: Deployment name recorded in (and compared with) the marker annotation.
    type: str
    required: true
  state:
    description: Whether the namespace should exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: With I(state=absent), wait until the namespace is gone.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the deletion.
    type: int
    default: 300
  kubeconfig:
    description: Kubeconfig file; empty = $KUBECONFIG, then ~/.kube/config.
    type: path
  context:
    description: Kubeconfig context; empty = the current context.
    type: str
author: Jupiter bundle developers
"""

EXAMPLES = r"""
- name: Namespace of the deployment
  jupiter_k8s_namespace:
    name: jupiter
    deployment: jupiter
"""

RETURN = r"""
created:
  description: The namespace was (or in check mode would be) created by this task.
  type: bool
  returned: state=present
owned:
  description: The namespace carries this deployment's marker (teardown will delete it).
  type: bool
  returned: state=present
deleted:
  description: The namespace was (or would be) deleted.
  type: bool
  returned: state=absent
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "deployment": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "wait": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 300},
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        from jupiter.errors import JupiterError
        from jupiter.k8s import cluster, kubeconfig
    except ImportError as exc:
        module.fail_json(msg=f"the jupiter package is not importable ({exc}): run the "
                             "playbook with the bundle's virtualenv (make setup)")
    p = module.params
    access = kubeconfig.resolve(p["kubeconfig"], p["context"])
    if not access.usable:
        if module.check_mode:
            module.exit_json(changed=False, skipped_reason=access.problem,
                             cluster=access.describe())
        module.fail_json(msg=access.problem, cluster=access.describe())
    try:
        api = cluster.Api(kubeconfig.api_client(access))
        if p["state"] == "present":
            result = cluster.ensure_namespace(api, p["name"], p["deployment"],
                                              check_mode=module.check_mode)
        else:
            result = cluster.remove_namespace(api, p["name"], p["deployment"],
                                              check_mode=module.check_mode, wait=p["wait"],
                                              timeout_s=p["timeout"])
    except cluster.ClusterError as exc:
        if module.check_mode:
            module.exit_json(changed=False, skipped_reason=str(exc), cluster=access.describe())
        module.fail_json(msg=str(exc), cluster=access.describe())
    except JupiterError as exc:
        module.fail_json(msg=str(exc), cluster=access.describe())
    module.exit_json(cluster=access.describe(), **result)


if __name__ == "__main__":
    main()
