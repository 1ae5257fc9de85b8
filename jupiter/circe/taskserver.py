"""``jupiter circe task``: the server that runs one task of the DAG.

Per item: inputs arrive (``PUT /items/{item}/{parent}/{file}``) and are spooled durably
before the 200; when the item's join is complete the task code runs (worker pool, at most
``concurrency`` items at once, ``retries`` extra attempts); the outputs are written to the
spool and pushed to the children (with retries, backoff, Retry-After) while their flush to
disk runs in a worker thread, and the item is forgotten (its inputs released) once every
child acknowledged and that flush returned. A restart recovers the spool: complete joins
run, persisted outputs are pushed again (receivers acknowledge repeats).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import shutil
import time
from collections import Counter as Tally
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

import psutil
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from jupiter.app.model import HOME
from jupiter.circe.config import CirceConfig
from jupiter.circe.events import EventReporter
from jupiter.circe.join import Join, Joiner, JoinError, RoutingError, input_names, route_outputs
from jupiter.circe.runner import (
    InlinePolicy,
    Outcome,
    TaskCode,
    execute,
    load_task_code,
    worker_execute,
    worker_init,
)
from jupiter.circe.service import Service
from jupiter.circe.spool import InEntry, OutEntry, Spool, remove
from jupiter.circe.transport import (
    FILES_HEADER,
    Backoff,
    BodyError,
    Sender,
    check_length,
    declared_sha,
    error_response,
    file_name_problem,
    files_header,
    item_id_problem,
    item_url,
    parse_marker,
    read_body,
    read_token,
)

log = logging.getLogger("jupiter.circe.task")
INLINE_IO_BYTES = 64 * 1024
INLINE_WARN_S = 0.1  # an inline run this long is logged
T = TypeVar("T")


async def _gather(aws: list[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather``, but a single coroutine is awaited directly, so its request goes
    out now rather than after whatever else is ready to run (a new task would only start on
    the loop's next turn)."""
    if len(aws) == 1:
        return [await aws[0]]
    return await asyncio.gather(*aws)


class TaskServer(Service):
    component = "circe-task"

    def __init__(self, cfg: CirceConfig, key: str) -> None:
        opts = cfg.options
        super().__init__(read_token(cfg.token_file), int(opts["max_body_bytes"]))
        self.cfg = cfg
        self.key = key
        self.task = cfg.task_by_key(key)
        self.node = cfg.mapping.get(self.task.name, "")
        self.parents = cfg.parent_keys(self.task)
        self.children = cfg.child_keys(self.task)
        self.concurrency = int(cfg.option("concurrency", key))
        self.retries = int(cfg.option("retries", key))
        self.executor_kind = str(cfg.option("executor", key))
        self.inline = InlinePolicy(float(cfg.option("inline_max_s", key))
                                   if self.executor_kind == "thread" else 0.0)
        self.run_places = {"inline": 0, "pool": 0}  # where task code ran
        self.spool = Spool(
            cfg.spool_dir(key),
            max_items=int(opts["spool_max_items"]),
            max_bytes=int(opts["spool_max_bytes"]),
            reserve_bytes=min(self.max_body, int(opts["spool_max_bytes"]) // 4),
            fsync=bool(opts["fsync"]),
        )
        self.retry_after = str(int(opts["retry_after_s"]))
        self.joiner = Joiner(self.parents)
        self.sender = Sender(
            self.token,
            backoff=Backoff(float(opts["backoff_base_s"]), float(opts["backoff_max_s"])),
            timeout=float(opts["request_timeout_s"]),
            parallel_per_destination=int(opts["push_parallel"]),
        )
        self.events = EventReporter(self.sender, cfg.home_url, key, self.node,
                                    interval=float(opts["event_interval_s"]),
                                    batch=int(opts["event_batch"]))
        self.slots = asyncio.Semaphore(self.concurrency)
        self.code: TaskCode | None = None
        self.pool: concurrent.futures.Executor | None = None
        self.writing: dict[tuple[str, str, str | None], asyncio.Future[None]] = {}
        self.flushing: asyncio.Future[None] | None = None  # the latest flush in a thread
        self.running: set[str] = set()
        self.queued = 0
        self.pushing: set[str] = set()
        self.tally: Tally[str] = Tally()
        self.entered = 0
        self.finished = 0
        self.last_errors: list[dict[str, Any]] = []
        self._retry_log: dict[str, tuple[float, int]] = {}
        self._busy = 0  # requests being received + items being run
        self._metrics()
        if set(self.children) - {HOME} - set(cfg.task_urls):
            self.ready_reasons.append("endpoints of children")

    # ---- metrics and status ------------------------------------------------------------
    def _metrics(self) -> None:
        r = self.registry
        labels = {"task": self.key}
        self.m_requests = Counter("jupiter_circe_task_requests", "Item deliveries by answer",
                                  ["task", "code"], registry=r)
        self.m_runs = Counter("jupiter_circe_task_runs", "Item runs by outcome",
                              ["task", "outcome"], registry=r)
        self.m_run_seconds = Histogram("jupiter_circe_task_run_seconds", "Task code run time",
                                       ["task"], registry=r)
        self.m_pushes = Counter("jupiter_circe_task_pushes", "Output deliveries by outcome",
                                ["task", "outcome"], registry=r)
        g = Gauge("jupiter_circe_task_spool_items", "Items in the spool", ["task"], registry=r)
        g.labels(**labels).set_function(lambda: self.spool.items)
        g = Gauge("jupiter_circe_task_spool_bytes", "Bytes in the spool", ["task"], registry=r)
        g.labels(**labels).set_function(lambda: self.spool.bytes)
        g = Gauge("jupiter_circe_task_running", "Items running", ["task"], registry=r)
        g.labels(**labels).set_function(lambda: len(self.running))
        g = Gauge("jupiter_circe_task_ready", "1 when ready", ["task"], registry=r)
        g.labels(**labels).set_function(lambda: 1 if self.ready else 0)

    def cpu_seconds(self) -> float:
        """CPU seconds this task has used so far: its process (every thread), and with
        ``executor: process`` its worker processes. A finish event carries it, so that home's
        runtime table gives each task's CPU per item in a stream (the report's measured
        ``cpu_per_item_s``: the work a node's CPU share must sustain)."""
        total = time.process_time()
        if self.executor_kind == "process":
            with contextlib.suppress(psutil.Error):
                for worker in psutil.Process().children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        times = worker.cpu_times()
                        total += times.user + times.system
        return total

    def status(self) -> dict[str, Any]:
        return {
            "schema": "jupiter.circe.task-status/v1",
            "component": "task",
            "task": self.task.name,
            "key": self.key,
            "node": self.node,
            "ready": self.ready,
            "waiting_for": list(self.ready_reasons),
            "parents": self.parents,
            "children": self.children,
            "entered": self.entered,
            "done": self.finished,
            "total": self.entered,
            "running": len(self.running),
            "runs": dict(self.run_places),
            "queued": self.queued,
            "joins_open": self.joiner.pending(),
            "pushing": len(self.pushing),
            "answers": dict(self.tally),
            "spool": self.spool.stats(),
            "sender": {"attempts": self.sender.attempts, "retries": self.sender.retries,
                       "pushbacks": self.sender.pushbacks},
            "events": {"sent": self.events.sent, "buffered": len(self.events.buffer),
                       "dropped": self.events.dropped},
            "errors": self.last_errors[-20:],
        }

    def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                ) -> web.Response:
        self.tally[str(status)] += 1
        self.m_requests.labels(self.key, str(status)).inc()
        if status >= 400:
            return error_response(status, body["error"], headers)
        return web.json_response(body, status=status, headers=headers)

    # ---- lifecycle ---------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        for method in ("PUT", "POST"):
            app.router.add_route(method, "/items/{item}/{parent}/{name}", self.receive)
            app.router.add_route(method, "/items/{item}/{parent}", self.receive)

    async def startup(self) -> None:
        self.ready_reasons = ["task code", "spool recovery", *[
            r for r in self.ready_reasons if r == "endpoints of children"]]
        work = self.spool.root / "work"
        shutil.rmtree(work, ignore_errors=True)
        loop = asyncio.get_running_loop()
        self.code = await loop.run_in_executor(
            None, load_task_code, self.task, self.cfg.app_dir, work
        )
        if self.executor_kind == "process":
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.concurrency, mp_context=multiprocessing.get_context("spawn"),
                initializer=worker_init,
                initargs=(self.task.to_dict(), str(self.cfg.app_dir), str(work)),
            )
        else:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix=f"task-{self.key}"
            )
        self.ready_reasons.remove("task code")
        log.info("task %s (%s, %s) loaded from %s", self.task.name, self.task.interface,
                 self.executor_kind, self.task.script)
        ins, outs = await loop.run_in_executor(None, self.spool.recover)
        for out in outs:
            self.spawn(self._push(out), f"push {out.item}")
        for entry in ins:
            try:
                join = self.joiner.offer(entry.item, entry.parent, entry.name, entry.files,
                                         entry.error)
            except JoinError as exc:
                log.error("dropping spooled input %s: %s", entry.path, exc)
                continue
            if join is not None:
                self._start_run(join)
        if ins or outs:
            log.info("recovered %d input(s), %d persisted output(s)", len(ins), len(outs))
        self.ready_reasons.remove("spool recovery")
        self.spawn(self.events.run(), "events")

    async def shutdown(self) -> None:
        await self.events.flush(deadline=time.monotonic() + 2.0)
        await self.sender.close()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.spool.close()

    # ---- receiving ---------------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        self._busy += 1
        try:
            stored = await self._store(request)
        finally:
            self._busy -= 1
        if isinstance(stored, web.Response):
            return stored
        if self._accept(stored):
            # The ack is off the item's critical path, its run and push are on it: give the
            # run a turn of the loop to start (and, when its code runs inline, to persist its
            # outputs, a flush that covers this input too, and reach its push) and the HTTP
            # client one to write that request, before the ack is written.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await self._durable(stored)
        return self._answer(200, {"item": stored.item, "stored": True})

    async def _durable(self, entry: InEntry) -> None:
        """Flush an input before it is acknowledged (nothing to do when a later record's
        flush already covered it, or waiting for the one under way: the flush of the item's
        outputs, written after it, covers it)."""
        if self.spool.flushed(entry):
            return
        pending = self.flushing
        if pending is not None and not pending.done():
            with contextlib.suppress(OSError):  # that flush's own caller reports its failure
                await asyncio.shield(pending)
            if self.spool.flushed(entry):
                return
        await self._io(0, self.spool.flush, entry)

    def _flush_soon(self, entry: OutEntry) -> asyncio.Future[None]:
        """Flush a record in a worker thread, so the push goes out meanwhile."""
        if self.spool.flushed(entry):
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        self.flushing = asyncio.ensure_future(asyncio.to_thread(self.spool.flush, entry))
        return self.flushing

    async def _store(self, request: web.Request) -> web.Response | InEntry:
        """Check one delivery and spool it (written, not yet flushed): the stored entry, or
        the answer."""
        if not self.ready:
            return self._answer(503, {"error": "not ready: " + ", ".join(self.ready_reasons)},
                                {"Retry-After": self.retry_after})
        item = request.match_info["item"]
        parent = request.match_info["parent"]
        name = request.match_info.get("name")
        problem = item_id_problem(item) or (file_name_problem(name) if name is not None
                                            else None)
        if problem:
            return self._answer(400, {"error": problem})
        if parent not in self.parents:
            return self._answer(400, {"error": f"{parent!r} is not a parent of task "
                                      f"{self.key!r} (parents: {', '.join(self.parents)})"})
        try:
            sha = declared_sha(request)
            files = files_header(request) if name is not None else 0
            length = check_length(request, self.max_body)
        except BodyError as exc:
            return self._answer(exc.status, {"error": exc.message})

        key = (item, parent, name)
        if self.spool.is_done(item) or self.spool.has_out(item):
            return self._answer(200, {"item": item, "duplicate": True})
        pending = self.writing.get(key)
        if pending is not None:
            await asyncio.shield(pending)
        existing = self.spool.lookup_in(item, parent, name)
        if existing is not None:
            if existing.sha256 != sha:
                return self._answer(409, {"error": f"item {item!r} from {parent!r}: {name!r} "
                                          "was already received with different content"})
            await self._durable(existing)
            return self._answer(200, {"item": item, "duplicate": True})
        if self.spool.is_done(item) or self.spool.has_out(item):
            return self._answer(200, {"item": item, "duplicate": True})
        try:
            self.joiner_check(item, parent, name, files)
        except JoinError as exc:
            return self._answer(400, {"error": str(exc)})

        size = length if length is not None else 0
        reason = self.spool.admission(item, size)
        if reason:
            return self._answer(503, {"error": reason}, {"Retry-After": self.retry_after})
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writing[key] = future
        self.spool.reserve(item, size)
        try:
            body = await read_body(request, self.max_body, sha)
            error = None
            if name is None:
                error = parse_marker(body)
            if length is None and (reason := self.spool.admission(item, len(body))):
                return self._answer(503, {"error": reason}, {"Retry-After": self.retry_after})
            entry = await self._io(len(body), partial(self.spool.write_in, sync=False), item,
                                   parent, name, files, body, sha, error)
            self.spool.commit_in(entry)
        except BodyError as exc:
            return self._answer(exc.status, {"error": exc.message})
        finally:
            self.spool.release(item, size)
            del self.writing[key]
            future.set_result(None)
        return entry

    def joiner_check(self, item: str, parent: str, name: str | None, files: int) -> None:
        """Raise JoinError if the delivery contradicts the item's join (without recording)."""
        join = self.joiner.open.get(item)
        probe = Join(item, self.parents)
        if join is not None:
            for p, e in join.edges.items():
                probe.edges[p].expected = e.expected
                probe.edges[p].names = set(e.names)
                probe.edges[p].error = e.error
        probe.add(parent, name, files)

    def _accept(self, entry: InEntry) -> bool:
        """Offer a stored input to the join; True if it completed the join (run started)."""
        try:
            join = self.joiner.offer(entry.item, entry.parent, entry.name, entry.files,
                                     entry.error)
        except JoinError as exc:  # checked before writing; only a race could get here
            log.error("input %s of item %s rejected by the join: %s", entry.name, entry.item, exc)
            return False
        if join is None:
            return False
        self._start_run(join)
        return True

    async def _read(self, size: int, func: Callable[..., T], *args: Any) -> T:
        """Small reads (page cache; ``size`` 0: kept in memory) inline, large ones in a
        thread."""
        if size <= INLINE_IO_BYTES:
            return func(*args)
        return await asyncio.to_thread(func, *args)

    async def _io(self, size: int, func: Callable[..., T], *args: Any) -> T:
        """Spool writes. A small write while nothing else is being received or run here runs
        inline (waking a thread costs more than the write); under load it runs in worker
        threads, so concurrent writes overlap (they share flushes) and the loop keeps
        serving."""
        if size <= INLINE_IO_BYTES and self._busy <= 1:
            return func(*args)
        return await asyncio.to_thread(func, *args)

    def _finish(self, item: str) -> None:
        paths = self.spool.finish(item)
        if paths:
            self.spawn(asyncio.to_thread(remove, paths), "remove files")

    # ---- running -----------------------------------------------------------------------
    def _start_run(self, join: Join) -> None:
        self.entered += 1
        self.running.add(join.item)
        self.events.emit(join.item, "enter")
        self.spawn(self._run(join), f"run {join.item}")

    async def _run(self, join: Join) -> None:
        self._busy += 1
        try:
            await self._run_item(join)
        finally:
            self._busy -= 1

    async def _run_item(self, join: Join) -> None:
        item = join.item
        self.queued += 1
        try:
            async with self.slots:
                self.queued -= 1
                outcome, kind = await self._execute(join)
        except BaseException:
            self.running.discard(item)
            raise
        error = outcome.error
        outputs: dict[str, bytes] = {}
        routes: dict[str, list[str]] = {}
        if outcome.ok:
            assert outcome.outputs is not None
            try:
                routes = route_outputs(outcome.outputs, self.children, self.task.mode)
                outputs = outcome.outputs
            except RoutingError as exc:
                error, kind = str(exc), "failed"
        carried = None  # the failure children are told about (names where it happened)
        if kind == "failed":
            carried = f"{self.task.name}: {error}"
            self._record_error(item, error)
        elif kind == "skipped":
            carried = join.error
        if carried is not None:
            routes = {c: [] for c in self.children}
        entry = await self._io(sum(len(v) for v in outputs.values()),
                               partial(self.spool.write_out, sync=False), item, outputs, routes,
                               carried)
        self.spool.commit_out(entry)
        self.running.discard(item)
        self.finished += 1
        self.m_runs.labels(self.key, kind).inc()
        self.events.emit(item, kind, outcome.finished, error=error, attempts=outcome.attempts,
                         cpu=round(self.cpu_seconds(), 6) if kind == "finish" else None)
        await self._push(entry)

    async def _execute(self, join: Join) -> tuple[Outcome, str]:
        item = join.item
        now = time.time()
        if join.error is not None:
            return Outcome(None, join.error, 0, now, now), "skipped"
        if not join.inputs():  # every parent sent nothing for this item: nothing to run
            return Outcome({}, None, 0, now, now), "skipped"
        entries: list[InEntry] = []
        for parent, name in join.inputs():
            entry = self.spool.lookup_in(item, parent, name)
            if entry is None:
                raise RuntimeError(f"spool lost input {name!r} of item {item!r}")
            entries.append(entry)
        try:
            names = input_names(join.inputs())
        except JoinError as exc:
            return Outcome(None, str(exc), 0, now, now), "failed"
        datas = await self._read(sum(e.size for e in entries if e.data is None),
                                 lambda: [e.read() for e in entries])
        inputs = list(zip(names, datas, strict=True))
        loop = asyncio.get_running_loop()
        start = time.time()
        self.events.emit(item, "start", start)
        assert self.pool is not None and self.code is not None
        if self.executor_kind == "process":
            outcome = await loop.run_in_executor(self.pool, worker_execute, item, inputs,
                                                 self.retries)
        else:
            def on_failure(attempt: int, error: str) -> None:
                if attempt <= self.retries:  # this attempt will be retried
                    loop.call_soon_threadsafe(partial(self.events.emit, item, "retry",
                                                      time.time(), error=error,
                                                      attempt=attempt))

            if self.inline.inline(sum(e.size for e in entries)):
                self.run_places["inline"] += 1
                outcome = execute(self.code, item, inputs, self.retries, on_failure)
                if outcome.wall_s > INLINE_WARN_S:
                    log.warning("item %s: the task code held the event loop %.3f s (%.3f s of "
                                "CPU, %.3f s waiting; its recent runs took at most %.6f s of "
                                "either); the next runs go to the worker pool if it computed or "
                                "waited that long (set inline_max_s: 0 for this task if its run "
                                "time varies that much)", item, outcome.wall_s, outcome.cpu_s,
                                outcome.waited_s, self.inline.max_seconds)
            else:
                self.run_places["pool"] += 1
                outcome = await loop.run_in_executor(self.pool, execute, self.code, item,
                                                     inputs, self.retries, on_failure)
            self.inline.observe(outcome.cpu_s, outcome.waited_s)
        self.m_run_seconds.labels(self.key).observe(outcome.wall_s)
        if not outcome.ok:
            log.warning("item %s failed after %d attempt(s): %s", item, outcome.attempts,
                        outcome.error)
        return outcome, ("finish" if outcome.ok else "failed")

    def _record_error(self, item: str, error: str | None) -> None:
        if error:
            self.last_errors.append({"item": item, "error": error, "t": time.time()})
            del self.last_errors[:-100]

    def _log_retry(self, dest: str, message: str) -> None:
        """At most one retry line per destination and second (with a count of the rest)."""
        now = time.monotonic()
        last, quiet = self._retry_log.get(dest, (0.0, 0))
        if now - last >= 1.0:
            more = f" ({quiet} more retries to {dest} meanwhile)" if quiet else ""
            log.info("%s%s", message, more)
            self._retry_log[dest] = (now, 0)
        else:
            self._retry_log[dest] = (last, quiet + 1)

    # ---- pushing -----------------------------------------------------------------------
    async def _push(self, entry: OutEntry) -> None:
        """Deliver the outputs while they are flushed; forget the item once both are done (a
        failed flush keeps it, and its inputs, for the restart's recovery to run again)."""
        self.pushing.add(entry.item)
        try:
            durable = self._flush_soon(entry)
            results = await _gather([
                self._deliver(entry, dest, names) for dest, names in entry.routes.items()
            ])
            rejected = [r for r in results if r]
            if rejected:
                error = "; ".join(rejected)
                log.error("item %s: %s", entry.item, error)
                self._record_error(entry.item, error)
                self.events.emit(entry.item, "failed", error=error)
            try:
                await durable
            except OSError as exc:
                log.error("item %s: its outputs could not be made durable (%s); keeping its "
                          "inputs for the next start", entry.item, exc)
                self._record_error(entry.item, f"spool flush failed: {exc}")
                return
            self._finish(entry.item)
        finally:
            self.pushing.discard(entry.item)

    async def _deliver(self, entry: OutEntry, dest: str, names: list[str]) -> str | None:
        """Deliver the item's files (or an edge marker) to one destination; None when acked."""
        base = self.cfg.url_of(dest)

        def retrying(msg: str) -> None:
            self._log_retry(dest, f"push {entry.item} -> {dest}: {msg}")

        async def one(name: str | None) -> str | None:
            sha = None
            if name is None:
                url = item_url(base, entry.item, self.key)
                body = json.dumps({"files": 0, "error": entry.error}).encode()
                headers = {"Content-Type": "application/json"}
            else:
                url = item_url(base, entry.item, self.key, name)
                out = entry.file(name)
                cached = entry.cache is not None and name in entry.cache
                body = await self._read(0 if cached else out.size, entry.read, name)
                headers = {FILES_HEADER: str(len(names))}
                sha = out.sha256
            result = await self.sender.deliver(url, body, headers, on_retry=retrying,
                                               sha256=sha)
            if result.ok:
                self.m_pushes.labels(self.key, "ok").inc()
                return None
            self.m_pushes.labels(self.key, "rejected").inc()
            return f"{dest} rejected {name or 'edge marker'}: {result.status} {result.body}"

        results = await _gather([one(n) for n in (names or [None])])
        errors = [r for r in results if r]
        return "; ".join(errors) if errors else None
