"""``jupiter local exec``: run a command "on" an emulated node.

    jupiter local exec --deployment D --node N [--state-dir DIR] [--env K=V ...] -- ARGV...

Reads the testbed state (``<state_dir>/testbed.json``), writes its own pid into the
node's cgroup (if the testbed has cgroups and the program file does not say
``"cgroup": false``), enters the node's network namespace (if the
testbed runs in netns mode) with ``setns(2)``, sets the environment and then ``exec``s
ARGV: the pid stays the same, so supervisord supervises the real program. It also exports
``JUPITER_NODE``, ``JUPITER_NODE_ADDRESS``, ``JUPITER_DEPLOYMENT`` and
``JUPITER_STATE_DIR`` (plus ``JUPITER_PROGRAM=<group>-<name>`` with ``--program``).

Deliberately light (no imports beyond the standard library and the state reader): it is
started once per program; ``python -m jupiter.local.execnode`` skips the full CLI.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"


class ExecError(Exception):
    pass


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(
        prog="jupiter local exec", description="Run a command on an emulated node."
    )
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument(
        "--state-dir", help="state folder (default $JUPITER_STATE_DIR or .jupiter/<deployment>)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set in the environment"
    )
    parser.add_argument(
        "--program",
        metavar="FILE",
        help="JSON {argv, env, cwd} written by jupiter.local.supervisor (instead of -- ARGV)",
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- command and arguments")
    return parser


def _state_dir(deployment: str, state_dir: str | None) -> str:
    if state_dir:
        return state_dir
    env = os.environ.get("JUPITER_STATE_DIR")
    return os.path.abspath(env or os.path.join(".jupiter", deployment))


def node_entry(deployment: str, node: str, state_dir: str | None) -> dict:
    path = os.path.join(_state_dir(deployment, state_dir), "testbed.json")
    try:
        with open(path) as fh:
            state = json.load(fh)
    except FileNotFoundError:
        raise ExecError(
            f"{path}: no testbed for deployment {deployment!r}; create it first "
            "(`jupiter testbed up` or the testbed role)"
        ) from None
    if state.get("deployment") != deployment:
        raise ExecError(f"{path} describes deployment {state.get('deployment')!r}")
    for entry in state.get("nodes", []):
        if entry.get("name") == node:
            return {**entry, "_mode": state.get("mode")}
    known = ", ".join(n.get("name", "?") for n in state.get("nodes", []))
    raise ExecError(f"{path}: node {node!r} is not in the testbed (nodes: {known})")


def load_program(path: str, deployment: str, node: str) -> dict:
    try:
        with open(path) as fh:
            program = json.load(fh)
    except FileNotFoundError:
        raise ExecError(f"{path}: program file missing; re-apply the program group") from None
    except json.JSONDecodeError as exc:
        raise ExecError(f"{path}: not JSON ({exc})") from None
    if program.get("deployment") != deployment or program.get("node") != node:
        raise ExecError(
            f"{path} is for {program.get('deployment')}/{program.get('node')}, "
            f"not {deployment}/{node}"
        )
    if not isinstance(program.get("argv"), list) or not program["argv"]:
        raise ExecError(f"{path}: 'argv' must be a non-empty list")
    return program


def enter_netns(name: str) -> None:
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, name)
    finally:
        os.close(fd)


def setns(fd: int, what: str) -> None:
    """Move the calling thread into the network namespace open as ``fd``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise ExecError(f"setns({what}): {os.strerror(err)}")


def prepare(deployment: str, node: str, state_dir: str | None, env: Sequence[str],
            *, join_cgroup: bool = True) -> dict:
    """Join the node's cgroup (unless told not to) and namespace, update os.environ; return
    the node entry."""
    entry = node_entry(deployment, node, state_dir)
    if entry.get("cgroup") and join_cgroup:
        try:
            with open(os.path.join(entry["cgroup"], "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            raise ExecError(f"cannot join cgroup {entry['cgroup']}: {exc}") from None
    if entry.get("netns"):
        try:
            enter_netns(entry["netns"])
        except FileNotFoundError:
            raise ExecError(
                f"namespace {entry['netns']} of node {node!r} does not exist: re-apply the testbed"
            ) from None
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ExecError(f"--env {item!r}: expected KEY=VALUE")
        os.environ[key] = value
    os.environ["JUPITER_DEPLOYMENT"] = deployment
    os.environ["JUPITER_NODE"] = node
    os.environ["JUPITER_NODE_ADDRESS"] = str(entry.get("address", ""))
    os.environ["JUPITER_STATE_DIR"] = os.path.abspath(_state_dir(deployment, state_dir))
    return entry


def run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    env = list(args.env)
    cwd = None
    join_cgroup = True
    try:
        if args.program:
            program = load_program(args.program, args.deployment, args.node)
            argv = program["argv"] + argv
            env = [f"{k}={v}" for k, v in program.get("env", {}).items()] + env
            cwd = program.get("cwd")
            join_cgroup = program.get("cgroup", True) is not False
            # marks a supervised program: a later supervisord reaps it if it was orphaned
            env.append("JUPITER_PROGRAM=" + os.path.basename(args.program).rsplit(".", 2)[0])
        if not argv:
            print("jupiter local exec: give the command after --", file=sys.stderr)
            return 2
        prepare(args.deployment, args.node, args.state_dir, env, join_cgroup=join_cgroup)
        if cwd:
            os.chdir(cwd)
    except (ExecError, OSError) as exc:
        print(f"jupiter local exec: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Python ignores SIGPIPE/SIGXFSZ and ignored signals survive exec: give them back
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"jupiter local exec: cannot run {argv[0]!r}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
