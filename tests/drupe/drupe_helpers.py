"""Helpers for the DRUPE tests: configs on 127.0.0.x, in-process home + agents, polling."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from jupiter.circe.devrun import free_port
from jupiter.drupe.agent import Agent
from jupiter.drupe.config import DrupeConfig, build_config, parse_config
from jupiter.drupe.home import Home
from jupiter.drupe.publish import FilePublisher, Publisher
from jupiter.drupe.resources import cpu_benchmark

TOKEN = "test-token-0123456789"

# Small probes: loopback is fast, keep sweeps short.
FAST_OPTIONS: dict[str, Any] = {
    "min_samples": 6,
    "stale_after_s": 5.0,
    "slot_timeout_s": 10.0,
    "register_grace_s": 5.0,
    "poll_wait_s": 1.0,
    "publish_min_interval_s": 0.05,
    "interval_s": 30.0,
    "probe": {"min_bytes": 1024, "max_bytes": 256 * 1024, "target_s": 0.05, "repeats": 2},
}


def write_token(tmp: Path) -> Path:
    p = tmp / "token"
    p.write_text(TOKEN + "\n", encoding="utf-8")
    os.chmod(p, 0o600)
    return p


def make_config(tmp: Path, names: list[str], *, options: dict[str, Any] | None = None,
                base_ip: int = 2) -> tuple[DrupeConfig, dict[str, Any]]:
    """Nodes on 127.0.0.<base_ip + i>, home = first node; returns (config, document)."""
    token = write_token(tmp)
    addr = {n: f"127.0.0.{base_ip + i}" for i, n in enumerate(names)}
    home_port = free_port(addr[names[0]])  # home shares the first agent's address
    endpoints = {
        "home": f"http://{addr[names[0]]}:{home_port}",
        "agents": {n: f"http://{a}:{free_port(a, taken=[home_port] if i == 0 else [])}"
                   for i, (n, a) in enumerate(addr.items())},
    }
    opts = json.loads(json.dumps(FAST_OPTIONS))
    for k, v in (options or {}).items():
        if isinstance(v, dict) and isinstance(opts.get(k), dict):
            opts[k].update(v)
        else:
            opts[k] = v
    doc = build_config(deployment="t", nodes=names, home=names[0], endpoints=endpoints,
                       token_file=str(token), state_dir=str(tmp / "state"), options=opts)
    path = tmp / "drupe.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return parse_config(doc, str(path)), doc


def listen_of(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def quick_benchmark():
    return cpu_benchmark(chunks=10)


class Cluster:
    """A home and agents as asyncio servers on their own 127.0.0.x addresses."""

    def __init__(self, cfg: DrupeConfig, publisher: Publisher | None = None) -> None:
        self.cfg = cfg
        self.publisher = publisher or FilePublisher(cfg.profile_path)
        self.home = Home(cfg, TOKEN, listen=listen_of(cfg.home_url), publisher=self.publisher)
        self.agents: dict[str, Agent] = {}

    async def start_home(self) -> None:
        await self.home.start()

    async def start_agent(self, node: str, advertise: str | None = None) -> Agent:
        a = Agent(self.cfg, node, TOKEN, listen=listen_of(self.cfg.agent_urls[node]),
                  advertise=advertise, benchmark=quick_benchmark)
        await a.start()
        self.agents[node] = a
        return a

    async def stop_agent(self, node: str) -> None:
        await self.agents.pop(node).stop()

    async def stop(self) -> None:
        for n in list(self.agents):
            await self.stop_agent(n)
        await self.home.stop()

    async def get(self, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as s, s.get(f"{self.cfg.home_url}{path}",
                                                       headers=headers) as r:
            body = await r.text()
            try:
                return r.status, json.loads(body)
            except json.JSONDecodeError:
                return r.status, body

    async def status(self) -> dict[str, Any]:
        code, body = await self.get("/status")
        assert code == 200, body
        return body


async def wait_until(pred: Callable[[], Awaitable[bool]], timeout: float, what: str,
                     describe: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Poll an async predicate until true; fail after ``timeout`` seconds saying what."""
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            extra = f"; last state: {await describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        await asyncio.sleep(0.05)  # polling interval of a real condition
