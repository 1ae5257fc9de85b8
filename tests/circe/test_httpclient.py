"""The pushes' HTTP/1.1 client against a real aiohttp server and hand-written raw servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from jupiter.circe.devrun import free_port
from jupiter.circe.httpclient import HttpClient, ProtocolError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def aiohttp_server() -> AsyncIterator[tuple[str, list[tuple[str, bytes, str, str]]]]:
    """An aiohttp server that records (path, body, auth, sha header) and answers JSON."""
    seen: list[tuple[str, bytes, str, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append((request.path_qs, body, request.headers.get("Authorization", ""),
                     request.headers.get("X-Test", "")))
        if request.path == "/chunked":
            resp = web.StreamResponse(status=202)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(b"ab")
            await resp.write(b"cd" * 5000)
            await resp.write_eof()
            return resp
        if request.path == "/busy":
            return web.json_response({"error": "full"}, status=503,
                                     headers={"Retry-After": "3"})
        return web.json_response({"len": len(body)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def test_requests_reuse_one_connection_and_carry_headers_and_body(aiohttp_server) -> None:
    base, seen = aiohttp_server
    client = HttpClient({"Authorization": "Bearer " + "t" * 20}, timeout=5)
    try:
        bodies = [b"", b"x" * 70_000, bytes(range(256))]
        for i, body in enumerate(bodies):
            resp = await client.request("PUT", f"{base}/items/a%2Fb/{i}?q=1", body,
                                        {"X-Test": str(i)})
            assert resp.status == 200 and resp.headers["content-type"].startswith(
                "application/json")
            assert resp.text() == f'{{"len": {len(body)}}}'
        assert len(client._idle[base]) == 1  # one keep-alive connection carried all three
    finally:
        await client.close()
    assert [(p, b, a, x) for p, b, a, x in seen] == [
        (f"/items/a%2Fb/{i}?q=1", body, "Bearer " + "t" * 20, str(i))
        for i, body in enumerate(bodies)]


async def test_chunked_answers_and_error_statuses_are_read_whole(aiohttp_server) -> None:
    base, _ = aiohttp_server
    client = HttpClient(timeout=5)
    try:
        resp = await client.request("POST", f"{base}/chunked", b"{}")
        assert resp.status == 202 and resp.body == b"ab" + b"cd" * 5000
        resp = await client.request("PUT", f"{base}/busy", b"x")
        assert resp.status == 503 and resp.headers["retry-after"] == "3"
        # the connection is still good after both
        assert (await client.request("PUT", f"{base}/ok", b"y")).status == 200
    finally:
        await client.close()


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    served: list[int] = []

    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                              ) -> None:
        await read_request(reader)
        served.append(1)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # keep-alive promised, connection dropped anyway

    server, base = await raw_server(once_then_close)
    client = HttpClient(timeout=5)
    try:
        for _ in range(3):
            resp = await client.request("PUT", f"{base}/x", b"body")
            assert resp.status == 200 and resp.body == b"ok"
    finally:
        await client.close()
        server.close()
    assert len(served) == 3


async def test_a_request_a_reused_connection_drops_unanswered_is_sent_again_once() -> None:
    answered: list[int] = []

    async def one_answer_per_connection(reader: asyncio.StreamReader,
                                        writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        answered.append(1)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(reader)  # the next request on this connection: dropped unanswered
        writer.close()

    server, base = await raw_server(one_answer_per_connection)
    client = HttpClient(timeout=5)
    try:
        for _ in range(3):
            assert (await client.request("PUT", f"{base}/x", b"body")).body == b"ok"
    finally:
        await client.close()
        server.close()
    assert len(answered) == 3  # each request answered on a fresh connection


async def test_connection_close_and_read_to_end_answers_are_not_reused() -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                              ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server, base = await raw_server(close_delimited)
    client = HttpClient(timeout=5)
    try:
        resp = await client.request("GET", f"{base}/")
        assert resp.body == b"until the end"
        assert not client._idle.get(base)
    finally:
        await client.close()
        server.close()


@pytest.mark.parametrize("answer, message", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n", "malformed answer header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended inside the answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"", "closed the connection without answering"),
])
async def test_answers_that_are_not_http_raise_a_connection_error(answer: bytes, message: str
                                                                  ) -> None:
    async def bad(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, base = await raw_server(bad)
    client = HttpClient(timeout=5)
    try:
        with pytest.raises(ProtocolError, match=message) as info:
            await client.request("PUT", f"{base}/x", b"b")
        assert isinstance(info.value, OSError)  # retried by callers like a refused connection
    finally:
        await client.close()
        server.close()


async def test_a_silent_server_times_out_and_its_connection_is_dropped() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.close()

    server, base = await raw_server(silent)
    client = HttpClient(timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            await client.request("PUT", f"{base}/x", b"b")
        assert not client._idle.get(base)
    finally:
        release.set()
        await client.close()
        server.close()


async def test_refused_connections_and_bad_urls_or_headers() -> None:
    client = HttpClient(timeout=5)
    try:
        with pytest.raises(OSError):
            await client.request("PUT", f"http://127.0.0.1:{free_port()}/x", b"b")
        with pytest.raises(ValueError, match="unsupported URL"):
            await client.request("PUT", "ftp://127.0.0.1/x", b"b")
        with pytest.raises(ValueError, match="invalid HTTP header"):
            await client.request("PUT", "http://127.0.0.1:1/x", b"b", {"X-A": "1\r\nX-B: 2"})
        with pytest.raises(ValueError, match="invalid request target"):
            await client.request("PUT", "http://127.0.0.1:1/a b", b"b")
    finally:
        await client.close()
    with pytest.raises(ValueError, match="invalid HTTP header"):
        HttpClient({"Authorization": "Bearer x\nInjected: 1"})
