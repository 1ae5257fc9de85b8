"""Per-item timing events a task reports to home, batched (``POST /events``).

An event: ``{"task": key, "node": node, "item": id, "kind": k, "t": wall-clock seconds}``
with ``kind`` one of ``enter`` (the item's inputs are all in: it is queued here),
``start`` (the task code starts on it), ``finish`` (outputs persisted; ``cpu``: the task's
CPU seconds so far, for its CPU per item in a stream), ``failed`` (every
attempt raised, or its outputs could not be routed or delivered; ``error`` says why),
``skipped`` (an upstream task failed: not run; ``error`` names it), ``retry`` (one attempt
raised; ``error``, ``attempt``). Events are best-effort telemetry: the data itself never
depends on them. A task buffers at most ``MAX_BUFFER`` events while home is unreachable.

The reporter sleeps while it has nothing to send (an idle task wakes for nothing: on a
quota-limited edge node periodic wake-ups are CPU the tasks do not get). The first event
wakes it; it then collects events for up to ``interval`` seconds (or until ``batch`` are
buffered) and sends them in one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from jupiter.circe.transport import Sender

MAX_BUFFER = 200_000
log = logging.getLogger("jupiter.circe.events")


class EventReporter:
    def __init__(self, sender: Sender, home_url: str, task: str, node: str, *,
                 interval: float, batch: int) -> None:
        self.sender = sender
        self.url = home_url.rstrip("/") + "/events"
        self.task = task
        self.node = node
        self.interval = interval
        self.batch = batch
        self.buffer: list[dict[str, Any]] = []
        self.dropped = 0
        self.sent = 0
        self._pending = asyncio.Event()  # the buffer has events
        self._full = asyncio.Event()  # the buffer holds a batch

    def emit(self, item: str, kind: str, t: float | None = None, **extra: Any) -> None:
        if len(self.buffer) >= MAX_BUFFER:
            self.buffer.pop(0)
            self.dropped += 1
        event = {"task": self.task, "node": self.node, "item": item, "kind": kind,
                 "t": time.time() if t is None else t}
        event.update({k: v for k, v in extra.items() if v is not None})
        self.buffer.append(event)
        self._pending.set()
        if len(self.buffer) >= self.batch:
            self._full.set()

    async def run(self) -> None:
        while True:
            await self._pending.wait()  # idle until there is something to send
            if len(self.buffer) < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.interval)
            self._full.clear()
            if await self.flush():
                if not self.buffer:
                    self._pending.clear()
            else:  # home unreachable: keep the events, try again an interval later
                await asyncio.sleep(self.interval)

    async def flush(self, deadline: float | None = None) -> bool:
        while self.buffer:
            chunk = self.buffer[: self.batch]
            del self.buffer[: len(chunk)]
            body = json.dumps({"events": chunk}, separators=(",", ":")).encode()
            result = await self.sender.deliver(
                self.url, body, {"Content-Type": "application/json"}, method="POST",
                deadline=deadline,
            )
            if result.ok:
                self.sent += len(chunk)
            elif 400 <= result.status < 500:
                log.error("home rejected %d events (%s): %s", len(chunk), result.status,
                          result.body)
                self.dropped += len(chunk)
            else:
                self.buffer[:0] = chunk  # home unreachable until the deadline: keep them
                return False
        return True
