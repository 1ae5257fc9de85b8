"""Run DRUPE (home + one agent per node) on an applied local testbed, as real processes.

Used by the root tests and ``bench/profiler.py``; the Ansible role does the same through
supervisord (``jupiter_local_programs``). Each process is started with
``python -m jupiter.local.execnode --deployment D --node N -- python -m jupiter.cli drupe ...``
so it runs inside the node's network namespace and cgroup.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.drupe.config import build_config
from jupiter.errors import JupiterError

HOME_PORT = 7700
AGENT_PORT = 7701


@dataclass
class LocalDrupe:
    deployment: str
    state_dir: Path
    addresses: dict[str, str]  # node -> testbed address
    home: str
    options: dict[str, Any] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.state_dir / "drupe.json"

    @property
    def token_file(self) -> Path:
        return self.state_dir / "token"

    @property
    def home_url(self) -> str:
        return f"http://{self.addresses[self.home]}:{HOME_PORT}"

    def write_config(self) -> dict[str, Any]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.token_file.exists():
            self.token_file.write_text(secrets.token_urlsafe(32))
            os.chmod(self.token_file, 0o600)
        doc = build_config(
            deployment=self.deployment, nodes=list(self.addresses), home=self.home,
            endpoints={"home": self.home_url,
                       "agents": {n: f"http://{a}:{AGENT_PORT}"
                                  for n, a in self.addresses.items()}},
            token_file=str(self.token_file), state_dir=str(self.state_dir),
            options=self.options)
        self.config_path.write_text(json.dumps(doc, indent=2))
        return doc

    def _on_node(self, node: str, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "jupiter.local.execnode", "--deployment", self.deployment,
                "--node", node, "--state-dir", str(self.state_dir), "--",
                sys.executable, "-m", "jupiter.cli", *args]

    def _start(self, name: str, node: str, args: list[str]) -> None:
        log = (self.state_dir / f"drupe-{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(self._on_node(node, args), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        conf = str(self.config_path)
        self._start("home", self.home, ["drupe", "home", "--config", conf])
        for n in self.addresses:
            self._start(f"agent-{n}", n, ["drupe", "agent", "--config", conf, "--node", n])

    def run_on(self, node: str, args: list[str], timeout: float = 600) -> str:
        """Run a ``jupiter`` command inside a node; returns its output, raises on failure."""
        r = subprocess.run(self._on_node(node, args), capture_output=True, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise JupiterError(f"on {node}: jupiter {' '.join(args)} failed: "
                               f"{r.stderr.strip()[-2000:]}")
        return r.stderr + r.stdout

    def get(self, path: str) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.home_url}{path}", headers={
            "Authorization": f"Bearer {self.token_file.read_text().strip()}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def wait(self, key: str = "complete", timeout: float = 120.0,
             predicate: Any = None) -> tuple[dict[str, Any], float]:
        """Poll /status until ``status[key]`` (or ``predicate(status)``); (status, seconds)."""
        start = time.monotonic()
        last: dict[str, Any] = {}
        while time.monotonic() - start < timeout:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    log = (self.state_dir / f"drupe-{name}.log").read_text()[-3000:]
                    raise JupiterError(f"drupe {name} exited with {p.returncode}:\n{log}")
            try:
                last = self.get("/status")
            except (urllib.error.URLError, OSError):
                last = {}
            if last and (predicate(last) if predicate else last.get(key)):
                return last, time.monotonic() - start
            time.sleep(0.05)  # polling interval of a real condition
        raise JupiterError(f"timed out after {timeout}s waiting for {key}: "
                           f"done {last.get('done')}/{last.get('total')}, "
                           f"missing {last.get('missing')}, errors {last.get('errors')}")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()
