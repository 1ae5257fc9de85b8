"""The charts' inline Python, run for real against real HTTP servers: the ``helm test``
check of the test pods, and the init container of the DRUPE execution profiler Jobs that
waits until DRUPE home reports a complete profile."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from charts_helpers import by_kind, deployment_values, template, values_for

TOKEN = "test-token-123"


def _script() -> str:
    objects = template("wave", values_for(deployment_values("diamond"), "wave"))
    (pod,) = by_kind(objects, "Pod").values()
    return pod["spec"]["containers"][0]["args"][0]


@pytest.fixture(scope="module")
def script() -> str:
    return _script()


def _app(ready: bool = True, auth: bool = True) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def ready_(_: web.Request) -> web.Response:
        return web.Response(text="ready" if ready else "starting", status=200 if ready else 503)

    async def status(request: web.Request) -> web.Response:
        if auth and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ready", ready_)
    app.router.add_get("/status", status)
    return app


@pytest.fixture
async def serve() -> AsyncIterator:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def _run(script: str, tmp_path: Path, *urls: str) -> subprocess.CompletedProcess[str]:
    # The pod reads /var/run/jupiter/token; here the same script reads a temporary file.
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    local = script.replace("/var/run/jupiter/token", str(token))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", local, *urls, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())


async def test_passes_when_every_endpoint_is_healthy_ready_and_authenticated(
        script: str, serve, tmp_path: Path) -> None:
    urls = [await serve(_app()), await serve(_app())]
    result = await _run(script, tmp_path, *urls)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok  ") == 8


async def test_fails_naming_the_endpoint_that_is_not_ready(script: str, serve,
                                                           tmp_path: Path) -> None:
    good, bad = await serve(_app()), await serve(_app(ready=False))
    result = await _run(script, tmp_path, good, bad)
    assert result.returncode == 1
    assert f"FAIL {bad}/ready no-auth want 200 got 503" in result.stdout


async def test_fails_when_status_is_open_without_the_token(script: str, serve,
                                                          tmp_path: Path) -> None:
    url = await serve(_app(auth=False))
    result = await _run(script, tmp_path, url)
    assert result.returncode == 1
    assert f"FAIL {url}/status no-auth want 401 got 200" in result.stdout


async def test_fails_when_nothing_listens(script: str, tmp_path: Path) -> None:
    result = await _run(script, tmp_path, "http://127.0.0.1:9")
    assert result.returncode == 1 and "FAIL http://127.0.0.1:9/healthz" in result.stdout


# ---- the execution profiler Job's wait for DRUPE home -----------------------------------

@pytest.fixture(scope="module")
def wait_script() -> str:
    objects = template("drupe", values_for(deployment_values("diamond"), "drupe"))
    job = next(iter(by_kind(objects, "Job").values()))
    (init,) = job["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["python", "-c"]
    return init["args"][0]


def _home(answers: list[tuple[int, dict]]) -> web.Application:
    """DRUPE home's /status: the given answers in turn (the last one repeats)."""
    seen = {"n": 0}

    async def status(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"error": "unauthorized"}, status=401)
        code, body = answers[min(seen["n"], len(answers) - 1)]
        seen["n"] += 1
        return web.json_response(body, status=code)

    app = web.Application()
    app.router.add_get("/status", status)
    return app


async def _wait(script: str, tmp_path: Path, home: str, token: str = TOKEN
                ) -> subprocess.CompletedProcess[str]:
    (tmp_path / "token").write_text(token + "\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"endpoints": {"home": home},
                                  "token_file": str(tmp_path / "token")}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(config), "0.01", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())


async def test_exec_job_waits_until_home_reports_a_complete_profile(
        wait_script: str, serve, tmp_path: Path) -> None:
    url = await serve(_home([(503, {"error": "starting"}),
                             (200, {"complete": False, "done": 4, "total": 12}),
                             (200, {"complete": False, "done": 4, "total": 12}),
                             (200, {"complete": False, "done": 12, "total": 12}),
                             (200, {"complete": True, "done": 12, "total": 12})]))
    result = await _wait(wait_script, tmp_path, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"[drupe exec] waiting for DRUPE home {url}/status: HTTP 503",
        f"[drupe exec] waiting for DRUPE home {url}/status: profile not complete yet "
        "(links 4/12)",
        f"[drupe exec] waiting for DRUPE home {url}/status: profile not complete yet "
        "(links 12/12)",
        f"[drupe exec] DRUPE home {url}/status reports a complete profile"]


async def test_exec_job_stops_at_once_when_home_rejects_the_token(
        wait_script: str, serve, tmp_path: Path) -> None:
    url = await serve(_home([(200, {"complete": True})]))
    result = await _wait(wait_script, tmp_path, url, token="another-token")
    assert result.returncode == 1
    assert "rejected the token (HTTP 401)" in result.stdout


async def test_exec_job_wait_says_what_it_cannot_read(wait_script: str, tmp_path: Path
                                                      ) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", wait_script, str(tmp_path / "missing.json"), "0.01",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "cannot read the DRUPE config/token" in out.decode()
    assert "missing.json" in out.decode()
