"""The bundle's YAML app format: ``app.yaml`` (see docs/app-format.md).

Same meaning as Jupiter's ``configuration.txt`` plus per-task ``pin``, ``resources``,
``interface``, ``script`` and ``args``, and app-level ``requirements`` and
``sample_input``::

    name: diamond
    interface: process            # default for the tasks: process (new) | legacy (Jupiter)
    tasks:
      - name: tokenize
        children: [count, lengths]
      - name: count
        children: [report]
      - name: lengths
        children: [report]
        resources: {cpu: 250m, memory: 64Mi}
      - name: report              # num_inputs defaults to the number of parents (2)
        children: [home]

The file is read with PyYAML's composer so that every value keeps its line number; every
problem is reported with ``file:line [field]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from jupiter.app.validate import (
    AppDraft,
    TaskDraft,
    decode_text,
    normalize_child,
    read_requirements,
    suggest,
)

APP_FILE = "app.yaml"
APP_KEYS = (
    "name",
    "description",
    "interface",
    "requirements",
    "sample_input",
    "tasks",
    "static_mapping",
)
TASK_KEYS = (
    "name",
    "description",
    "script",
    "interface",
    "num_inputs",
    "mode",
    "children",
    "pin",
    "resources",
    "args",
)
INTERFACES = ("process", "legacy")
MODES = ("broadcast", "split")
RESOURCE_KEYS = ("cpu", "memory")
#: Kubernetes quantities: CPU as cores or millicores, memory as bytes with an optional suffix
CPU_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+|\d+m)$")
MEMORY_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")

_constructor = SafeConstructor()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _value(node: yaml.Node) -> Any:
    """Python value of a scalar/collection node (YAML 1.1 safe types)."""
    return _constructor.construct_object(node, deep=True)


class _Reader:
    def __init__(self, draft: AppDraft) -> None:
        self.d = draft

    def mapping(
        self, node: yaml.Node, fld: str, what: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping node -> (key node, value node); duplicates reported."""
        if not isinstance(node, yaml.MappingNode):
            self.d.error(f"{what} must be a mapping (key: value)", _line(node), fld)
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            key = _value(knode) if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.d.error(f"keys of {what} must be strings", _line(knode), fld)
                continue
            if key in out:
                self.d.error(
                    f"duplicate key {key!r} (first on line {_line(out[key][0])}); "
                    "YAML would silently keep only the last one",
                    _line(knode),
                    f"{fld}.{key}" if fld else key,
                )
                continue
            out[key] = (knode, vnode)
        return out

    def unknown_keys(
        self, items: dict[str, tuple[yaml.Node, yaml.Node]], known: tuple[str, ...], fld: str
    ) -> None:
        for key, (knode, _) in items.items():
            if key not in known:
                self.d.error(
                    f"unknown field {key!r}{suggest(key, known)}; known fields: "
                    + ", ".join(known),
                    _line(knode),
                    f"{fld}.{key}" if fld else key,
                )

    def string(self, node: yaml.Node, fld: str, what: str) -> str | None:
        value = _value(node) if isinstance(node, yaml.ScalarNode) else node
        if isinstance(value, bool) or value is None or not isinstance(value, str | int | float):
            self.d.error(f"{what} must be a string", _line(node), fld)
            return None
        text = str(value).strip()
        if not text:
            self.d.error(f"{what} must not be empty", _line(node), fld)
            return None
        return text

    def choice(self, node: yaml.Node, fld: str, what: str, choices: tuple[str, ...]) -> str | None:
        value = self.string(node, fld, what)
        if value is None:
            return None
        if value not in choices:
            self.d.error(
                f"{what} must be one of {', '.join(choices)}, got {value!r}"
                f"{suggest(value, choices)}",
                _line(node),
                fld,
            )
            return None
        return value

    def string_list(self, node: yaml.Node, fld: str, what: str) -> list[str] | None:
        if isinstance(node, yaml.ScalarNode):
            one = self.string(node, fld, what)
            return None if one is None else [one]
        if not isinstance(node, yaml.SequenceNode):
            self.d.error(f"{what} must be a list, e.g. [a, b]", _line(node), fld)
            return None
        out: list[str] = []
        for i, item in enumerate(node.value):
            s = self.string(item, f"{fld}[{i}]", f"{what} entries")
            if s is not None:
                out.append(s)
        return out


def parse(app_dir: Path, shown_dir: str | None = None) -> AppDraft:
    """Read ``<app_dir>/app.yaml`` into a draft with its problems."""
    shown = shown_dir if shown_dir is not None else str(app_dir)
    file = str(Path(shown) / APP_FILE)
    root = app_dir.resolve()
    d = AppDraft(name=root.name, root=root, source=APP_FILE, file=file, format="yaml")
    text = decode_text((app_dir / APP_FILE).read_bytes(), file, d.problems)
    if text is None:
        return d
    try:
        doc = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        d.error(
            f"YAML syntax error: {exc.problem or exc}",
            mark.line + 1 if mark is not None else None,
        )
        return d
    if doc is None:
        d.error("file is empty; an app.yaml needs at least a 'tasks:' list", 1)
        return d
    r = _Reader(d)
    top = r.mapping(doc, "", "app.yaml")
    if not top:
        if isinstance(doc, yaml.MappingNode):
            d.error("app.yaml has no fields; it needs at least a 'tasks:' list", _line(doc))
        return d
    r.unknown_keys(top, APP_KEYS, "")

    if "name" in top:
        name = r.string(top["name"][1], "name", "name")
        if name is not None:
            d.name = name
    default_interface = "process"
    if "interface" in top:
        default_interface = (
            r.choice(top["interface"][1], "interface", "interface", INTERFACES) or "process"
        )
    if "requirements" in top:
        reqs = r.string_list(top["requirements"][1], "requirements", "requirements")
        d.requirements = reqs or []
    elif (app_dir / "requirements.txt").is_file():
        d.requirements = read_requirements(
            app_dir / "requirements.txt", str(Path(shown) / "requirements.txt"), d.problems
        )
    if "sample_input" in top:
        _knode, vnode = top["sample_input"]
        d.sample_input_given = True
        d.sample_input_line = _line(vnode)
        d.sample_input = r.string(vnode, "sample_input", "sample_input")
    if "static_mapping" in top:
        _, vnode = top["static_mapping"]
        d.static_field = "static_mapping"
        for task, (tk, tv) in r.mapping(vnode, "static_mapping", "static_mapping").items():
            node = r.string(tv, f"static_mapping.{task}", f"node of task {task!r}")
            if node is not None:
                d.static_mapping[task] = node
                d.static_lines[task] = _line(tk)

    if "tasks" not in top:
        d.error("missing 'tasks:' (a list of tasks)", _line(doc), "tasks")
        return d
    tnode = top["tasks"][1]
    if not isinstance(tnode, yaml.SequenceNode):
        d.error("'tasks' must be a list of tasks ('- name: ...' entries)", _line(tnode), "tasks")
        return d
    if not tnode.value:
        d.error(
            "'tasks' is empty; add at least one task whose child is home", _line(tnode), "tasks"
        )
        return d
    for i, node in enumerate(tnode.value):
        _parse_task(r, node, i, default_interface)
    return d


def _parse_task(r: _Reader, node: yaml.Node, i: int, default_interface: str) -> None:
    d = r.d
    fld = f"tasks[{i}]"
    items = r.mapping(node, fld, f"task #{i + 1}")
    if not items:
        if isinstance(node, yaml.MappingNode):
            d.error(
                f"task #{i + 1} is empty; give it at least a name and children", _line(node), fld
            )
        return
    r.unknown_keys(items, TASK_KEYS, fld)
    if "name" not in items:
        d.error(f"task #{i + 1} has no 'name'", _line(node), f"{fld}.name")
        return
    name = r.string(items["name"][1], f"{fld}.name", "task name")
    if name is None:
        return
    t = TaskDraft(name=name, line=_line(items["name"][1]), field=fld, interface=default_interface)
    d.tasks.append(t)
    for key, (_knode, vnode) in items.items():
        t.lines[key] = _line(vnode)
    lbl = f"task {name!r}:"

    if "num_inputs" in items:
        vnode = items["num_inputs"][1]
        value = _value(vnode) if isinstance(vnode, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int):
            d.error(
                f"{lbl} num_inputs must be a whole number (inputs per item, one per parent), "
                f"got {_show(vnode)}",
                _line(vnode),
                f"{fld}.num_inputs",
            )
            t.num_inputs = None
        else:
            t.num_inputs = value
    else:
        t.num_inputs_given = False
    if "mode" in items:
        vnode = items["mode"][1]
        raw = _value(vnode) if isinstance(vnode, yaml.ScalarNode) else None
        if isinstance(raw, bool):
            d.error(
                f"{lbl} mode must be broadcast or split (Jupiter's FLAG true = broadcast, "
                f"false = split), got {str(raw).lower()}",
                _line(vnode),
                f"{fld}.mode",
            )
            t.mode = None
        else:
            t.mode = r.choice(vnode, f"{fld}.mode", f"{lbl} mode", MODES)
    if "children" in items:
        children = r.string_list(items["children"][1], f"{fld}.children", f"{lbl} children")
        t.children = [normalize_child(c) for c in children or []]
        if children is None:
            t.incomplete = True
    if "script" in items:
        t.script = r.string(items["script"][1], f"{fld}.script", f"{lbl} script")
    if "interface" in items:
        t.interface = (
            r.choice(items["interface"][1], f"{fld}.interface", f"{lbl} interface", INTERFACES)
            or default_interface
        )
    if "pin" in items:
        t.pin = r.string(items["pin"][1], f"{fld}.pin", f"{lbl} pin")
    if "resources" in items:
        _parse_resources(r, t, items["resources"][1], f"{fld}.resources", lbl)
    if "args" in items:
        vnode = items["args"][1]
        if not isinstance(vnode, yaml.SequenceNode):
            d.error(f"{lbl} args must be a list of strings", _line(vnode), f"{fld}.args")
        else:
            args = r.string_list(vnode, f"{fld}.args", f"{lbl} args")
            t.args = tuple(args or ())


def _parse_resources(r: _Reader, t: TaskDraft, node: yaml.Node, fld: str, lbl: str) -> None:
    d = r.d
    items = r.mapping(node, fld, f"{lbl} resources")
    r.unknown_keys(items, RESOURCE_KEYS, fld)
    for key in RESOURCE_KEYS:
        if key not in items:
            continue
        vnode = items[key][1]
        value = r.string(vnode, f"{fld}.{key}", f"{lbl} resources.{key}")
        if value is None:
            continue
        pattern, example = (
            (CPU_QUANTITY, "0.5, 1 or 250m") if key == "cpu" else (MEMORY_QUANTITY, "128Mi or 1Gi")
        )
        if not pattern.match(value) or _is_zero(value):
            d.error(
                f"{lbl} resources.{key} {value!r} is not a positive Kubernetes quantity "
                f"(e.g. {example})",
                _line(vnode),
                f"{fld}.{key}",
            )
            continue
        t.resources[key] = value


def _is_zero(value: str) -> bool:
    digits = re.sub(r"[^0-9]", "", value)
    return not digits.strip("0")


def _show(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


__all__ = ["APP_FILE", "parse"]
