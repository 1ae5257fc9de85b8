"""CIRCE's configuration: one JSON document for the whole deployment (schema jupiter.circe/v1).

:func:`build_config` (pure) is what ``jupiter.values`` calls; :func:`load_config` reads the
file a ``jupiter circe task|home`` process is started with and checks it, naming the file
and field of every problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupiter.app.model import HOME, App, Task
from jupiter.errors import InvalidInput, Problem

SCHEMA = "jupiter.circe/v1"

#: Tunables (``options``), with their defaults. ``tasks: {key: {...}}`` overrides the per-task
#: ones (``concurrency``, ``retries``, ``executor``) for single tasks.
DEFAULT_OPTIONS: dict[str, Any] = {
    "concurrency": 1,  # items of one task running at once
    "retries": 2,  # extra attempts when a task raises, before the item is recorded failed
    "executor": "thread",  # thread | process: where task code runs (loaded once per worker)
    "inline_max_s": 0.001,  # thread executor: code whose recent runs took at most this long
    # runs on the event loop (a hand-off to a worker thread costs more); 0 = never
    "max_body_bytes": 64 * 1024 * 1024,  # larger request bodies are refused with 413
    "spool_max_items": 1000,  # items a task (or home's outbox) holds before answering 503
    "spool_max_bytes": 1024 * 1024 * 1024,  # bytes likewise
    "retry_after_s": 1,  # Retry-After of a 503 answer (whole seconds, RFC 9110)
    "backoff_base_s": 0.05,  # first retry delay of a failed push; doubles, with jitter
    "backoff_max_s": 5.0,  # cap of the retry delay
    "push_parallel": 4,  # concurrent pushes per destination: enough to keep a link with a
    # WAN round trip busy (more only shares a slow link)
    "request_timeout_s": 120.0,  # one HTTP request, body included
    "event_batch": 500,  # events per POST /events
    "event_interval_s": 1.0,  # a task sends its events to home this long after the first
    "watch_interval_s": 0.5,  # home scans state_dir/input/ this often
    "table_grace_s": 10.0,  # home waits this long for late task events before writing a row
    "fsync": True,  # durable spool writes (disable only for throwaway benchmarks)
}
PER_TASK = ("concurrency", "retries", "executor", "inline_max_s")
_INT_MIN = {
    "concurrency": 1, "retries": 0, "max_body_bytes": 1, "spool_max_items": 1,
    "spool_max_bytes": 1, "retry_after_s": 1, "push_parallel": 1, "event_batch": 1,
}
_FLOAT_MIN = {
    "backoff_base_s": 0.0, "backoff_max_s": 0.0, "request_timeout_s": 0.1,
    "event_interval_s": 0.01, "watch_interval_s": 0.05, "table_grace_s": 0.0,
    "inline_max_s": 0.0,
}


def _check_options(options: dict[str, Any], where: str, field: str,
                   allowed: tuple[str, ...] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    for name, value in options.items():
        f = f"{field}.{name}"
        if name == "tasks" and allowed is None:
            continue
        if name not in DEFAULT_OPTIONS or (allowed is not None and name not in allowed):
            known = ", ".join(allowed or sorted(DEFAULT_OPTIONS))
            problems.append(Problem(where, f"unknown option {name!r}; known: {known}", field=f))
        elif name in _INT_MIN:
            if isinstance(value, bool) or not isinstance(value, int) or value < _INT_MIN[name]:
                problems.append(Problem(where, f"{name} must be an integer >= {_INT_MIN[name]}, "
                                        f"got {value!r}", field=f))
        elif name in _FLOAT_MIN:
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                value < _FLOAT_MIN[name]
            ):
                problems.append(Problem(where, f"{name} must be a number >= {_FLOAT_MIN[name]}, "
                                        f"got {value!r}", field=f))
        elif name == "executor" and value not in ("thread", "process"):
            problems.append(Problem(where, f"executor must be 'thread' or 'process', got {value!r}",
                                    field=f))
        elif name == "fsync" and not isinstance(value, bool):
            problems.append(Problem(where, f"fsync must be true or false, got {value!r}", field=f))
    return problems


def _check(app: dict[str, Any], mapping: dict[str, str], endpoints: dict[str, Any],
           options: dict[str, Any], where: str) -> list[Problem]:
    problems: list[Problem] = []
    try:
        model = App.from_dict(app)
    except (KeyError, TypeError, ValueError) as exc:
        return [Problem(where, f"app is not a jupiter.app/v1 document: {exc}", field="app")]
    keys = [t.key for t in model.tasks]
    if HOME in keys:
        problems.append(Problem(where, "no task may have the key 'home' (it names the sink)",
                                field="app.tasks"))
    for t in model.tasks:
        if t.name not in mapping:
            problems.append(Problem(where, f"task {t.name!r} is not mapped to a node",
                                    field="mapping"))
        for c in t.children:
            if c != HOME and c not in model.names:
                problems.append(Problem(where, f"task {t.name!r} has unknown child {c!r}",
                                        field=f"app.tasks.{t.name}.children"))
    if not isinstance(endpoints, dict) or not isinstance(endpoints.get("home"), str):
        problems.append(Problem(where, "endpoints.home must be the home URL (http://host:port)",
                                field="endpoints.home"))
    tasks = endpoints.get("tasks") if isinstance(endpoints, dict) else None
    if not isinstance(tasks, dict):
        problems.append(Problem(where, "endpoints.tasks must map every task key to its URL",
                                field="endpoints.tasks"))
    else:
        for k in keys:
            if not isinstance(tasks.get(k), str) or not tasks[k].startswith(("http://",
                                                                               "https://")):
                problems.append(Problem(where, f"no endpoint URL for task key {k!r}",
                                        field=f"endpoints.tasks.{k}"))
    if not isinstance(options, dict):
        return [*problems, Problem(where, "options must be a mapping", field="options")]
    problems += _check_options(options, where, "options")
    per_task = options.get("tasks") or {}
    if not isinstance(per_task, dict):
        problems.append(Problem(where, "options.tasks must map task keys to options",
                                field="options.tasks"))
    else:
        for k, opts in per_task.items():
            if k not in keys:
                problems.append(Problem(where, f"options for unknown task key {k!r}",
                                        field=f"options.tasks.{k}"))
            elif not isinstance(opts, dict):
                problems.append(Problem(where, "per-task options must be a mapping",
                                        field=f"options.tasks.{k}"))
            else:
                problems += _check_options(opts, where, f"options.tasks.{k}", PER_TASK)
    return problems


def build_config(*, app: dict[str, Any], mapping: dict[str, str], endpoints: dict[str, Any],
                 app_dir: str, token_file: str, state_dir: str,
                 options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CIRCE configuration shared by every task process and home (pure).

    Input:

    * ``app``: ``App.to_dict()`` (schema ``jupiter.app/v1``);
    * ``mapping``: ``{task name: node name}`` for every task (recorded in events and the
      runtime table);
    * ``endpoints``: ``{"home": url, "tasks": {task key: url}}``: where each process is
      reached (local: ``http://<node address>:<port>``; Kubernetes: the Service URL);
    * ``app_dir``: the folder holding the app's scripts as the task processes see it;
    * ``token_file``: the bearer token file; ``state_dir``: where spools, results, input
      folder and runtime table live;
    * ``options``: overrides of :data:`DEFAULT_OPTIONS`, plus ``tasks: {key: {concurrency,
      retries, executor}}``.

    Raises :class:`InvalidInput` listing every problem.
    """
    options = dict(options or {})
    problems = _check(app, mapping, endpoints, options, "CIRCE configuration")
    if problems:
        raise InvalidInput(problems, what="CIRCE configuration")
    merged = {**DEFAULT_OPTIONS, **{k: v for k, v in options.items() if k != "tasks"}}
    merged["tasks"] = {k: dict(v) for k, v in (options.get("tasks") or {}).items()}
    return {
        "schema": SCHEMA,
        "app": app,
        "app_dir": str(app_dir),
        "mapping": {str(k): str(v) for k, v in mapping.items()},
        "endpoints": {"home": endpoints["home"], "tasks": dict(endpoints["tasks"])},
        "token_file": str(token_file),
        "state_dir": str(state_dir),
        "options": merged,
    }


@dataclass(frozen=True)
class CirceConfig:
    """A loaded, checked configuration (what the processes use)."""

    app: App
    app_dir: Path
    mapping: dict[str, str]
    home_url: str
    task_urls: dict[str, str]  # task key -> URL
    token_file: str
    state_dir: Path
    options: dict[str, Any]
    source: str = "<config>"

    def task_by_key(self, key: str) -> Task:
        for t in self.app.tasks:
            if t.key == key:
                return t
        raise KeyError(key)

    def option(self, name: str, key: str | None = None) -> Any:
        if key is not None and name in PER_TASK:
            per = self.options.get("tasks", {}).get(key, {})
            if name in per:
                return per[name]
        return self.options.get(name, DEFAULT_OPTIONS[name])

    def key_of(self, name: str) -> str:
        return HOME if name == HOME else self.app.task(name).key

    def url_of(self, key: str) -> str:
        return self.home_url if key == HOME else self.task_urls[key]

    def parent_keys(self, task: Task) -> list[str]:
        parents = [self.app.task(p).key for p in self.app.parents(task.name)]
        return parents or [HOME]

    def child_keys(self, task: Task) -> list[str]:
        return [self.key_of(c) for c in task.children]

    def sink_keys(self) -> list[str]:
        return [self.app.task(s).key for s in self.app.sinks]

    def ingress_keys(self) -> list[str]:
        return [self.app.task(n).key for n in self.app.ingress]

    # folders
    def spool_dir(self, key: str) -> Path:
        return self.state_dir / "circe" / key

    @property
    def results_dir(self) -> Path:
        return self.state_dir / "results"

    @property
    def input_dir(self) -> Path:
        return self.state_dir / "input"


def config_from_dict(data: dict[str, Any], source: str = "<config>",
                     state_dir: str | None = None) -> CirceConfig:
    where = source
    problems: list[Problem] = []
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InvalidInput([Problem(where, f"expected schema {SCHEMA!r}, got {got!r}; is this "
                                    "the CIRCE config (state_dir/circe.json)?", field="schema")],
                           what="CIRCE configuration")
    for f in ("app", "app_dir", "mapping", "endpoints", "token_file", "state_dir", "options"):
        if f not in data:
            problems.append(Problem(where, f"missing field {f!r}", field=f))
    if not problems:
        problems = _check(data["app"], data["mapping"], data["endpoints"], data["options"], where)
    if problems:
        raise InvalidInput(problems, what="CIRCE configuration")
    options = {**DEFAULT_OPTIONS, **data["options"]}
    return CirceConfig(
        app=App.from_dict(data["app"]),
        app_dir=Path(data["app_dir"]),
        mapping=dict(data["mapping"]),
        home_url=data["endpoints"]["home"].rstrip("/"),
        task_urls={k: v.rstrip("/") for k, v in data["endpoints"]["tasks"].items()},
        token_file=data["token_file"],
        state_dir=Path(state_dir or data["state_dir"]),
        options=options,
        source=source,
    )


def load_config(path: str | Path, state_dir: str | None = None) -> CirceConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput([Problem(str(p), f"cannot read: {exc.strerror}")],
                           what="CIRCE configuration") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(str(p), f"not JSON: {exc.msg}", line=exc.lineno)],
                           what="CIRCE configuration") from exc
    return config_from_dict(data, str(p), state_dir)
