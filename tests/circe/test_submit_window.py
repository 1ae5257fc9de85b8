"""``jupiter submit --window K``: a closed-loop source, at most K items in flight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from circe_apps import gated_script

from jupiter.app.model import HOME, App, Task

WINDOW = 3
ITEMS = 12


def gated_app(root: Path, gate: Path) -> App:
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "gated.py").write_text(gated_script(gate, ".out"))
    return App(name="gated", root=str(root), tasks=(
        Task(name="gated", key="gated", script="scripts/gated.py", children=(HOME,),
             interface="process"),
    ))


def _submit(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "jupiter.cli", "submit", "--config",
                             str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_window_keeps_at_most_k_items_in_flight_and_fills_it(launch, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    p = launch(gated_app(tmp_path / "app", gate), {"concurrency": 4})
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(ITEMS):
        (inputs / f"w{n:02d}.txt").write_bytes(f"item {n}".encode())
    submit = _submit(p.config_file, str(inputs), "--window", str(WINDOW), "--wait", "120")
    try:
        # the gate is shut: the window fills (K submitted at once, not one at a time) and
        # the client holds the rest back while the K are in flight
        p.wait_for(lambda s: s["submitted"] == WINDOW, 60, f"{WINDOW} items submitted")
        assert submit.poll() is None
        gate.write_text("open")
        out, err = submit.communicate(timeout=180)
    finally:
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 0, out + err
    assert f"accepted {ITEMS} item(s)" in out
    records = []
    for n in range(ITEMS):
        code, _, body = p.request(HOME, f"/results/w{n:02d}")
        assert code == 200
        records.append(json.loads(body))
    assert all(r["status"] == "completed" for r in records)
    # home's own clock: when each item came in, at most K items (it included) were in flight
    in_flight = [sum(1 for o in records if o["submitted"] <= r["submitted"] < o["completed"])
                 for r in records]
    assert max(in_flight) == WINDOW, in_flight
    results = p.state_dir / "results"
    assert (results / "w07" / "w07.out").read_bytes() == b"ITEM 7"


def test_a_window_below_one_is_refused_before_anything_is_sent(launch, tmp_path: Path) -> None:
    p = launch(gated_app(tmp_path / "app", tmp_path / "gate"))
    (tmp_path / "one.txt").write_bytes(b"x")
    submit = _submit(p.config_file, str(tmp_path / "one.txt"), "--window", "0")
    _, err = submit.communicate(timeout=60)
    assert submit.returncode != 0
    assert "--window must be at least 1 item in flight, got 0" in err
    assert p.status()["submitted"] == 0
