"""The per-item event reporter: idle until an event comes, then batched POSTs to home.

A small fake stands in for the HTTP sender (the reporter's transport is exercised for real
by the pipeline tests); it records each delivery and can play an unreachable home.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from jupiter.circe.events import EventReporter
from jupiter.circe.transport import Delivery


class FakeSender:
    """Records POST bodies; answers ``status`` (503: home unreachable until the deadline)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.delivered = asyncio.Event()

    async def deliver(self, url: str, body: bytes, headers: dict[str, str], *, method: str,
                      deadline: float | None = None) -> Delivery:
        assert url == "http://home:7800/events" and method == "POST"
        if self.status >= 500:
            return Delivery(self.status, "home unreachable", 1)
        self.bodies.append(json.loads(body))
        self.delivered.set()
        return Delivery(self.status, "", 1)


def reporter(sender: FakeSender, *, interval: float, batch: int) -> EventReporter:
    return EventReporter(sender, "http://home:7800", "t", "n1",  # type: ignore[arg-type]
                         interval=interval, batch=batch)


def kinds(sender: FakeSender) -> list[list[str]]:
    return [[e["kind"] for e in b["events"]] for b in sender.bodies]


def test_an_idle_reporter_waits_for_the_first_event_then_sends_one_batch() -> None:
    async def main() -> None:
        sender = FakeSender()
        r = reporter(sender, interval=0.05, batch=100)
        runner = asyncio.create_task(r.run())
        await asyncio.sleep(0)  # the reporter reaches its wait
        # idle: parked on "events pending", no timer of its own
        assert not r._pending.is_set() and sender.bodies == []
        r.emit("i1", "enter", 1.0)
        r.emit("i1", "start", 2.0)
        await asyncio.wait_for(sender.delivered.wait(), 5)
        assert kinds(sender) == [["enter", "start"]]
        assert sender.bodies[0]["events"][0] == {"task": "t", "node": "n1", "item": "i1",
                                                 "kind": "enter", "t": 1.0}
        await asyncio.sleep(0)
        assert not r._pending.is_set() and r.sent == 2  # idle again
        runner.cancel()

    asyncio.run(main())


def test_a_full_batch_goes_at_once_without_waiting_the_interval() -> None:
    async def main() -> None:
        sender = FakeSender()
        r = reporter(sender, interval=3600, batch=3)  # only a full batch can send in time
        runner = asyncio.create_task(r.run())
        for i in range(3):
            r.emit(f"i{i}", "finish", float(i), error=None)
        await asyncio.wait_for(sender.delivered.wait(), 5)
        assert kinds(sender) == [["finish"] * 3]
        assert "error" not in sender.bodies[0]["events"][0]  # None extras are left out
        runner.cancel()

    asyncio.run(main())


@pytest.mark.parametrize("outage", [1, 3])
def test_events_are_kept_while_home_is_unreachable(outage: int) -> None:
    async def main() -> None:
        sender = FakeSender()
        sender.status = 503
        r = reporter(sender, interval=0.01, batch=100)
        attempts = 0
        real = sender.deliver

        async def flaky(*args: Any, **kwargs: Any) -> Delivery:
            nonlocal attempts
            attempts += 1
            if attempts > outage:
                sender.status = 200
            return await real(*args, **kwargs)

        sender.deliver = flaky  # type: ignore[method-assign]
        runner = asyncio.create_task(r.run())
        r.emit("i1", "enter", 1.0)
        await asyncio.wait_for(sender.delivered.wait(), 5)
        assert kinds(sender) == [["enter"]] and attempts == outage + 1 and r.dropped == 0
        runner.cancel()

    asyncio.run(main())
