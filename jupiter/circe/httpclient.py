"""A small HTTP/1.1 client for CIRCE's pushes: keep-alive connections per destination.

Every item crosses one request per file and edge, so the client's own work is paid once per
file per task, and on nodes under CPU quotas that CPU is what bounds a stream. A request
here is written with one ``writelines`` and its answer read with two stream reads;
``bench/pipeline.py`` prints the CPU per 20 KB request of this client beside aiohttp's.

Scope, on purpose: ``http`` and ``https`` URLs, a body given as bytes, responses with
``Content-Length``, chunked or read-to-close bodies. A connection is reused unless the
server asks to close it; a request that finds a reused connection closed by the server
before any answer byte is sent again once on a fresh connection (CIRCE's receivers
acknowledge repeated deliveries). Errors are :class:`OSError` subclasses (or
:class:`TimeoutError`) so callers retry them like any connection error.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024  # status line + headers of an answer


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.x we can read, or the connection ended early."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Target:
    key: str  # scheme://host:port, the pool's key
    host: str
    port: int
    tls: bool
    host_header: str


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


def _check_header(name: str, value: str) -> None:
    if any(c in name or c in value for c in "\r\n\0") or ":" in name or not name:
        raise ValueError(f"invalid HTTP header {name!r}: {value!r}")


class HttpClient:
    """Requests over pooled keep-alive connections (at most ``max_idle`` idle ones kept per
    destination); ``headers`` go with every request."""

    def __init__(self, headers: dict[str, str] | None = None, *, timeout: float = 60.0,
                 max_idle: int = 4) -> None:
        for k, v in (headers or {}).items():
            _check_header(k, v)
        self._common = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.timeout = timeout
        self.max_idle = max_idle
        self._idle: dict[str, list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def _target(self, scheme: str, netloc: str) -> _Target:
        key = f"{scheme}://{netloc}"
        target = self._targets.get(key)
        if target is None:
            parts = urlsplit(key)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"unsupported URL {key!r}: expected http:// or https://")
            tls = parts.scheme == "https"
            target = _Target(key, parts.hostname, parts.port or (443 if tls else 80), tls,
                             netloc)
            self._targets[key] = target
        return target

    async def _connect(self, target: _Target) -> _Connection:
        context = None
        if target.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        reader, writer = await asyncio.open_connection(
            target.host, target.port, ssl=context, limit=MAX_HEAD_BYTES)
        return _Connection(reader, writer)

    def _release(self, target: _Target, conn: _Connection, reuse: bool) -> None:
        idle = self._idle.setdefault(target.key, [])
        if reuse and not self._closed and conn.usable and len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    async def request(self, method: str, url: str, body: bytes = b"",
                      headers: dict[str, str] | None = None) -> Response:
        """Send one request and read the whole answer (within ``timeout`` seconds)."""
        scheme, netloc, path, query, _ = urlsplit(url)
        target = self._target(scheme, netloc)
        path = path or "/"
        if query:
            path += "?" + query
        if any(c in path for c in " \r\n\0"):
            raise ValueError(f"invalid request target {path!r} (percent-encode it)")
        extra = ""
        for k, v in (headers or {}).items():
            _check_header(k, v)
            extra += f"{k}: {v}\r\n"
        head = (f"{method} {path} HTTP/1.1\r\nHost: {target.host_header}\r\n{self._common}"
                f"{extra}Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        async with asyncio.timeout(self.timeout):
            idle = self._idle.get(target.key)
            while idle:
                conn = idle.pop()
                if not conn.usable:
                    conn.close()
                    continue
                try:
                    return await self._exchange(target, conn, head, body, method)
                except _Stale:
                    conn.close()  # the server closed it while idle: a fresh one below
                    break
            conn = await self._connect(target)
            try:
                return await self._exchange(target, conn, head, body, method)
            except _Stale as exc:
                raise ProtocolError("the server closed the connection without answering") \
                    from exc

    async def _exchange(self, target: _Target, conn: _Connection, head: bytes, body: bytes,
                        method: str) -> Response:
        reuse = False
        try:
            try:
                conn.writer.writelines((head, body) if body else (head,))
                await conn.writer.drain()
                raw = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale from exc
                raise ProtocolError("the answer ended inside its headers") from exc
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise _Stale from exc
            except asyncio.LimitOverrunError as exc:
                raise ProtocolError(f"answer headers longer than {MAX_HEAD_BYTES} bytes") \
                    from exc
            status, version, headers = _parse_head(raw)
            data, keep = await _read_body(conn.reader, status, headers, method)
            reuse = keep and version == "HTTP/1.1" and \
                "close" not in headers.get("connection", "").lower()
            return Response(status, headers, data)
        finally:
            self._release(target, conn, reuse)

    async def close(self) -> None:
        self._closed = True
        conns = [c for idle in self._idle.values() for c in idle]
        self._idle.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                await conn.writer.wait_closed()


class _Stale(Exception):
    """A reused connection was closed by the server before any byte of the answer."""


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"malformed answer header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(code), version, headers


async def _read_body(reader: asyncio.StreamReader, status: int, headers: dict[str, str],
                     method: str) -> tuple[bytes, bool]:
    """The answer's body and whether the connection can carry another request."""
    try:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b"", True
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader), True
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError(f"malformed Content-Length {length!r}")
            return await reader.readexactly(int(length)), True
        return await reader.read(), False  # delimited by the end of the connection
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("the connection ended inside the answer's body") from exc


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise ProtocolError(f"malformed chunk size {size_text[:20]!r}") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
