"""The two app formats and what validation derives from them (keys, defaults, warnings)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from app_helpers import CHAIN, DIAMOND_YAML, LEGACY_SCRIPT, PROCESS_SCRIPT, legacy_app, yaml_app
from hypothesis import given, settings
from hypothesis import strategies as st

from jupiter.app.loader import inspect_app, load_app
from jupiter.app.model import HOME, App, is_dns_label, safe_key
from jupiter.app.validate import unique_keys
from jupiter.errors import InvalidInput

# ---- configuration.txt ---------------------------------------------------------------------


def test_legacy_chain(tmp_path: Path) -> None:
    app = load_app(legacy_app(tmp_path / "chain", CHAIN))
    assert app.format == "legacy"
    assert app.source == "configuration.txt"
    assert app.name == "chain"
    assert app.names == ["a", "b", "c"]
    assert app.ingress == ["a"]
    assert app.sinks == ["c"]
    assert app.task("a").script == "scripts/a.py"
    assert app.task("a").interface == "legacy"
    assert [t.line for t in app.tasks] == [2, 3, 4]
    assert app.sample_input == "sample_input"
    assert Path(app.root) == (tmp_path / "chain").resolve()


def test_legacy_flags_scheduler_alias_comments_and_crlf(tmp_path: Path) -> None:
    config = (
        "# a comment line\r\n4\r\n\r\na 1 FALSE b c\r\nb 1 True d\r\nc 1 true d\r\n"
        "d 2 true scheduler\r\n"
    )
    app = load_app(legacy_app(tmp_path / "app", config))
    assert app.task("a").mode == "split"
    assert app.task("b").mode == "broadcast"
    assert app.task("d").children == (HOME,)
    assert app.task("d").num_inputs == 2
    assert app.task("a").line == 4


def test_legacy_static_mapping_lines(tmp_path: Path) -> None:
    config = CHAIN + "a node1\nb node2\nc home\n"
    app, warnings = inspect_app(legacy_app(tmp_path / "app", config))
    assert app.static_mapping == {"a": "node1", "b": "node2", "c": "home"}
    assert warnings == []


def test_legacy_partial_static_mapping_warns(tmp_path: Path) -> None:
    app, warnings = inspect_app(legacy_app(tmp_path / "app", CHAIN + "a node1\n"))
    assert app.static_mapping == {"a": "node1"}
    assert len(warnings) == 1
    w = warnings[0]
    assert w.severity == "warning" and w.line == 5
    assert "covers 1 of 3 tasks (missing: b, c)" in w.message


def test_legacy_scripts_config_json(tmp_path: Path) -> None:
    """Later Jupiter's scripts/config.json maps tasks to scripts and extra arguments."""
    config_json = """{
      "exec_profiler": {"a": true},
      "taskname_map": {
        "a": ["a", true],
        "b": ["shared_worker", true, 0, 3],
        "c": "c",
        "dftslave00": ["dftslave", false, 0, 0, 3],
        "ghost": ["ghost", true]
      }
    }
    """
    worker = "def task(inputs, pathin, pathout, part, total):\n    return []\n"
    root = legacy_app(
        tmp_path / "app",
        CHAIN,
        scripts={"scripts/b.py": None, "scripts/shared_worker.py": worker},
        extra={"scripts/config.json": textwrap.dedent(config_json)},
    )
    app, warnings = inspect_app(root)
    assert app.task("b").script == "scripts/shared_worker.py"
    assert app.task("b").args == ("0", "3")
    assert app.task("a").script == "scripts/a.py"
    texts = [w.message for w in warnings]
    assert any("not in configuration.txt (ignored): ghost" in t for t in texts)
    assert any("non-DAG worker tasks" in t and "dftslave00" in t for t in texts)
    assert all(w.file.endswith("scripts/config.json") for w in warnings)


def test_legacy_requirements_txt(tmp_path: Path) -> None:
    req = "# deps\nnumpy>=1.26  # arrays\n\n-r other.txt\nscipy==1.13\n"
    app, warnings = inspect_app(
        legacy_app(tmp_path / "app", CHAIN, extra={"requirements.txt": req})
    )
    assert app.requirements == ("numpy>=1.26", "scipy==1.13")
    assert [(w.line, "pip option '-r'" in w.message) for w in warnings] == [(4, True)]


def test_legacy_split_with_one_child_is_a_warning(tmp_path: Path) -> None:
    """Real Jupiter apps write FLAG false with one child; accept it, but say what it means."""
    app, warnings = inspect_app(legacy_app(tmp_path / "app", "2\na 1 false b\nb 1 true home\n"))
    assert app.task("a").mode == "split"
    assert len(warnings) == 1
    assert warnings[0].line == 2 and warnings[0].field == "FLAG"
    assert "single child" in warnings[0].message and "write true" in warnings[0].message


def test_no_sample_input_warns(tmp_path: Path) -> None:
    app, warnings = inspect_app(legacy_app(tmp_path / "app", CHAIN, sample=False))
    assert app.sample_input is None
    assert any("no sample_input/ folder" in w.message for w in warnings)


def test_script_may_bind_task_by_import_or_assignment(tmp_path: Path) -> None:
    scripts = {
        "scripts/a.py": "from helpers import run as task\n",
        "scripts/b.py": "def _impl(a, b, c):\n    pass\n\ntask = _impl\n",
        "scripts/c.py": "def task(*args):\n    pass\n",
    }
    app = load_app(legacy_app(tmp_path / "app", CHAIN, scripts=scripts))
    assert len(app.tasks) == 3


# ---- app.yaml --------------------------------------------------------------------------------


def test_yaml_defaults(tmp_path: Path) -> None:
    app = load_app(yaml_app(tmp_path / "tiny", DIAMOND_YAML))
    assert app.format == "yaml" and app.source == "app.yaml"
    assert app.name == "tiny"
    assert app.task("d").num_inputs == 2  # default: one input per parent
    assert app.task("a").num_inputs == 1  # ingress
    assert all(t.interface == "process" for t in app.tasks)
    assert all(t.mode == "broadcast" for t in app.tasks)
    assert app.task("b").script == "scripts/b.py"
    assert app.task("b").line == 5
    assert [(p, c) for p, c in app.edges()] == [
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "d"),
        ("d", HOME),
    ]
    assert app.topological_order() == ["a", "b", "c", "d"]


def test_yaml_every_field(tmp_path: Path) -> None:
    text = """
    name: full
    interface: legacy
    requirements: [numpy>=1.26]
    sample_input: inputs
    tasks:
      - name: split_it
        description: splits
        script: code/splitter.py
        mode: split
        num_inputs: 1
        children: [left, right]
        pin: edge1
        resources: {cpu: 250m, memory: 64Mi}
        args: [3, fast]
      - name: left
        interface: process
        children: [home]
      - name: right
        interface: process
        resources: {cpu: 0.5, memory: 1Gi}
        children: [home]
    static_mapping:
      split_it: edge1
      left: edge2
      right: edge2
    """
    splitter = "def task(inputs, pathin, pathout, n, speed):\n    return []\n"
    root = yaml_app(
        tmp_path / "full",
        textwrap.dedent(text).lstrip(),
        scripts={
            "scripts/split_it.py": None,
            "code/splitter.py": splitter,
        },
        extra={"inputs/1.txt": "x"},
    )
    app, warnings = inspect_app(root)
    assert warnings == []
    t = app.task("split_it")
    assert t.script == "code/splitter.py"
    assert t.interface == "legacy"
    assert t.mode == "split"
    assert t.pin == "edge1"
    assert t.resources == {"cpu": "250m", "memory": "64Mi"}
    assert t.args == ("3", "fast")
    assert app.task("right").resources == {"cpu": "0.5", "memory": "1Gi"}
    assert app.task("left").interface == "process"
    assert app.requirements == ("numpy>=1.26",)
    assert app.sample_input == "inputs"
    assert app.static_mapping == {"split_it": "edge1", "left": "edge2", "right": "edge2"}


def test_yaml_reads_requirements_txt_when_not_given(tmp_path: Path) -> None:
    app = load_app(yaml_app(tmp_path / "app", DIAMOND_YAML, extra={"requirements.txt": "numpy\n"}))
    assert app.requirements == ("numpy",)


def test_yaml_args_with_process_interface_warns(tmp_path: Path) -> None:
    text = "tasks:\n  - name: a\n    args: [x]\n    children: [home]\n"
    _, warnings = inspect_app(yaml_app(tmp_path / "app", text))
    assert [(w.line, w.field) for w in warnings] == [(3, "tasks[0].args")]
    assert "only passed to legacy task()" in warnings[0].message


# ---- loader ----------------------------------------------------------------------------------


BOTH = LEGACY_SCRIPT + "\n\n" + PROCESS_SCRIPT  # valid for either interface


def test_yaml_preferred_when_both_exist(tmp_path: Path) -> None:
    root = legacy_app(tmp_path / "app", CHAIN, scripts={f"scripts/{n}.py": BOTH for n in "abc"})
    yaml_app(root, DIAMOND_YAML, scripts={f"scripts/{n}.py": BOTH for n in "abcd"})
    app, warnings = inspect_app(root)
    assert app.format == "yaml"
    assert any("app.yaml is used, configuration.txt is ignored" in w.message for w in warnings)


def test_definition_file_may_be_given_directly(tmp_path: Path) -> None:
    root = legacy_app(tmp_path / "app", CHAIN, scripts={f"scripts/{n}.py": BOTH for n in "abc"})
    yaml_app(root, DIAMOND_YAML, scripts={f"scripts/{n}.py": BOTH for n in "abcd"})
    assert load_app(root / "configuration.txt").format == "legacy"
    assert load_app(root / "app.yaml").format == "yaml"


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        load_app(tmp_path / "nope")
    assert "app folder not found" in str(info.value)


# ---- names and keys --------------------------------------------------------------------------


def test_keys_are_dns_labels_and_unique_even_when_names_collide(tmp_path: Path) -> None:
    """``safe_key("x_y")`` is ``x-y-<hash>``; a task literally named that must not collide."""
    clash = safe_key("x_y")
    names = ["x_y", clash, "X_Y", "x.y", "_x", "a" * 60, "a" * 61]
    lines = [f"{n} 1 true home" for n in names]
    config = f"{len(names)}\n" + "\n".join(lines) + "\n"
    app = load_app(legacy_app(tmp_path / "app", config))
    keys = [t.key for t in app.tasks]
    assert len(set(keys)) == len(keys), keys
    assert all(is_dns_label(k) and len(k) <= 40 for k in keys), keys
    assert "home" not in keys
    assert [t.name for t in app.tasks] == names  # originals kept
    assert app.task(clash).key != app.task("x_y").key


def test_app_dict_round_trip(tmp_path: Path) -> None:
    app = load_app(APPS_DIAMOND)
    again = App.from_dict(app.to_dict())
    assert again.to_dict() == app.to_dict()
    assert again.tasks == tuple(t.__class__(**{**t.__dict__, "line": None}) for t in app.tasks)


APPS_DIAMOND = Path(__file__).resolve().parents[2] / "task_specific_files" / "diamond"


def test_process_script_fixture_is_valid_python() -> None:
    compile(PROCESS_SCRIPT, "process.py", "exec")
    compile(LEGACY_SCRIPT, "legacy.py", "exec")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet="aA_-.0zZ", min_size=1, max_size=50).filter(lambda s: s[0] not in "-."),
        unique=True,
        max_size=12,
    )
)
def test_unique_keys_property(names: list[str]) -> None:
    """Whatever the names, keys are DNS labels, unique, never 'home', at most 40 chars."""
    clash = [safe_key(n) for n in names] + [safe_key(n) + "-2" for n in names]
    everything = list(dict.fromkeys([*names, *clash]))
    keys = unique_keys(everything)
    assert set(keys) == set(everything)
    values = list(keys.values())
    assert len(set(values)) == len(values)
    assert "home" not in values
    assert all(is_dns_label(k) and len(k) <= 40 for k in values)
