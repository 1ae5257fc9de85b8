"""A slow child pushes back: bounded spools answer 503 + Retry-After instead of growing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from circe_apps import gated_script

from jupiter.app.model import HOME, App, Task
from jupiter.circe.transport import FILES_HEADER, SHA_HEADER, sha256_hex

BOUND = 4
ITEMS = 24

PASS = '''
def process(item, inputs):
    (name, data), = inputs.items()
    return {item + ".s0": data}
'''


def gated_app(root: Path, gate: Path) -> App:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "s0.py").write_text(PASS)
    (root / "scripts" / "s1.py").write_text(gated_script(gate, ".s1"))
    return App(name="gated", root=str(root), tasks=(
        Task(name="s0", key="s0", script="scripts/s0.py", children=("s1",),
             interface="process"),
        Task(name="s1", key="s1", script="scripts/s1.py", children=(HOME,),
             interface="process"),
    ))


def test_slow_child_fills_the_parent_spool_to_its_bound_then_everything_drains(
        launch, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    app = gated_app(tmp_path / "app", gate)
    p = launch(app, {"spool_max_items": BOUND, "retry_after_s": 1, "concurrency": 1})
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(ITEMS):
        (inputs / f"b{n:02d}.txt").write_bytes(f"item {n}".encode())
    submit = subprocess.Popen(
        [sys.executable, "-m", "jupiter.cli", "submit", str(inputs), "--config",
         str(p.config_file), "--parallel", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:  # watch the parent's spool while everything runs
        while not stop.is_set():
            samples.append(p.status("s0")["spool"]["items"])

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        # child, parent and home's outbox all fill up to the bound and stay there
        p.wait_for(lambda s: s["spool"]["items"] == BOUND, 60, "s1's spool full", key="s1")
        p.wait_for(lambda s: s["spool"]["items"] == BOUND, 60, "s0's spool full", key="s0")
        p.wait_for(lambda s: s["outbox"]["items"] == BOUND, 60, "home's outbox full")
        assert p.status("s0")["sender"]["pushbacks"] >= 1
        # a new item offered to the full child or the full parent: 503 + Retry-After
        for target, path in (("s1", "/items/zz/s0/zz.s0"), ("s0", "/items/zz/home/zz.txt")):
            code, headers, _ = p.request(target, path, b"x", method="PUT", headers={
                SHA_HEADER: sha256_hex(b"x"), FILES_HEADER: "1"})
            assert code == 503 and headers.get("Retry-After") == "1"
        assert submit.poll() is None  # the client is held back, not failing
        gate.write_text("open")
        out, err = submit.communicate(timeout=180)
        assert submit.returncode == 0, out + err
        assert f"accepted {ITEMS} item(s)" in out
        status = p.wait_for(lambda s: s["done"] == ITEMS, 120, f"{ITEMS} items at home")
    finally:
        stop.set()
        watcher.join()
        if submit.poll() is None:
            submit.kill()
    assert status["completed"] == ITEMS
    assert max(samples) <= BOUND and BOUND in samples
    for key in ("s0", "s1"):
        st = p.status(key)
        assert st["spool"]["high_items"] <= BOUND and st["spool"]["items"] == 0
    assert p.status()["outbox"]["high_items"] <= BOUND
    assert p.status("s1")["answers"].get("503", 0) >= 1
    results = sorted((p.state_dir / "results").iterdir())
    assert [r.name for r in results] == [f"b{n:02d}" for n in range(ITEMS)]
    assert (results[3] / "b03.s1").read_bytes() == b"ITEM 3"
