"""The WAVE service on the home node: holds the current mapping, recomputes it on demand.

Endpoints (all but ``/healthz``, ``/ready`` and ``/metrics`` need ``Authorization:
Bearer <token>``):

* ``GET /healthz``: alive. ``GET /ready``: 200 once the current mapping is persisted.
* ``GET /mapping``: the current Mapping contract.
* ``GET /status``: algorithm, generation, predictions, reschedule counts, last error, and
  ``done``/``total`` for progress waits.
* ``GET /metrics``: Prometheus text (own registry).
* ``POST /reschedule``: body = a profile (``jupiter.profile/v1``); an empty body fetches
  the profile from ``profile_url``. Optional query ``algorithm=NAME`` and
  ``nodes=a,b,c`` (e.g. without a lost node) override the configured ones for this
  request. The mapping is recomputed with the configured options; on any invalid input the
  old mapping stays and the answer is 400 naming the field. The new mapping is written
  to ``state_dir/mapping.json`` atomically before the answer.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from jupiter.errors import InvalidInput, JupiterError, Problem
from jupiter.wave.api import check_options, parse_app, parse_profile, schedule
from jupiter.wave.config import parse_listen
from jupiter.wave.mapping import Mapping

log = logging.getLogger("jupiter.wave")
MAX_BODY = 64 * 1024 * 1024


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_token(config: dict[str, Any]) -> str:
    path = config.get("token_file") or os.environ.get("JUPITER_TOKEN_FILE")
    if not path:
        raise InvalidInput([Problem("wave config", "no token file: set token_file or "
                                    "JUPITER_TOKEN_FILE", field="token_file")], "wave config")
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput([Problem(str(path), f"cannot read the token file: "
                                    f"{exc.strerror or exc}", field="token_file")],
                           "wave config") from exc
    if not token:
        raise InvalidInput([Problem(str(path), "the token file is empty", field="token_file")],
                           "wave config")
    return token


class WaveState:
    """The service's state: config, current mapping, metrics."""

    def __init__(self, config: dict[str, Any], token: str) -> None:
        self.config = config
        self.token = token
        self.app = parse_app(config["app"])
        self.mapping = Mapping.from_dict(config["mapping"], source="config mapping")
        self.algorithm: str = config["algorithm"]
        self.nodes: list[str] = list(config["nodes"])
        self.options: dict[str, Any] = dict(config.get("schedule_options") or {})
        self.profile_url: str | None = config.get("profile_url")
        self.state_dir = Path(config["state_dir"])
        self.generation = 0
        self.persisted = False
        self.last_error: dict[str, Any] | None = None
        self.counts = {"ok": 0, "rejected": 0}
        self.lock = asyncio.Lock()
        self.started = time.time()
        self.registry = CollectorRegistry()
        r = self.registry
        self.m_latency = Gauge("jupiter_wave_predicted_latency_seconds",
                               "Predicted single-item latency of the current mapping",
                               registry=r)
        self.m_period = Gauge("jupiter_wave_predicted_period_seconds",
                              "Predicted stream period (busiest node or link per item)",
                              registry=r)
        self.m_throughput = Gauge("jupiter_wave_predicted_throughput_per_second",
                                  "Predicted items per second of the current mapping",
                                  registry=r)
        self.m_generation = Gauge("jupiter_wave_mapping_generation",
                                  "How many times the mapping was replaced", registry=r)
        self.m_reschedules = Counter("jupiter_wave_reschedules",
                                     "Reschedule requests by result", ["result"], registry=r)
        self.m_seconds = Histogram("jupiter_wave_schedule_seconds",
                                   "Time to compute a mapping", registry=r)
        self._publish()

    @property
    def mapping_path(self) -> Path:
        return self.state_dir / "mapping.json"

    def _publish(self) -> None:
        self.m_latency.set(self.mapping.latency_s)
        self.m_period.set(self.mapping.period_s)
        self.m_throughput.set(self.mapping.throughput_per_s or 0.0)
        self.m_generation.set(self.generation)

    def persist(self) -> None:
        atomic_write_json(self.mapping_path, self.mapping.to_dict())
        self.persisted = True

    def status(self) -> dict[str, Any]:
        return {
            "component": "wave",
            "app": self.app.name,
            "ready": self.persisted,
            "done": 1 if self.persisted else 0,
            "total": 1,
            "algorithm": self.mapping.algorithm,
            "configured_algorithm": self.algorithm,
            "generation": self.generation,
            "tasks": len(self.mapping.mapping),
            "nodes": self.nodes,
            "home": self.mapping.home,
            "predicted": self.mapping.to_dict()["predicted"],
            "created_at": self.mapping.created_at,
            "reschedules": dict(self.counts),
            "last_error": self.last_error,
            "mapping_file": str(self.mapping_path),
            "uptime_s": round(time.time() - self.started, 3),
        }


STATE_KEY = web.AppKey("wave_state", WaveState)


def _problems_json(exc: InvalidInput) -> dict[str, Any]:
    first = exc.problems[0] if exc.problems else None
    return {
        "error": str(exc),
        "field": first.field if first else None,
        "problems": [p.to_dict() for p in exc.problems],
    }


def _authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in ("/healthz", "/ready", "/metrics"):
        return await handler(request)
    state = request.app[STATE_KEY]
    if not _authorized(request, state.token):
        log.info("wave: rejected %s %s from %s: missing or wrong bearer token",
                 request.method, request.path, request.remote)
        return web.json_response({"error": "unauthorized: send Authorization: Bearer <token>"},
                                 status=401, headers={"WWW-Authenticate": "Bearer"})
    return await handler(request)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def ready(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.persisted:
        return web.json_response({"ready": True})
    return web.json_response({"ready": False, "reason": "mapping not persisted yet"},
                             status=503)


async def get_mapping(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].mapping.to_dict())


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].status())


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _fetch_profile(state: WaveState) -> Any:
    if not state.profile_url:
        raise InvalidInput([Problem("request", "empty body and no profile_url configured: "
                                    "post a jupiter.profile/v1 JSON", field="body")], "request")
    headers = {"Authorization": f"Bearer {state.token}"}
    try:
        async with ClientSession(timeout=ClientTimeout(total=30)) as session, \
                session.get(state.profile_url, headers=headers) as resp:
            if resp.status != 200:
                raise web.HTTPBadGateway(text=json.dumps({
                    "error": f"profile_url {state.profile_url} answered {resp.status}"}),
                    content_type="application/json")
            return await resp.json(content_type=None)
    except (ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise web.HTTPBadGateway(text=json.dumps({
            "error": f"cannot fetch the profile from {state.profile_url}: {exc!r}"}),
            content_type="application/json") from exc


async def reschedule(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    raw = await request.read()
    algorithm = request.query.get("algorithm", state.algorithm)
    nodes = state.nodes
    if request.query.get("nodes"):
        nodes = [n.strip() for n in request.query["nodes"].split(",") if n.strip()]
    async with state.lock:
        try:
            if raw.strip():
                try:
                    data = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InvalidInput([Problem("request", f"body is not JSON: {exc}",
                                                field="body")], "request") from exc
            else:
                data = await _fetch_profile(state)
            check_options(algorithm, state.options, source="request")
            profile = parse_profile(data, source="profile")
            loop = asyncio.get_running_loop()
            t0 = time.perf_counter()
            new = await loop.run_in_executor(None, functools.partial(
                schedule, state.app, profile, nodes, algorithm=algorithm,
                **state.options))
            state.m_seconds.observe(time.perf_counter() - t0)
        except InvalidInput as exc:
            state.counts["rejected"] += 1
            state.m_reschedules.labels(result="rejected").inc()
            state.last_error = {"at": time.time(), **_problems_json(exc)}
            log.warning("wave: reschedule rejected, keeping generation %d: %s",
                        state.generation, str(exc).replace("\n", " "))
            return web.json_response(_problems_json(exc), status=400)
        old = state.mapping
        changed = new.mapping != old.mapping
        state.mapping = new
        state.generation += 1
        state.persist()
        state._publish()
        state.counts["ok"] += 1
        state.m_reschedules.labels(result="ok").inc()
        state.last_error = None
        moved = {t: [old.mapping.get(t), n] for t, n in new.mapping.items()
                 if old.mapping.get(t) != n}
        log.info("wave: rescheduled (generation %d, %s): %d task(s) moved, latency %.4fs, "
                 "period %.4fs, bottleneck %s", state.generation, algorithm, len(moved),
                 new.latency_s, new.period_s, new.bottleneck)
        return web.json_response({"changed": changed, "generation": state.generation,
                                  "moved": moved, "mapping": new.to_dict()})


def create_app(config: dict[str, Any], *, token: str | None = None) -> web.Application:
    """The aiohttp application; persists the configured mapping on start-up."""
    state = WaveState(config, token if token is not None else read_token(config))
    app = web.Application(middlewares=[auth_middleware], client_max_size=MAX_BODY)
    app[STATE_KEY] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ready", ready)
    app.router.add_get("/mapping", get_mapping)
    app.router.add_get("/status", get_status)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/reschedule", reschedule)

    async def on_startup(_: web.Application) -> None:
        state.persist()
        log.info("wave: serving %s mapping of app %r (%d tasks), written to %s",
                 state.mapping.algorithm, state.app.name, len(state.mapping.mapping),
                 state.mapping_path)

    app.on_startup.append(on_startup)
    return app


def serve(config: dict[str, Any], listen: str | None = None) -> int:
    """Run the service until SIGINT/SIGTERM."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    host, port = parse_listen(listen or config["listen"],
                              source="--listen" if listen else "config")
    try:
        app = create_app(config)
    except (KeyError, ValueError) as exc:
        raise JupiterError(f"wave: bad config: {exc}") from exc
    log.info("wave: listening on %s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                handle_signals=True, shutdown_timeout=1.0)
    return 0
