"""kill -9 of task processes in the middle of a 1000-item stream: nothing lost, nothing doubled.

The processes run under supervisord (jupiter.local.supervisor, on a loopback-mode testbed
node), which restarts a killed program as it would in a deployment.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Any

from circe_apps import chain_app, results_tree

from jupiter.app.model import HOME
from jupiter.circe.devrun import LocalPipeline
from jupiter.circe.reference import reference_run
from jupiter.circe.submit import submit_files
from jupiter.local import supervisor, testbed
from jupiter.local.spec import NodeSpec, TestbedSpec

ITEMS = 1000


def _program(p: LocalPipeline, key: str) -> dict[str, Any]:
    return {"name": key, "node": "local", "command": p.command(key),
            "ready_url": p.url(key) + "/ready", "autorestart": True}


def _pid(state: Path, key: str) -> int | None:
    group = "circe_home" if key == HOME else "circe"
    for prog in supervisor.status(str(state))["programs"]:
        if prog["name"] == f"{group}-{key}" and prog["state"] == "RUNNING":
            return int(prog["pid"])
    return None


def _kill_and_wait_restart(p: LocalPipeline, state: Path, key: str) -> None:
    old = _pid(state, key)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    # supervisord notices the death and starts the program again; wait for the new one
    p.wait_for(lambda s: s["ready"] and _pid(state, key) not in (None, old), 60,
               f"{key} restarted by supervisord", key=key, interval=0.1)


def test_kill_9_during_a_1000_item_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    deployment = "ck" + secrets.token_hex(3)
    state = tmp_path / "state"
    spec = TestbedSpec(deployment=deployment, nodes=(NodeSpec("local"),))
    _, bed = testbed.apply(spec, str(state), mode="loopback")
    address = bed["nodes"][0]["address"]
    app = chain_app(tmp_path / "app", 3)
    p = LocalPipeline(app, tmp_path / "app", state, host=address,
                      options={"concurrency": 2, "backoff_max_s": 0.5})
    tasks = [_program(p, t.key) for t in app.tasks]
    home = [_program(p, HOME)]
    items = [(f"k{n:04d}", f"k{n:04d}.bin", f"payload {n}".encode() * 8) for n in range(ITEMS)]
    files = tmp_path / "inputs"
    files.mkdir()
    for _, name, data in items:
        (files / name).write_bytes(data)
    report: dict[str, Any] = {}
    try:
        supervisor.apply_group(str(state), deployment, "circe", tasks)
        supervisor.wait_ready(str(state), "circe", tasks, timeout=60)
        supervisor.apply_group(str(state), deployment, "circe_home", home)
        supervisor.wait_ready(str(state), "circe_home", home, timeout=60)

        def feed() -> None:
            report["r"] = asyncio.run(submit_files(
                p.url(HOME), p.token, [(i, files / n) for i, n, _ in items], parallel=4))

        feeder = threading.Thread(target=feed)
        feeder.start()
        p.wait_for(lambda s: s["done"] >= 150, 120, "150 items done")
        _kill_and_wait_restart(p, state, "s1")  # a middle task
        p.wait_for(lambda s: s["done"] >= 500, 120, "500 items done")
        _kill_and_wait_restart(p, state, "s2")  # the sink
        feeder.join(timeout=300)
        assert not feeder.is_alive()
        r = report["r"]
        assert not r.errors and len(r.accepted) == ITEMS
        status = p.wait_for(lambda s: s["done"] == ITEMS, 300, f"{ITEMS} items at home")
        restarts = {k: p.status(k)["spool"] for k in ("s1", "s2")}
    finally:
        supervisor.shutdown(str(state))
        testbed.destroy(deployment, str(state))
    assert status["completed"] == ITEMS and status["failed"] == 0
    # every item arrived exactly once: one result record per item in home's journal
    journal = [json.loads(line) for line in
               (state / "circe" / "home" / "journal.jsonl").read_text().splitlines()]
    results = [r["item"] for r in journal if r["k"] == "result"]
    assert len(results) == ITEMS and len(set(results)) == ITEMS
    ref = reference_run(app, app.root, items, tmp_path / "reference")
    assert len(ref.completed) == ITEMS
    assert results_tree(state / "results") == results_tree(tmp_path / "reference")
    assert all(s["items"] == 0 for s in restarts.values())
