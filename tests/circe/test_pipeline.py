"""Whole pipelines through real ``jupiter circe task``/``home`` processes on loopback.

Results at home must be byte-equal to the in-process reference run.
"""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from circe_apps import SAMPLES, chain_app, diamond_app, dnad_app, packet_file, results_tree

from jupiter.app.loader import load_app
from jupiter.circe.reference import items_from_dir, reference_run
from jupiter.report import task_cpu_per_item

JUPITER = [sys.executable, "-m", "jupiter.cli"]


def _runtime_rows(state: Path) -> list[dict[str, str]]:
    with open(state / "circe" / "runtime.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("sample", ["network_monitoring_app", "diamond"])
def test_sample_app_results_equal_the_reference_run(sample: str, launch, tmp_path: Path
                                                    ) -> None:
    app_dir = SAMPLES / sample
    app = load_app(app_dir)
    inputs = app_dir / (app.sample_input or "sample_input")
    ref = tmp_path / "reference"
    run = subprocess.run([*JUPITER, "circe", "reference", str(app_dir), str(inputs), str(ref)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    expected = results_tree(ref)
    n = len(items_from_dir(inputs))
    assert expected and len({k.split("/")[0] for k in expected}) == n

    p = launch(app, {"concurrency": 2}, app_dir=app_dir)
    sub = subprocess.run([*JUPITER, "submit", str(inputs), "--config", str(p.config_file),
                          "--wait", "120"], capture_output=True, text=True, timeout=180)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert f"accepted {n} item(s)" in sub.stdout and f"results: {n} completed" in sub.stdout
    assert results_tree(p.state_dir / "results") == expected
    status = p.wait_for(lambda s: all(t["finish"] == n for t in s["tasks"].values()), 30,
                        "every task's finish events")
    assert status["completed"] == n and status["failed"] == 0 and status["in_flight"] == 0
    p.wait_for(lambda s: (p.state_dir / "circe" / "items.csv").exists()
               and len((p.state_dir / "circe" / "items.csv").read_text().splitlines()) == n + 1,
               30, "the runtime table")
    rows = _runtime_rows(p.state_dir)
    assert len(rows) == n * len(app.tasks)
    for row in rows:
        assert row["status"] == "ok"
        enter, execute, finish = (float(row[k]) for k in ("enter", "execute", "finish"))
        assert enter <= execute <= finish
        assert float(row["elapsed"]) == pytest.approx(finish - enter, abs=2e-6)


def test_200_interleaved_items_through_the_dnad_shape(launch, tmp_path: Path) -> None:
    app = dnad_app(tmp_path / "app")
    items = [(f"{n}botnet", f"{n}botnet.ipsum", packet_file(n)) for n in range(200)]
    report = reference_run(app, app.root, items, tmp_path / "reference")
    assert len(report.completed) == 200

    p = launch(app, {"concurrency": 3})
    order = list(items)
    random.Random(7).shuffle(order)
    with ThreadPoolExecutor(8) as pool:  # concurrent submissions: items interleave everywhere
        codes = list(pool.map(lambda it: p.submit(it[1], it[2])[0], order))
    assert codes == [200] * 200
    status = p.wait_for(lambda s: s["done"] == 200, 180, "200 items at home")
    assert status["completed"] == 200 and status["failed"] == 0
    assert results_tree(p.state_dir / "results") == results_tree(tmp_path / "reference")
    status = p.wait_for(lambda s: all(t["finish"] == 200 for t in s["tasks"].values()), 30,
                        "finish events of every task")
    assert all(t["enter"] == 200 and t["failed"] == 0 for t in status["tasks"].values())
    for t in app.tasks:  # every spool drained, every item ran exactly once per task
        ts = p.status(t.key)
        assert ts["done"] == 200 and ts["spool"]["items"] == 0 and ts["joins_open"] == 0
    # every item reaches home's tables (what the report is built from), each once
    p.wait_for(lambda s: s["tabled"] == 200, 60, "200 items in the tables")
    rows = list(csv.DictReader((p.state_dir / "circe" / "items.csv").open()))
    assert sorted(r["item"] for r in rows) == sorted(item for item, _, _ in items)
    # each task's CPU per item, from the CPU seconds its process reported with each finish
    runtime = [json.loads(line) for line in
               (p.state_dir / "circe" / "runtime.jsonl").read_text().splitlines()]
    assert all(r["process_cpu_s"] > 0 for r in runtime)
    fed = [{**r, "submitted": float(r["submitted"]), "completed": float(r["completed"])}
           for r in rows]
    cpu = task_cpu_per_item(runtime, fed)
    assert cpu.keys() == {t.name for t in app.tasks}
    assert all(0 < seconds < 1 for seconds in cpu.values())


@pytest.mark.parametrize("inline_max_s", [0.0, 0.5])
def test_task_code_runs_inline_or_in_the_pool_with_the_same_results(
        inline_max_s: float, launch, tmp_path: Path) -> None:
    app = chain_app(tmp_path / "app", 2)
    items = [(f"i{n:03d}", f"i{n:03d}.bin", f"payload {n}".encode() * 50) for n in range(40)]
    reference_run(app, app.root, items, tmp_path / "reference")
    p = launch(app, {"inline_max_s": inline_max_s})
    for item, name, data in items:  # one at a time: every run after the first is measured
        assert p.submit(name, data)[0] == 200
        p.wait_item(item)
    assert results_tree(p.state_dir / "results") == results_tree(tmp_path / "reference")
    for t in app.tasks:
        runs = p.status(t.key)["runs"]
        assert runs["inline"] + runs["pool"] == 40 and runs["pool"] >= 1
        assert (runs["inline"] > 0) == (inline_max_s > 0)


def test_a_failing_task_records_the_item_and_the_pipeline_keeps_going(launch,
                                                                       tmp_path: Path) -> None:
    app = chain_app(tmp_path / "app", 3, fail_prefix={1: "bad"})
    p = launch(app, {"retries": 2})
    names = [f"ok{n}.bin" for n in range(6)] + ["bad1.bin", "bad2.bin"]
    for name in names:
        assert p.submit(name, name.encode())[0] == 200
    status = p.wait_for(lambda s: s["done"] == 8, 60, "8 items done")
    assert status["completed"] == 6 and status["failed"] == 2
    failed = {f["item"]: f for f in status["failures"]}
    assert set(failed) == {"bad1", "bad2"}
    assert "ValueError: refusing item bad1" in failed["bad1"]["error"]
    assert sorted(d.name for d in (p.state_dir / "results").iterdir()) == [
        f"ok{n}" for n in range(6)]
    status = p.wait_for(lambda s: s["tasks"]["s2"]["skipped"] == 2
                        and s["tasks"]["s1"]["failed"] == 2, 30, "failure and skip events")
    assert status["tasks"]["s1"]["retry"] == 2 * 2  # two retries of each bad item
    for key in ("s0", "s1", "s2"):
        assert p.status(key)["spool"]["items"] == 0
    code, _, body = p.request("home", "/results/bad1")
    record = json.loads(body)
    assert code == 200 and record["status"] == "failed"
    assert record["tasks"]["s1"]["error"].startswith("ValueError: refusing item bad1")
    assert "skipped" in record["tasks"]["s2"]


def test_watched_input_folder_feeds_items(launch, tmp_path: Path) -> None:
    app = diamond_app(tmp_path / "app")
    p = launch(app)
    inbox = p.state_dir / "input"
    (inbox / ".partial").write_bytes(b"ignored while hidden")
    (inbox / "w1.txt").write_bytes(b"first")
    (inbox / "w2.txt").write_bytes(b"second")
    (inbox / "bad name.txt").write_bytes(b"no valid id")
    status = p.wait_for(lambda s: s["done"] == 2, 30, "2 items from the input folder")
    assert status["completed"] == 2
    assert sorted(x.name for x in inbox.iterdir()) == [".partial", ".rejected"]
    assert [x.name for x in (inbox / ".rejected").iterdir()] == ["bad name.txt"]
    ref = reference_run(app, app.root, [("w1", "w1.txt", b"first"), ("w2", "w2.txt", b"second")],
                        tmp_path / "reference")
    assert ref.completed == ["w1", "w2"]
    assert results_tree(p.state_dir / "results") == results_tree(tmp_path / "reference")


def test_home_restart_keeps_its_records_and_results(launch, tmp_path: Path) -> None:
    app = diamond_app(tmp_path / "app")
    p = launch(app)
    for n in range(3):
        assert p.submit(f"r{n}.txt", b"x" * n)[0] == 200
    p.wait_for(lambda s: s["done"] == 3, 30, "3 items")
    p.kill("home")
    p.restart("home")
    status = p.status()
    assert status["submitted"] == 3 and status["completed"] == 3
    code, body = p.submit("r1.txt", b"x")
    assert code == 200 and json.loads(body)["duplicate"] is True
    assert p.submit("r3.txt", b"new")[0] == 200
    assert p.wait_for(lambda s: s["done"] == 4, 30, "the 4th item")["completed"] == 4


PID_TASK = '''
import os


def process(item, inputs):
    if item.startswith("bad"):
        raise RuntimeError("no")
    return {item + ".pid": str(os.getpid()).encode()}
'''


def test_process_executor_runs_task_code_in_worker_processes(launch, tmp_path: Path) -> None:
    from jupiter.app.model import HOME, App, Task

    (tmp_path / "app" / "scripts").mkdir(parents=True)
    (tmp_path / "app" / "scripts" / "pid.py").write_text(PID_TASK)
    app = App(name="pids", root=str(tmp_path / "app"), tasks=(
        Task(name="pid", key="pid", script="scripts/pid.py", children=(HOME,),
             interface="process"),))
    p = launch(app, {"executor": "process", "concurrency": 2, "retries": 1})
    for name in ("a1.bin", "a2.bin", "bad1.bin"):
        assert p.submit(name, b"x")[0] == 200
    status = p.wait_for(lambda s: s["done"] == 3, 60, "3 items")
    assert status["completed"] == 2 and status["failed"] == 1
    assert "RuntimeError: no" in status["failures"][0]["error"]
    server = p.procs["pid"].pid
    pids = {int((p.state_dir / "results" / i / f"{i}.pid").read_text()) for i in ("a1", "a2")}
    assert server not in pids


FILTER = '''
def process(item, inputs):
    if item.startswith("drop"):
        return {}
    (name, data), = inputs.items()
    return {item + ".kept": data}
'''


def test_items_a_task_filters_out_complete_without_results(launch, tmp_path: Path) -> None:
    from jupiter.app.model import HOME, App, Task

    root = tmp_path / "app"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "filter.py").write_text(FILTER)
    (root / "scripts" / "s1.py").write_text(
        "def process(item, inputs):\n    return {k + '.s1': v for k, v in inputs.items()}\n")
    app = App(name="filter", root=str(root), tasks=(
        Task(name="filter", key="filter", script="scripts/filter.py", children=("s1",),
             interface="process"),
        Task(name="s1", key="s1", script="scripts/s1.py", children=(HOME,),
             interface="process")))
    items = [("keep1", "keep1.bin", b"a"), ("drop1", "drop1.bin", b"b")]
    ref = reference_run(app, root, items, tmp_path / "reference")
    assert sorted(ref.completed) == ["drop1", "keep1"] and ref.results == {
        "keep1": ["keep1.kept.s1"]}
    p = launch(app)
    for _, name, data in items:
        assert p.submit(name, data)[0] == 200
    status = p.wait_for(lambda s: s["done"] == 2, 30, "2 items")
    assert status["completed"] == 2
    assert results_tree(p.state_dir / "results") == results_tree(tmp_path / "reference")
    assert p.wait_item("drop1")["files"] == []
    status = p.wait_for(lambda s: s["tasks"]["s1"]["skipped"] == 1, 30, "s1 skipped drop1")


def test_task_whose_code_cannot_load_exits_with_a_clear_error(launch, tmp_path: Path
                                                              ) -> None:
    from jupiter.errors import JupiterError

    app = chain_app(tmp_path / "app", 1)
    (tmp_path / "app" / "scripts" / "s0.py").write_text("import no_such_module_here\n")
    p = launch(app, start=False)
    p.launch("s0")
    with pytest.raises(JupiterError, match="exited with 1"):
        p.wait_ready(["s0"], timeout=60)
    assert "importing" in p.log_tail("s0") and "ModuleNotFoundError" in p.log_tail("s0")
