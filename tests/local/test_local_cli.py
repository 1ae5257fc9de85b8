"""The `jupiter testbed ...` and `jupiter status` commands, run as real processes."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from local_helpers import PYTHON, Testbeds, free_subnet, leftovers, unique_deployment

from jupiter.local import supervisor

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("netns_required")]


def jupiter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "jupiter.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def circe_home() -> Iterator[tuple[str, str]]:
    """A stand-in CIRCE home: /status behind a bearer token, real HTTP on loopback."""
    token = "s3cret-token"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps(
                {"app": "demo", "items": {"done": 7, "total": 10}, "running": True}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", token
    finally:
        server.shutdown()
        server.server_close()


def test_testbed_commands_and_status(
    testbeds: Testbeds, tmp_path: Path, circe_home: tuple[str, str]
) -> None:
    dep = unique_deployment()
    state_dir = tmp_path / dep
    testbeds.created.append((dep, state_dir))  # cleanup even if a step fails
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "deployment": dep,
                "subnet": free_subnet(),
                "nodes": [{"name": "home", "cpu_share": 1}, {"name": "edge1", "cpu_share": 0.5}],
                "links": [{"src": "home", "dst": "edge1", "mbit": 20}],
            }
        )
    )
    up = jupiter("testbed", "up", "--spec", str(spec), "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stderr
    assert f"testbed {dep}: changed (mode netns)" in up.stdout
    again = jupiter("testbed", "up", "--spec", str(spec), "--state-dir", str(state_dir))
    assert f"testbed {dep}: unchanged" in again.stdout
    st = jupiter("testbed", "status", "--state-dir", str(state_dir), "--json")
    assert st.returncode == 0, st.stdout + st.stderr
    data = json.loads(st.stdout)
    assert data["present"] and data["drift"] == [] and data["deployment"] == dep

    # a program, a mapping and a CIRCE home with progress for `jupiter status`
    url, token = circe_home
    (state_dir / "token").write_text(token + "\n")
    (state_dir / "mapping.json").write_text(
        json.dumps({"mapping": {"task0": "edge1", "task1": "home"}, "algorithm": "heft"})
    )
    (state_dir / "endpoints.json").write_text(
        json.dumps({"circe": {"home": url}, "drupe": {"home": "http://127.0.0.1:9/"}})
    )
    prog = {"name": "sleeper", "node": "edge1", "command": ["sleep", "600"]}
    supervisor.apply_group(str(state_dir), dep, "demo", [prog])
    out = jupiter("status", "--state-dir", str(state_dir))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for needle in (
        f"deployment {dep}",
        "testbed: mode netns, shaped; cgroups on",
        "home -> edge1: 20 Mbit/s",
        "demo-sleeper",
        "node edge1",
        "task0 -> edge1",
        "items: 7/10",
        "drupe http://127.0.0.1:9/status: unreachable",
    ):
        assert needle in text, f"{needle!r} missing from:\n{text}"
    report = json.loads(jupiter("status", "--state-dir", str(state_dir), "--json").stdout)
    assert report["services"]["circe"]["status"]["items"] == {"done": 7, "total": 10}
    assert report["supervisor"]["programs"][0]["state"] in ("STARTING", "RUNNING")

    stop = jupiter("local", "programs", "stop", "--state-dir", str(state_dir))
    assert "supervisord stopped" in stop.stdout
    down = jupiter("testbed", "down", "--deployment", dep, "--state-dir", str(state_dir))
    assert down.returncode == 0 and "removed" in down.stdout
    assert leftovers(dep) == []
    gone = jupiter("testbed", "status", "--deployment", dep, "--state-dir", str(state_dir))
    assert gone.returncode == 3 and "testbed: none" in gone.stdout


def test_bad_spec_file_is_reported_with_file_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"deployment": "x", "nodes": [{"name": "a", "cpu_share": "lots"}]}))
    out = jupiter("testbed", "up", "--spec", str(spec), "--state-dir", str(tmp_path / "s"))
    assert out.returncode == 1
    assert f"{spec} [nodes[0].cpu_share]: 'lots' is not a number" in out.stderr
    spec.write_text("{not json")
    out = jupiter("testbed", "up", "--spec", str(spec))
    assert out.returncode == 1 and f"{spec}:1" in out.stderr
