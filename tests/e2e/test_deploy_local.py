"""End to end: `ansible-playbook deploy.yml` on the default inventory, then teardown.yml.

Runs the real thing: network namespaces with shaped links, supervisord, DRUPE, WAVE, CIRCE
over HTTP. Needs root and iproute2 (CI runs as root); the loopback variant forces the
non-root mode. Results are compared byte for byte with an in-process reference run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}:{ROOT / '.tools' / 'bin'}:{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env.update(extra)
    return env


def _playbook(playbook: str, extra_vars: dict[str, str], *args: str,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "local"),
           str(ROOT / playbook), "-e", json.dumps(extra_vars), *args]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env or _env(), capture_output=True, text=True,
                          timeout=900, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        print(proc.stdout[-20000:])
        print(proc.stderr[-5000:])
    return proc, elapsed


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _leftovers(deployment: str, state_dir: Path) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found += [f"netns {line.split()[0]}" for line in netns.stdout.splitlines()
              if line.startswith(f"jn-{deployment}")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True)
    found += [f"link {m}" for m in re.findall(r"^\d+: ([^:@]+)", links.stdout, re.M)
              if m.startswith((f"jb-{deployment}", f"jv-{deployment}-"))]
    cg = Path("/sys/fs/cgroup/cpu/jupiter") / deployment
    if cg.exists():
        found.append(f"cgroup {cg}")
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    found += [f"process {line.strip()}" for line in ps.stdout.splitlines()
              if str(state_dir) in line and "ps -eo" not in line]
    return found


def _task_results(output: str, role: str) -> list[tuple[str, str]]:
    """(task name, ok|changed|skipping|failed) of every task of ``role`` in default output."""
    results = []
    for block in re.split(r"^TASK \[", output, flags=re.M)[1:]:
        header, _, body = block.partition("\n")
        if not header.startswith(f"{role} : "):
            continue
        name = header.split(" : ", 1)[1].split("]")[0]
        m = re.search(r"^(ok|changed|skipping|failed|fatal):", body, re.M)
        if m:
            results.append((name, m.group(1)))
    return results


def _run_deploy_and_check(tmp_path: Path, app: str, mode_env: dict[str, str]) -> None:
    deployment = "e2e" + secrets.token_hex(3)
    state_root = tmp_path / "state"
    state_dir = state_root / deployment
    # A subnet of its own, so a deployment of the default inventory may run beside the test.
    subnet = f"10.79.{secrets.randbelow(250) + 1}.0/24"
    extra = {"jupiter_deployment": deployment, "jupiter_state_root": str(state_root),
             "jupiter_app": app, "testbed_subnet": subnet}
    env = _env(**mode_env)
    try:
        proc, deploy_s = _playbook("deploy.yml", extra, env=env)
        assert proc.returncode == 0, "deploy.yml failed (output above)"
        out = proc.stdout
        assert "predicted" in out and "measured" in out, "report missing from deploy output"
        summary = json.loads((state_dir / "report.json").read_text())
        print(f"[e2e] {app}: deploy.yml {deploy_s:.1f}s; first result "
              f"{summary['first_result_s']:.1f}s, last result {summary['last_result_s']:.1f}s "
              "after deploy.yml start (from report.json)")
        assert summary["items_completed"] == summary["items_submitted"] > 0
        assert summary["items_failed"] == 0
        assert Path(summary["picture"]).is_file()
        # the profile the mapping was computed from is kept beside it (profile.json moves on)
        mapping = json.loads((state_dir / "mapping.json").read_text())
        used = json.loads((state_dir / "mapping-profile.json").read_text())
        assert used["generated_at"] == mapping["created_at"] and used["exec"]
        # the wave role's documented defaults reach the scheduler
        assert mapping["options"]["item_quota_share"] == 0.8

        # Links wait both ends' jupiter_delay_ms (netns mode), and DRUPE measured it.
        testbed_state = json.loads((state_dir / "testbed.json").read_text())
        delays = {n["name"]: n["delay_ms"] for n in testbed_state["nodes"]}
        assert testbed_state["latency_emulated"] is (testbed_state["mode"] == "netns")
        profile = json.loads((state_dir / "profile.json").read_text())
        for src, row in profile["links"].items():
            for dst, link in row.items():
                if testbed_state["latency_emulated"]:
                    assert link["latency_s"] >= (delays[src] + delays[dst]) / 1000, (src, dst)

        # Every result byte-equal to an in-process reference run on the same inputs.
        app_dir = ROOT / "task_specific_files" / app
        ref = tmp_path / "reference"
        subprocess.run([str(BIN / "jupiter"), "circe", "reference", str(app_dir),
                        str(app_dir / "sample_input"), str(ref)], check=True, env=env)
        got = _tree(state_dir / "results")
        want = _tree(ref)
        assert got.keys() == want.keys()
        assert got == want

        # A second deploy.yml changes nothing in the testbed.
        proc2, _ = _playbook("deploy.yml", extra, env=env)
        assert proc2.returncode == 0
        testbed = _task_results(proc2.stdout, "testbed")
        assert testbed, "no testbed tasks found in the second run"
        changed = [name for name, status in testbed if status == "changed"]
        assert changed == [], f"testbed changed on the second run: {changed}"

        # The report stage runs on its own (it reads the stored mapping); the sample items
        # are done already, so home acknowledges them and the report says why it is empty.
        proc_report, _ = _playbook("deploy.yml", extra, "--tags", "report", env=env)
        assert proc_report.returncode == 0, "deploy.yml --tags report failed (output above)"
        assert "fed were done by an earlier run" in proc_report.stdout
        circe_ran = [name for name, _ in _task_results(proc_report.stdout, "circe")
                     if not name.startswith("Validating arguments")]  # every role checks
        assert circe_ran == [], f"--tags report ran CIRCE tasks: {circe_ran}"
    finally:
        proc3, teardown_s = _playbook("teardown.yml", extra, env=env)
        print(f"[e2e] {app}: teardown.yml {teardown_s:.1f}s")
    assert proc3.returncode == 0
    assert _leftovers(deployment, state_dir) == []
    assert (state_dir / "results").is_dir(), "results must survive teardown without purge"
    proc4, _ = _playbook("teardown.yml", {**extra, "jupiter_purge": "true"}, env=env)
    assert proc4.returncode == 0
    assert not state_dir.exists()


@pytest.mark.root
def test_deploy_network_monitoring_app_on_shaped_testbed(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the shaped testbed needs root (CI runs as root)"
    _run_deploy_and_check(tmp_path, "network_monitoring_app", {})


def test_deploy_diamond_on_loopback_testbed(tmp_path: Path) -> None:
    _run_deploy_and_check(tmp_path, "diamond", {"JUPITER_LOCAL_MODE": "loopback"})
