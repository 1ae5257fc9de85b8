"""CLI of the local target.

    jupiter testbed up --spec FILE.json [--state-dir DIR] [--mode auto|netns|loopback] [--check]
    jupiter testbed down --deployment D [--state-dir DIR] [--check]
    jupiter testbed status --deployment D [--state-dir DIR] [--json]
    jupiter local exec --deployment D --node N [--state-dir DIR] -- ARGV...
    jupiter local programs status|stop [--deployment D] [--state-dir DIR]
    jupiter status [--deployment D] [--state-dir DIR] [--json]

The state folder defaults to ``$JUPITER_STATE_DIR`` or ``.jupiter/<deployment>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from jupiter.errors import InvalidInput, Problem
from jupiter.local import execnode
from jupiter.local.state import default_state_dir

DEFAULT_DEPLOYMENT = "jupiter"


def register(sub: Any) -> None:
    tb = sub.add_parser("testbed", help="create/remove/show the local emulated testbed")
    tb_sub = tb.add_subparsers(dest="testbed_command", metavar="ACTION", required=True)

    up = tb_sub.add_parser("up", help="create or update the testbed from a spec (idempotent)")
    up.add_argument("--spec", required=True, help="JSON {deployment, nodes, links, subnet}")
    up.add_argument("--deployment", help="override the spec's deployment name")
    _state_dir_arg(up)
    up.add_argument("--mode", choices=("auto", "netns", "loopback"), help="default: auto")
    up.add_argument("--check", action="store_true", help="only show what would change")
    up.add_argument("--json", action="store_true", help="print the state as JSON")
    up.set_defaults(func=_testbed_up)

    down = tb_sub.add_parser("down", help="remove namespaces, links, bridge, cgroups")
    _deployment_arg(down)
    _state_dir_arg(down)
    down.add_argument("--check", action="store_true", help="only say whether anything exists")
    down.set_defaults(func=_testbed_down)

    st = tb_sub.add_parser("status", help="recorded testbed and drift from it")
    _deployment_arg(st)
    _state_dir_arg(st)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_testbed_status)

    local = sub.add_parser("local", help="run things on emulated nodes")
    local_sub = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    ex = local_sub.add_parser(
        "exec",
        help="run ARGV in a node's network namespace and cgroup",
        description=execnode.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    execnode.build_parser(ex)
    ex.set_defaults(func=execnode.run)

    progs = local_sub.add_parser("programs", help="the deployment's supervisord programs")
    progs.add_argument("action", choices=("status", "stop"))
    _deployment_arg(progs)
    _state_dir_arg(progs)
    progs.set_defaults(func=_programs)

    status = sub.add_parser(
        "status", help="testbed, programs, mapping and progress of a local deployment"
    )
    _deployment_arg(status)
    _state_dir_arg(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)


def _deployment_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--deployment",
        default=None,
        help=f"deployment name (default: from the state folder, else {DEFAULT_DEPLOYMENT})",
    )


def _state_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir", help="state folder (default $JUPITER_STATE_DIR or .jupiter/<deployment>)"
    )


def _resolve(args: argparse.Namespace) -> tuple[str, str]:
    """(deployment, state_dir) from the flags, the state folder, or the defaults."""
    deployment = args.deployment
    state_dir = args.state_dir
    if deployment is None and state_dir:
        from jupiter.local.state import read_json

        recorded = read_json(os.path.join(state_dir, "testbed.json")) or {}
        deployment = recorded.get("deployment") or os.path.basename(os.path.abspath(state_dir))
    deployment = deployment or DEFAULT_DEPLOYMENT
    return deployment, os.path.abspath(state_dir or default_state_dir(deployment))


def _load_spec(path: str, deployment: str | None) -> Any:
    from jupiter.local.spec import TestbedSpec

    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise InvalidInput([Problem(path, "file not found")], "testbed spec") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            [Problem(path, f"not valid JSON: {exc.msg}", line=exc.lineno)], "testbed spec"
        ) from None
    if deployment and isinstance(data, dict):
        data = {**data, "deployment": deployment}
    return TestbedSpec.from_dict(data, path)


def _testbed_up(args: argparse.Namespace) -> int:
    from jupiter.local import testbed

    spec = _load_spec(args.spec, args.deployment)
    state_dir = args.state_dir or default_state_dir(spec.deployment)
    changed, state = testbed.apply(spec, state_dir, mode=args.mode, dry_run=args.check)
    changed |= _delay_process(spec.deployment, state_dir, state, args.check)
    if args.json:
        print(json.dumps({"changed": changed, **state}, indent=2, sort_keys=True))
        return 0
    verb = "would change" if args.check else "changed"
    print(f"testbed {spec.deployment}: {verb if changed else 'unchanged'} (mode {state['mode']})")
    for change in state["changes"]:
        print(f"  - {change}")
    if not state["shaped"]:
        print(f"  not shaped: {state['reason']}")
    if state["latency_reason"]:
        print(f"  not delayed: {state['latency_reason']}")
    for node in state["nodes"]:
        delayed = f"  delay {node['delay_ms']:g} ms" if state["latency_emulated"] else ""
        print(f"  {node['name']:<12} {node['address']}{delayed}")
    return 0


def _delay_process(deployment: str, state_dir: str, state: dict, check: bool) -> bool:
    """Run the testbed's delay process (group ``testbed``) and wait until it is ready."""
    from jupiter.local import delay, supervisor

    progs = delay.programs(state)
    if not progs:
        return supervisor.remove_group(state_dir, "testbed", dry_run=check)
    changed = supervisor.apply_group(state_dir, deployment, "testbed", progs, dry_run=check)
    if not check:
        supervisor.wait_ready(state_dir, "testbed", progs)
    return changed


def _testbed_down(args: argparse.Namespace) -> int:
    from jupiter.local import supervisor, testbed

    deployment, state_dir = _resolve(args)
    changed = supervisor.remove_group(state_dir, "testbed", dry_run=args.check)  # the delay process
    changed |= testbed.destroy(deployment, state_dir, dry_run=args.check)
    verb = "would be removed" if args.check else "removed"
    print(f"testbed {deployment}: {verb if changed else 'nothing to remove'}")
    return 0


def _testbed_status(args: argparse.Namespace) -> int:
    from jupiter.local import report, testbed

    deployment, state_dir = _resolve(args)
    st = testbed.status(deployment, state_dir)
    if args.json:
        print(json.dumps(st, indent=2, sort_keys=True))
    else:
        print(f"deployment {deployment}  (state {state_dir})")
        print("\n".join(report.format_testbed(st)))
    return 0 if st.get("present") and not st.get("drift") else 3


def _programs(args: argparse.Namespace) -> int:
    from jupiter.local import supervisor

    _, state_dir = _resolve(args)
    if args.action == "stop":
        changed = supervisor.shutdown(state_dir)
        print("supervisord stopped" if changed else "supervisord was not running")
        return 0
    print(json.dumps(supervisor.status(state_dir), indent=2, sort_keys=True))
    return 0


def _status(args: argparse.Namespace) -> int:
    from jupiter.local import report

    deployment, state_dir = _resolve(args)
    data = report.gather(deployment, state_dir)
    if args.json:
        json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
        print()
    else:
        print(report.format_text(data))
    return 0
