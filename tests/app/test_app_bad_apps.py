"""A corpus of malformed apps: every one must be refused with the right file:line and text.

Each case writes an app into tmp_path, loads it, and checks that InvalidInput lists the
expected problems (file suffix, line, field, words of the message). Cases cover both
formats: Jupiter's configuration.txt (+ scripts/config.json) and app.yaml.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from app_helpers import CHAIN, LEGACY_SCRIPT, PROCESS_SCRIPT, legacy_app, write, yaml_app

from jupiter.app.loader import load_app
from jupiter.errors import InvalidInput, Problem

ANY = object()


@dataclass(frozen=True)
class Expect:
    file: str  # suffix of Problem.file
    line: int | object | None
    text: str  # substring of the message
    field: str | object | None = ANY


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], Path]
    expect: tuple[Expect, ...]


def L(config: str, **kw: object) -> Callable[[Path], Path]:
    return lambda root: legacy_app(root, config, **kw)  # type: ignore[arg-type]


def Y(text: str, **kw: object) -> Callable[[Path], Path]:
    return lambda root: yaml_app(root, textwrap.dedent(text).lstrip(), **kw)  # type: ignore[arg-type]


CFG = "configuration.txt"
YML = "app.yaml"

CASES = [
    # ---- configuration.txt: structure -------------------------------------------------
    Case("empty-config", L(""), (Expect(CFG, 1, "file is empty"),)),
    Case("blank-lines-only", L("\n\n   \n"), (Expect(CFG, 1, "file is empty"),)),
    Case(
        "n-not-a-number",
        L("three\na 1 true home\n"),
        (Expect(CFG, 1, "must be N, the number of task lines (an integer), got 'three'", "N"),),
    ),
    Case(
        "n-too-big",
        L("3\na 1 true b\nb 1 true home\n"),
        (Expect(CFG, 1, "says N=3 but 2 task line(s) follow (lines 2-3); set line 1 to 2", "N"),),
    ),
    Case(
        "n-too-small",
        L("1\na 1 true b\nb 1 true home\n"),
        (Expect(CFG, 1, "says N=1 but 2 task line(s) follow", "N"),),
    ),
    Case(
        "n-missing",
        L("a 1 true b\nb 1 true home\n"),
        (Expect(CFG, 1, "looks like a task line; insert a first line with the number", "N"),),
    ),
    Case(
        "n-zero",
        L("0\na 1 true home\n"),
        (Expect(CFG, 1, "must be at least 1, got 0", "N"),),
    ),
    Case(
        "num-inputs-not-a-number",
        L("2\na 1 true b\nb one true home\n"),
        (Expect(CFG, 3, "task 'b': NUM_INPUTS must be a whole number", "NUM_INPUTS"),),
    ),
    Case(
        "bad-flag",
        L("2\na 1 maybe b\nb 1 true home\n"),
        (Expect(CFG, 2, "FLAG must be true (broadcast", "FLAG"),),
    ),
    Case(
        "later-jupiter-flag",
        L("2\na 1 ordered b\nb 1 true home\n"),
        (Expect(CFG, 2, "'ordered' is a later Jupiter variant", "FLAG"),),
    ),
    Case(
        "incomplete-task-line",
        L("2\na 1\nb 1 true home\n"),
        (Expect(CFG, 2, "task line for 'a' is incomplete"),),
    ),
    Case(
        "missing-children",
        L("2\na 1 true\nb 1 true home\n"),
        (Expect(CFG, 2, "task 'a' has no children", "children"),),
    ),
    Case(
        "unknown-child-with-suggestion",
        L("2\naggregate0 1 true detector0\ndetector 1 true home\n"),
        (Expect(CFG, 2, "unknown child 'detector0' (did you mean 'detector'?)", "children"),),
    ),
    Case(
        "duplicate-task",
        L("3\na 1 true b\nb 1 true home\na 1 true home\n"),
        (Expect(CFG, 4, "duplicate task 'a' (first defined on line 2)", "task"),),
    ),
    Case(
        "duplicate-child",
        L("2\na 1 true b b\nb 1 true home\n"),
        (Expect(CFG, 2, "lists child 'b' twice", "children"),),
    ),
    Case(
        "cycle",
        L("4\na 1 true b\nb 2 true c\nc 1 true b home\nd 1 true home\n"),
        (Expect(CFG, 3, "cycle: b -> c -> b", "children"),),
    ),
    Case(
        "self-loop",
        L("2\na 1 true a b\nb 1 true home\n"),
        (Expect(CFG, 2, "cycle: a -> a", "children"),),
    ),
    Case(
        "no-ingress",
        L("2\na 1 true b\nb 1 true a home\n"),
        (Expect(CFG, 1, "no ingress task"), Expect(CFG, 2, "cycle: a -> b -> a")),
    ),
    Case(
        "no-home",
        L("3\na 1 true b\nb 2 true c\nc 1 true b\n"),
        (
            Expect(CFG, 1, "no task has home as a child"),
            Expect(CFG, 3, "cycle: b -> c -> b"),
        ),
    ),
    Case(
        "num-inputs-too-high",
        L("2\na 1 true b\nb 2 true home\n"),
        (
            Expect(
                CFG,
                3,
                "task 'b' has 1 parent(s) (a) but NUM_INPUTS is 2: it would wait forever",
                "NUM_INPUTS",
            ),
        ),
    ),
    Case(
        "num-inputs-too-low",
        L("4\na 1 true b c\nb 1 true d\nc 1 true d\nd 1 true home\n"),
        (Expect(CFG, 5, "has 2 parent(s) (b, c) but NUM_INPUTS is 1: it would run before"),),
    ),
    Case(
        "ingress-num-inputs",
        L("2\na 2 true b\nb 1 true home\n"),
        (Expect(CFG, 2, "has no parents (it is an ingress task", "NUM_INPUTS"),),
    ),
    Case(
        "task-named-home",
        L("2\nhome 1 true b\nb 1 true home\n"),
        (Expect(CFG, 2, "cannot be named 'home'", "task"),),
    ),
    Case(
        "task-named-scheduler",
        L("2\nscheduler 1 true b\nb 1 true home\n"),
        (Expect(CFG, 2, "cannot be named 'scheduler'"),),
    ),
    Case(
        "bad-task-name",
        L("2\na/b 1 true c\nc 1 true home\n"),
        (Expect(CFG, 2, "task name 'a/b' may only contain letters"),),
    ),
    Case(
        "non-utf8-config",
        L(b"2\na 1 true b\nb 1 true home \xff\xfe\n"),
        (Expect(CFG, 3, "not UTF-8 text (byte 0xff"),),
    ),
    Case(
        "static-mapping-unknown-task",
        L("2\na 1 true b\nb 1 true home\na node1\nc node2\n"),
        (Expect(CFG, 5, "static mapping names unknown task 'c'"),),
    ),
    Case(
        "static-mapping-twice",
        L("2\na 1 true b\nb 1 true home\na node1\na node2\n"),
        (Expect(CFG, 5, "task 'a' is mapped twice (first on line 4)"),),
    ),
    Case(
        "task-line-after-mapping",
        L("2\na 1 true b\na node1\nb 1 true home\n"),
        (Expect(CFG, 4, "task line after the static mapping lines; move it above them"),),
    ),
    Case(
        "mapping-line-garbage",
        L("2\na 1 true b\nb 1 true home\na node1 extra stuff\n"),
        (Expect(CFG, 4, "expected a static mapping line '<task> <node>' after the 2 task"),),
    ),
    # ---- scripts ---------------------------------------------------------------------
    Case(
        "missing-script",
        L(CHAIN, scripts={"scripts/b.py": None}),
        (Expect(CFG, 3, "task 'b': script scripts/b.py not found"),),
    ),
    Case(
        "script-without-task",
        L(CHAIN, scripts={"scripts/c.py": "def run(x):\n    return x\n"}),
        (Expect(CFG, 4, "scripts/c.py defines no top-level task(inputs, pathin, pathout)"),),
    ),
    Case(
        "script-syntax-error",
        L(CHAIN, scripts={"scripts/a.py": "def task(a, b, c):\n    return [\n\n"}),
        (Expect("scripts/a.py", 2, "Python syntax error"),),
    ),
    Case(
        "script-task-arity",
        L(CHAIN, scripts={"scripts/a.py": "\n\ndef task(name, pathin):\n    pass\n"}),
        (Expect("scripts/a.py", 3, "task() takes 2 positional parameter(s) but is called with 3"),),
    ),
    Case(
        "script-async-task",
        L(CHAIN, scripts={"scripts/a.py": "async def task(a, b, c):\n    pass\n"}),
        (Expect("scripts/a.py", 1, "must be a plain def, not async def"),),
    ),
    Case(
        "legacy-script-defines-process",
        L(CHAIN, scripts={"scripts/b.py": PROCESS_SCRIPT}),
        (Expect(CFG, 3, "the process interface needs app.yaml"),),
    ),
    Case(
        "script-not-utf8",
        L(CHAIN, scripts={"scripts/a.py": b"# \xe9t\xe9\ndef task(a, b, c):\n    pass\n"}),
        (Expect("scripts/a.py", 1, "not UTF-8 text"),),
    ),
    Case(
        "config-json-invalid",
        L(CHAIN, extra={"scripts/config.json": '{\n  "taskname_map": {\n    "a": ["a", true,]\n'}),
        (Expect("scripts/config.json", 3, "invalid JSON"),),
    ),
    Case(
        "config-json-bad-entry",
        L(CHAIN, extra={"scripts/config.json": '{"taskname_map": {\n  "b": [42]\n}}\n'}),
        (Expect("scripts/config.json", 2, "entry for 'b' must be", "taskname_map.b"),),
    ),
    Case(
        "config-json-missing-script",
        L(
            CHAIN,
            extra={"scripts/config.json": '{"taskname_map": {\n  "b": ["worker", true]\n}}\n'},
        ),
        (Expect("scripts/config.json", 2, "script scripts/worker.py not found", "taskname_map"),),
    ),
    Case(
        "config-json-args-arity",
        L(
            CHAIN,
            extra={"scripts/config.json": '{"taskname_map": {\n  "c": ["c", true, 0, 3]\n}}\n'},
        ),
        (Expect("scripts/c.py", 4, "takes 3 positional parameter(s) but is called with 5"),),
    ),
    # ---- app.yaml --------------------------------------------------------------------
    Case("yaml-empty", Y("# nothing here\n"), (Expect(YML, 1, "file is empty"),)),
    Case(
        "yaml-syntax",
        Y(
            """
            tasks:
              - name: a
                children: [b
              - name: b
            """
        ),
        (Expect(YML, 4, "YAML syntax error"),),
    ),
    Case(
        "yaml-not-mapping",
        Y("- a\n- b\n"),
        (Expect(YML, 1, "app.yaml must be a mapping"),),
    ),
    Case(
        "yaml-no-tasks",
        Y("name: x\n"),
        (Expect(YML, 1, "missing 'tasks:'", "tasks"),),
    ),
    Case(
        "yaml-tasks-not-list",
        Y("tasks:\n  a: {children: [home]}\n"),
        (Expect(YML, 2, "'tasks' must be a list", "tasks"),),
    ),
    Case(
        "yaml-unknown-field",
        Y(
            """
            tasks:
              - name: a
                childs: [home]
            """
        ),
        (
            Expect(YML, 3, "unknown field 'childs' (did you mean 'children'?)", "tasks[0].childs"),
            Expect(YML, 2, "task 'a' has no children", "tasks[0].children"),
        ),
    ),
    Case(
        "yaml-unknown-top-field",
        Y(
            """
            requirement: [numpy]
            tasks:
              - name: a
                children: [home]
            """
        ),
        (Expect(YML, 1, "unknown field 'requirement' (did you mean 'requirements'?)"),),
    ),
    Case(
        "yaml-num-inputs-text",
        Y(
            """
            tasks:
              - name: a
                children: [b]
              - name: b
                num_inputs: two
                children: [home]
            """
        ),
        (Expect(YML, 5, "num_inputs must be a whole number", "tasks[1].num_inputs"),),
    ),
    Case(
        "yaml-mode-bool",
        Y(
            """
            tasks:
              - name: a
                mode: false
                children: [b, c]
              - name: b
                children: [home]
              - name: c
                children: [home]
            """
        ),
        (Expect(YML, 3, "mode must be broadcast or split (Jupiter's FLAG", "tasks[0].mode"),),
    ),
    Case(
        "yaml-mode-typo",
        Y(
            """
            tasks:
              - name: a
                mode: splitt
                children: [home]
            """
        ),
        (Expect(YML, 3, "must be one of broadcast, split, got 'splitt' (did you mean 'split'?)"),),
    ),
    Case(
        "yaml-duplicate-key",
        Y(
            """
            tasks:
              - name: a
                children: [home]
                children: [b]
            """
        ),
        (Expect(YML, 4, "duplicate key 'children' (first on line 3)", "tasks[0].children"),),
    ),
    Case(
        "yaml-task-without-name",
        Y(
            """
            tasks:
              - children: [home]
            """
        ),
        (Expect(YML, 2, "task #1 has no 'name'", "tasks[0].name"),),
    ),
    Case(
        "yaml-bad-resources",
        Y(
            """
            tasks:
              - name: a
                children: [home]
                resources:
                  cpu: lots
                  memory: 128MB
                  gpu: 1
            """
        ),
        (
            Expect(YML, 5, "resources.cpu 'lots' is not a positive Kubernetes quantity"),
            Expect(YML, 6, "resources.memory '128MB' is not a positive Kubernetes quantity"),
            Expect(YML, 7, "unknown field 'gpu'", "tasks[0].resources.gpu"),
        ),
    ),
    Case(
        "yaml-zero-cpu",
        Y(
            """
            tasks:
              - name: a
                children: [home]
                resources: {cpu: 0m}
            """
        ),
        (Expect(YML, 4, "resources.cpu '0m' is not a positive Kubernetes quantity"),),
    ),
    Case(
        "yaml-interface-mismatch",
        Y(
            """
            tasks:
              - name: a
                children: [home]
            """,
            scripts={"scripts/a.py": LEGACY_SCRIPT},
        ),
        (Expect(YML, 2, "defines task(), so set interface: legacy"),),
    ),
    Case(
        "yaml-process-arity",
        Y(
            """
            tasks:
              - name: a
                children: [home]
            """,
            scripts={"scripts/a.py": "def process(inputs):\n    return {}\n"},
        ),
        (Expect("scripts/a.py", 1, "process() takes 1 positional parameter(s)"),),
    ),
    Case(
        "yaml-script-escapes",
        Y(
            """
            tasks:
              - name: a
                script: ../outside.py
                children: [home]
            """
        ),
        (Expect(YML, 3, "must be a path inside the app folder", "tasks[0].script"),),
    ),
    Case(
        "yaml-pin-conflicts-static-mapping",
        Y(
            """
            tasks:
              - name: a
                pin: edge1
                children: [home]
            static_mapping:
              a: edge2
            """
        ),
        (Expect(YML, 6, "pinned to 'edge1' but the static mapping puts it on 'edge2'"),),
    ),
    Case(
        "yaml-static-mapping-unknown",
        Y(
            """
            tasks:
              - name: a
                children: [home]
            static_mapping:
              b: edge2
            """
        ),
        (Expect(YML, 5, "static mapping names unknown task 'b'", "static_mapping.b"),),
    ),
    Case(
        "yaml-sample-input-missing",
        Y(
            """
            sample_input: inputs
            tasks:
              - name: a
                children: [home]
            """
        ),
        (Expect(YML, 1, "sample_input folder 'inputs' not found", "sample_input"),),
    ),
    Case(
        "yaml-num-inputs-vs-parents",
        Y(
            """
            tasks:
              - name: a
                children: [b, c]
              - name: b
                children: [d]
              - name: c
                children: [d]
              - name: d
                num_inputs: 3
                children: [home]
            """
        ),
        (Expect(YML, 9, "has 2 parent(s) (b, c) but num_inputs is 3", "tasks[3].num_inputs"),),
    ),
    Case(
        "yaml-unknown-child",
        Y(
            """
            tasks:
              - name: tokenize
                children: [count, home]
            """
        ),
        (Expect(YML, 3, "unknown child 'count'", "tasks[0].children"),),
    ),
    Case(
        "yaml-duplicate-task",
        Y(
            """
            tasks:
              - name: a
                children: [home]
              - name: a
                children: [home]
            """
        ),
        (Expect(YML, 4, "duplicate task 'a' (first defined on line 2)", "tasks[1].name"),),
    ),
    Case(
        "yaml-not-utf8",
        lambda root: yaml_app(root, b"tasks:\n  - name: a\n    children: [home] # \xff\n"),
        (Expect(YML, 3, "not UTF-8 text"),),
    ),
    # ---- folders ---------------------------------------------------------------------
    Case(
        "no-definition",
        lambda root: (write(root, {"scripts/a.py": LEGACY_SCRIPT}), root)[1],
        (Expect("", None, "no app definition: expected app.yaml or configuration.txt"),),
    ),
    Case(
        "jupiter-v4-app-config",
        lambda root: (write(root, {"app_config.yaml": "application: {}\n"}), root)[1],
        (Expect("", None, "app_config.yaml of Jupiter v4 is not read by this bundle"),),
    ),
]


def _matches(p: Problem, e: Expect, root: Path) -> bool:
    if e.file == "":
        if p.file != str(root):
            return False
    elif not p.file.endswith(e.file):
        return False
    if e.line is not ANY and p.line != e.line:
        return False
    if e.field is not ANY and p.field != e.field:
        return False
    return e.text in p.message


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_app_is_refused_with_file_line_and_message(tmp_path: Path, case: Case) -> None:
    root = case.build(tmp_path / "app")
    with pytest.raises(InvalidInput) as info:
        load_app(root)
    problems = info.value.problems
    listing = "\n".join(str(p) for p in problems)
    for e in case.expect:
        assert any(_matches(p, e, root) for p in problems), f"missing {e} in:\n{listing}"
    # no noise: each expected problem is reported once and nothing else
    assert len(problems) == len(case.expect), listing
    # the exception text lists every problem with its location, for the user
    for p in problems:
        assert str(p) in str(info.value)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several unrelated mistakes in one file: all of them come back in one error."""
    root = legacy_app(
        tmp_path / "app",
        "4\na 1 maybe b\nb x true c\nc 1 true nowhere\nd 2 true home\n",
        scripts={"scripts/d.py": None},
    )
    with pytest.raises(InvalidInput) as info:
        load_app(root)
    found = {(p.line, p.field) for p in info.value.problems}
    assert (2, "FLAG") in found
    assert (3, "NUM_INPUTS") in found
    assert (4, "children") in found  # unknown child 'nowhere'
    assert (5, "NUM_INPUTS") in found  # ingress d with 2 inputs
    assert any("scripts/d.py not found" in p.message for p in info.value.problems)
