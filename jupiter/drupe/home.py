"""The DRUPE home: registration, probe-slot scheduling, aggregation, publication.

Endpoints (bearer token on all but ``/healthz``, ``/ready``, ``/metrics``):

* ``POST /register`` ``{node, address, resources}`` -> ``{peers: {node: url}}``
* ``GET /next?node=N&wait=S`` long-poll: ``{"action": "probe", "slot", "peer", "url"}`` or
  ``{"action": "idle", "cycle_running": bool}``; 409 when N is not registered
* ``POST /report`` ``{node, slot, links: {dst: link}, errors: {dst: msg}, resources,
  probe_bytes}``
* ``POST /exec`` ``{"exec": {task: {node: {seconds, output_bytes, input_bytes}}}}``
  (``input_bytes`` optional): merged into the profile, published before the answer
* ``GET /profile`` (``jupiter.profile/v1``), ``GET /status`` (``done``/``total``,
  ``missing``, ``stale``, ``errors``, ``complete``), ``GET /metrics``, ``/healthz``, ``/ready``

The scheduler runs measurement *cycles*: every ordered pair of live agents once, phase by
phase (:func:`jupiter.drupe.schedule.directed_phases`), so no node is in two probes at once.
A cycle starts when every configured node registered (or ``register_grace_s`` after the first
registration); the next one starts at once while pairs are missing, else ``interval_s`` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from jupiter.drupe.config import DrupeConfig
from jupiter.drupe.publish import Publisher, PublishError
from jupiter.drupe.schedule import directed_phases
from jupiter.drupe.state import CycleStats, HomeState, ReportError
from jupiter.drupe.web import (
    auth_middleware,
    get_logger,
    healthz,
    json_error,
    metrics_handler,
    read_json,
)

RETRY_AFTER_ERRORS_S = 2.0  # pause before a new cycle when the last one had failed slots


@dataclass
class Slot:
    id: int
    src: str
    dst: str | None  # None: a CPU-benchmark slot
    url: str
    future: asyncio.Future[dict[str, Any]]
    handed_out: bool = False
    created: float = field(default_factory=time.monotonic)


class Home:
    def __init__(self, cfg: DrupeConfig, token: str, *, listen: tuple[str, int],
                 publisher: Publisher, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.token = token
        self.listen = listen
        self.publisher = publisher
        self.state = HomeState(cfg, clock=clock)
        self.log = get_logger("drupe-home")
        self.queues: dict[str, deque[Slot]] = {n: deque() for n in cfg.nodes}
        self.wakeups: dict[str, asyncio.Event] = {n: asyncio.Event() for n in cfg.nodes}
        self.slots: dict[int, Slot] = {}
        self._ids = itertools.count(1)
        self.changed = asyncio.Event()
        self.dirty = asyncio.Event()
        self.cycle_running = False
        self.phase: dict[str, Any] | None = None
        self.publish_error: str | None = None
        self.published = False
        self.published_complete = False  # what the last successful publication said
        self._publish_lock = asyncio.Lock()
        self._publishing: asyncio.Future[None] | None = None  # the write in its thread
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._stale_seen: set[str] = set()
        self._init_metrics()
        self.app = self._make_app()

    # ---- metrics ------------------------------------------------------------------------
    def _init_metrics(self) -> None:
        r = self.registry = CollectorRegistry()
        self.m_registered = Gauge("drupe_agents_registered", "Registered agents", registry=r)
        self.m_stale = Gauge("drupe_agents_stale", "Agents silent beyond stale_after_s",
                             registry=r)
        self.m_done = Gauge("drupe_links_measured", "Directed links with >= min_samples",
                            registry=r)
        self.m_total = Gauge("drupe_links_total", "Directed links to measure", registry=r)
        self.m_complete = Gauge("drupe_profile_complete", "1 when the profile is complete",
                                registry=r)
        self.m_reports = Counter("drupe_reports", "Agent reports accepted", registry=r)
        self.m_bad = Counter("drupe_requests_rejected", "Requests rejected", ["reason"],
                             registry=r)
        self.m_slot_fail = Counter("drupe_slots_failed", "Probe slots without a good report",
                                   ["reason"], registry=r)
        self.m_probe_bytes = Counter("drupe_probe_bytes", "Probe payload bytes sent by agents",
                                     registry=r)
        self.m_cycles = Counter("drupe_cycles", "Completed measurement cycles", registry=r)
        self.m_bw = Gauge("drupe_link_bandwidth_bps", "Measured bandwidth", ["src", "dst"],
                          registry=r)
        self.m_lat = Gauge("drupe_link_latency_seconds", "Measured latency", ["src", "dst"],
                           registry=r)
        self.m_speed = Gauge("drupe_node_cpu_speed", "Relative CPU speed", ["node"], registry=r)

    def _refresh_metrics(self) -> None:
        st = self.state
        self.m_registered.set(len(st.agents))
        self.m_stale.set(len(st.stale()))
        total = len(st.pairs())
        self.m_total.set(total)
        self.m_done.set(total - len(st.missing()))
        self.m_complete.set(1 if st.complete() else 0)
        for (s, d), lp in st.links.items():
            self.m_bw.labels(s, d).set(lp.bandwidth_bps)
            self.m_lat.labels(s, d).set(lp.latency_s)
        for n, a in st.agents.items():
            self.m_speed.labels(n).set(a.resources.speed)

    # ---- app ----------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[
            auth_middleware(self.token, lambda _p: self.m_bad.labels("auth").inc())
        ])
        metrics = metrics_handler(self.registry)

        async def metrics_refreshed(request: web.Request) -> web.StreamResponse:
            self._refresh_metrics()
            return await metrics(request)

        app.router.add_post("/register", self._register)
        app.router.add_get("/next", self._next)
        app.router.add_post("/report", self._report)
        app.router.add_post("/exec", self._exec)
        app.router.add_get("/profile", self._profile)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", metrics_refreshed)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/ready", self._ready)
        return app

    async def start(self) -> None:
        n = self.state.load_exec(await asyncio.to_thread(self.publisher.load))
        if n:
            self.log.info("kept %d execution-profile entries from %s", n,
                          self.publisher.describe())
        await self._publish_now()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.listen[0], self.listen[1]).start()
        self.log.info("listening on %s:%d; nodes %s; publishing to %s", self.listen[0],
                      self.listen[1], ", ".join(self.cfg.nodes), self.publisher.describe())
        for coro, name in ((self._schedule_loop(), "schedule"), (self._publish_loop(), "publish"),
                           (self._watch_loop(), "watch")):
            self._tasks.append(asyncio.create_task(coro, name=f"home-{name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        if self._publishing is not None:
            # a cancelled publish leaves its thread writing: stop returns once it has renamed
            # (or removed) its temp file, so nothing half-written is left behind
            with contextlib.suppress(Exception):
                await self._publishing
        if self._runner:
            await self._runner.cleanup()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # ---- handlers ---------------------------------------------------------------------------
    def _bad(self, reason: str, message: str, status: int = 400) -> web.Response:
        self.m_bad.labels(reason).inc()
        self.log.warning("rejected request: %s", message)
        return json_error(status, message)

    async def _register(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        try:
            node = self.state.register(data)
        except ReportError as exc:
            return self._bad("register", f"register: {exc}")
        self.log.info("agent %s registered from %s", node, self.state.agents[node].address)
        self.changed.set()
        self.dirty.set()
        return web.json_response({"node": node, "peers": self.state.peers_of(node),
                                  "min_samples": self.cfg.min_samples})

    async def _next(self, request: web.Request) -> web.Response:
        node = request.query.get("node", "")
        if node not in self.cfg.nodes:
            return self._bad("next", f"next: unknown node {node!r}")
        if node not in self.state.agents:
            return json_error(409, f"node {node!r} is not registered; POST /register first")
        try:
            wait = min(float(request.query.get("wait", self.cfg.poll_wait_s)),
                       self.cfg.poll_wait_s)
        except ValueError:
            return self._bad("next", "next: 'wait' must be a number of seconds")
        self.state.seen(node)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait)
        queue, wake = self.queues[node], self.wakeups[node]
        while True:
            if queue:
                slot = queue.popleft()
                slot.handed_out = True
                self.state.seen(node)
                if slot.dst is None:
                    return web.json_response({"action": "bench", "slot": slot.id})
                return web.json_response({"action": "probe", "slot": slot.id, "peer": slot.dst,
                                          "url": slot.url})
            wake.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(wake.wait(), remaining)
            except TimeoutError:
                break
        self.state.seen(node)
        return web.json_response({"action": "idle", "cycle_running": self.cycle_running})

    async def _report(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        node = data.get("node")
        if isinstance(node, str) and node in self.cfg.nodes and node not in self.state.agents:
            return json_error(409, f"node {node!r} is not registered; POST /register first")
        try:
            updated = self.state.apply_report(data)
        except ReportError as exc:
            return self._bad("report", f"report from {node!r}: {exc}")
        self.m_reports.inc()
        self.m_probe_bytes.inc(int(data.get("probe_bytes") or 0))
        slot = self.slots.get(data.get("slot")) if isinstance(data.get("slot"), int) else None
        if slot is not None and slot.src == node and not slot.future.done():
            slot.future.set_result(data)
        if updated or data.get("errors"):
            self.dirty.set()
        return web.json_response({"accepted": True, "links": [f"{s}->{d}" for s, d in updated]})

    async def _exec(self, request: web.Request) -> web.Response:
        data = await read_json(request)
        try:
            n = self.state.merge_exec(data)
        except ReportError as exc:
            return self._bad("exec", f"exec: {exc}")
        await self._publish_now()
        if self.publish_error:
            return json_error(503, f"merged {n} entries but publishing failed: "
                              f"{self.publish_error}")
        self.log.info("merged %d execution-profile entries", n)
        return web.json_response({"merged": n, "tasks": sorted(self.state.exec)})

    async def _profile(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state.profile().to_dict())

    async def _status(self, _request: web.Request) -> web.Response:
        st = self.state.status()
        # complete only once the complete profile is published: a client that waited for
        # this (the deploy's wait) can read the file / ConfigMap right away
        st["complete"] = bool(st["complete"] and self.published_complete)
        st.update(cycle_running=self.cycle_running, phase=self.phase,
                  publish={"target": self.publisher.describe(), "error": self.publish_error})
        return web.json_response(st)

    async def _ready(self, _request: web.Request) -> web.Response:
        if self.published and not self.publish_error:
            return web.json_response({"ready": True})
        return json_error(503, f"profile not published: {self.publish_error or 'starting'}")

    # ---- publishing ---------------------------------------------------------------------------
    async def _publish_now(self) -> None:
        async with self._publish_lock:
            doc = self.state.profile().to_dict()
            self._publishing = asyncio.ensure_future(
                asyncio.to_thread(self.publisher.publish, doc))
            try:
                await asyncio.shield(self._publishing)
            except PublishError as exc:
                if self.publish_error != str(exc):
                    self.log.error("%s", exc)
                self.publish_error = str(exc)
                return
            if self.publish_error:
                self.log.info("publishing to %s works again", self.publisher.describe())
            self.publish_error = None
            self.published = True
            self.published_complete = bool(doc["complete"])

    async def _publish_loop(self) -> None:
        was_complete = False
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            await self._publish_now()
            complete = self.state.complete()
            if complete != was_complete:
                self.log.info("profile %s (%s)", "complete" if complete else "incomplete",
                              self.publisher.describe())
                was_complete = complete
            await asyncio.sleep(self.cfg.publish_min_interval_s)  # rate limit, not a sync

    async def _watch_loop(self) -> None:
        """Notice agents going stale (or coming back) and republish."""
        period = max(0.05, min(1.0, self.cfg.stale_after_s / 4))
        while True:
            stale = set(self.state.stale())
            if stale != self._stale_seen:
                for n in sorted(stale - self._stale_seen):
                    self.log.warning("agent %s is stale: silent for more than %.0fs", n,
                                     self.cfg.stale_after_s)
                for n in sorted(self._stale_seen - stale):
                    self.log.info("agent %s is back", n)
                self._stale_seen = stale
                self.dirty.set()
                self.changed.set()
            await asyncio.sleep(period)  # periodic check of a clock-based condition

    # ---- scheduling ----------------------------------------------------------------------------
    async def _wait_changed(self, timeout: float) -> None:
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), max(0.0, timeout))

    async def _wait_for_start(self) -> None:
        while True:
            st = self.state
            if not st.unregistered():
                return
            if st.first_registration is not None:
                left = st.first_registration + self.cfg.register_grace_s - st.clock()
                if left <= 0:
                    self.log.warning("starting without unregistered node(s) %s after %.0fs",
                                     ", ".join(st.unregistered()), self.cfg.register_grace_s)
                    return
                await self._wait_changed(min(left, 1.0))
            else:
                await self._wait_changed(1.0)

    def _assign(self, src: str, dst: str | None) -> Slot:
        loop = asyncio.get_running_loop()
        slot = Slot(id=next(self._ids), src=src, dst=dst,
                    url=self.state.agent_url(dst) if dst else "", future=loop.create_future())
        self.slots[slot.id] = slot
        self.queues[src].append(slot)
        self.wakeups[src].set()
        return slot

    async def _run_phase(self, slots: list[Slot]) -> int:
        """Wait for the phase's reports; returns the number of failed slots."""
        failed = 0
        done, pending = await asyncio.wait([s.future for s in slots],
                                           timeout=self.cfg.slot_timeout_s)
        for s in slots:
            self.slots.pop(s.id, None)
            if s.future in pending:
                s.future.cancel()
                with contextlib.suppress(ValueError):
                    self.queues[s.src].remove(s)
                why = ("never picked up" if not s.handed_out else "picked up but not reported")
                if s.dst is None:
                    self.log.warning("no benchmark report from agent %s within %.0fs (%s)",
                                     s.src, self.cfg.slot_timeout_s, why)
                else:
                    self.state.record_error(s.src, s.dst, f"no report from agent {s.src} for "
                                            f"probe {s.src}->{s.dst} within "
                                            f"{self.cfg.slot_timeout_s:.0f}s ({why})")
                self.m_slot_fail.labels("timeout").inc()
                self.dirty.set()
                failed += 1
            elif s.future in done and (s.future.result().get("errors") or {}):
                self.m_slot_fail.labels("probe_error").inc()
                failed += 1
        return failed

    async def _schedule_loop(self) -> None:
        await self._wait_for_start()
        while True:
            live = self.state.live()
            if not live:
                await self._wait_changed(1.0)
                continue
            started, t0 = self.state.clock(), time.monotonic()
            bytes0 = self.state.probe_bytes_total
            errors = slots_run = 0
            self.cycle_running = True
            # While pairs are missing (first cycle, a node joined) only those are probed;
            # once everything is measured, each cycle refreshes every pair.
            todo = set(self.state.missing(live)) or set(self.state.pairs(live))
            phases = [[p for p in ph if p in todo]
                      for ph in directed_phases(live, self.cfg.probe.max_parallel)]
            phases = [ph for ph in phases if ph]
            self.log.info("cycle %d: %d nodes, %d pairs in %d phases", len(self.state.cycles) + 1,
                          len(live), len(todo), len(phases))
            try:
                # CPU benchmarks first, one node at a time: nothing else runs meanwhile, so
                # each node's speed reflects its own CPU share, not its neighbours' probes.
                for node in self.state.bench_due(live):
                    if node in self.state.live():
                        self.phase = {"bench": node}
                        errors += await self._run_phase([self._assign(node, None)])
                        slots_run += 1
                for i, phase in enumerate(phases):
                    now_live = set(self.state.live())
                    slots = [self._assign(s, d) for s, d in phase
                             if s in now_live and d in now_live]
                    if not slots:
                        continue
                    self.phase = {"index": i + 1, "of": len(phases),
                                  "slots": [f"{s.src}->{s.dst}" for s in slots]}
                    errors += await self._run_phase(slots)
                    slots_run += len(slots)
            finally:
                self.cycle_running = False
                self.phase = None
            stats = CycleStats(started=started, seconds=round(time.monotonic() - t0, 3),
                               slots=slots_run, probe_bytes=self.state.probe_bytes_total - bytes0,
                               errors=errors)
            self.state.cycles.append(stats)
            del self.state.cycles[:-100]
            self.m_cycles.inc()
            self.dirty.set()
            self.log.info("cycle done in %.2fs: %d slots, %d errors, %.1f MB probed",
                          stats.seconds, slots_run, errors, stats.probe_bytes / 1e6)
            live = self.state.live()
            unbenched = set(self.state.unbenched())
            if self.state.missing(live) or any(n in unbenched for n in live):
                if errors == 0:
                    continue  # more samples needed and nothing failing: go on at once
                await self._wait_changed(min(self.cfg.interval_s, RETRY_AFTER_ERRORS_S))
            else:
                await self._wait_changed(self.cfg.interval_s)
