"""Program specs for the local target and their supervisord rendering (pure).

A program spec is plain data, rendered by the lead from the same values the Helm charts
get::

    {"name": "agent-edge1", "node": "edge1",
     "command": ["jupiter", "drupe", "agent", "--config", "/.../drupe.json", "--node", "edge1"],
     "env": {"JUPITER_TOKEN_FILE": "/.../token"},     # optional
     "ready_url": "http://10.77.0.4:7701/ready",       # optional: 200 when ready
     "autorestart": true,                              # optional, default true
     "cwd": "/path",                                   # optional, default the state folder
     "cgroup": true}                                   # optional: join the node's CPU cgroup

Programs belong to a *group* (``drupe``, ``wave``, ``circe``). Each program becomes its own
supervisord process group named ``<group>-<name>`` so that changing one program restarts
only that program. supervisord's INI format cannot carry arbitrary argv safely (``" ;"``
starts an inline comment, ``%`` is interpolated, values cannot span lines), so the argv and
environment go to a content-addressed JSON file ``supervisor/programs/<group>-<name>.<digest>.json``
that ``jupiter local exec --program FILE`` reads; the supervisord command only carries
plain paths and names, and a change of argv/env changes the digest, hence the command,
hence supervisord's view of the program.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jupiter.errors import InvalidInput, Problem

GROUP_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,80}$")
PROGRAMS_DIR = "programs"


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    node: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    autorestart: bool = True
    cwd: str | None = None
    cgroup: bool = True  # run within the node's CPU share (false: the testbed's own work)

    def process_name(self, group: str) -> str:
        return f"{group}-{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node": self.node,
            "command": list(self.command),
            "env": dict(self.env),
            "ready_url": self.ready_url,
            "autorestart": self.autorestart,
            "cwd": self.cwd,
            "cgroup": self.cgroup,
        }


def parse_programs(raw: Any, group: str, source: str = "programs") -> list[ProgramSpec]:
    """Validate a list of program dicts (module doc); InvalidInput names every problem."""
    problems: list[Problem] = []

    def bad(where: str, message: str) -> None:
        problems.append(Problem(source, message, field=where))

    if not isinstance(group, str) or not GROUP_RE.match(group):
        bad("group", f"{group!r}: use lowercase letters, digits and '_' (e.g. drupe)")
    if not isinstance(raw, list):
        raise InvalidInput([Problem(source, "expected a list of programs", field="programs")])
    out: list[ProgramSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"programs[{i}]"
        if not isinstance(item, Mapping):
            bad(where, "expected {name, node, command, env, ready_url, autorestart}")
            continue
        unknown = set(item) - {"name", "node", "command", "env", "ready_url", "autorestart", "cwd",
                               "cgroup"}
        if unknown:
            bad(where, f"unknown field(s) {sorted(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            bad(f"{where}.name", f"{name!r}: use letters, digits, '_', '.', '-'")
            continue
        if name in seen:
            bad(f"{where}.name", f"program {name!r} appears twice in group {group!r}")
        seen.add(name)
        where = f"programs[{i}] ({name})"
        node = item.get("node")
        if not isinstance(node, str) or not NAME_RE.match(node):
            bad(f"{where}.node", f"{node!r}: give the inventory node the program runs on")
            node = None
        command = item.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(
                isinstance(a, str | int | float) and not isinstance(a, bool) for a in command
            )
        ):
            bad(f"{where}.command", "give the command as a non-empty list of strings (argv)")
            command = []
        argv = tuple(str(a) for a in command)
        if any("\0" in a for a in argv):
            bad(f"{where}.command", "arguments cannot contain NUL characters")
        env = item.get("env") or {}
        if not isinstance(env, Mapping) or not all(
            isinstance(k, str) and k and "=" not in k and "\0" not in k for k in env
        ):
            bad(f"{where}.env", "give env as a mapping {NAME: value} (names without '=')")
            env = {}
        env = {k: _env_value(v) for k, v in env.items()}
        ready_url = item.get("ready_url")
        if ready_url is not None and (
            not isinstance(ready_url, str) or not ready_url.startswith(("http://", "https://"))
        ):
            bad(f"{where}.ready_url", f"{ready_url!r} is not an http(s) URL")
        autorestart = item.get("autorestart", True)
        if not isinstance(autorestart, bool):
            bad(f"{where}.autorestart", "expected true or false")
        cgroup = item.get("cgroup", True)
        if not isinstance(cgroup, bool):
            bad(f"{where}.cgroup", "expected true or false")
        cwd = item.get("cwd")
        if cwd is not None and not (isinstance(cwd, str) and os.path.isabs(cwd)):
            bad(f"{where}.cwd", "expected an absolute path")
        if isinstance(node, str):
            out.append(ProgramSpec(name, node, argv, env, ready_url, bool(autorestart), cwd,
                                   bool(cgroup)))
    if problems:
        raise InvalidInput(problems, f"programs of group {group!r}")
    return out


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def program_file_content(deployment: str, program: ProgramSpec) -> str:
    """The JSON that ``jupiter local exec --program`` reads (argv, env, cwd)."""
    data = {
        "schema": "jupiter.program/v1",
        "deployment": deployment,
        "node": program.node,
        "name": program.name,
        "argv": list(program.command),
        "env": dict(sorted(program.env.items())),
        "cwd": program.cwd,
    }
    if not program.cgroup:
        data["cgroup"] = False
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def program_file_name(group: str, program: ProgramSpec, content: str) -> str:
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    return f"{program.process_name(group)}.{digest}.json"


def _ini_safe(value: str, what: str) -> str:
    """Make a value safe for supervisord's INI parser, or refuse it clearly."""
    for bad in ("\n", "\r", " ;", " #", "\t;", "\t#"):
        if bad in value:
            raise InvalidInput(
                [
                    Problem(
                        "supervisord config",
                        f"{what} {value!r} contains {bad!r}; "
                        "supervisord cannot represent it: use another path",
                    )
                ],
                "local state folder",
            )
    return value.replace("%", "%%")


def render_group(
    *,
    state_dir: str,
    deployment: str,
    group: str,
    programs: Sequence[ProgramSpec],
    python: str | None = None,
) -> tuple[str, dict[str, str]]:
    """(``conf.d/<group>.conf`` text, {program file name: content}) for a group."""
    python = python or sys.executable
    programs_dir = os.path.join(state_dir, "supervisor", PROGRAMS_DIR)
    logs_dir = os.path.join(state_dir, "logs")
    files: dict[str, str] = {}
    lines = [
        f"; group {group} of deployment {deployment}: written by jupiter.local.supervisor,",
        "; do not edit (re-run the deployment instead).",
    ]
    for p in programs:
        content = program_file_content(deployment, p)
        fname = program_file_name(group, p, content)
        files[fname] = content
        argv = [
            python,
            "-m",
            "jupiter.local.execnode",
            "--deployment",
            deployment,
            "--node",
            p.node,
            "--state-dir",
            state_dir,
            "--program",
            os.path.join(programs_dir, fname),
        ]
        command = " ".join(shlex.quote(a) for a in argv)
        pname = p.process_name(group)
        log = os.path.join(logs_dir, f"{pname}.log")
        lines += [
            "",
            f"; {pname} runs on node {p.node}",
            f"[program:{pname}]",
            f"command={_ini_safe(command, 'command')}",
            f"directory={_ini_safe(p.cwd or state_dir, 'directory')}",
            "autostart=true",
            f"autorestart={'true' if p.autorestart else 'false'}",
            "startsecs=1",
            "startretries=3",
            "stopsignal=TERM",
            "stopwaitsecs=10",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_ini_safe(log, 'log file')}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=2",
        ]
    return "\n".join(lines) + "\n", files
