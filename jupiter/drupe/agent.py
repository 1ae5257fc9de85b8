"""The DRUPE agent: one per node.

Server side, ``POST /probe`` receives probe payloads (bearer token; the body is discarded
while it is counted; bodies above ``probe.max_bytes`` get 413, bodies without a
Content-Length 400) and answers ``{"bytes": n, "server_seconds": t}``.

Client side, the agent registers at home (``POST /register``), then long-polls
``GET /next`` for probe slots. For a slot ``me -> peer`` it runs one sweep (a geometric ladder
of payload sizes, grown until a transfer takes longer than ``probe.target_s``, repeated
``probe.repeats`` times), updates its smoothed estimate of that link and reports links and
resources (``POST /report``). Home orders the slots so that concurrent probes never share a
node (see :mod:`jupiter.drupe.schedule`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from jupiter.drupe.config import DrupeConfig
from jupiter.drupe.estimate import LinkEstimator, Sample, estimate_sweep, ladder
from jupiter.drupe.resources import Benchmark, cpu_benchmark, resource_profile
from jupiter.drupe.web import auth_middleware, get_logger, healthz, json_error, metrics_handler

READ_CHUNK = 256 * 1024
REGISTER_BACKOFF_MAX = 5.0


class ProbeError(Exception):
    """A probe to a peer failed (unreachable, refused, timed out, or a bad answer)."""


class Agent:
    def __init__(
        self,
        cfg: DrupeConfig,
        node: str,
        token: str,
        *,
        listen: tuple[str, int],
        advertise: str | None = None,
        benchmark: Callable[[], Benchmark] = cpu_benchmark,
    ) -> None:
        if node not in cfg.nodes:
            from jupiter.errors import JupiterError

            raise JupiterError(f"{cfg.source}: node {node!r} is not in 'nodes' "
                               f"({', '.join(cfg.nodes)}); check --node")
        self.cfg = cfg
        self.node = node
        self.token = token
        self.listen = listen
        self.advertise = (advertise or cfg.agent_urls[node]).rstrip("/")
        self._benchmark = benchmark
        self.log = get_logger(f"drupe-agent[{node}]")
        self.registered = False
        self.peers: dict[str, str] = {}
        self.estimators: dict[str, LinkEstimator] = {}
        self.errors: dict[str, str] = {}
        self.bench: Benchmark | None = None
        self.bench_at = 0.0
        self.last_report = 0.0
        self.home_error = ""
        self._payload = memoryview(os.urandom(cfg.probe.max_bytes))
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._home: aiohttp.ClientSession | None = None
        self._probe_sessions: dict[str, aiohttp.ClientSession] = {}
        self._auth = {"Authorization": f"Bearer {token}"}
        self._init_metrics()
        self.app = self._make_app()

    # ---- metrics ---------------------------------------------------------------------
    def _init_metrics(self) -> None:
        r = self.registry = CollectorRegistry()
        self.m_recv = Counter("drupe_agent_probes_received", "Probe requests answered", registry=r)
        self.m_recv_bytes = Counter("drupe_agent_probe_bytes_received",
                                    "Probe payload bytes received", registry=r)
        self.m_rejected = Counter("drupe_agent_requests_rejected", "Requests rejected",
                                  ["reason"], registry=r)
        self.m_sent = Counter("drupe_agent_probes_sent", "Probes sent", ["peer"], registry=r)
        self.m_sent_bytes = Counter("drupe_agent_probe_bytes_sent", "Probe payload bytes sent",
                                    ["peer"], registry=r)
        self.m_sweeps = Counter("drupe_agent_sweeps", "Link sweeps", ["peer", "result"],
                                registry=r)
        self.m_bw = Gauge("drupe_agent_link_bandwidth_bps", "Smoothed bandwidth to peer",
                          ["peer"], registry=r)
        self.m_lat = Gauge("drupe_agent_link_latency_seconds", "Smoothed latency to peer",
                           ["peer"], registry=r)
        self.m_speed = Gauge("drupe_agent_cpu_speed", "Relative CPU speed (1.0 = reference)",
                             registry=r)

    # ---- server ----------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[
            auth_middleware(self.token, lambda _p: self.m_rejected.labels("auth").inc())
        ])
        app.router.add_post("/probe", self._probe)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", metrics_handler(self.registry))
        return app

    async def _probe(self, request: web.Request) -> web.StreamResponse:
        cap = self.cfg.probe.max_bytes
        length = request.content_length
        if length is None:
            self.m_rejected.labels("no_length").inc()
            return json_error(400, "probe needs a Content-Length header (chunked bodies are "
                              "not accepted)")
        if length > cap:
            self.m_rejected.labels("too_large").inc()
            return json_error(413, f"probe of {length} bytes exceeds this agent's cap of {cap} "
                              "bytes (probe.max_bytes)")
        start = time.perf_counter()
        received = 0
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            received += len(chunk)
        seconds = time.perf_counter() - start
        self.m_recv.inc()
        self.m_recv_bytes.inc(received)
        return web.json_response({"bytes": received, "server_seconds": seconds,
                                  "node": self.node})

    async def _ready(self, _request: web.Request) -> web.Response:
        if self.registered:
            return web.json_response({"ready": True, "node": self.node})
        return json_error(503, f"not registered at home {self.cfg.home_url} yet"
                          + (f": {self.home_error}" if self.home_error else ""))

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(self.status())

    def status(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "address": self.advertise,
            "home": self.cfg.home_url,
            "registered": self.registered,
            "home_error": self.home_error,
            "peers": dict(self.peers),
            "links": {p: e.to_profile().to_dict() for p, e in self.estimators.items()
                      if e.sweeps},
            "errors": dict(self.errors),
            "speed": self.bench.speed if self.bench else None,
            "burst_speed": self.bench.burst_speed if self.bench else None,
            "last_report": self.last_report,
        }

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen[0], self.listen[1])
        await site.start()
        self.log.info("listening on %s:%d, home %s", self.listen[0], self.listen[1],
                      self.cfg.home_url)
        self._home = aiohttp.ClientSession(headers=self._auth)
        self._loop_task = asyncio.create_task(self._main_loop(), name=f"agent-{self.node}")

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for s in [*self._probe_sessions.values(), *([self._home] if self._home else [])]:
            await s.close()
        self._probe_sessions.clear()
        if self._runner:
            await self._runner.cleanup()

    async def run_forever(self) -> None:
        await self.start()
        try:
            assert self._loop_task is not None
            await self._loop_task
        finally:
            await self.stop()

    # ---- talking to home ---------------------------------------------------------------
    def _resources(self) -> dict[str, Any]:
        """psutil figures now; speeds from the last benchmark (home keeps its own copy)."""
        if self.bench is None:
            return resource_profile(1.0).to_dict()
        return resource_profile(self.bench.speed,
                                burst_speed=self.bench.burst_speed).to_dict()

    async def _do_bench(self, slot: dict[str, Any]) -> None:
        # Runs on the event loop on purpose: nothing else happens on this node during a bench
        # slot (home runs them one node at a time, outside probe phases), so the measurement
        # sees this node's CPU share and not its neighbours' work.
        self.bench = b = self._benchmark()
        self.bench_at = time.monotonic()
        self.m_speed.set(b.speed)
        self.log.info("cpu benchmark: speed %.3f, burst %.3f (%.3fs wall, %d stalls)",
                      b.speed, b.burst_speed, b.wall_seconds, b.stalls)
        await self._report({"node": self.node, "slot": slot.get("slot"),
                            "resources": self._resources(),
                            "bench": {"speed": b.speed, "burst_speed": b.burst_speed,
                                      "seconds": b.seconds, "wall_seconds": b.wall_seconds,
                                      "stalls": b.stalls}})

    async def _register(self) -> None:
        assert self._home is not None
        delay = 0.2
        while True:
            try:
                async with self._home.post(
                    f"{self.cfg.home_url}/register",
                    json={"node": self.node, "address": self.advertise,
                          "resources": self._resources()},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        self.peers = dict(body.get("peers") or {})
                        self.registered = True
                        self.home_error = ""
                        self.log.info("registered at home %s; peers: %s", self.cfg.home_url,
                                      ", ".join(sorted(self.peers)) or "none yet")
                        return
                    self.home_error = f"HTTP {resp.status}: {body.get('error', body)}"
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.home_error = f"{type(exc).__name__}: {exc}"
            self.log.warning("registration at %s failed (%s); retrying in %.1fs",
                             self.cfg.home_url, self.home_error, delay)
            await asyncio.sleep(delay)  # retry backoff
            delay = min(delay * 2, REGISTER_BACKOFF_MAX)

    async def _main_loop(self) -> None:
        await self._register()
        assert self._home is not None
        while True:
            try:
                async with self._home.get(
                    f"{self.cfg.home_url}/next",
                    params={"node": self.node, "wait": str(self.cfg.poll_wait_s)},
                    timeout=aiohttp.ClientTimeout(total=self.cfg.poll_wait_s + 15),
                ) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.home_error = f"{type(exc).__name__}: {exc}"
                self.log.warning("home unreachable (%s); re-registering", self.home_error)
                self.registered = False
                await self._register()
                continue
            if status == 409:  # home restarted and forgot us
                self.registered = False
                await self._register()
                continue
            if status != 200:
                self.log.warning("home answered /next with HTTP %d: %s", status, body)
                self.registered = False
                await self._register()
                continue
            if body.get("action") == "probe":
                await self._do_slot(body)
            elif body.get("action") == "bench":
                await self._do_bench(body)
            elif time.time() - self.last_report >= self.cfg.resource_interval_s:
                await self._report({"node": self.node, "resources": self._resources()})

    async def _report(self, report: dict[str, Any]) -> None:
        assert self._home is not None
        try:
            async with self._home.post(f"{self.cfg.home_url}/report", json=report,
                                       timeout=aiohttp.ClientTimeout(total=15)) as resp:
                if resp.status != 200:
                    self.log.warning("home rejected a report: HTTP %d %s", resp.status,
                                     await resp.text())
                    if resp.status == 409:
                        self.registered = False
                        await self._register()
                    return
            self.last_report = time.time()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.log.warning("report to home failed: %s", exc)

    # ---- measuring -----------------------------------------------------------------------
    async def _do_slot(self, slot: dict[str, Any]) -> None:
        peer, url = str(slot.get("peer")), str(slot.get("url", "")).rstrip("/")
        self.peers[peer] = url
        report: dict[str, Any] = {"node": self.node, "slot": slot.get("slot"), "links": {},
                                  "errors": {}, "probe_bytes": 0}
        started = time.perf_counter()
        try:
            samples, sent = await self.sweep(peer, url)
            est = estimate_sweep(samples)
        except (ProbeError, ValueError) as exc:
            msg = f"probe {self.node}->{peer} at {url} failed: {exc}"
            self.errors[peer] = msg
            report["errors"][peer] = msg
            self.m_sweeps.labels(peer, "error").inc()
            self.log.warning("%s", msg)
        else:
            e = self.estimators.setdefault(peer, LinkEstimator(alpha=self.cfg.ewma_alpha))
            e.update(est, time.time())
            self.errors.pop(peer, None)
            report["links"][peer] = e.to_profile().to_dict()
            report["probe_bytes"] = sent
            report["sweep"] = {"samples": est.samples, "seconds": time.perf_counter() - started,
                               "bandwidth_bps": est.bandwidth_bps, "latency_s": est.latency_s,
                               "max_bytes": max(s.nbytes for s in samples)}
            self.m_sweeps.labels(peer, "ok").inc()
            self.m_bw.labels(peer).set(e.bandwidth_bps or 0)
            self.m_lat.labels(peer).set(e.latency_s or 0)
            self.log.info("link %s->%s: %.2f Mbit/s, latency %.2f ms (%d samples, top %d KB)",
                          self.node, peer, est.bandwidth_bps / 1e6, est.latency_s * 1e3,
                          est.samples, report["sweep"]["max_bytes"] // 1024)
        report["resources"] = self._resources()
        await self._report(report)

    def _session(self, peer: str) -> aiohttp.ClientSession:
        s = self._probe_sessions.get(peer)
        if s is None or s.closed:
            # One connection per peer, kept alive across probes: no handshake in the timings.
            s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit_per_host=1),
                                      headers=self._auth)
            self._probe_sessions[peer] = s
        return s

    async def probe(self, peer: str, url: str, nbytes: int) -> Sample:
        session = self._session(peer)
        body = self._payload[:nbytes]
        t = self.cfg.probe.timeout_s
        timeout = aiohttp.ClientTimeout(total=t, sock_connect=min(3.0, t))
        start = time.perf_counter()
        try:
            async with session.post(f"{url}/probe", data=body, timeout=timeout) as resp:
                info = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # A broken connection must not be reused for the next sweep.
            await session.close()
            raise ProbeError(f"{type(exc).__name__}: {exc or 'timed out'}") from exc
        seconds = time.perf_counter() - start
        if status != 200:
            raise ProbeError(f"HTTP {status}: {info.get('error', info)}")
        if info.get("bytes") != nbytes:
            raise ProbeError(f"peer counted {info.get('bytes')} bytes, {nbytes} were sent")
        self.m_sent.labels(peer).inc()
        self.m_sent_bytes.labels(peer).inc(nbytes)
        return Sample(nbytes=nbytes, seconds=seconds,
                      server_seconds=float(info.get("server_seconds") or 0.0))

    async def sweep(self, peer: str, url: str) -> tuple[list[Sample], int]:
        """One sweep of the link to ``peer``: grow the ladder, then repeat it."""
        p = self.cfg.probe
        await self.probe(peer, url, p.min_bytes)  # warm-up: opens the kept-alive connection
        sent = p.min_bytes
        samples: list[Sample] = []
        used: list[int] = []
        for size in ladder(p.min_bytes, p.max_bytes, p.factor):
            s = await self.probe(peer, url, size)
            samples.append(s)
            used.append(size)
            sent += size
            if s.seconds > p.target_s and len(used) >= 3:  # three sizes for the quadratic
                break
        # Back to back, each probe finds a shaper's bucket emptied by the one before; in the
        # repeats the link idles before the probes the burst estimate compares (the smallest
        # and the three largest), as it does between items that do not come back to back.
        rested = {used[0], *used[-3:]} if p.idle_s > 0 else set()
        for _ in range(p.repeats - 1):
            for size in used:
                if size in rested:
                    await asyncio.sleep(p.idle_s)
                samples.append(await self.probe(peer, url, size))
                sent += size
        return samples, sent
