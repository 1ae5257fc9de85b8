"""roles/circe on the local target: real ansible-playbook, supervisord, loopback testbed.

The role writes circe.json, starts the task programs then home with jupiter_local_programs;
a second run changes nothing; the sample diamond app then runs end to end through it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import yaml
from circe_apps import REPO, SAMPLES, results_tree

from jupiter.app.loader import load_app
from jupiter.circe.reference import items_from_dir, reference_run
from jupiter.inventory import Inventory, Node
from jupiter.local import supervisor, testbed
from jupiter.local.spec import NodeSpec, TestbedSpec
from jupiter.values import build_values

BIN = Path(sys.executable).parent


def _playbook(tmp_path: Path, extra: dict) -> Path:
    book = [{
        "name": "CIRCE role on the local target",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": extra,
        "tasks": [{"name": "Start CIRCE", "ansible.builtin.include_role": {
            "name": "circe", "tasks_from": "local.yml"}}],
    }]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(book, sort_keys=False))
    return path


def _first(log: Path, text: str) -> str:
    """Timestamp (sortable text) of the first log line containing ``text``."""
    for line in log.read_text().splitlines():
        if text in line:
            return line[:23]
    raise AssertionError(f"{log}: no line with {text!r}")


def _run(book: Path, vars_file: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_LIBRARY": str(REPO / "library"),
           "ANSIBLE_FILTER_PLUGINS": str(REPO / "filter_plugins"),
           "ANSIBLE_ACTION_PLUGINS": str(REPO / "action_plugins"),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(book), "-e", f"@{vars_file}"],
        capture_output=True, text=True, env=env, timeout=600, cwd=REPO)


def test_role_starts_tasks_then_home_idempotently_and_runs_the_app(tmp_path: Path) -> None:
    deployment = "cr" + secrets.token_hex(3)
    state = tmp_path / "state"
    state.mkdir()
    token = state / "token"
    token.write_text(secrets.token_hex(24))
    token.chmod(0o600)
    app = load_app(SAMPLES / "diamond")
    nodes = (Node("home", "home"), Node("edge1", "worker"), Node("edge2", "worker"))
    inventory = Inventory(nodes=nodes, deployment=deployment).to_dict()
    spec = TestbedSpec(deployment=deployment, nodes=tuple(NodeSpec(n.name) for n in nodes))
    try:
        _, bed = testbed.apply(spec, str(state), mode="loopback")
        addresses = {n["name"]: n["address"] for n in bed["nodes"]}
        mapping = {
            "schema": "jupiter.mapping/v1", "algorithm": "static",
            "mapping": {t.name: ("edge1" if i % 2 else "edge2") for i, t in enumerate(app.tasks)},
            "predicted": {"latency_s": 0.1, "period_s": 0.05, "throughput_per_s": 20.0,
                          "bottleneck": "node edge1"},
            "home": "home", "nodes": ["home", "edge1", "edge2"], "options": {}, "created_at": 0.0,
        }
        values = build_values(inventory, app.to_dict(), mapping, target="local",
                              state_dir=str(state), token_file=str(token), addresses=addresses)
        ports = [t["port"] for t in values["circe"]["tasks"]] + [values["circe"]["home"]["port"]]
        vars_file = tmp_path / "vars.json"
        vars_file.write_text(json.dumps({
            "jupiter_values": values, "jupiter_deployment": deployment,
            "jupiter_state_dir": str(state), "jupiter_bin": str(BIN / "jupiter")}))
        book = _playbook(tmp_path, {})
        first = _run(book, vars_file)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "changed=3" in first.stdout  # config, task programs, home
        config = state / "circe.json"
        assert oct(config.stat().st_mode & 0o777) == "0o600"
        assert json.loads(config.read_text()) == values["circe"]["config"]
        progs = {p["name"]: p for p in supervisor.status(str(state))["programs"]}
        assert {f"circe-{t.key}" for t in app.tasks} | {"circe_home-home"} <= set(progs)
        assert all(progs[n]["state"] in ("RUNNING", "STARTING") for n in progs)
        logs = state / "logs"
        tasks_ready = max(_first(logs / f"circe-{t.key}.log", "loaded from") for t in app.tasks)
        assert _first(logs / "circe_home-home.log", "listening on") >= tasks_ready

        second = _run(book, vars_file)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "changed=0" in second.stdout
        again = {p["name"]: p["pid"] for p in supervisor.status(str(state))["programs"]}
        assert all(again[n] == progs[n]["pid"] for n in again if n.startswith("circe"))

        inputs = SAMPLES / "diamond" / "sample_input"
        sub = subprocess.run([str(BIN / "jupiter"), "submit", str(inputs), "--config",
                              str(config), "--wait", "120"], capture_output=True, text=True,
                             timeout=180)
        assert sub.returncode == 0, sub.stdout + sub.stderr
        ref = reference_run(app, SAMPLES / "diamond", items_from_dir(inputs),
                            tmp_path / "reference")
        assert results_tree(state / "results") == results_tree(tmp_path / "reference")
        assert len(ref.completed) == 4
    finally:
        supervisor.shutdown(str(state))
        testbed.destroy(deployment, str(state))
    assert len(set(ports)) == len(ports)
