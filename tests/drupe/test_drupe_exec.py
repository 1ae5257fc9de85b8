"""Execution profiler on tiny apps made in tmp_path (legacy and process interfaces)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from drupe_helpers import Cluster, make_config, wait_until

from jupiter.app.loader import load_app
from jupiter.drupe import execprof
from jupiter.drupe.execprof import (
    exec_digest,
    exec_document,
    item_of,
    profile_app,
    route,
    scale_exec,
)
from jupiter.drupe.taskrun import TaskFailed, load_task
from jupiter.errors import JupiterError
from jupiter.profile import ExecProfile, NodeProfile, Profile

SAMPLE = "alpha beta gamma\ndelta\n"

LEGACY = {
    "configuration.txt": """\
        4
        split 1 false left right
        left 1 true join
        right 1 true join
        join 2 true home
        """,
    # split: two parts, named so that sorted order = (left, right)
    "scripts/split.py": """\
        import os

        def task(filename, pathin, pathout):
            prefix = filename[: filename.index("data")]
            text = open(os.path.join(pathin, filename)).read()
            half = len(text) // 2
            open(pathout + prefix + "part_a.txt", "w").write(text[:half])
            open(pathout + prefix + "part_b.txt", "w").write(text[half:])
        """,
    "scripts/left.py": """\
        import os

        def task(filename, pathin, pathout):
            assert filename.endswith("part_a.txt"), filename
            prefix = filename[: filename.index("part")]
            data = open(os.path.join(pathin, filename)).read().upper()
            open(os.path.join(pathout, prefix + "upper.txt"), "w").write(data)
            return [prefix + "upper.txt"]
        """,
    "scripts/right.py": """\
        import os

        def task(filename, pathin, pathout):
            assert filename.endswith("part_b.txt"), filename
            prefix = filename[: filename.index("part")]
            data = open(os.path.join(pathin, filename)).read()[::-1] * 2
            open(os.path.join(pathout, prefix + "reversed.txt"), "w").write(data)
        """,
    "scripts/join.py": """\
        import os

        def task(filenames, pathin, pathout):
            assert isinstance(filenames, list) and len(filenames) == 2, filenames
            prefix = filenames[0][: filenames[0].index("upper")]
            parts = [open(os.path.join(pathin, f)).read() for f in sorted(filenames)]
            open(os.path.join(pathout, prefix + "joined.txt"), "w").write("|".join(parts))
        """,
    "sample_input/1data.txt": SAMPLE,
}


def make_app(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def legacy_app(tmp_path: Path) -> Path:
    return make_app(tmp_path / "tinyapp", LEGACY)


def test_profile_legacy_app_in_topological_order(legacy_app: Path) -> None:
    app = load_app(legacy_app)
    lines: list[str] = []
    pauses: list[float] = []
    res = profile_app(app, sample=legacy_app / "sample_input" / "1data.txt", repeat=3,
                      idle_s=0.25, progress=lines.append, pause=pauses.append)
    assert list(res) == ["split", "left", "right", "join"]
    half = len(SAMPLE) // 2
    assert res["split"].output_bytes == len(SAMPLE)
    assert res["split"].outputs == ["1part_a.txt", "1part_b.txt"]
    assert res["left"].output_bytes == half and res["left"].outputs == ["1upper.txt"]
    assert res["right"].output_bytes == 2 * (len(SAMPLE) - half)
    assert res["join"].output_bytes == half + 2 * (len(SAMPLE) - half) + 1
    # back to back, then three rounds of every task once, each round after the idle pause
    assert pauses == [0.25, 0.25, 0.25]
    for r in res.values():
        assert len(r.runs) == 3 and r.warm_seconds == sorted(r.runs)[1] > 0
        assert len(r.idle_runs) == 3 and r.seconds == sorted(r.idle_runs)[1] > 0
    assert [line.split(":")[0] for line in lines] == [
        "round 1/3", "round 2/3", "round 3/3", "split", "left", "right", "join"]
    assert "after idle" in lines[3] and "back to back (medians of 3)" in lines[3]
    doc = exec_document({"edge1": {t: r.to_exec() for t, r in res.items()}})
    prof = Profile.from_dict(doc)
    assert prof.exec["join"]["edge1"].output_bytes == res["join"].output_bytes
    assert prof.exec["join"]["edge1"].seconds == res["join"].seconds
    assert prof.exec["join"]["edge1"].warm_seconds == res["join"].warm_seconds


def test_without_idle_the_runs_are_back_to_back_only(legacy_app: Path) -> None:
    pauses: list[float] = []
    res = profile_app(load_app(legacy_app), sample=legacy_app / "sample_input" / "1data.txt",
                      repeat=3, idle_s=0, pause=pauses.append)
    assert pauses == []
    assert all(r.idle_runs == [] and r.seconds == r.warm_seconds for r in res.values())
    with pytest.raises(JupiterError, match="--idle must be between 0 and 60"):
        profile_app(load_app(legacy_app), sample=legacy_app / "sample_input" / "1data.txt",
                    idle_s=-1)



def test_input_bytes_are_what_each_task_received(legacy_app: Path) -> None:
    sample = legacy_app / "sample_input" / "1data.txt"
    res = profile_app(load_app(legacy_app), sample=sample, repeat=1)
    assert res["split"].input_bytes == sample.stat().st_size  # ingress: the sample file
    # split routes part_a to left, part_b to right; join gets both of their outputs
    assert res["left"].input_bytes == len(SAMPLE) // 2
    assert res["right"].input_bytes == len(SAMPLE) - len(SAMPLE) // 2
    assert res["join"].input_bytes == res["left"].output_bytes + res["right"].output_bytes
    doc = exec_document({"edge1": {t: r.to_exec() for t, r in res.items()}})
    prof = Profile.from_dict(json.loads(json.dumps(doc)))
    assert {t: prof.exec[t]["edge1"].input_bytes for t in res} == {
        t: r.input_bytes for t, r in res.items()}
    # the scaled estimate copies them
    prof.nodes = {"edge1": NodeProfile(speed=1.0), "edge2": NodeProfile(speed=0.5)}
    scaled = scale_exec(prof, "edge1", "edge2")
    assert scaled["join"].input_bytes == res["join"].input_bytes
    assert scaled["join"].warm_seconds == pytest.approx(2 * res["join"].warm_seconds)


def test_process_interface_app(tmp_path: Path) -> None:
    root = make_app(tmp_path / "papp", {
        "app.yaml": """\
            name: papp
            interface: process
            sample_input: sample_input
            tasks:
              - name: words
                children: [count]
              - name: count
                args: ["--scale", "3"]
                children: [home]
            """,
        "scripts/words.py": """\
            def process(item, inputs):
                (data,) = inputs.values()
                return {item + "-words.txt": b"\\n".join(data.split())}
            """,
        "scripts/count.py": """\
            import sys

            def process(item, inputs):
                scale = int(sys.argv[sys.argv.index("--scale") + 1])
                n = sum(len(v.split()) for v in inputs.values())
                return {item + "-count.txt": str(n * scale).encode()}
            """,
        "sample_input/7text.txt": "a b c d e",
    })
    res = profile_app(load_app(root), sample=root / "sample_input" / "7text.txt", repeat=1)
    assert res["words"].outputs == ["7-words.txt"] and res["words"].output_bytes == 9
    assert res["count"].outputs == ["7-count.txt"] and res["count"].output_bytes == 2  # "15"


def test_task_errors_name_the_task_and_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def task(f, i, o):\n    raise RuntimeError('boom')\n")
    runner = load_task(bad, name="bad")
    with pytest.raises(TaskFailed, match=r"task 'bad' .*bad.py.*RuntimeError: boom"):
        runner.run("1", {"1x": b"x"})
    with pytest.raises(JupiterError, match=r"defines no process\(item, inputs\)"):
        load_task(bad, name="bad", interface="process")
    with pytest.raises(JupiterError, match="not found"):
        load_task(tmp_path / "missing.py", name="m")
    (tmp_path / "syntax.py").write_text("def task(:\n")
    with pytest.raises(JupiterError, match=r"importing .*syntax\.py failed"):
        load_task(tmp_path / "syntax.py", name="s")
    (tmp_path / "wrong.py").write_text("def process(item, inputs):\n    return 'text'\n")
    with pytest.raises(TaskFailed, match="dict"):
        load_task(tmp_path / "wrong.py", name="w", interface="process").run("1", {})


def test_missing_parent_output_is_explained(legacy_app: Path) -> None:
    (legacy_app / "scripts" / "left.py").write_text("def task(f, i, o):\n    return None\n")
    with pytest.raises(JupiterError, match=r"task 'join' takes 2 input\(s\).*1 file"):
        profile_app(load_app(legacy_app), sample=legacy_app / "sample_input" / "1data.txt",
                    repeat=1)


def test_route_and_item() -> None:
    from jupiter.app.model import Task

    t = Task(name="s", key="s", script="s.py", mode="split", children=("a", "b"))
    assert route(t, {"2y": b"2", "1x": b"1"}) == {"a": {"1x": b"1"}, "b": {"2y": b"2"}}
    t2 = Task(name="s", key="s", script="s.py", mode="broadcast", children=("a", "b"))
    assert route(t2, {"x": b"1"}) == {"a": {"x": b"1"}, "b": {"x": b"1"}}
    assert item_of("12botnet.ipsum") == "12" and item_of("text.txt") == "text"


def test_scale_exec_by_speed() -> None:
    prof = Profile(nodes={"fast": NodeProfile(speed=1.0), "slow": NodeProfile(speed=0.25)},
                   exec={"t": {"fast": ExecProfile(seconds=0.1, output_bytes=10)}})
    scaled = scale_exec(prof, "fast", "slow")
    assert scaled["t"].seconds == pytest.approx(0.4) and scaled["t"].output_bytes == 10
    with pytest.raises(JupiterError, match="no execution profile on reference node 'slow'"):
        scale_exec(prof, "slow", "fast")
    with pytest.raises(JupiterError, match="'ghost' has no resource profile"):
        scale_exec(prof, "fast", "ghost")


async def _jupiter(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jupiter.cli", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_cli_exec_posts_to_home_and_scales(tmp_path: Path, legacy_app: Path) -> None:
    cfg, _ = make_config(tmp_path, ["home", "edge1"], base_ip=130)
    conf = str(tmp_path / "drupe.json")
    c = Cluster(cfg)
    await c.start_home()
    try:
        for n in cfg.nodes:
            await c.start_agent(n)

        async def complete() -> bool:
            return bool((await c.status())["complete"])

        await wait_until(complete, 60, "complete", c.status)
        out = tmp_path / "exec-home.json"
        code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "home",
                                   "--out", str(out), "--repeat", "2", "--config", conf, "--post")
        assert code == 0, log
        assert "home merged 4 entries" in log
        assert set(json.loads(out.read_text())["exec"]) == {"split", "left", "right", "join"}
        # home merged it and published it (before answering)
        on_disk = Profile.from_dict(json.loads(cfg.profile_path.read_text()))
        assert set(on_disk.exec["join"]) == {"home"} and on_disk.complete
        # the cheap mode: edge1 estimated from home's run by CPU speed, via home's profile
        code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "edge1",
                                   "--out", str(tmp_path / "exec-edge1.json"),
                                   "--scale-from", "home", "--config", conf, "--post")
        assert code == 0, log
        prof = Profile.from_dict((await c.get("/profile"))[1])
        ratio = prof.nodes["home"].speed / prof.nodes["edge1"].speed
        for t in ("split", "left", "right", "join"):
            assert prof.exec[t]["edge1"].seconds == pytest.approx(
                prof.exec[t]["home"].seconds * ratio)
        # --only-missing: nothing to do once home has every task for the node
        code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "home",
                                   "--out", str(tmp_path / "again.json"), "--config", conf,
                                   "--post", "--only-missing")
        assert code == 0 and "home: up to date (all 4 tasks profiled)" in log, log
        assert not (tmp_path / "again.json").exists()
        digest = prof.exec["join"]["home"].digest
        assert len(digest) == 16 and prof.exec["join"]["edge1"].digest == digest
        # the user edits a task: the entries were made from other code, so they are redone
        script = legacy_app / "scripts" / "right.py"
        script.write_text(script.read_text() + "\n# tuned\n")
        code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "home",
                                   "--out", str(tmp_path / "again.json"), "--config", conf,
                                   "--post", "--only-missing")
        assert code == 0 and "4 of 4 tasks missing or profiled from other code" in log, log
        assert "home merged 4 entries" in log
        prof = Profile.from_dict((await c.get("/profile"))[1])
        assert prof.exec["join"]["home"].digest not in ("", digest)
        # ...and the scaled node follows its reference
        code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "edge1",
                                   "--out", str(tmp_path / "exec-edge1.json"),
                                   "--scale-from", "home", "--config", conf, "--post",
                                   "--only-missing")
        assert code == 0 and "edge1: home merged 4 entries" in log, log
        prof = Profile.from_dict((await c.get("/profile"))[1])
        assert prof.exec["join"]["edge1"].digest == prof.exec["join"]["home"].digest
        # a restarted home keeps the exec profile it was given
        await c.home.stop()
        c2 = Cluster(cfg)
        await c2.start_home()
        try:
            prof2 = Profile.from_dict((await c2.get("/profile"))[1])
            assert set(prof2.exec["split"]) == {"home", "edge1"}
        finally:
            await c2.stop()
    finally:
        await c.stop()


async def test_cli_exec_errors(tmp_path: Path, legacy_app: Path) -> None:
    code, log = await _jupiter("drupe", "exec", "--app", str(tmp_path / "nope"), "--node", "x",
                               "--out", str(tmp_path / "o.json"))
    assert code == 1 and "app folder not found" in log
    code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "x",
                               "--out", str(tmp_path / "o.json"), "--post")
    assert code == 1 and "--post needs --config" in log
    code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "x",
                               "--out", str(tmp_path / "o.json"), "--input",
                               str(tmp_path / "missing.txt"))
    assert code == 1 and "missing.txt: no such file" in log


async def test_cli_exec_input_relative_to_the_app_folder(tmp_path: Path, legacy_app: Path
                                                        ) -> None:
    (legacy_app / "big").mkdir()
    (legacy_app / "big" / "2data.txt").write_text(SAMPLE * 4, encoding="utf-8")
    out = tmp_path / "o.json"
    code, log = await _jupiter("drupe", "exec", "--app", str(legacy_app), "--node", "n1",
                               "--out", str(out), "--repeat", "1", "--input", "big/2data.txt")
    assert code == 0, log
    prof = Profile.from_dict(json.loads(out.read_text()))
    assert prof.exec["split"]["n1"].output_bytes == 4 * len(SAMPLE)  # the bigger input's


def test_exec_digest_follows_the_code_and_the_sample_not_other_inputs(
        legacy_app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = load_app(legacy_app)
    sample = legacy_app / "sample_input" / "1data.txt"
    d = exec_digest(app, sample)
    assert len(d) == 16 and d == exec_digest(app, sample)
    (legacy_app / "sample_input" / "2data.txt").write_text("another input\n")
    (legacy_app / "scripts" / "__pycache__").mkdir()
    (legacy_app / "scripts" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert exec_digest(app, sample) == d  # other inputs and byte code do not count
    other = legacy_app / "sample_input" / "2data.txt"
    assert exec_digest(app, other) != d  # another sample does
    (legacy_app / "scripts" / "helper.py").write_text("X = 1\n")
    d2 = exec_digest(app, sample)
    assert d2 != d  # and so does any code of the app
    assert exec_digest(app, sample, idle_s=0.25) != d2  # and how long the profiler idles
    monkeypatch.setattr(execprof, "METHOD", "exec/1")
    assert exec_digest(app, sample) != d2  # and entries an older profiler made


def test_idle_runs_happen_each_in_a_process_of_its_own(tmp_path: Path) -> None:
    """After the pause, every task runs in its own waiting process (as in CIRCE), so each pays
    its own wake-up; the back-to-back runs stay in the profiler's process."""
    log = tmp_path / "pids.txt"
    files = {**LEGACY}
    for name in ("split", "left", "right", "join"):
        files[f"scripts/{name}.py"] = LEGACY[f"scripts/{name}.py"].replace(
            "        def task(",
            f"        def _log():\n"
            f"            with open({str(log)!r}, 'a') as fh:\n"
            f"                fh.write('{name} ' + str(os.getpid()) + chr(10))\n\n"
            f"        def task(", 1).replace("pathout):\n", "pathout):\n            _log()\n", 1)
    app = make_app(tmp_path / "pidapp", files)
    res = profile_app(load_app(app), sample=app / "sample_input" / "1data.txt", repeat=2,
                      idle_s=0.01)
    assert all(len(r.runs) == 2 and len(r.idle_runs) == 2 for r in res.values())
    rows = [line.split() for line in log.read_text().splitlines()]
    back_to_back, idle = rows[:8], rows[8:]
    assert {pid for _, pid in back_to_back} == {str(os.getpid())}
    assert [t for t, _ in idle] == ["split", "left", "right", "join"] * 2
    pids = {t: {pid for tt, pid in idle if tt == t} for t in ("split", "left", "right", "join")}
    assert all(len(p) == 1 for p in pids.values())  # one process per task, both rounds
    assert len(set.union(*pids.values()) | {str(os.getpid())}) == 5


def test_a_task_failing_in_its_idle_run_is_named(tmp_path: Path) -> None:
    files = {**LEGACY, "scripts/right.py": LEGACY["scripts/right.py"].replace(
        "        def task(filename, pathin, pathout):\n",
        "        RUNS = []\n\n        def task(filename, pathin, pathout):\n"
        "            RUNS.append(1)\n"
        "            if len(RUNS) > 2:\n"
        "                raise RuntimeError('tired after two runs')\n", 1)}
    app = make_app(tmp_path / "tired", files)
    with pytest.raises(TaskFailed, match=r"'right'.*tired after two runs"):
        profile_app(load_app(app), sample=app / "sample_input" / "1data.txt", repeat=2,
                    idle_s=0.01)
