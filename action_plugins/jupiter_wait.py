"""Action plugin: wait on a component's JSON status endpoint, printing progress.

Runs on the controller (the local target's nodes are reachable from it), so it can print
progress lines while it waits, which a module cannot. Thin: the polling logic lives in
:mod:`jupiter.wait`.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from jupiter.errors import JupiterError
from jupiter.wait import WaitSpec, wait_for_status

display = Display()

DOCUMENTATION = r"""
module: jupiter_wait
short_description: Wait until a Jupiter status endpoint reports done, with progress
options:
  url: {description: status URL (JSON), required: true, type: str}
  token_file: {description: bearer token file, type: path}
  until: {description: dotted key that must become true; default done >= total > 0, type: str}
  done_key: {description: dotted key of the progress count, type: str, default: done}
  total_key: {description: dotted key of the progress total, type: str, default: total}
  missing_key: {description: dotted key listing what is missing (named on timeout), type: str}
  label: {description: progress line prefix, type: str, default: wait}
  timeout: {description: seconds, type: float, default: 120}
  interval: {description: seconds between polls, type: float, default: 0.5}
"""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        ("url", "token_file", "until", "done_key", "total_key", "missing_key", "label",
         "timeout", "interval")
    )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self._task.args
        if not args.get("url"):
            raise AnsibleActionFail("jupiter_wait: 'url' is required")
        spec = WaitSpec(
            url=str(args["url"]),
            token_file=args.get("token_file"),
            until=args.get("until"),
            done_key=str(args.get("done_key", "done")),
            total_key=str(args.get("total_key", "total")),
            missing_key=args.get("missing_key"),
            label=str(args.get("label", "wait")),
            timeout=float(args.get("timeout", 120)),
            interval=float(args.get("interval", 0.5)),
        )
        if self._task.check_mode:
            result.update(changed=False, skipped=True, msg=f"check mode: would wait on {spec.url}")
            return result
        try:
            status, elapsed = wait_for_status(spec, progress=display.display)
        except JupiterError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        result.update(changed=False, status=status, elapsed=round(elapsed, 3))
        return result
