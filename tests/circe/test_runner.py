"""Loading task code once and running both interfaces."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupiter.app.model import Task
from jupiter.circe.runner import InlinePolicy, execute, load_task_code
from jupiter.errors import JupiterError

ROOT = Path(__file__).resolve().parents[2]


def script(root: Path, name: str, text: str) -> str:
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "scripts" / name).write_text(textwrap.dedent(text))
    return f"scripts/{name}"


def legacy(root: Path, name: str, text: str, **kw: object) -> Task:
    return Task(name=name, key=name.replace("_", "-"), script=script(root, f"{name}.py", text),
                **kw)  # type: ignore[arg-type]


def test_legacy_single_input_gets_a_name_and_may_import_siblings(tmp_path: Path) -> None:
    script(tmp_path, "helper.py", "def shout(s):\n    return s.upper()\n")
    t = legacy(tmp_path, "up", """
        import os
        from helper import shout

        CALLS = []

        def task(filename, pathin, pathout):
            CALLS.append(filename)
            assert isinstance(filename, str)
            data = open(pathin + filename).read()
            with open(os.path.join(pathout, filename.split('.')[0] + '_up.txt'), 'w') as f:
                f.write(shout(data))
        """)
    code = load_task_code(t, tmp_path, tmp_path / "work")
    assert code.run("3x", [("3x.txt", b"abc")]) == {"3x_up.txt": b"ABC"}
    assert code.run("4x", [("4x.txt", b"de")]) == {"4x_up.txt": b"DE"}
    again = load_task_code(t, tmp_path, tmp_path / "work")
    assert again.func is code.func  # loaded once per process  # type: ignore[attr-defined]
    # one pair of folders, emptied after each run and reused by the next
    (work,) = (tmp_path / "work").iterdir()
    assert sorted(p.name for p in work.iterdir()) == ["in", "out"]
    assert list((work / "in").iterdir()) == [] and list((work / "out").iterdir()) == []


def test_legacy_folders_are_emptied_and_concurrent_runs_get_their_own(tmp_path: Path) -> None:
    t = legacy(tmp_path, "messy", """
        import os
        import threading

        BARRIER = threading.Barrier(2, timeout=10)
        SEEN = []

        def task(filename, pathin, pathout):
            SEEN.append(sorted(os.listdir(pathin)) + sorted(os.listdir(pathout)))
            os.mkdir(os.path.join(pathin, "scratch"))  # junk the next run must not see
            with open(os.path.join(pathin, "scratch", "x"), "w") as f:
                f.write("x")
            if filename.startswith("c"):
                BARRIER.wait()  # both concurrent runs are inside task() at once
            with open(os.path.join(pathout, filename + ".out"), "w") as f:
                f.write(pathin)
        """)
    code = load_task_code(t, tmp_path, tmp_path / "work")
    first = code.run("1", [("a", b"1")])
    second = code.run("2", [("b", b"2")])
    assert first["a.out"] == second["b.out"]  # the same folder, reused
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda n: code.run(n, [(n, b"x")]), ["c1", "c2"]))
    assert runs[0]["c1.out"] != runs[1]["c2.out"]  # concurrent runs: separate folders
    seen = code.func.__globals__["SEEN"]  # type: ignore[attr-defined]
    assert seen[:2] == [["a"], ["b"]] and sorted(seen[2:]) == [["c1"], ["c2"]]  # all empty


def test_tasks_see_their_args_in_sys_argv(tmp_path: Path) -> None:
    t = Task(name="argv", key="argv", interface="process", args=("--scale", "3"),
             script=script(tmp_path, "argv.py", """
        import sys

        def process(item, inputs):
            scale = int(sys.argv[sys.argv.index("--scale") + 1])
            return {item + ".txt": str(scale * 2).encode()}
        """))
    before = list(sys.argv)
    code = load_task_code(t, tmp_path, tmp_path / "work")
    assert code.run("1", []) == {"1.txt": b"6"}
    assert sys.argv == before


def test_legacy_list_input_returned_list_and_args(tmp_path: Path) -> None:
    t = legacy(tmp_path, "fuse", """
        import os

        def task(files, pathin, pathout, sep):
            assert isinstance(files, list)
            joined = sep.join(open(os.path.join(pathin, f)).read() for f in files)
            for name in ("keep.log", "scratch.tmp"):
                with open(os.path.join(pathout, name), "w") as fh:
                    fh.write(joined)
            return [os.path.join(pathout, "keep.log")]
        """, num_inputs=2, args=("+",))
    code = load_task_code(t, tmp_path, tmp_path / "work")
    assert code.run("1", [("a", b"A"), ("b", b"B")]) == {"keep.log": b"A+B"}


def test_process_interface_and_output_checks(tmp_path: Path) -> None:
    t = Task(name="p", key="p", interface="process", script=script(tmp_path, "p.py", """
        def process(item, inputs):
            if item == "bad-type":
                return {"out": "text"}
            if item == "bad-name":
                return {"../escape": b"x"}
            if item == "not-dict":
                return [b"x"]
            return {item + ".out": b"".join(inputs.values())}
        """))
    code = load_task_code(t, tmp_path, tmp_path / "work")
    assert code.run("ok", [("a", b"1"), ("b", b"2")]) == {"ok.out": b"12"}
    for item, msg in [("bad-type", "expected bytes"), ("not-dict", "expected dict"),
                      ("bad-name", "path separator")]:
        outcome = execute(code, item, [("a", b"1")], retries=0)
        assert not outcome.ok and msg in (outcome.error or "")


def test_execute_retries_then_records_the_error(tmp_path: Path) -> None:
    t = Task(name="flaky", key="flaky", interface="process", script=script(tmp_path, "f.py", """
        ATTEMPTS = {}

        def process(item, inputs):
            ATTEMPTS[item] = ATTEMPTS.get(item, 0) + 1
            if item == "always" or ATTEMPTS[item] < 3:
                raise RuntimeError(f"attempt {ATTEMPTS[item]}")
            return {"x": b"done"}
        """))
    code = load_task_code(t, tmp_path, tmp_path / "work")
    failures: list[tuple[int, str]] = []
    ok = execute(code, "eventually", [], retries=2, on_failure=lambda a, e: failures.append(
        (a, e)))
    assert ok.ok and ok.attempts == 3 and len(failures) == 2
    bad = execute(code, "always", [], retries=1)
    assert not bad.ok and bad.attempts == 2
    assert bad.error is not None and "RuntimeError: attempt 2 (f.py:" in bad.error


def test_missing_script_or_entry_point_is_a_clear_error(tmp_path: Path) -> None:
    t = Task(name="gone", key="gone", script="scripts/gone.py")
    with pytest.raises(JupiterError, match=r"script 'scripts/gone\.py' not found"):
        load_task_code(t, tmp_path, tmp_path / "work")
    t = legacy(tmp_path, "noentry", "X = 1\n")
    with pytest.raises(JupiterError, match=r"defines no task\(inputs, pathin, pathout\)"):
        load_task_code(t, tmp_path, tmp_path / "work")
    t = legacy(tmp_path, "broken", "import does_not_exist_anywhere\n")
    with pytest.raises(JupiterError, match=r"importing .* failed: ModuleNotFoundError"):
        load_task_code(t, tmp_path, tmp_path / "work")


def test_inline_policy_runs_measured_fast_code_inline_and_backs_off_after_a_slow_run() -> None:
    policy = InlinePolicy(0.001, max_input_bytes=1000)
    assert not policy.inline(10)  # nothing measured yet: the worker pool
    policy.observe(0.0002, 0.0003)
    assert policy.inline(10) and not policy.inline(1001)  # large inputs: the pool
    policy.observe(0.05, 0.05)  # one slow run: back to the pool...
    assert not policy.inline(10)
    fast_runs = 0
    while not policy.inline(10):  # ...until a series of fast runs brings it back
        policy.observe(0.0002, 0.0003)
        fast_runs += 1
    assert 10 < fast_runs < 100
    never = InlinePolicy(0.0)
    never.observe(0.0, 0.0)
    assert not never.inline(0)


def test_inline_policy_judges_cpu_and_waiting_so_throttled_runs_stay_inline(
) -> None:
    policy = InlinePolicy(0.001)
    # 0.3 ms of CPU over 40 ms of wall clock, all of it runnable (the node's quota ran out
    # meanwhile): the code did not wait, a thread would not have run it sooner
    for _ in range(5):
        policy.observe(0.0003, 0.0)
    assert policy.inline(10)
    policy.observe(0.0003, 0.005)  # little CPU, but 5 ms waiting on I/O: the pool
    assert not policy.inline(10)


def test_execute_measures_the_cpu_time_of_its_thread_apart_from_waiting(tmp_path: Path) -> None:
    t = legacy(tmp_path, "waits", "import time\n"
               "def task(name, pathin, pathout):\n"
               "    time.sleep(0.05)\n"
               "    sum(range(200000))\n"
               "    open(pathout + '/o.txt', 'w').write('x')\n")
    code = load_task_code(t, tmp_path, tmp_path / "work")
    outcome = execute(code, "1", [("1in.txt", b"x")], 0)
    assert outcome.ok and outcome.wall_s >= 0.05
    assert 0 < outcome.cpu_s < outcome.wall_s - 0.04
    assert 0.045 <= outcome.waited_s <= outcome.wall_s - outcome.cpu_s  # the sleep


def test_a_throttled_run_did_not_wait(tmp_path: Path) -> None:
    """Under a CPU quota (a cgroup v1 cpu controller, as the testbed's nodes have) a run is
    stretched by throttling, which schedstat counts as runnable time, not as waiting."""
    from jupiter.circe.runner import run_delay_s

    root = Path("/sys/fs/cgroup/cpu")
    if run_delay_s() is None or not (root / "cgroup.procs").exists() or os.geteuid() != 0:
        pytest.skip("needs schedstat, the cgroup v1 cpu controller and root")
    group = root / f"jupiter-test-{os.getpid()}"
    group.mkdir()
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from jupiter.circe.runner import execute
        class Busy:
            def run(self, item, inputs):
                c = time.thread_time()
                while time.thread_time() - c < 0.03:
                    pass
                return {{"o": b"x"}}
        Path({str(group)!r}, "cgroup.procs").write_text(str(os.getpid()))
        o = execute(Busy(), "1", [], 0)
        print(o.wall_s, o.cpu_s, o.waited_s)
    """)
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("10000")  # 0.1 core: 30 ms of CPU spans periods
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
    finally:
        group.rmdir()
    wall, cpu, waited = map(float, out)
    assert wall > cpu + 0.1  # throttled for most of it
    assert waited < 0.01
