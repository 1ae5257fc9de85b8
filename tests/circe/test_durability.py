"""A task server pushes an item's outputs while they are flushed, and forgets the item (its
inputs) only once both are done: the flush is off the item's path, not off its guarantee.

The task server runs in this process (so its spool's flush can be held at will); its child
is a real aiohttp server on a loopback port that records what it is sent.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from circe_apps import diamond_app

from jupiter.circe.config import load_config
from jupiter.circe.devrun import LocalPipeline
from jupiter.circe.taskserver import TaskServer
from jupiter.circe.transport import Backoff


async def _child(port: int, got: list[str]) -> web.AppRunner:
    async def receive(request: web.Request) -> web.Response:
        await request.read()
        got.append(request.match_info["name"])
        return web.json_response({"stored": True})

    app = web.Application()
    app.router.add_put("/items/{item}/{parent}/{name}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _server(tmp_path: Path) -> tuple[TaskServer, LocalPipeline, str]:
    """Task B of the diamond app, in this process; returns it, the pipeline and D's key."""
    app = diamond_app(tmp_path / "app")
    pipe = LocalPipeline(app, tmp_path / "app", tmp_path / "state")
    server = TaskServer(load_config(pipe.config_file), app.task("B").key)
    server.sender.backoff = Backoff(0.01, 0.02)
    await server.startup()
    return server, pipe, app.task("D").key


class HeldFlush:
    """Replaces a spool's flush: each call records what it flushes, then waits for
    ``release`` before flushing for real (in the server's worker thread)."""

    def __init__(self, server: TaskServer) -> None:
        self.release = threading.Event()
        self.calls: list[str] = []
        self.entered = threading.Event()
        self._flush = server.spool.flush
        server.spool.flush = self  # type: ignore[method-assign]

    def __call__(self, entry: Any) -> None:
        self.calls.append(type(entry).__name__)
        self.entered.set()
        self.release.wait(10)
        self._flush(entry)


async def until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_outputs_go_out_while_they_are_flushed_and_the_item_waits_for_the_flush(
        tmp_path: Path) -> None:
    server, pipe, d = await _server(tmp_path)
    got: list[str] = []
    child = await _child(pipe.ports[d], got)
    held = HeldFlush(server)
    try:
        entry = server.spool.write_out("7", {"7-b.txt": b"payload"}, {d: ["7-b.txt"]},
                                       sync=False)
        server.spool.commit_out(entry)
        push = asyncio.ensure_future(server._push(entry))
        await until(lambda: got, "the child to receive the output")
        assert got == ["7-b.txt"]  # delivered while the flush is held...
        assert held.calls == ["OutEntry"] and not push.done()
        assert server.spool.has_out("7") and not server.spool.is_done("7")  # ...item kept
        held.release.set()
        await asyncio.wait_for(push, 10)
        assert server.spool.is_done("7") and not server.spool.has_out("7")
        assert server.spool.flushed(entry)
    finally:
        held.release.set()
        await server.shutdown()
        await child.cleanup()


async def test_a_failed_flush_keeps_the_item_and_says_why(tmp_path: Path) -> None:
    server, pipe, d = await _server(tmp_path)
    got: list[str] = []
    child = await _child(pipe.ports[d], got)

    def broken_flush(entry: Any) -> None:
        raise OSError(5, "Input/output error")

    server.spool.flush = broken_flush  # type: ignore[method-assign]
    try:
        entry = server.spool.write_out("8", {"8-b.txt": b"x"}, {d: ["8-b.txt"]}, sync=False)
        server.spool.commit_out(entry)
        await asyncio.wait_for(server._push(entry), 10)
        assert got == ["8-b.txt"]
        assert server.spool.has_out("8") and not server.spool.is_done("8")
        assert "spool flush failed" in server.status()["errors"][-1]["error"]
    finally:
        await server.shutdown()
        await child.cleanup()


async def test_an_input_acknowledged_during_an_output_flush_waits_for_that_flush(
        tmp_path: Path) -> None:
    server, _, d = await _server(tmp_path)
    held = HeldFlush(server)
    try:
        inp = server.spool.write_in("9", server.parents[0], "9-left.bin", 1, b"L", "0" * 64,
                                    sync=False)
        out = server.spool.write_out("5", {"5-b.txt": b"o"}, {d: ["5-b.txt"]}, sync=False)
        flushing = server._flush_soon(out)  # covers the input, written before it
        ack = asyncio.ensure_future(server._durable(inp))
        await until(held.entered.is_set, "the output's flush to start")
        for _ in range(3):  # the ack can only wait for that flush: let it get that far
            await asyncio.sleep(0)
        assert not ack.done() and held.calls == ["OutEntry"]
        held.release.set()
        await asyncio.wait_for(ack, 10)
        await flushing
        assert held.calls == ["OutEntry"]  # one flush made both durable
        assert server.spool.flushed(inp)
    finally:
        held.release.set()
        await server.shutdown()
