"""``jupiter schedule`` and ``jupiter wave serve`` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from wave_helpers import dnad_app, dnad_profile

from jupiter.app.loader import load_app
from jupiter.wave import schedule
from jupiter.wave.config import build_config

JUPITER = str(Path(sys.executable).parent / "jupiter")
TOKEN = "cli-token"

LEGACY_CONFIG = """14
local_pro 1 false aggregate0 aggregate1 aggregate2
aggregate0 1 true simple_detector0 astute_detector0
aggregate1 1 true simple_detector1 astute_detector1
aggregate2 1 true simple_detector2 astute_detector2
simple_detector0 1 true fusion_center0
simple_detector1 1 true fusion_center1
simple_detector2 1 true fusion_center2
astute_detector0 1 true fusion_center0
astute_detector1 1 true fusion_center1
astute_detector2 1 true fusion_center2
fusion_center0 2 true global_fusion
fusion_center1 2 true global_fusion
fusion_center2 2 true global_fusion
global_fusion 3 true home
"""
TASK_CODE = '''import os
import shutil


def task(filename, pathin, pathout):
    names = filename if isinstance(filename, list) else [filename]
    for name in names:
        shutil.copy(os.path.join(pathin, name), os.path.join(pathout, name))
'''


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JUPITER, *args], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    app_dir = tmp_path / "dnad"
    (app_dir / "scripts").mkdir(parents=True)
    (app_dir / "configuration.txt").write_text(LEGACY_CONFIG)
    for t in dnad_app().tasks:
        (app_dir / "scripts" / f"{t.name}.py").write_text(TASK_CODE)
    (app_dir / "sample_input").mkdir()
    (app_dir / "sample_input" / "1botnet.ipsum").write_bytes(b"x" * 3000)
    (app_dir / "sample_input" / "2botnet.ipsum").write_bytes(b"x" * 5000)
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(dnad_profile().to_dict(), indent=1))
    app_json = tmp_path / "app.json"
    app_json.write_text(json.dumps(dnad_app().to_dict()))
    return {"app": app_dir, "profile": profile, "app_json": app_json, "tmp": tmp_path}


def test_schedule_prints_a_table(files):
    r = run("schedule", str(files["app"]), "--profile", str(files["profile"]),
            "--algorithm", "heft")
    assert r.returncode == 0, r.stderr
    for t in dnad_app().tasks:
        assert t.name in r.stdout
    for word in ("algorithm heft", "latency", "period", "throughput", "bottleneck"):
        assert word in r.stdout


def test_schedule_json_is_the_mapping_contract(files):
    r = run("schedule", str(files["app"]), "--profile", str(files["profile"]),
            "--algorithm", "stream", "--nodes", "edge1,edge2,pi1", "--json")
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["schema"] == "jupiter.mapping/v1"
    assert m["algorithm"] == "stream"
    assert set(m["mapping"]) == {t.name for t in dnad_app().tasks}
    assert set(m["mapping"].values()) <= {"edge1", "edge2", "pi1"}
    assert m["home"] == "home"
    assert m["options"]["input_bytes"] == 4000  # mean size of the sample inputs
    assert m["predicted"]["latency_s"] > 0 and m["predicted"]["throughput_per_s"] > 0
    # the same numbers as the library gives for the loaded app
    lib = schedule(load_app(files["app"]), dnad_profile(), ["edge1", "edge2", "pi1"],
                   algorithm="stream", input_bytes=4000, home="home", use_home=False)
    assert m["mapping"] == lib.mapping
    assert m["predicted"]["latency_s"] == pytest.approx(lib.latency_s)


def test_schedule_accepts_an_app_json_file(files):
    r = run("schedule", str(files["app_json"]), "--profile", str(files["profile"]),
            "--algorithm", "random", "--seed", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["options"]["seed"] == 3


def test_bad_profile_json_names_file_and_line(files):
    bad = files["tmp"] / "bad.json"
    bad.write_text('{\n "schema": "jupiter.profile/v1",\n "nodes": {,}\n}')
    r = run("schedule", str(files["app"]), "--profile", str(bad))
    assert r.returncode == 1
    assert f"{bad}:3" in r.stderr


def test_profile_without_a_requested_node_names_the_field(files):
    r = run("schedule", str(files["app"]), "--profile", str(files["profile"]),
            "--nodes", "edge1,ghost")
    assert r.returncode == 1
    assert f"{files['profile']} [nodes.ghost]" in r.stderr


def test_wrong_profile_field_is_named(files):
    data = json.loads(files["profile"].read_text())
    data["links"]["edge1"]["edge2"]["bandwidth_bps"] = 0
    files["profile"].write_text(json.dumps(data))
    r = run("schedule", str(files["app"]), "--profile", str(files["profile"]))
    assert r.returncode == 1
    assert "links.edge1.edge2" in r.stderr and str(files["profile"]) in r.stderr


def test_missing_files_are_named(files):
    r = run("schedule", str(files["app"]), "--profile", str(files["tmp"] / "nope.json"))
    assert r.returncode == 1 and "nope.json" in r.stderr
    r = run("schedule", str(files["tmp"] / "noapp"), "--profile", str(files["profile"]))
    assert r.returncode == 1 and "noapp" in r.stderr


def test_static_mapping_file_errors_name_the_file(files):
    mapping = files["tmp"] / "mapping.json"
    mapping.write_text(json.dumps({t.name: "mars" for t in dnad_app().tasks}))
    r = run("schedule", str(files["app"]), "--profile", str(files["profile"]),
            "--algorithm", "static", "--mapping", str(mapping))
    assert r.returncode == 1
    assert f"{mapping} [mapping.local_pro]" in r.stderr and "mars" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_wave_serve_runs_until_terminated(files):
    tmp = files["tmp"]
    (tmp / "token").write_text(TOKEN)
    mapping = schedule(dnad_app(), dnad_profile(), algorithm="heft")
    config = build_config(app=dnad_app().to_dict(), mapping=mapping.to_dict(),
                          profile_url=None, token_file=str(tmp / "token"),
                          state_dir=str(tmp / "state"), options={})
    (tmp / "wave.json").write_text(json.dumps(config))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([JUPITER, "wave", "serve", "--config", str(tmp / "wave.json"),
                             "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = _get(f"{base}/ready")
            except OSError:  # not listening yet
                status = None
            if status == 200:
                break
            time.sleep(0.05)  # poll interval of the readiness wait, not a synchronisation
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "not ready"
        code, body = _get(f"{base}/mapping", TOKEN)
        assert code == 200 and json.loads(body) == mapping.to_dict()
        assert _get(f"{base}/mapping")[0] == 401
        assert json.loads((tmp / "state" / "mapping.json").read_text()) == mapping.to_dict()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "wave: listening on 127.0.0.1" in err


def test_wave_serve_with_a_bad_config_fails_clearly(files):
    cfg = files["tmp"] / "wave.json"
    cfg.write_text(json.dumps({"schema": "jupiter.wave.config/v1"}))
    r = run("wave", "serve", "--config", str(cfg))
    assert r.returncode == 1
    assert f"{cfg} [app]" in r.stderr and "[mapping]" in r.stderr
