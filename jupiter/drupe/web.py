"""HTTP plumbing shared by the DRUPE agent and home (aiohttp).

Bearer-token middleware (every path but ``/healthz``, ``/ready`` and ``/metrics``), JSON
error answers, a Prometheus handler over a component's own registry, and one-line-per-event
logging to stderr.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

OPEN_PATHS = frozenset({"/healthz", "/ready", "/metrics"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def get_logger(component: str) -> logging.Logger:
    """A stderr logger printing one line per event, prefixed with the component name."""
    log = logging.getLogger(f"jupiter.{component}")
    if not log.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(f"%(asctime)s {component} %(levelname)s %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def auth_middleware(token: str, on_reject: Callable[[str], None] | None = None
                    ) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            got = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(got, expected):
                if on_reject:
                    on_reject(request.path)
                resp = json_error(401, "missing or wrong bearer token (Authorization: Bearer "
                                  "<deployment token>)")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="jupiter"'
                return resp
        return await handler(request)

    return check


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; raises HTTPBadRequest (400) saying what is wrong."""
    try:
        data = json.loads(await request.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
                                 content_type="application/json") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}),
                                 content_type="application/json")
    return data


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def metrics(_request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    return metrics


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"alive": True})
