"""The Ansible side: testbed role and both local-target modules through ansible-playbook."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from local_helpers import Testbeds, free_subnet, leftovers, unique_deployment

from jupiter.local import supervisor

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("netns_required")]

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "local_target.yml"
BIN = Path(sys.executable).parent


def playbook(extra: dict[str, object], *args: str) -> tuple[int, int, str]:
    """Run the test playbook; (return code, changed count, output)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(PLAYBOOK), "-e", json.dumps(extra), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", out)
    return proc.returncode, int(m.group(1)) if m else -1, out


def test_playbook_up_idempotent_check_and_teardown(testbeds: Testbeds, tmp_path: Path) -> None:
    dep = unique_deployment()
    state_dir = tmp_path / "state" / dep
    testbeds.created.append((dep, state_dir))
    extra = {
        "jupiter_deployment": dep,
        "jupiter_state_dir": str(state_dir),
        "testbed_subnet": free_subnet(),
        "local_test_port": 8141,
        "local_test_phase": "up",
    }
    rc, changed, out = playbook(extra)
    assert rc == 0, out
    assert changed >= 2, out
    assert "testbed netns: links shaped" in out
    state = json.loads((state_dir / "testbed.json").read_text())
    edge = state["nodes"][1]["address"]
    with urllib.request.urlopen(f"http://{edge}:8141/", timeout=5) as resp:
        assert resp.status == 200
    pid = {p["name"]: p["pid"] for p in supervisor.status(str(state_dir))["programs"]}["web-edge"]

    rc, changed, out = playbook(extra)
    assert rc == 0 and changed == 0, out
    rc, changed, out = playbook(extra, "--check")
    assert rc == 0 and changed == 0, out
    assert {p["name"]: p["pid"] for p in supervisor.status(str(state_dir))["programs"]} == {
        "web-edge": pid
    }

    rc, changed, out = playbook({**extra, "local_test_phase": "down"}, "--check")
    assert rc == 0 and changed >= 2, out
    assert supervisor.running(str(state_dir))  # check mode changed nothing

    rc, changed, out = playbook({**extra, "local_test_phase": "down"})
    assert rc == 0 and changed >= 2, out
    assert not supervisor.running(str(state_dir))
    assert leftovers(dep) == []
    assert state_dir.is_dir()  # results are kept without jupiter_purge
    rc, changed, out = playbook({**extra, "local_test_phase": "down", "jupiter_purge": True})
    assert rc == 0, out
    assert not state_dir.exists()


def test_module_reports_bad_programs_by_field(testbeds: Testbeds, tmp_path: Path) -> None:
    dep = unique_deployment()
    state_dir = tmp_path / dep
    testbeds.created.append((dep, state_dir))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    args = json.dumps(
        {
            "deployment": dep,
            "state_dir": str(state_dir),
            "group": "web",
            "programs": [{"name": "x", "node": "edge1", "command": []}],
        }
    )
    proc = subprocess.run(
        [str(BIN / "ansible"), "localhost", "-m", "jupiter_local_programs", "-a", args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "programs[0] (x).command" in proc.stdout and "non-empty list" in proc.stdout
