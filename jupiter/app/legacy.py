"""Jupiter's legacy app format: ``configuration.txt`` (+ optional ``scripts/config.json``).

``configuration.txt``, exactly as Jupiter users have it::

    14                                              <- line 1: N, the number of task lines
    local_pro 1 false aggregate0 aggregate1 aggregate2
    aggregate0 1 true simple_detector0 astute_detector0
    ...                                             <- N lines: task NUM_INPUTS FLAG child...
    global_fusion 3 true home                       <- home (or 'scheduler') is the sink
    local_pro node1                                 <- optional static mapping: task node

FLAG ``true`` = broadcast (every output to every child), ``false`` = split (the i-th
output in sorted name order to the i-th child). Each task runs ``scripts/<task>.py``
(Jupiter's ``task(inputs, pathin, pathout)``), unless the later-Jupiter
``scripts/config.json`` maps it elsewhere: ``"taskname_map": {"task": ["script", true,
extra args...]}``. Blank lines and lines starting with ``#`` are ignored (an extension).

:func:`parse` returns an :class:`~jupiter.app.validate.AppDraft`; validation of the whole
app is :func:`jupiter.app.validate.validate`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jupiter.app.validate import (
    HOME_ALIASES,
    AppDraft,
    TaskDraft,
    decode_text,
    normalize_child,
    read_requirements,
)

CONFIG_FILE = "configuration.txt"
SCRIPTS_CONFIG = "scripts/config.json"
FLAGS = {"true": "broadcast", "false": "split"}
#: FLAG values of later Jupiter versions that this bundle does not implement
LATER_FLAGS = frozenset({"ordered", "exclusive", "none"})
_INT = re.compile(r"^[+-]?\d+$")


def parse(app_dir: Path, shown_dir: str | None = None) -> AppDraft:
    """Read ``<app_dir>/configuration.txt`` (and friends) into a draft with its problems."""
    shown = shown_dir if shown_dir is not None else str(app_dir)
    file = str(Path(shown) / CONFIG_FILE)
    draft = AppDraft(
        name=app_dir.resolve().name,
        root=app_dir.resolve(),
        source=CONFIG_FILE,
        file=file,
        format="legacy",
    )
    text = decode_text((app_dir / CONFIG_FILE).read_bytes(), file, draft.problems)
    if text is not None:
        _parse_configuration(text, draft)
    _apply_scripts_config(app_dir, shown, draft)
    req = app_dir / "requirements.txt"
    if req.is_file():
        draft.requirements = read_requirements(
            req, str(Path(shown) / "requirements.txt"), draft.problems
        )
    return draft


def _lines(text: str) -> list[tuple[int, list[str]]]:
    """(line number, tokens) of every line that is not blank or a comment."""
    out = []
    for no, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        out.append((no, stripped.split()))
    return out


def _is_mapping_line(tokens: list[str]) -> bool:
    """``<task> <node>``: two tokens, the second not a number (``task 1`` is a cut task line)."""
    return len(tokens) == 2 and not _INT.match(tokens[1])


def _parse_configuration(text: str, d: AppDraft) -> None:
    lines = _lines(text)
    if not lines:
        d.error(
            "file is empty; line 1 must be N (the number of task lines), followed by N lines "
            "'<task> <NUM_INPUTS> <true|false> <child> [<child>...]'",
            1,
        )
        return
    first_no, first = lines[0]
    n_declared: int | None = None
    body = lines[1:]
    if len(first) == 1 and _INT.match(first[0]):
        n_declared = int(first[0])
        if n_declared < 1:
            d.error(f"N on line {first_no} must be at least 1, got {n_declared}", first_no, "N")
    elif len(first) >= 3:
        d.error(
            f"line {first_no} must be N, the number of task lines, but it looks like a task "
            "line; insert a first line with the number of tasks",
            first_no,
            "N",
        )
        body = lines
    else:
        d.error(
            f"line {first_no} must be N, the number of task lines (an integer), got "
            f"{' '.join(first)!r}",
            first_no,
            "N",
        )

    # task lines: every line not shaped like a 'task node' mapping line
    task_lines: list[tuple[int, list[str]]] = []
    map_lines: list[tuple[int, list[str]]] = []
    for no, tokens in body:
        if _is_mapping_line(tokens):
            map_lines.append((no, tokens))
            continue
        odd = (
            len(tokens) >= 3
            and not _INT.match(tokens[1])
            and tokens[2].lower() not in FLAGS
            and tokens[2].lower() not in LATER_FLAGS
        )
        if odd and (map_lines or (n_declared is not None and len(task_lines) >= n_declared)):
            d.error(
                f"expected a static mapping line '<task> <node>' after the {len(task_lines)} "
                f"task lines, got {' '.join(tokens)!r}",
                no,
            )
            continue
        if map_lines:
            d.error(
                "task line after the static mapping lines; move it above them "
                f"(the first mapping line is line {map_lines[0][0]})",
                no,
            )
        task_lines.append((no, tokens))
    if n_declared is not None and n_declared >= 1 and n_declared != len(task_lines):
        span = f" (lines {task_lines[0][0]}-{task_lines[-1][0]})" if task_lines else ""
        d.error(
            f"line {first_no} says N={n_declared} but {len(task_lines)} task line(s) follow"
            f"{span}; set line {first_no} to {len(task_lines)} or add/remove task lines",
            first_no,
            "N",
        )
    for no, tokens in task_lines:
        _parse_task_line(no, tokens, d)
    for no, tokens in map_lines:
        task, node = tokens
        if task in d.static_mapping:
            d.error(
                f"task {task!r} is mapped twice (first on line {d.static_lines[task]}); "
                "keep one mapping line per task",
                no,
            )
            continue
        d.static_mapping[task] = node
        d.static_lines[task] = no


def _parse_task_line(no: int, tokens: list[str], d: AppDraft) -> None:
    name = tokens[0]
    t = TaskDraft(name=name, line=no)
    d.tasks.append(t)
    if len(tokens) < 3:
        d.error(
            f"task line for {name!r} is incomplete: expected "
            "'<task> <NUM_INPUTS> <true|false> <child> [<child>...]'",
            no,
        )
        t.mode = None
        t.num_inputs = None
        t.incomplete = True
        if len(tokens) == 2:
            t.num_inputs = _read_int(tokens[1], name, no, d)
        return
    t.num_inputs = _read_int(tokens[1], name, no, d)
    flag = tokens[2].lower()
    if flag in FLAGS:
        t.mode = FLAGS[flag]
    else:
        t.mode = None
        later = (
            f" ({tokens[2]!r} is a later Jupiter variant this bundle does not support)"
            if flag in LATER_FLAGS
            else ""
        )
        d.error(
            f"task {name!r}: FLAG must be true (broadcast: every output to every child) or "
            f"false (split: i-th output to i-th child), got {tokens[2]!r}{later}",
            no,
            "FLAG",
        )
    t.children = [normalize_child(c) for c in tokens[3:]]


def _read_int(tok: str, name: str, no: int, d: AppDraft) -> int | None:
    if _INT.match(tok):
        return int(tok)
    d.error(
        f"task {name!r}: NUM_INPUTS must be a whole number (inputs per item, one per parent), "
        f"got {tok!r}",
        no,
        "NUM_INPUTS",
    )
    return None


def _apply_scripts_config(app_dir: Path, shown: str, d: AppDraft) -> None:
    """Honour later Jupiter's ``scripts/config.json`` ``taskname_map`` (script + args)."""
    path = app_dir / SCRIPTS_CONFIG
    if not path.is_file():
        return
    file = str(Path(shown) / SCRIPTS_CONFIG)
    text = decode_text(path.read_bytes(), file, d.problems)
    if text is None:
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        d.error(f"invalid JSON: {exc.msg}", exc.lineno, file=file)
        return
    if not isinstance(data, dict):
        d.error("expected a JSON object with a 'taskname_map'", 1, file=file)
        return
    tmap = data.get("taskname_map")
    if tmap is None:
        return
    if not isinstance(tmap, dict):
        d.error(
            "'taskname_map' must be an object {task: [script, true, args...]}",
            _line_of(text, "taskname_map"),
            "taskname_map",
            file,
        )
        return
    by_name = {t.name: t for t in d.tasks}
    ignored_workers: list[str] = []
    unknown: list[str] = []
    for task, entry in tmap.items():
        line = _line_of(text, task, after="taskname_map")
        fld = f"taskname_map.{task}"
        if isinstance(entry, str):
            entry = [entry, True]
        if (
            not isinstance(entry, list)
            or not entry
            or not isinstance(entry[0], str)
            or not entry[0].strip()
        ):
            d.error(
                f'entry for {task!r} must be ["<script name>", true, <extra args>...]',
                line,
                fld,
                file,
            )
            continue
        is_dag = entry[1] if len(entry) > 1 else True
        if not isinstance(is_dag, bool):
            d.error(
                f"second value for {task!r} must be true (a DAG task) or false, got "
                f"{json.dumps(is_dag)}",
                line,
                fld,
                file,
            )
            continue
        extra = entry[2:]
        if any(isinstance(a, dict | list) or a is None for a in extra):
            d.error(f"extra arguments for {task!r} must be strings or numbers", line, fld, file)
            continue
        t = by_name.get(task)
        if t is None:
            (unknown if is_dag else ignored_workers).append(task)
            continue
        script = entry[0].strip()
        if not script.endswith(".py"):
            script += ".py"
        t.script = f"scripts/{script}"
        t.script_origin = (file, line)
        t.args = tuple(_arg_str(a) for a in extra)
    if unknown:
        d.warn(
            "taskname_map lists tasks that are not in configuration.txt (ignored): "
            + ", ".join(unknown),
            _line_of(text, "taskname_map"),
            "taskname_map",
            file,
        )
    if ignored_workers:
        d.warn(
            "non-DAG worker tasks (taskname_map flag false) are not run by this bundle "
            "(ignored): " + ", ".join(ignored_workers),
            _line_of(text, "taskname_map"),
            "taskname_map",
            file,
        )


def _arg_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _line_of(text: str, key: str, after: str | None = None) -> int | None:
    """Line of the first ``"key"`` in ``text`` (after the first ``"after"`` if given)."""
    start = 0
    if after is not None:
        pos = text.find(json.dumps(after))
        start = pos if pos >= 0 else 0
    pos = text.find(json.dumps(key), start)
    if pos < 0:
        return None
    return text.count("\n", 0, pos) + 1


__all__ = ["CONFIG_FILE", "HOME_ALIASES", "SCRIPTS_CONFIG", "parse"]
