#!/usr/bin/python
"""Ansible module: programs of a local deployment under supervisord (over jupiter.local)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupiter_local_programs
short_description: Run a group of programs on emulated nodes under the deployment's supervisord
description:
  - Starts the deployment's supervisord if needed (config, unix socket and logs under
    I(state_dir)/supervisor/), writes the group's programs and applies the difference -
    unchanged programs keep running and report C(changed=false).
  - Each program runs as C(jupiter local exec) on its node (network namespace and cgroup of the
    testbed), is restarted when it exits (I(autorestart)) and logs to
    I(state_dir)/logs/<group>-<name>.log.
  - Then waits until each program's C(ready_url) answers HTTP 200, failing with the names of the
    programs that are not ready and the last lines of their logs.
  - With I(state=absent) the group's programs are stopped and removed; without I(group) the
    whole supervisord of the deployment is shut down (all programs, waits until they are gone).
  - Supports check mode (reports whether anything would change).
options:
  deployment:
    description: Deployment name (must match the testbed's).
    type: str
    required: true
  state_dir:
    description: The deployment's state folder.
    type: path
    required: true
  group:
    description: Program group, e.g. C(drupe), C(wave), C(circe) (lowercase, digits, C(_)).
    type: str
  programs:
    description:
      - List of C({name, node, command, env, ready_url, autorestart, cwd}); C(command) is an argv
        list, C(env) a mapping, C(ready_url) an optional URL answering 200 when ready,
        C(autorestart) defaults to true, C(cwd) to the state folder.
    type: list
    elements: dict
    default: []
  state:
    description: C(present) runs exactly I(programs) in I(group); C(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  ready_timeout:
    description: Seconds to wait for every C(ready_url) (0 = do not wait).
    type: float
    default: 120
author: Jupiter bundle
"""

EXAMPLES = r"""
- name: Run the WAVE service on the home node
  jupiter_local_programs:
    deployment: jupiter
    state_dir: /srv/jupiter/.jupiter/jupiter
    group: wave
    programs:
      - name: serve
        node: home
        command:
          - /srv/jupiter/.venv/bin/jupiter
          - wave
          - serve
          - --config
          - /srv/jupiter/.jupiter/jupiter/wave.json
        ready_url: http://10.77.0.2:7710/ready
"""

RETURN = r"""
programs:
  description: The group's programs as supervisord reports them (name, node, state, pid, uptime_s).
  type: list
  returned: always
ready_seconds:
  description: Seconds each program took to become ready in this run.
  type: dict
  returned: state=present and not check mode
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "deployment": {"type": "str", "required": True},
            "state_dir": {"type": "path", "required": True},
            "group": {"type": "str"},
            "programs": {"type": "list", "elements": "dict", "default": []},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "ready_timeout": {"type": "float", "default": 120.0},
        },
        required_if=[("state", "present", ("group",))],
        supports_check_mode=True,
    )
    try:
        from jupiter.errors import InvalidInput, JupiterError
        from jupiter.local import supervisor
    except ImportError as exc:
        module.fail_json(msg=f"cannot import jupiter ({exc}): run with the bundle's Python")
        return
    p = module.params
    check = module.check_mode
    group = p["group"]

    def mine() -> list:
        found = supervisor.status(p["state_dir"])["programs"]
        return [x for x in found if group is None or x["group"] == group]

    try:
        if p["state"] == "absent":
            if group is None:
                changed = supervisor.shutdown(p["state_dir"], dry_run=check)
            else:
                changed = supervisor.remove_group(p["state_dir"], group, dry_run=check)
            module.exit_json(changed=changed, programs=mine())
            return
        changed = supervisor.apply_group(
            p["state_dir"], p["deployment"], group, p["programs"], dry_run=check
        )
        took = {}
        if not check and p["ready_timeout"] > 0:
            took = supervisor.wait_ready(p["state_dir"], group, p["programs"], p["ready_timeout"])
    except InvalidInput as exc:
        module.fail_json(msg=str(exc), problems=[pr.to_dict() for pr in exc.problems])
        return
    except JupiterError as exc:
        module.fail_json(msg=str(exc), programs=_safe(mine))
        return
    module.exit_json(changed=changed, programs=mine(), ready_seconds=took)


def _safe(fn):
    try:
        return fn()
    except Exception:  # status is best effort on the failure path
        return []


if __name__ == "__main__":
    main()
