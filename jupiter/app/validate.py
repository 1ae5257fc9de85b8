"""Validation of an application definition, whatever file format it came from.

The two parsers (:mod:`jupiter.app.legacy` for Jupiter's ``configuration.txt`` and
:mod:`jupiter.app.yamlfmt` for ``app.yaml``) produce an :class:`AppDraft`: what the user
wrote, with the line (and, for YAML, the field) of every value, plus the problems found
while reading. :func:`validate` checks the draft as a whole (names, graph, inputs, modes,
scripts, static mapping, Kubernetes keys), collects EVERY problem and either returns the
:class:`~jupiter.app.model.App` with the warnings, or raises
:class:`~jupiter.errors.InvalidInput` with all of them.

Pure: reads the app folder (scripts are parsed with :mod:`ast`, never imported), no
network, no Ansible.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

from jupiter.app.model import HOME, MAX_KEY_LEN, App, Task, is_dns_label, safe_key
from jupiter.errors import InvalidInput, Problem

#: Older CIRCE files name the result sink ``scheduler``; it means ``home``.
HOME_ALIASES = frozenset({HOME, "scheduler"})
#: What a task name may contain (it becomes a file name ``scripts/<task>.py`` in legacy apps).
TASK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Entry point and minimum positional parameters for each task interface.
ENTRY = {"legacy": ("task", 3), "process": ("process", 2)}
#: Labels used in messages for the fields of a legacy ``configuration.txt`` task line.
LEGACY_FIELDS = {
    "name": "task",
    "num_inputs": "NUM_INPUTS",
    "mode": "FLAG",
    "children": "children",
    "script": "script",
}


@dataclass
class TaskDraft:
    """One task as written by the user, before validation."""

    name: str
    line: int | None
    #: Field path prefix for YAML (``tasks[3]``); ``None`` for legacy task lines.
    field: str | None = None
    num_inputs: int | None = None  # None: not given (YAML default) or unreadable
    num_inputs_given: bool = True
    mode: str | None = "broadcast"  # None: unreadable (already reported)
    children: list[str] = dc_field(default_factory=list)
    script: str | None = None  # relative to the app folder; None: scripts/<name>.py
    interface: str = "legacy"
    pin: str | None = None
    resources: dict[str, str] = dc_field(default_factory=dict)
    args: tuple[str, ...] = ()
    #: line of each attribute where it differs from the task's line (YAML)
    lines: dict[str, int] = dc_field(default_factory=dict)
    #: where the script name came from when not the definition file (scripts/config.json)
    script_origin: tuple[str, int | None] | None = None
    #: the definition was cut short (already reported); skip checks of missing parts
    incomplete: bool = False

    def at(self, attr: str) -> tuple[int | None, str | None]:
        """(line, field label) of attribute ``attr`` for a :class:`Problem`."""
        line = self.lines.get(attr, self.line)
        if self.field is None:
            return line, LEGACY_FIELDS.get(attr, attr)
        return line, f"{self.field}.{attr}"


@dataclass
class AppDraft:
    """A parsed app definition, not yet validated."""

    name: str
    root: Path  # the app folder
    source: str  # definition file, relative to root
    file: str  # definition file as shown in messages
    format: str  # "legacy" | "yaml"
    tasks: list[TaskDraft] = dc_field(default_factory=list)
    static_mapping: dict[str, str] = dc_field(default_factory=dict)
    static_lines: dict[str, int] = dc_field(default_factory=dict)
    static_field: str | None = None  # "static_mapping" for YAML
    requirements: list[str] = dc_field(default_factory=list)
    sample_input: str | None = None
    sample_input_given: bool = False
    sample_input_line: int | None = None
    problems: list[Problem] = dc_field(default_factory=list)

    def error(
        self, message: str, line: int | None = None, fld: str | None = None, file: str | None = None
    ) -> None:
        self.problems.append(Problem(file or self.file, message, line, fld))

    def warn(
        self, message: str, line: int | None = None, fld: str | None = None, file: str | None = None
    ) -> None:
        self.problems.append(Problem(file or self.file, message, line, fld, severity="warning"))


# ---- small helpers shared by the parsers --------------------------------------------------


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def decode_text(data: bytes, file: str, problems: list[Problem]) -> str | None:
    """Decode UTF-8 (a BOM is allowed); on failure report the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problems.append(
            Problem(
                file,
                f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "save the file as UTF-8",
                line,
            )
        )
        return None
    return text.removeprefix("\ufeff")


def read_requirements(path: Path, file: str, problems: list[Problem]) -> list[str]:
    """Requirement lines of a pip ``requirements.txt`` (comments, blanks and options skipped)."""
    text = decode_text(path.read_bytes(), file, problems)
    if text is None:
        return []
    reqs: list[str] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            problems.append(
                Problem(
                    file,
                    f"pip option {line.split()[0]!r} is not supported and is ignored; "
                    "list plain requirements (name[extras] and version specifiers)",
                    no,
                    severity="warning",
                )
            )
            continue
        reqs.append(line)
    return reqs


def normalize_child(name: str) -> str:
    return HOME if name in HOME_ALIASES else name


# ---- validation ---------------------------------------------------------------------------


def validate(draft: AppDraft) -> tuple[App, list[Problem]]:
    """Check ``draft`` as a whole; return ``(app, warnings)`` or raise InvalidInput.

    Every problem found (parse problems already in the draft included) is reported at
    once; warnings are returned with a valid app and carried by InvalidInput otherwise.
    """
    v = _Validator(draft)
    app = v.run()
    problems = draft.problems
    errors = [p for p in problems if p.severity == "error"]
    if errors or app is None:
        raise InvalidInput(_sorted(problems), what=f"app {draft.root}")
    return app, _sorted(p for p in problems if p.severity == "warning")


def _sorted(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


class _Validator:
    def __init__(self, draft: AppDraft) -> None:
        self.d = draft
        self.by_name: dict[str, TaskDraft] = {}
        self.cycle_members: set[str] = set()
        self.bad_children: set[str] = set()  # tasks with unknown/missing children

    # -- entry ---------------------------------------------------------------------------
    def run(self) -> App | None:
        d = self.d
        if not d.tasks:
            if not any(p.severity == "error" for p in d.problems):
                d.error("the app defines no tasks; add at least one task whose child is home")
            return None
        self._names()
        self._children()
        self._graph()
        parents = self._parents()
        self._inputs(parents)
        self._modes()
        self._scripts()
        self._static_mapping()
        self._sample_input()
        keys = self._keys()
        if any(p.severity == "error" for p in d.problems):
            return None
        tasks = tuple(
            Task(
                name=t.name,
                key=keys[t.name],
                script=self._script_rel(t),
                num_inputs=int(t.num_inputs or 1),
                mode="split" if t.mode == "split" else "broadcast",
                children=tuple(t.children),
                interface="process" if t.interface == "process" else "legacy",
                pin=t.pin,
                resources=dict(t.resources),
                args=tuple(t.args),
                line=t.line,
            )
            for t in d.tasks
        )
        return App(
            name=d.name,
            tasks=tasks,
            root=str(d.root),
            source=d.source,
            format="legacy" if d.format == "legacy" else "yaml",
            static_mapping=dict(d.static_mapping),
            requirements=tuple(d.requirements),
            sample_input=d.sample_input,
        )

    # -- names ---------------------------------------------------------------------------
    def _names(self) -> None:
        d = self.d
        for t in d.tasks:
            line, fld = t.at("name")
            if t.name in HOME_ALIASES:
                d.error(
                    f"a task cannot be named {t.name!r}: it is the name of the result sink; "
                    "rename the task",
                    line,
                    fld,
                )
                continue  # the sink's name: never a task
            if not TASK_NAME.match(t.name):
                d.error(
                    f"task name {t.name!r} may only contain letters, digits, '_', '-' and '.' "
                    "and must start with a letter, digit or '_'; rename it",
                    line,
                    fld,
                )
            first = self.by_name.get(t.name)
            if first is not None:
                d.error(
                    f"duplicate task {t.name!r} (first defined on line {first.line}); "
                    "every task needs a unique name",
                    line,
                    fld,
                )
            else:
                self.by_name[t.name] = t

    # -- children ------------------------------------------------------------------------
    def _children(self) -> None:
        d = self.d
        known = set(self.by_name)
        for t in d.tasks:
            line, fld = t.at("children")
            if not t.children:
                if t.incomplete:
                    self.bad_children.add(t.name)
                    continue
                d.error(
                    f"task {t.name!r} has no children; list at least one child task, "
                    "or home for a task whose outputs are results",
                    line,
                    fld,
                )
                self.bad_children.add(t.name)
                continue
            seen: set[str] = set()
            for child in t.children:
                if child in seen:
                    d.error(
                        f"task {t.name!r} lists child {child!r} twice; list each child once",
                        line,
                        fld,
                    )
                seen.add(child)
                if child != HOME and child not in known:
                    d.error(
                        f"task {t.name!r} has unknown child {child!r}"
                        f"{suggest(child, [*known, HOME])}; "
                        "children must be tasks of this app or home",
                        line,
                        fld,
                    )
                    self.bad_children.add(t.name)

    def _edges(self) -> dict[str, list[str]]:
        """Known task->task edges (home and unknown children left out), definition order."""
        out: dict[str, list[str]] = {n: [] for n in self.by_name}
        for n, t in self.by_name.items():
            for c in t.children:
                if c != HOME and c in self.by_name and c not in out[n]:
                    out[n].append(c)
        return out

    # -- graph: cycles, ingress, reachability ------------------------------------------------
    def _graph(self) -> None:
        d = self.d
        edges = self._edges()
        cycles = _find_cycles(list(self.by_name), edges)
        for cycle in cycles:
            self.cycle_members.update(cycle)
            first = self.by_name[cycle[0]]
            line, fld = first.at("children")
            path = " -> ".join([*cycle, cycle[0]])
            d.error(
                f"cycle: {path}; an app must be a DAG, remove one of these edges",
                line,
                fld,
            )
        # a self-loop is reported as a cycle; it does not make the task lose its ingress role
        has_parent = {c for n, cs in edges.items() for c in cs if c != n}
        ingress = [n for n in self.by_name if n not in has_parent]
        if not ingress:
            d.error(
                "no ingress task: every task has a parent, so no input can enter the app; "
                "at least one task must have no parents",
                1 if d.format == "legacy" else None,
            )
        reach = _reachable(ingress, edges)
        for n, t in self.by_name.items():
            if n not in reach and n not in self.cycle_members:
                d.error(
                    f"task {n!r} cannot be reached from any ingress task: its inputs only come "
                    "through a cycle; fix the cycle",
                    t.line,
                    t.at("name")[1],
                )
        # path to home: reverse reachability from the tasks that feed home
        rev: dict[str, list[str]] = {n: [] for n in self.by_name}
        for n, cs in edges.items():
            for c in cs:
                rev[c].append(n)
        feeds_home = [n for n, t in self.by_name.items() if HOME in t.children]
        to_home = _reachable(feeds_home, rev)
        # tasks upstream of an already reported problem (unknown child, cycle) are not
        # reported again
        upstream_of_bad = _reachable(self.bad_children | self.cycle_members, rev)
        if not feeds_home and self.by_name and not self.bad_children:
            d.error(
                "no task has home as a child, so no result ever reaches home; "
                "make the last task's child home",
                1 if d.format == "legacy" else None,
            )
            return
        for n, t in self.by_name.items():
            if n not in to_home and n not in upstream_of_bad:
                d.error(
                    f"task {n!r} has no path to home: its outputs never reach a task whose "
                    "child is home; add home or a task leading to home as a child",
                    *t.at("children"),
                )

    def _parents(self) -> dict[str, list[str]]:
        parents: dict[str, list[str]] = {n: [] for n in self.by_name}
        for n, cs in self._edges().items():
            for c in cs:
                parents[c].append(n)
        return parents

    # -- NUM_INPUTS ------------------------------------------------------------------------
    def _inputs(self, parents: dict[str, list[str]]) -> None:
        d = self.d
        for n, t in self.by_name.items():
            ps = parents[n]
            want = max(len(ps), 1)
            if not t.num_inputs_given:
                t.num_inputs = want
                continue
            if t.num_inputs is None:  # unreadable, already reported
                continue
            line, fld = t.at("num_inputs")
            label = "num_inputs" if t.field else "NUM_INPUTS"
            if t.num_inputs < 1:
                d.error(f"task {n!r}: {label} must be at least 1, got {t.num_inputs}", line, fld)
            elif not ps and t.num_inputs != 1:
                d.error(
                    f"task {n!r} has no parents (it is an ingress task: each submitted input "
                    f"file is one item), so {label} must be 1, not {t.num_inputs}",
                    line,
                    fld,
                )
            elif ps and t.num_inputs != len(ps):
                names = ", ".join(ps)
                why = (
                    "it would wait forever for inputs that never come"
                    if t.num_inputs > len(ps)
                    else "it would run before all its parents delivered"
                )
                d.error(
                    f"task {n!r} has {len(ps)} parent(s) ({names}) but {label} is "
                    f"{t.num_inputs}: {why}; set {label} to {len(ps)} (one input per parent)",
                    line,
                    fld,
                )

    # -- split mode ------------------------------------------------------------------------
    def _modes(self) -> None:
        d = self.d
        for n, t in self.by_name.items():
            if t.mode != "split" or not t.children:
                continue
            line, fld = t.at("mode")
            if len(t.children) < 2:
                flag = "mode: split" if t.field else "FLAG false"
                fix = "mode: broadcast" if t.field else "true"
                d.warn(
                    f"task {n!r} uses {flag} with a single child: outputs go one per child in "
                    f"sorted name order, so it may write at most one file per item (to "
                    f"{t.children[0]!r}); write {fix} if every output should go there",
                    line,
                    fld,
                )

    # -- scripts ---------------------------------------------------------------------------
    def _script_rel(self, t: TaskDraft) -> str:
        return t.script if t.script is not None else f"scripts/{t.name}.py"

    def _scripts(self) -> None:
        d = self.d
        root = d.root.resolve()
        for n, t in self.by_name.items():
            if (not TASK_NAME.match(n) and t.script is None) or t.incomplete:
                continue  # already reported; no sensible script to check
            rel = self._script_rel(t)
            if t.script_origin is not None:
                where_file, where_line = t.script_origin
                fld = "taskname_map"
            else:
                where_file = d.file
                where_line, fld = t.at("script")
            path = Path(rel)
            if path.is_absolute() or ".." in path.parts:
                d.error(
                    f"task {n!r}: script {rel!r} must be a path inside the app folder "
                    "(relative, without '..')",
                    where_line,
                    fld,
                    where_file,
                )
                continue
            full = d.root / path
            try:
                inside = full.resolve().is_relative_to(root)
            except OSError:
                inside = False
            if not inside:
                d.error(
                    f"task {n!r}: script {rel!r} resolves outside the app folder",
                    where_line,
                    fld,
                    where_file,
                )
                continue
            if not full.is_file():
                d.error(
                    f"task {n!r}: script {rel} not found in {d.root}; create it "
                    + (
                        "or fix scripts/config.json"
                        if t.script_origin
                        else "or fix the task name"
                        if t.script is None
                        else "or fix the script path"
                    ),
                    where_line,
                    fld,
                    where_file,
                )
                continue
            self._check_entry(t, full, str(Path(d.file).parent / rel), where_file, where_line)

    def _check_entry(
        self, t: TaskDraft, full: Path, shown: str, def_file: str, def_line: int | None
    ) -> None:
        d = self.d
        probs: list[Problem] = []
        src = decode_text(full.read_bytes(), shown, probs)
        if src is None:
            d.problems.extend(probs)
            return
        try:
            tree = ast.parse(src, filename=shown)
        except SyntaxError as exc:
            d.error(f"Python syntax error: {exc.msg}; fix the script", exc.lineno, file=shown)
            return
        interface = t.interface if t.interface in ENTRY else "legacy"
        func, min_params = ENTRY[interface]
        if interface == "legacy":
            min_params += len(t.args)  # extra arguments follow pathout
        elif t.args:
            d.warn(
                f"task {t.name!r}: args are only passed to legacy task() functions; "
                "process() never receives them",
                *t.at("args"),
            )
        other = "process" if interface == "legacy" else "task"
        found = _top_level_def(tree, func)
        if found is None:
            hint = ""
            if _top_level_def(tree, other) is not None:
                switch = "process" if interface == "legacy" else "legacy"
                hint = f"; it defines {other}(), so set interface: {switch}"
                if d.format == "legacy" and switch == "process":
                    hint = (
                        f"; it defines {other}(): the process interface needs app.yaml "
                        "(interface: process)"
                    )
            sig = (
                "task(inputs, pathin, pathout)"
                if interface == "legacy"
                else "process(item, inputs) -> dict[str, bytes]"
            )
            d.error(
                f"task {t.name!r}: {shown} defines no top-level {sig}{hint}",
                def_line if def_file == d.file else t.line,
                t.at("interface")[1] if t.field else None,
                d.file,
            )
            return
        if isinstance(found, ast.AsyncFunctionDef):
            d.error(f"{func}() must be a plain def, not async def", found.lineno, file=shown)
            return
        if isinstance(found, ast.FunctionDef):
            a = found.args
            positional = len(a.posonlyargs) + len(a.args)
            required_kwonly = [
                k.arg for k, dflt in zip(a.kwonlyargs, a.kw_defaults, strict=True) if dflt is None
            ]
            if positional < min_params and a.vararg is None:
                call = "process(item, inputs)"
                if func == "task":
                    call = (
                        "task(inputs, pathin, pathout" + "".join(f", {x!r}" for x in t.args) + ")"
                    )
                d.error(
                    f"{func}() takes {positional} positional parameter(s) but is called with "
                    f"{min_params}: {call}",
                    found.lineno,
                    file=shown,
                )
            if required_kwonly:
                d.error(
                    f"{func}() has required keyword-only parameter(s) "
                    f"{', '.join(required_kwonly)} that are never passed; give them defaults",
                    found.lineno,
                    file=shown,
                )

    # -- static mapping / pins ---------------------------------------------------------------
    def _static_mapping(self) -> None:
        d = self.d
        known = set(self.by_name)
        for task, node in d.static_mapping.items():
            line = d.static_lines.get(task)
            fld = f"{d.static_field}.{task}" if d.static_field else None
            if task not in known:
                d.error(
                    f"static mapping names unknown task {task!r}{suggest(task, known)}; "
                    "mapping lines are '<task> <node>' for tasks of this app",
                    line,
                    fld,
                )
                continue
            pin = self.by_name[task].pin
            if pin is not None and pin != node:
                d.error(
                    f"task {task!r} is pinned to {pin!r} but the static mapping puts it on "
                    f"{node!r}; make them agree",
                    line,
                    fld,
                )
        if d.static_mapping:
            missing = [n for n in self.by_name if n not in d.static_mapping]
            if missing:
                d.warn(
                    f"the static mapping covers {len(self.by_name) - len(missing)} of "
                    f"{len(self.by_name)} tasks (missing: {', '.join(missing)}); "
                    "jupiter_scheduler=static needs every task",
                    min(d.static_lines.values(), default=None),
                    d.static_field,
                )

    # -- sample input --------------------------------------------------------------------------
    def _sample_input(self) -> None:
        d = self.d
        if d.sample_input is None:
            if (d.root / "sample_input").is_dir():
                d.sample_input = "sample_input"
            else:
                d.warn(
                    "no sample_input/ folder: the execution profiler and "
                    "jupiter_run_sample_input need sample input files",
                    None,
                    None,
                    str(d.root),
                )
                return
        rel = Path(d.sample_input)
        fld = "sample_input" if d.format == "yaml" else None
        if rel.is_absolute() or ".." in rel.parts:
            d.error(
                f"sample_input {d.sample_input!r} must be a folder inside the app folder",
                d.sample_input_line,
                fld,
            )
            return
        folder = d.root / rel
        if not folder.is_dir():
            d.error(
                f"sample_input folder {d.sample_input!r} not found in {d.root}",
                d.sample_input_line,
                fld,
            )
            return
        if not any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir()):
            d.warn(
                f"sample_input folder {d.sample_input!r} holds no files",
                d.sample_input_line,
                fld,
            )

    # -- Kubernetes keys ---------------------------------------------------------------------
    def _keys(self) -> dict[str, str]:
        """A unique DNS-1123 key per task (``home`` reserved for the sink)."""
        keys = unique_keys(self.by_name)
        for n, key in keys.items():
            if not is_dns_label(key):  # safe_key guarantees it; keep the contract checked
                self.d.error(
                    f"cannot derive a Kubernetes name for task {n!r} (got {key!r}); rename it",
                    *self.by_name[n].at("name"),
                )
        return keys


def unique_keys(names: Iterable[str], reserved: Iterable[str] = (HOME,)) -> dict[str, str]:
    """``safe_key`` of every name, made unique (``-2``, ``-3``... on a collision).

    Keys never equal a ``reserved`` one and stay within the model's MAX_KEY_LEN.
    """
    keys: dict[str, str] = {}
    used: set[str] = set(reserved)
    for n in names:
        key = safe_key(n)
        i = 2
        while key in used:
            suffix = f"-{i}"
            key = safe_key(n)[: MAX_KEY_LEN - len(suffix)].rstrip("-") + suffix
            i += 1
        used.add(key)
        keys[n] = key
    return keys


def _binds(node: ast.stmt, name: str) -> bool:
    """Whether top-level statement ``node`` binds ``name`` (def, assignment or import)."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(tg, ast.Name) and tg.id == name for tg in node.targets)
    if isinstance(node, ast.ImportFrom | ast.Import):
        return any((al.asname or al.name.split(".")[0]) == name for al in node.names)
    return False


def _top_level_def(tree: ast.Module, name: str) -> ast.AST | None:
    """The last top-level binding of ``name``, or None."""
    found: ast.AST | None = None
    for node in tree.body:
        if _binds(node, name):
            found = node
    return found


def _reachable(starts: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(edges.get(n, ()))
    return seen


def _find_cycles(nodes: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """One simple cycle per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        # iterative Tarjan to stay clear of the recursion limit on long chains
        work = [(v, 0)]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, i = work[-1]
            succ = edges.get(node, [])
            if i < len(succ):
                work[-1] = (node, i + 1)
                w = succ[i]
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, 0))
                elif w in on_stack:
                    low[node] = min(low[node], index[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                sccs.append(comp)

    for n in nodes:
        if n not in index:
            strongconnect(n)

    order = {n: i for i, n in enumerate(nodes)}
    cycles: list[list[str]] = []
    for comp in sccs:
        members = set(comp)
        if len(comp) == 1 and comp[0] not in edges.get(comp[0], []):
            continue
        start = min(comp, key=order.__getitem__)
        cycles.append(_cycle_path(start, members, edges))
    cycles.sort(key=lambda c: order[c[0]])
    return cycles


def _cycle_path(start: str, members: set[str], edges: dict[str, list[str]]) -> list[str]:
    """A simple cycle through ``start`` inside one strongly connected component (BFS)."""
    prev: dict[str, str] = {}
    queue = [start]
    seen = {start}
    while queue:
        n = queue.pop(0)
        for c in edges.get(n, []):
            if c not in members:
                continue
            if c == start:
                path = [n]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path))
            if c not in seen:
                seen.add(c)
                prev[c] = n
                queue.append(c)
    return [start]  # unreachable for a real SCC
