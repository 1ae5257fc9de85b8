"""What every CIRCE server shares: the aiohttp application frame, standard endpoints, and
running until SIGTERM/SIGINT.

Standard endpoints: ``GET /healthz`` (alive, open), ``GET /ready`` (200 only when ready,
else 503; open), ``GET /metrics`` (Prometheus text from the server's own registry; open),
``GET /status`` (JSON; bearer token).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from jupiter.circe.transport import auth_middleware


def setup_logging(component: str) -> None:
    """One line per event on stderr, naming the component."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s {component} %(levelname)s %(message)s",
        force=True,
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class Service:
    """Base of the task and home servers."""

    component = "circe"

    def __init__(self, token: str, max_body: int) -> None:
        self.token = token
        self.max_body = max_body
        self.registry = CollectorRegistry()
        self.ready_reasons: list[str] = ["starting"]
        self.stopping = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    # subclasses fill these
    def routes(self, app: web.Application) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def status(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    async def startup(self) -> None:
        """Recover state, load code; clear ``ready_reasons`` when ready."""

    async def shutdown(self) -> None:
        """Flush what can be flushed; everything needed is already on disk."""

    # shared
    def spawn(self, coro: Awaitable[Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger("jupiter.circe").error(
                "background task %s failed: %r", task.get_name(), task.exception(),
                exc_info=task.exception(),
            )

    @property
    def ready(self) -> bool:
        return not self.ready_reasons

    def application(self) -> web.Application:
        app = web.Application(
            middlewares=[auth_middleware(self.token)], client_max_size=self.max_body + 1
        )
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/metrics", self._metrics_text)
        app.router.add_get("/status", self._status)
        self.routes(app)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True, "component": self.component})

    async def _ready(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "waiting_for": self.ready_reasons}, status=503)

    async def _metrics_text(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def serve(self, host: str, port: int,
                    on_listening: Callable[[], None] | None = None) -> None:
        """Listen, start up, run until asked to stop, shut down."""
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False,
                                shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        log = logging.getLogger("jupiter.circe")
        log.info("listening on %s:%d", host, port)
        if on_listening:
            on_listening()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            starter = asyncio.ensure_future(self.startup())
            stopper = asyncio.ensure_future(self.stopping.wait())
            done, _ = await asyncio.wait({starter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if starter in done:
                starter.result()  # raises a startup failure (bad task code...)
                await stopper
            else:
                starter.cancel()
        finally:
            log.info("stopping")
            await site.stop()
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            await self.shutdown()
            await runner.cleanup()
