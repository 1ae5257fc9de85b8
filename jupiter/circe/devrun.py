"""A small, supervisord-free launcher of a whole CIRCE pipeline on one machine.

For tests and benchmarks only (deployments use supervisord via the ``circe`` role): it
writes the config and token, starts one real ``jupiter circe task`` process per task and a
``jupiter circe home`` on loopback ports, waits on their ``/ready`` endpoints, and can kill
(-9) and restart a process the way a process manager would.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from jupiter.app.model import HOME, App
from jupiter.circe.config import build_config
from jupiter.circe.transport import ITEM_HEADER, SHA_HEADER, sha256_hex
from jupiter.errors import JupiterError


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1", taken: Iterable[int] = ()) -> int:
    """A port that is free now and outside the kernel's ephemeral range, so no outgoing
    connection can take it before the server binds it; none of ``taken`` (ports handed out
    for servers that have not bound them yet)."""
    low, high = _ephemeral_range()
    skip = set(taken)
    candidates = [p for p in range(20000, 32000) if not low <= p <= high and
                  not 7700 <= p <= 7999 and p not in skip]  # 77xx: the deployments' own
    rng = random.Random()
    for _ in range(200):
        port = rng.choice(candidates)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise JupiterError(f"no free port found on {host}")


class LocalPipeline:
    """The processes of one pipeline. By default all listen on ``host`` (loopback). With
    ``placement`` ({task key or "home": (node, address)}) and ``deployment``, each runs on
    its node of that deployment's testbed through ``jupiter local exec`` (namespace and
    cgroup of the node)."""

    def __init__(self, app: App, app_dir: str | Path, state_dir: str | Path, *,
                 options: dict[str, Any] | None = None, host: str = "127.0.0.1",
                 python: str = sys.executable,
                 placement: dict[str, tuple[str, str]] | None = None,
                 deployment: str | None = None) -> None:
        self.app = app
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.python = python
        self.placement = placement or {}
        self.deployment = deployment
        keys = [HOME, *(t.key for t in app.tasks)]
        if self.placement:  # fresh network namespaces: distinct ports are free ports
            first = free_port()
            self.ports = {k: first + i for i, k in enumerate(keys)}
        else:  # distinct: a second server on one port would fail while the first answers
            self.ports = {}
            for k in keys:
                self.ports[k] = free_port(host, taken=self.ports.values())
        self.token_file = self.state_dir / "token"
        self.token = secrets.token_hex(24)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.token + "\n")
        self.config = build_config(
            app=app.to_dict(),
            mapping={t.name: self.placement.get(t.key, ("local", ""))[0] for t in app.tasks},
            endpoints={"home": self.url(HOME),
                       "tasks": {t.key: self.url(t.key) for t in app.tasks}},
            app_dir=str(app_dir),
            token_file=str(self.token_file),
            state_dir=str(self.state_dir),
            options=options or {},
        )
        self.config_file = self.state_dir / "circe.json"
        self.config_file.write_text(json.dumps(self.config, indent=2) + "\n")
        self.logs = self.state_dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # ---- processes ---------------------------------------------------------------------
    def address(self, key: str) -> str:
        return self.placement[key][1] if key in self.placement else self.host

    def url(self, key: str) -> str:
        return f"http://{self.address(key)}:{self.ports[key]}"

    def command(self, key: str) -> list[str]:
        base = [self.python, "-m", "jupiter.cli", "circe"]
        listen = ["--listen", f"{self.address(key)}:{self.ports[key]}"]
        if key == HOME:
            argv = [*base, "home", "--config", str(self.config_file), *listen]
        else:
            argv = [*base, "task", "--config", str(self.config_file), "--task", key, *listen]
        if key in self.placement:
            argv = [self.python, "-m", "jupiter.local.execnode", "--deployment",
                    str(self.deployment), "--node", self.placement[key][0], "--state-dir",
                    str(self.state_dir), "--", *argv]
        return argv

    def launch(self, key: str) -> None:
        log = open(self.logs / f"{key}.log", "ab")  # noqa: SIM115 (owned by the child)
        self.procs[key] = subprocess.Popen(self.command(key), stdout=log, stderr=log,
                                           stdin=subprocess.DEVNULL)
        log.close()

    def start(self, timeout: float = 60.0) -> None:
        """Tasks first, then home (as the role does); wait until all are ready."""
        for t in self.app.tasks:
            self.launch(t.key)
        self.wait_ready([t.key for t in self.app.tasks], timeout)
        self.launch(HOME)
        self.wait_ready([HOME], timeout)

    def wait_ready(self, keys: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(keys)
        while pending:
            key = pending[0]
            proc = self.procs[key]
            if proc.poll() is not None:
                raise JupiterError(f"{key} exited with {proc.returncode}:\n{self.log_tail(key)}")
            try:
                with urllib.request.urlopen(self.url(key) + "/ready", timeout=2) as resp:
                    if resp.status == 200:
                        pending.pop(0)
                        continue
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise JupiterError(f"{key} not ready after {timeout}s:\n{self.log_tail(key)}")
            time.sleep(0.05)

    def kill(self, key: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[key]
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def restart(self, key: str, timeout: float = 60.0) -> None:
        self.launch(key)
        self.wait_ready([key], timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tail(self, key: str, lines: int = 30) -> str:
        path = self.logs / f"{key}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- HTTP --------------------------------------------------------------------------
    def request(self, key: str, path: str, body: bytes | None = None, *, method: str = "GET",
                headers: dict[str, str] | None = None, token: str | None = None
                ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url(key) + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def status(self, key: str = HOME) -> dict[str, Any]:
        code, _, body = self.request(key, "/status")
        if code != 200:
            raise JupiterError(f"{key} /status answered {code}: {body[:200]!r}")
        return json.loads(body)

    def submit(self, name: str, data: bytes, item: str | None = None) -> tuple[int, bytes]:
        from urllib.parse import quote

        headers = {SHA_HEADER: sha256_hex(data)}
        if item:
            headers[ITEM_HEADER] = item
        code, _, body = self.request(HOME, "/submit/" + quote(name, safe=""), data,
                                     method="PUT", headers=headers)
        return code, body

    def wait_item(self, item: str, timeout: float = 30.0) -> dict[str, Any]:
        """Home's record of ``item`` once it completed or failed (long poll)."""
        code, _, body = self.request(HOME, f"/results/{item}?wait={timeout}")
        data = json.loads(body)
        if code != 200 or data.get("status") not in ("completed", "failed"):
            raise JupiterError(f"item {item} not done after {timeout}s: {code} {data}")
        return data

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                 what: str, key: str = HOME, interval: float = 0.05) -> dict[str, Any]:
        """Poll ``key``'s /status until ``predicate`` holds; raise naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while True:
            try:
                status = self.status(key)
                if predicate(status):
                    return status
            except (OSError, JupiterError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise JupiterError(f"timed out after {timeout}s waiting for {what}; last "
                                   f"status: {json.dumps(status)[:2000]}")
            time.sleep(interval)
