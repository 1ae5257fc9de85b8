"""Configuration of the WAVE service (``jupiter wave serve --config wave.json``).

:func:`build_config` is pure; ``jupiter.values`` calls it once per deployment and the
same JSON goes to both targets. :func:`load_config` reads and checks it at start-up.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from jupiter.app.model import App
from jupiter.errors import InvalidInput, Problem
from jupiter.wave.api import check_options
from jupiter.wave.mapping import Mapping

SCHEMA = "jupiter.wave.config/v1"
DEFAULT_PORT = 7710
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"
_OPTION_KEYS = ("listen", "port", "algorithm", "nodes", "schedule")


def parse_listen(value: str, *, source: str = "config", field: str = "listen") -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); raises naming the field."""
    host, sep, port = str(value).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput([Problem(source, f"must be HOST:PORT, got {value!r}", field=field)],
                           "listen address")
    return host, int(port)


def build_config(
    *,
    app: dict[str, Any],
    mapping: dict[str, Any],
    profile_url: str | None,
    token_file: str,
    state_dir: str,
    options: dict[str, Any] | None,
) -> dict[str, Any]:
    """The WAVE service's config.

    Inputs:

    * ``app``: ``App.to_dict()`` (schema ``jupiter.app/v1``).
    * ``mapping``: the Mapping contract (``jupiter.mapping/v1``) from ``jupiter_schedule``;
      it becomes the service's current mapping at start.
    * ``profile_url``: DRUPE home's profile URL (``GET``, bearer token) that an empty
      ``POST /reschedule`` fetches; ``None`` when a profile must be posted.
    * ``token_file``: the deployment's bearer-token file; ``state_dir``: where the
      current mapping is persisted (``mapping.json``).
    * ``options`` (all optional): ``listen`` (``HOST:PORT``, default ``0.0.0.0:7710``) or
      ``port``; ``algorithm`` for re-scheduling (default: the mapping's); ``nodes`` the
      candidate nodes (default: the mapping's ``nodes``); ``schedule``: schedule options
      (default: the mapping's ``options``), see ``jupiter.wave.api``.

    Raises :class:`InvalidInput` naming every wrong field.
    """
    options = dict(options or {})
    problems: list[Problem] = []
    for key in options:
        if key not in _OPTION_KEYS:
            problems.append(Problem("wave options", f"unknown option; known: "
                                    f"{', '.join(_OPTION_KEYS)}", field=key))
    try:
        app_obj = App.from_dict(app)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput([Problem("app", f"not a jupiter.app/v1 object: {exc}")],
                           "wave config") from exc
    m = Mapping.from_dict(mapping)
    missing = [t for t in app_obj.names if t not in m.mapping]
    extra = [t for t in m.mapping if t not in app_obj.names]
    if missing:
        problems.append(Problem("mapping", f"tasks without a node: {', '.join(missing)}",
                                field="mapping"))
    if extra:
        problems.append(Problem("mapping", f"tasks not in app {app_obj.name!r}: "
                                f"{', '.join(extra)}", field="mapping"))
    if "listen" in options:
        listen = str(options["listen"])
    else:
        port = options.get("port", DEFAULT_PORT)
        listen = f"0.0.0.0:{port}"
    try:
        parse_listen(listen, source="wave options")
    except InvalidInput as exc:
        problems.extend(exc.problems)
    algorithm = options.get("algorithm", m.algorithm)
    schedule_opts = dict(options.get("schedule", m.options))
    schedule_opts.setdefault("home", m.home)
    try:
        check_options(algorithm, schedule_opts, source="wave options")
    except InvalidInput as exc:
        problems.extend(exc.problems)
    nodes = list(options.get("nodes") or m.nodes or
                 sorted(set(m.mapping.values()) | ({m.home} if m.home else set())))
    if not token_file:
        problems.append(Problem("wave config", "a bearer-token file is required",
                                field="token_file"))
    if not state_dir:
        problems.append(Problem("wave config", "a state directory is required",
                                field="state_dir"))
    if problems:
        raise InvalidInput(problems, "wave config")
    return {
        "schema": SCHEMA,
        "component": "wave",
        "listen": listen,
        "app": app,
        "mapping": m.to_dict(),
        "algorithm": algorithm,
        "nodes": nodes,
        "schedule_options": schedule_opts,
        "profile_url": profile_url,
        "token_file": token_file,
        "state_dir": state_dir,
    }


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a WAVE config file; raises :class:`InvalidInput` naming file, line, field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput([Problem(str(p), f"cannot read: {exc.strerror or exc}")],
                           "wave config") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(str(p), f"not JSON: {exc.msg}", line=exc.lineno)],
                           "wave config") from exc
    if not isinstance(data, MappingABC):
        raise InvalidInput([Problem(str(p), "expected a JSON object")], "wave config")
    problems: list[Problem] = []
    if data.get("schema") != SCHEMA:
        problems.append(Problem(str(p), f"must be {SCHEMA!r}, got {data.get('schema')!r}",
                                field="schema"))
    for key in ("app", "mapping", "algorithm", "nodes", "listen", "state_dir"):
        if key not in data:
            problems.append(Problem(str(p), "missing; build the file with "
                                    "jupiter.wave.config.build_config", field=key))
    if problems:
        raise InvalidInput(problems, "wave config")
    return dict(data)
