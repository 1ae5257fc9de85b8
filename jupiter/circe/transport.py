"""CIRCE's HTTP protocol helpers: auth, hashing, name rules, body checks and a retrying sender.

Both the task servers and home use these, so every endpoint applies the same rules:

* every request except ``/healthz``, ``/ready`` and ``/metrics`` needs
  ``Authorization: Bearer <token>`` (compared with :func:`hmac.compare_digest`) -> else 401;
* every request body carries ``X-Content-SHA256`` (hex sha256 of the body) -> else 400,
  mismatch -> 400;
* bodies above the configured limit -> 413 (checked on ``Content-Length`` before reading);
* item ids and file names that could escape a folder (``..``, ``/``, ``\\``, NUL, control
  characters, empty) -> 400.

:class:`Sender` delivers a body with retries: connection errors and 5xx answers are retried
with exponential backoff (capped, with jitter) for as long as it takes; a 503/429 answer's
``Retry-After`` is honoured for every request to that destination; other 4xx answers are
permanent and returned to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from jupiter.circe.httpclient import HttpClient
from jupiter.errors import JupiterError

SHA_HEADER = "X-Content-SHA256"
FILES_HEADER = "X-Jupiter-Files"  # files this parent sends this child for this item
ITEM_HEADER = "X-Jupiter-Item"  # explicit item id on /submit
OPEN_PATHS = frozenset({"/healthz", "/ready", "/metrics"})
TOKEN_ENV = "JUPITER_TOKEN_FILE"

ITEM_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_NAME_BYTES = 255

log = logging.getLogger("jupiter.circe.transport")


# ---- names ---------------------------------------------------------------------------


def item_id_problem(item: str) -> str | None:
    """Why ``item`` is not a valid item id, or None. Ids are folder names at home."""
    if not ITEM_ID_RE.match(item) or item in {".", ".."}:
        return (
            f"invalid item id {item!r}: use 1-128 letters, digits, '_', '-', '+', '.', "
            "starting with a letter, digit or '_'"
        )
    return None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file name (one path component, no escape), or None."""
    if not name:
        return "empty file name"
    if name in {".", ".."}:
        return f"file name {name!r} escapes the folder"
    if "/" in name or "\\" in name:
        return f"file name {name!r} contains a path separator"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"file name {name!r} contains NUL or a control character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"file name longer than {MAX_NAME_BYTES} bytes"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"file name {name!r} is not valid UTF-8"
    return None


def derive_item_id(filename: str, explicit: str | None = None) -> str:
    """The item id of a submitted file: ``explicit`` if given, else the name up to the first '.'.

    ``1botnet.ipsum`` -> ``1botnet``; ``frame-0007.jpg`` -> ``frame-0007``. Raises ValueError
    naming the file when no valid id results.
    """
    if explicit:
        problem = item_id_problem(explicit)
        if problem:
            raise ValueError(problem)
        return explicit
    base = Path(filename).name
    item = base.split(".", 1)[0]
    problem = item_id_problem(item)
    if problem:
        raise ValueError(
            f"{filename}: cannot derive an item id from the name (the part before the first "
            f"'.'): {problem}; rename the file or give an explicit id"
        )
    return item


def item_url(base: str, item: str, parent: str, name: str | None = None) -> str:
    """``<base>/items/<item>/<parent>[/<name>]`` with every component percent-encoded."""
    url = f"{base.rstrip('/')}/items/{quote(item, safe='')}/{quote(parent, safe='')}"
    if name is not None:
        url += "/" + quote(name, safe="")
    return url


def listen_default(url: str) -> tuple[str, int]:
    """Default listen address for a component whose endpoint is ``url``.

    An IP literal in the URL is bound as is (local target: the node's address); a DNS name
    (a Kubernetes Service) means "all interfaces of this pod".
    """
    parts = urlsplit(url)
    host = parts.hostname or "0.0.0.0"
    port = parts.port or 80
    if not re.match(r"^[0-9.]+$", host) and ":" not in host:
        host = "0.0.0.0"
    return host, port


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise JupiterError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:7801")
    return host.strip("[]") or "0.0.0.0", int(port)


# ---- hashing and auth ----------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_token(path: str | None) -> str:
    """The deployment's bearer token from ``path`` (or $JUPITER_TOKEN_FILE)."""
    path = path or os.environ.get(TOKEN_ENV)
    if not path:
        raise JupiterError(
            f"no token file: set token_file in the config or {TOKEN_ENV} in the environment"
        )
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise JupiterError(
            f"cannot read the token file {path}: {exc.strerror}; it is created by the deploy "
            "(local: a 0600 file in the state folder, Kubernetes: a mounted Secret)"
        ) from exc
    if len(token) < 16:
        raise JupiterError(f"token file {path}: the token must be at least 16 characters")
    return token


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bearer_ok(header: str | None, token: str) -> bool:
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """aiohttp middleware: 401 unless the bearer token matches (open paths excepted)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]
                         ) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not bearer_ok(
            request.headers.get("Authorization"), token
        ):
            return error_response(
                401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="jupiter"'}
            )
        return await handler(request)

    return middleware


class BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def declared_sha(request: web.Request) -> str:
    value = (request.headers.get(SHA_HEADER) or "").strip().lower()
    if not value:
        raise BodyError(400, f"missing {SHA_HEADER} header (hex sha256 of the body)")
    if not _HEX64.match(value):
        raise BodyError(400, f"malformed {SHA_HEADER} header: expected 64 hex digits")
    return value


def check_length(request: web.Request, max_bytes: int) -> int | None:
    """The declared body length, 413 if above ``max_bytes``."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise BodyError(413, f"body of {length} bytes exceeds the limit of {max_bytes} bytes")
    return length


async def read_body(request: web.Request, max_bytes: int, sha: str) -> bytes:
    """Read the body (at most ``max_bytes``) and check it against ``sha``."""
    check_length(request, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if sha256_hex(body) != sha:
        raise BodyError(400, f"body does not match its {SHA_HEADER} (corrupted in transit?)")
    return body


def files_header(request: web.Request) -> int:
    raw = request.headers.get(FILES_HEADER, "1").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise BodyError(400, f"malformed {FILES_HEADER} header {raw!r}: expected 1..100000")
    return int(raw)


def parse_marker(body: bytes) -> str | None:
    """The error carried by an edge marker body ``{"files": 0, "error": null|str}``."""
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BodyError(400, f"edge marker body is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("files", 0) != 0:
        raise BodyError(400, 'edge marker body must be {"files": 0, "error": null|str}')
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise BodyError(400, "edge marker 'error' must be a string or null")
    return error


# ---- sending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    base: float = 0.05
    cap: float = 5.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Capped exponential delay with full jitter in [d/2, d]."""
        d = min(self.cap, self.base * self.factor ** max(0, attempt))
        return d / 2 + random.random() * d / 2


@dataclass(frozen=True)
class Delivery:
    status: int
    body: Any  # parsed JSON, or text
    attempts: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def retry_after_seconds(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


class Sender:
    """Delivers request bodies with retries, backoff and Retry-After honoured per destination."""

    def __init__(self, token: str, *, backoff: Backoff | None = None, timeout: float = 60.0,
                 parallel_per_destination: int = 2) -> None:
        self.token = token
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self.parallel = parallel_per_destination
        self._client: HttpClient | None = None
        self._not_before: dict[str, float] = {}
        self._gates: dict[str, asyncio.Semaphore] = {}
        self.attempts = 0
        self.retries = 0
        self.pushbacks = 0  # 503/429 answers seen

    async def start(self) -> None:
        if self._client is None:
            self._client = HttpClient(auth_headers(self.token), timeout=self.timeout,
                                      max_idle=self.parallel * 2)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @staticmethod
    def destination(url: str) -> str:
        p = urlsplit(url)
        return f"{p.scheme}://{p.netloc}"

    async def deliver(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        method: str = "PUT",
        deadline: float | None = None,
        on_retry: Callable[[str], None] | None = None,
        sha256: str | None = None,
    ) -> Delivery:
        """Send until the destination answers 2xx or a permanent 4xx.

        ``deadline`` (monotonic seconds) bounds the retrying; past it the last answer is
        returned (status 0 for a connection error). ``sha256``: the body's hex sha256 when
        the caller knows it already (else it is computed).
        """
        await self.start()
        assert self._client is not None
        dest = self.destination(url)
        gate = self._gates.get(dest)
        if gate is None:
            gate = self._gates[dest] = asyncio.Semaphore(self.parallel)
        hdrs = {SHA_HEADER: sha256 or sha256_hex(body), **(headers or {})}
        attempt = 0
        while True:
            wait = self._not_before.get(dest, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            status, payload, retry_after = 0, None, None
            self.attempts += 1
            try:
                async with gate:
                    resp = await self._client.request(method, url, body, hdrs)
                status = resp.status
                text = resp.text()
                retry_after = resp.headers.get("retry-after")
                try:
                    payload = json.loads(text) if text else None
                except ValueError:
                    payload = text
            except (TimeoutError, OSError) as exc:
                payload = f"{type(exc).__name__}: {exc}"
            except ValueError as exc:  # a URL or header no request can carry
                return Delivery(0, f"{type(exc).__name__}: {exc}", attempt + 1)
            attempt += 1
            if 200 <= status < 300:
                return Delivery(status, payload, attempt)
            permanent = 400 <= status < 500 and status not in (408, 425, 429)
            if permanent:
                return Delivery(status, payload, attempt)
            if status in (429, 503):
                self.pushbacks += 1
                delay = retry_after_seconds(retry_after, self.backoff.delay(attempt))
                self._not_before[dest] = max(self._not_before.get(dest, 0.0),
                                             time.monotonic() + delay)
            else:
                delay = self.backoff.delay(attempt)
            if deadline is not None and time.monotonic() + delay > deadline:
                return Delivery(status, payload, attempt)
            self.retries += 1
            if on_retry is not None:
                on_retry(f"{url}: {status or 'no answer'} {payload!s:.200}; retry in {delay:.2f}s")
            await asyncio.sleep(delay)
