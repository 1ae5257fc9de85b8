"""One supervisord per deployment, driven over XML-RPC on a private unix socket.

Layout under ``<state_dir>``::

    supervisor/                 0700
      supervisord.conf          main config (socket, pid, log, include conf.d/*.conf)
      supervisor.sock           unix socket, chmod 0700; no inet server, no password
      supervisord.pid, supervisord.log, supervisord.out (start-up output)
      conf.d/<group>.conf       the programs of one group (drupe, wave, circe, ...)
      conf.d/<group>.json       the group's program specs as given (for status/wait)
      programs/<group>-<name>.<digest>.json   argv/env read by `jupiter local exec`
    logs/<group>-<name>.log     each program's stdout+stderr

When the socket path would exceed the kernel's 108-byte limit, the socket lives in a
private 0700 folder ``$XDG_RUNTIME_DIR/jupiter`` or ``/tmp/jupiter-<uid>`` instead, named
after a hash of the state folder.

Every program is ``jupiter local exec --program FILE`` on its node (namespace + cgroup),
restarted by supervisord when it exits (``autorestart``), stopped with its whole process
group. supervisord inherits the environment of whoever started it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from jupiter.errors import JupiterError
from jupiter.local.programs import (
    GROUP_RE,
    PROGRAMS_DIR,
    ProgramSpec,
    parse_programs,
    render_group,
)
from jupiter.local.state import locked, read_json, write_json, write_text

RPC_TIMEOUT = 60.0
START_TIMEOUT = 30.0
SUN_PATH_MAX = 96  # 108 bytes incl. NUL, and supervisord binds "<path>.<pid>" first
RUNNING_STATES = {"RUNNING", "STARTING"}


class SupervisorError(JupiterError):
    pass


class ProgramNotReady(SupervisorError):
    def __init__(self, message: str, programs: list[str]) -> None:
        self.programs = programs
        super().__init__(message)


@dataclass(frozen=True)
class Paths:
    state_dir: str
    dir: str
    conf: str
    confd: str
    programs: str
    sock: str
    pidfile: str
    log: str
    out: str
    logs: str


def paths(state_dir: str) -> Paths:
    state_dir = os.path.abspath(state_dir)
    d = os.path.join(state_dir, "supervisor")
    return Paths(
        state_dir=state_dir,
        dir=d,
        conf=os.path.join(d, "supervisord.conf"),
        confd=os.path.join(d, "conf.d"),
        programs=os.path.join(d, PROGRAMS_DIR),
        sock=socket_path(state_dir),
        pidfile=os.path.join(d, "supervisord.pid"),
        log=os.path.join(d, "supervisord.log"),
        out=os.path.join(d, "supervisord.out"),
        logs=os.path.join(state_dir, "logs"),
    )


def socket_path(state_dir: str) -> str:
    state_dir = os.path.abspath(state_dir)
    path = os.path.join(state_dir, "supervisor", "supervisor.sock")
    if len(path.encode()) <= SUN_PATH_MAX:
        return path
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(runtime, "jupiter") if runtime else f"/tmp/jupiter-{os.getuid()}"
    digest = hashlib.sha256(state_dir.encode()).hexdigest()[:16]
    return os.path.join(base, f"supervisor-{digest}.sock")


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if st.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
        raise SupervisorError(f"{path} is not a directory owned by uid {os.getuid()}")
    os.chmod(path, 0o700)


# ---------------------------------------------------------------- XML-RPC client


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """Like supervisor.xmlrpc.SupervisorTransport, plus a timeout on every call."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        return _UnixConnection(self._path, self._timeout)


def rpc(state_dir: str, timeout: float = RPC_TIMEOUT) -> Any:
    """An XML-RPC proxy of the deployment's supervisord (``proxy.supervisor.getState()``)."""
    transport = _UnixTransport(socket_path(state_dir), timeout)
    return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport)


def running(state_dir: str) -> bool:
    try:
        state = rpc(state_dir, timeout=5).supervisor.getState()
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return False
    return state.get("statename") == "RUNNING"


# ---------------------------------------------------------------- supervisord


def main_config(state_dir: str, identifier: str) -> str:
    p = paths(state_dir)
    return "\n".join(
        [
            "; written by jupiter.local.supervisor; do not edit",
            "[unix_http_server]",
            f"file={p.sock}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={p.log}",
            "logfile_maxbytes=5MB",
            "logfile_backups=2",
            "loglevel=info",
            f"pidfile={p.pidfile}",
            f"childlogdir={p.logs}",
            f"identifier={identifier}",
            f"directory={p.state_dir}",
            "nodaemon=false",
            "minfds=1024",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{p.sock}",
            "",
            "[include]",
            "files = conf.d/*.conf",
            "",
        ]
    ).replace("%", "%%")


def ensure_supervisord(state_dir: str, deployment: str | None = None) -> bool:
    """Start the deployment's supervisord unless it runs; True when it was started."""
    if running(state_dir):
        return False
    p = paths(state_dir)
    _private_dir(p.dir)
    _private_dir(os.path.dirname(p.sock))
    os.makedirs(p.confd, exist_ok=True)
    os.makedirs(p.programs, exist_ok=True)
    os.makedirs(p.logs, exist_ok=True)
    reap_orphans(state_dir)
    ident = f"jupiter-{deployment or os.path.basename(p.state_dir)}"
    write_text(p.conf, main_config(state_dir, ident), mode=0o600)
    with open(p.out, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "supervisor.supervisord", "-c", p.conf],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=p.state_dir,
            timeout=START_TIMEOUT,
            check=False,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not running(state_dir):
        if proc.returncode != 0 or time.monotonic() > deadline:
            raise SupervisorError(
                f"supervisord for {p.state_dir} did not start (exit {proc.returncode}).\n"
                f"{p.out}:\n{tail(p.out)}\n{p.log}:\n{tail(p.log)}"
            )
        time.sleep(0.05)
    return True


def orphans(state_dir: str) -> list[psutil.Process]:
    """Programs of this state folder whose supervisord is gone (killed, machine crash...).

    Recognised by the environment ``jupiter local exec --program`` gives them.
    """
    want = os.path.abspath(state_dir)
    live = supervisord_pid(state_dir)
    found = []
    for proc in psutil.process_iter(["pid", "ppid"]):
        try:
            env = proc.environ()
        except (psutil.Error, OSError):
            continue
        if (
            env.get("JUPITER_PROGRAM")
            and env.get("JUPITER_STATE_DIR") == want
            and (live is None or proc.info["ppid"] != live)
        ):
            found.append(proc)
    return found


def reap_orphans(state_dir: str, timeout: float = 10.0) -> int:
    """Kill orphaned programs (and their process groups); how many were found."""
    procs = orphans(state_dir)
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == proc.pid:  # its own group (supervisord's setpgrp)
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout)
    return len(procs)


def supervisord_pid(state_dir: str) -> int | None:
    try:
        return int(rpc(state_dir, timeout=5).supervisor.getPID())
    except (OSError, xmlrpc.client.Error, http.client.HTTPException):
        return None


# ---------------------------------------------------------------- groups


def _group_files(state_dir: str, group: str) -> tuple[str, str]:
    p = paths(state_dir)
    return os.path.join(p.confd, f"{group}.conf"), os.path.join(p.confd, f"{group}.json")


def _infos(proxy: Any) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in proxy.supervisor.getAllProcessInfo()}


def _members(names: Sequence[str], group: str) -> list[str]:
    return [n for n in names if n.startswith(f"{group}-")]


def apply_group(
    state_dir: str,
    deployment: str,
    group: str,
    programs: Sequence[ProgramSpec | dict[str, Any]],
    *,
    dry_run: bool = False,
) -> bool:
    """Make the group run exactly ``programs``; True when anything changed.

    Unchanged programs keep running (same pid). Programs of the group that stopped or
    failed are started again. With ``dry_run`` nothing is written or started.
    """
    specs = _specs(programs, group)
    conf_text, files = render_group(
        state_dir=os.path.abspath(state_dir), deployment=deployment, group=group, programs=specs
    )
    conf_path, manifest_path = _group_files(state_dir, group)
    manifest = {
        "schema": "jupiter.programs/v1",
        "deployment": deployment,
        "group": group,
        "programs": [s.to_dict() for s in specs],
    }
    if dry_run:
        return _would_change(state_dir, group, conf_path, conf_text, specs)
    with locked(state_dir, "supervisor"):
        p = paths(state_dir)
        _private_dir(p.dir)
        for name, content in files.items():
            write_text(os.path.join(p.programs, name), content, mode=0o600)
        changed = write_text(conf_path, conf_text, mode=0o600)
        changed |= ensure_supervisord(state_dir, deployment)
        write_json(manifest_path, manifest)
        proxy = rpc(state_dir)
        changed |= _update(proxy, group)
        infos = _infos(proxy)
        for s in specs:
            info = infos.get(s.process_name(group))
            if info and info["statename"] not in RUNNING_STATES and info["statename"] != "BACKOFF":
                proxy.supervisor.startProcess(f"{info['group']}:{info['name']}", False)
                changed = True
        _prune_program_files(p.programs, group, set(files))
    return changed


def _specs(programs: Sequence[ProgramSpec | dict[str, Any]], group: str) -> list[ProgramSpec]:
    """Validated specs (dicts are parsed; the group name is always checked)."""
    return parse_programs(
        [p.to_dict() if isinstance(p, ProgramSpec) else p for p in programs], group
    )


def _would_change(
    state_dir: str, group: str, conf_path: str, conf_text: str, specs: Sequence[ProgramSpec]
) -> bool:
    try:
        with open(conf_path) as fh:
            if fh.read() != conf_text:
                return True
    except FileNotFoundError:
        return True
    if not running(state_dir):
        return True
    infos = _infos(rpc(state_dir))
    return any(
        infos.get(s.process_name(group), {}).get("statename") not in RUNNING_STATES | {"BACKOFF"}
        for s in specs
    )


def _update(proxy: Any, group: str) -> bool:
    """``supervisorctl update`` restricted to the process groups of ``group``."""
    try:
        added, changed, removed = proxy.supervisor.reloadConfig()[0]
    except xmlrpc.client.Fault as exc:
        raise SupervisorError(f"supervisord refused the configuration: {exc.faultString}") from None
    added, changed, removed = (_members(x, group) for x in (added, changed, removed))
    for name in removed + changed:
        with contextlib.suppress(xmlrpc.client.Fault):  # NOT_RUNNING: already stopped
            proxy.supervisor.stopProcessGroup(name, True)
        proxy.supervisor.removeProcessGroup(name)
    for name in changed + added:
        proxy.supervisor.addProcessGroup(name)
    return bool(added or changed or removed)


def _prune_program_files(folder: str, group: str, keep: set[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(folder):
            if entry.startswith(f"{group}-") and entry not in keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, entry))


def remove_group(state_dir: str, group: str, *, dry_run: bool = False) -> bool:
    """Stop and forget every program of ``group``; True when anything changed."""
    if not GROUP_RE.match(group):
        raise SupervisorError(f"invalid group name {group!r}")
    conf_path, manifest_path = _group_files(state_dir, group)
    up = running(state_dir)
    exists = os.path.exists(conf_path)
    live = _members(list(_infos(rpc(state_dir))), group) if up else []
    if dry_run:
        return exists or bool(live)
    with locked(state_dir, "supervisor"):
        for path in (conf_path, manifest_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        changed = exists
        if up:
            changed |= _update(rpc(state_dir), group)
        _prune_program_files(paths(state_dir).programs, group, set())
    return changed


# ---------------------------------------------------------------- status / shutdown


def status(state_dir: str) -> dict[str, Any]:
    """supervisord and its programs: state, pid, uptime, node, log file."""
    p = paths(state_dir)
    out: dict[str, Any] = {"running": False, "socket": p.sock, "programs": []}
    if not running(state_dir):
        return out
    proxy = rpc(state_dir)
    out["running"] = True
    out["pid"] = proxy.supervisor.getPID()
    known: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.listdir(p.confd)):
            if entry.endswith(".json"):
                manifest = read_json(os.path.join(p.confd, entry)) or {}
                for prog in manifest.get("programs", []):
                    known[f"{manifest.get('group')}-{prog['name']}"] = prog
    for info in proxy.supervisor.getAllProcessInfo():
        name = info["name"]
        spec = known.get(name, {})
        up = info["statename"] == "RUNNING" and info["start"]
        out["programs"].append(
            {
                "name": name,
                "group": name.split("-", 1)[0],
                "node": spec.get("node"),
                "state": info["statename"],
                "pid": info["pid"] or None,
                "uptime_s": (info["now"] - info["start"]) if up else None,
                "description": info["description"],
                "exitstatus": info["exitstatus"],
                "logfile": info["stdout_logfile"],
                "ready_url": spec.get("ready_url"),
            }
        )
    return out


def shutdown(
    state_dir: str, timeout: float = 60.0, *, forget: bool = True, dry_run: bool = False
) -> bool:
    """Stop every program and supervisord; wait until all their processes are gone.

    With ``forget`` (default) the group configurations are removed too, so the next
    supervisord starts empty instead of reviving programs of a previous deployment.
    """
    p = paths(state_dir)
    leftovers = _config_files(p) if forget else []
    if not running(state_dir):
        stray = orphans(state_dir)
        stale = [f for f in (p.sock, p.pidfile) if os.path.lexists(f)]
        if not dry_run:
            reap_orphans(state_dir)
            _remove_files(leftovers + stale)  # a killed supervisord leaves its socket
        return bool(leftovers or stray)
    if dry_run:
        return True
    proxy = rpc(state_dir)
    sup_pid = int(proxy.supervisor.getPID())
    pids = {sup_pid} | {i["pid"] for i in proxy.supervisor.getAllProcessInfo() if i["pid"]}
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            procs.append(proc)
            with contextlib.suppress(psutil.Error):
                procs.extend(proc.children(recursive=True))
    # supervisord's own shutdown stops groups one after another, waiting for each; every
    # program is a group of its own here, so signal them all at once first.
    proxy.supervisor.stopAllProcesses(False)
    programs = [proc for proc in procs if proc.pid != sup_pid]
    psutil.wait_procs(programs, timeout=timeout)
    proxy.supervisor.shutdown()
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    alive = [p for p in alive if _alive(p)]
    if alive:
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=10)
        raise SupervisorError(
            f"processes {[p.pid for p in alive]} did not exit within {timeout:.0f}s of "
            "the supervisord shutdown; they were killed"
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p.sock)
    _remove_files(leftovers)
    return True


def _config_files(p: Paths) -> list[str]:
    out = []
    for folder in (p.confd, p.programs):
        with contextlib.suppress(FileNotFoundError):
            out += [os.path.join(folder, e) for e in sorted(os.listdir(folder))]
    return out


def _remove_files(files: list[str]) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ---------------------------------------------------------------- readiness


def tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(data.splitlines()[-lines:]) or "(empty log)"


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def probe(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(ready, what happened) for one GET of ``url``."""
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            return resp.status == 200, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{type(exc).__name__}: {reason}"


def wait_ready(
    state_dir: str,
    group: str,
    programs: Sequence[ProgramSpec | dict[str, Any]],
    timeout: float = 60.0,
    *,
    interval: float = 0.1,
) -> dict[str, float]:
    """Poll every ``ready_url`` until it answers 200; {program: seconds it took}.

    Fails early when supervisord gave up on a program (FATAL, or EXITED without
    autorestart) and on timeout, naming each program that is not ready with its state,
    the last probe result and the last lines of its log.
    """
    specs = _specs(programs, group)
    pending = {s.process_name(group): s for s in specs if s.ready_url}
    last: dict[str, str] = dict.fromkeys(pending, "not probed")
    took: dict[str, float] = {}
    start = time.monotonic()
    deadline = start + timeout
    logs = paths(state_dir).logs
    while pending:
        infos = _infos(rpc(state_dir)) if running(state_dir) else {}
        dead = []
        for name, spec in list(pending.items()):
            ok, last[name] = probe(spec.ready_url or "")
            if ok:
                took[name] = time.monotonic() - start
                del pending[name]
                continue
            state = infos.get(name, {}).get("statename", "NOT RUNNING")
            if state == "FATAL" or (state in ("EXITED", "STOPPED") and not spec.autorestart):
                dead.append(name)
        if dead or (pending and time.monotonic() > deadline):
            names = dead or sorted(pending)
            parts = []
            for name in names:
                state = infos.get(name, {}).get("statename", "NOT RUNNING")
                log = os.path.join(logs, f"{name}.log")
                parts.append(
                    f"program {name} (node {pending[name].node}) is not ready: state {state}, "
                    f"{pending[name].ready_url} -> {last[name]}; last lines of {log}:\n"
                    + "\n".join("    " + line for line in tail(log).splitlines())
                )
            why = "gave up" if dead else f"not ready after {timeout:.0f}s"
            raise ProgramNotReady(f"group {group}: {why}\n" + "\n".join(parts), names)
        if pending:
            time.sleep(interval)
    return took
