"""``jupiter circe home``: ingress and egress of the pipeline, and its per-item record.

Ingress: ``PUT /submit/{file}`` (``jupiter submit``) and the watched folder
``state_dir/input/``. Each submitted file is one item (id: ``X-Jupiter-Item`` if given,
else the file name up to the first '.'); it is persisted in home's outbox before the 200
and pushed to every ingress task. A repeat of the same id and content is acknowledged, not
duplicated; the same id with other content is refused (409).

Egress: sinks push results to ``PUT /items/{item}/{sink}/{file}``; they land durably in
``state_dir/results/<item>/<file>``. An item is *completed* when every sink's edge is closed
without error, *failed* when a task reported a failure for it (or a sink's edge carried one).

Records: ``state_dir/circe/home/journal.jsonl`` (fsynced: submissions, results, failures;
replayed on restart), ``events.jsonl`` (task events as received), and the runtime tables
``state_dir/circe/runtime.{jsonl,csv}`` (one row per task and item) and
``state_dir/circe/items.{jsonl,csv}`` (one row per item).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from jupiter.app.model import HOME
from jupiter.circe.config import CirceConfig
from jupiter.circe.join import Join, Joiner, JoinError
from jupiter.circe.service import Service
from jupiter.circe.spool import OutEntry, Spool, durable_write, fsync_dir, remove
from jupiter.circe.transport import (
    FILES_HEADER,
    ITEM_HEADER,
    SHA_HEADER,
    Backoff,
    BodyError,
    Sender,
    check_length,
    declared_sha,
    derive_item_id,
    error_response,
    file_name_problem,
    files_header,
    item_id_problem,
    item_url,
    parse_marker,
    read_body,
    read_token,
    sha256_hex,
)

log = logging.getLogger("jupiter.circe.home")

RUNTIME_FIELDS = ("task", "key", "node", "item", "enter", "execute", "finish", "elapsed",
                  "duration", "waiting", "status", "error", "process_cpu_s")
ITEM_FIELDS = ("item", "file", "submitted", "completed", "latency", "status", "error")
TERMINAL = ("finish", "failed", "skipped")
EVENTS_MAX_BYTES = 16 * 1024 * 1024  # a POST /events body (independent of max_body_bytes)
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass
class ItemRecord:
    item: str
    file: str | None = None
    sha256: str | None = None
    size: int = 0
    submitted: float | None = None
    results: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (sink, sha)
    completed: float | None = None
    failed: str | None = None
    failed_at: float | None = None
    last_result: float | None = None
    tabled: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # task key -> times

    @property
    def state(self) -> str:
        if self.failed is not None:
            return "failed"
        if self.completed is not None:
            return "completed"
        return "in_flight"

    @property
    def terminal_at(self) -> float | None:
        return self.failed_at if self.failed is not None else self.completed


class Journal:
    """Append-only JSON lines, fsynced (optional) before the caller acknowledges anything."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self._fh: Any = None

    def replay(self) -> list[dict[str, Any]]:
        records = []
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        log.warning("%s:%d: unreadable journal line skipped (torn write?)",
                                    self.path, n)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        return records

    def append(self, record: dict[str, Any], sync: bool = True) -> None:
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()
        if sync and self.fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _round(t: float | None) -> float | None:
    return None if t is None else round(t, 6)


def runtime_rows(rec: ItemRecord, tasks: list[tuple[str, str]], mapping: dict[str, str]
                 ) -> list[dict[str, Any]]:
    """One runtime-table row per task for an item (pure; times in epoch seconds)."""
    rows = []
    for name, key in tasks:
        ev = rec.events.get(key, {})
        enter, start = ev.get("enter"), ev.get("start")
        finish = ev.get("finish") or ev.get("failed") or ev.get("skipped")
        status = ("ok" if "finish" in ev else "failed" if "failed" in ev
                  else "skipped" if "skipped" in ev else "missing")
        rows.append({
            "task": name, "key": key, "node": ev.get("node") or mapping.get(name, ""),
            "item": rec.item, "enter": _round(enter), "execute": _round(start),
            "finish": _round(finish),
            "elapsed": _round(finish - enter) if finish is not None and enter is not None
            else None,
            "duration": _round(finish - start) if finish is not None and start is not None
            else None,
            "waiting": _round(start - enter) if start is not None and enter is not None
            else None,
            "status": status, "error": ev.get("error"),
            # the task process's CPU seconds so far when it finished the item (cumulative)
            "process_cpu_s": ev.get("cpu"),
        })
    return rows


def item_row(rec: ItemRecord) -> dict[str, Any]:
    end = rec.terminal_at
    return {
        "item": rec.item, "file": rec.file, "submitted": _round(rec.submitted),
        "completed": _round(end),
        "latency": _round(end - rec.submitted) if end is not None and rec.submitted is not None
        else None,
        "status": rec.state, "error": rec.failed,
    }


class TableWriter:
    """Appends rows to a JSON-lines file and a CSV file (header written once)."""

    def __init__(self, stem: Path, fields: tuple[str, ...]) -> None:
        self.jsonl = stem.with_suffix(".jsonl")
        self.csv = stem.with_suffix(".csv")
        self.fields = fields

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, separators=(",", ":")) + "\n")
        new = not self.csv.exists() or self.csv.stat().st_size == 0
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, lineterminator="\n")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in self.fields})
        with open(self.csv, "a", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())


class HomeServer(Service):
    component = "circe-home"

    def __init__(self, cfg: CirceConfig) -> None:
        opts = cfg.options
        super().__init__(read_token(cfg.token_file), int(opts["max_body_bytes"]))
        self.cfg = cfg
        self.root = cfg.spool_dir(HOME)
        self.fsync = bool(opts["fsync"])
        self.spool = Spool(
            self.root / "outbox",
            max_items=int(opts["spool_max_items"]),
            max_bytes=int(opts["spool_max_bytes"]),
            reserve_bytes=0,
            fsync=self.fsync,
        )
        self.retry_after = str(int(opts["retry_after_s"]))
        self.sinks = cfg.sink_keys()
        self.ingress = cfg.ingress_keys()
        self.tasks = [(t.name, t.key) for t in cfg.app.tasks]
        self.joiner = Joiner(self.sinks)
        self.sender = Sender(
            self.token,
            backoff=Backoff(float(opts["backoff_base_s"]), float(opts["backoff_max_s"])),
            timeout=float(opts["request_timeout_s"]),
            parallel_per_destination=int(opts["push_parallel"]),
        )
        self.journal = Journal(self.root / "journal.jsonl", self.fsync)
        self.items: dict[str, ItemRecord] = {}
        self.first_submitted: float | None = None
        self.last_completed: float | None = None
        self.pending_table: set[str] = set()
        self.writing: dict[tuple[str, str | None], asyncio.Future[None]] = {}  # results
        self.submitting: dict[str, asyncio.Future[None]] = {}
        self.runtime_table = TableWriter(cfg.state_dir / "circe" / "runtime", RUNTIME_FIELDS)
        self.items_table = TableWriter(cfg.state_dir / "circe" / "items", ITEM_FIELDS)
        self.failures: list[dict[str, Any]] = []
        self.waiters: dict[str, asyncio.Event] = {}  # GET /results/{item}?wait=
        self.task_counts: dict[str, dict[str, int]] = {
            key: dict.fromkeys(("enter", "start", "finish", "failed", "skipped", "retry"), 0)
            for _, key in self.tasks
        }
        self._metrics()

    # ---- metrics and status ------------------------------------------------------------
    def _metrics(self) -> None:
        r = self.registry
        self.m_submitted = Counter("jupiter_circe_items_submitted", "Items submitted",
                                   registry=r)
        self.m_completed = Counter("jupiter_circe_items_completed", "Items completed",
                                   registry=r)
        self.m_failed = Counter("jupiter_circe_items_failed", "Items failed", registry=r)
        self.m_latency = Histogram(
            "jupiter_circe_item_latency_seconds", "Submission to last result", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.m_requests = Counter("jupiter_circe_home_requests", "Requests by path and answer",
                                  ["path", "code"], registry=r)
        Gauge("jupiter_circe_items_in_flight", "Items submitted, not yet done",
              registry=r).set_function(lambda: self._counts()["in_flight"])
        Gauge("jupiter_circe_home_outbox_items", "Submitted items not yet delivered to the "
              "ingress tasks", registry=r).set_function(lambda: self.spool.items)
        g = Gauge("jupiter_circe_task_events", "Task events reported to home",
                  ["task", "kind"], registry=r)
        for _, key in self.tasks:
            for kind in ("enter", "start", "finish", "failed", "skipped", "retry"):
                g.labels(key, kind).set_function(
                    lambda key=key, kind=kind: self.task_counts[key][kind])

    def _counts(self) -> dict[str, int]:
        submitted = sum(1 for r in self.items.values() if r.submitted is not None)
        completed = sum(1 for r in self.items.values() if r.state == "completed")
        failed = sum(1 for r in self.items.values() if r.state == "failed")
        return {"submitted": submitted, "completed": completed, "failed": failed,
                "in_flight": max(0, len(self.items) - completed - failed)}

    def status(self) -> dict[str, Any]:
        counts = self._counts()
        lat = sorted(
            r.completed - r.submitted for r in self.items.values()
            if r.state == "completed" and r.submitted is not None and r.completed is not None
        )
        latency = None
        if lat:
            latency = {"mean": statistics.fmean(lat), "p50": lat[len(lat) // 2],
                       "p90": lat[min(len(lat) - 1, int(len(lat) * 0.9))], "max": lat[-1],
                       "n": len(lat)}
        throughput = None
        if (counts["completed"] > 1 and self.first_submitted is not None
                and self.last_completed is not None
                and self.last_completed > self.first_submitted):
            throughput = counts["completed"] / (self.last_completed - self.first_submitted)
        done = counts["completed"] + counts["failed"]
        return {
            "schema": "jupiter.circe.status/v1",
            "component": "home",
            "app": self.cfg.app.name,
            "ready": self.ready,
            "waiting_for": list(self.ready_reasons),
            **counts,
            "done": done,
            "total": max(counts["submitted"], len(self.items)),
            "tabled": sum(1 for r in self.items.values() if r.tabled),
            "latency_s": latency,
            "throughput_items_per_s": throughput,
            "tasks": {
                key: {"name": name, "node": self.cfg.mapping.get(name, ""),
                      **self.task_counts[key]}
                for name, key in self.tasks
            },
            "outbox": self.spool.stats(),
            "failures": self.failures[-20:],
            "results_dir": str(self.cfg.results_dir),
            "runtime_table": str(self.runtime_table.csv),
        }

    def _answer(self, path: str, status: int, body: dict[str, Any],
                headers: dict[str, str] | None = None) -> web.Response:
        self.m_requests.labels(path, str(status)).inc()
        if status >= 400:
            return error_response(status, body["error"], headers)
        return web.json_response(body, status=status, headers=headers)

    # ---- lifecycle ---------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        for method in ("PUT", "POST"):
            app.router.add_route(method, "/submit/{name}", self.submit)
            app.router.add_route(method, "/items/{item}/{parent}/{name}", self.receive)
            app.router.add_route(method, "/items/{item}/{parent}", self.receive)
        app.router.add_post("/events", self.receive_events)
        app.router.add_get("/results", self.list_results)
        app.router.add_get("/results/{item}", self.item_status)
        app.router.add_get("/results/{item}/{name}", self.get_result)

    async def startup(self) -> None:
        self.ready_reasons = ["journal replay", "outbox recovery"]
        for d in (self.root, self.root / "tmp", self.cfg.results_dir, self.cfg.input_dir):
            d.mkdir(parents=True, exist_ok=True)
        records = await asyncio.to_thread(self.journal.replay)
        for rec in records:
            self._apply(rec, replay=True)
        events_path = self.root / "events.jsonl"
        if events_path.exists():
            for line in events_path.read_text("utf-8").splitlines():
                try:
                    self._event(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue
        self._events_fh = open(events_path, "a", encoding="utf-8")  # noqa: SIM115
        self.ready_reasons.remove("journal replay")
        _, outs = await asyncio.to_thread(self.spool.recover)
        for out in outs:
            rec = self._record(out.item)
            if rec.submitted is None:  # outbox written, journal line lost: adopt it
                self._submitted(rec, out.files[0].name, out.files[0].sha256,
                                out.files[0].size, out.created)
            self.spawn(self._push(out), f"push {out.item}")
        self.ready_reasons.remove("outbox recovery")
        log.info("home ready: %d item(s) known, %d to deliver", len(self.items), len(outs))
        self.spawn(self._watch(), "watch input")
        self.spawn(self._tables(), "runtime table")

    async def shutdown(self) -> None:
        self._write_tables(force=False)
        await self.sender.close()
        self.journal.close()
        self.spool.close()
        fh = getattr(self, "_events_fh", None)
        if fh is not None:
            fh.close()

    # ---- state -------------------------------------------------------------------------
    def _record(self, item: str) -> ItemRecord:
        rec = self.items.get(item)
        if rec is None:
            rec = self.items[item] = ItemRecord(item)
        return rec

    def _submitted(self, rec: ItemRecord, file: str, sha: str, size: int, t: float) -> None:
        rec.file, rec.sha256, rec.size, rec.submitted = file, sha, size, t
        if self.first_submitted is None or t < self.first_submitted:
            self.first_submitted = t

    def _apply(self, r: dict[str, Any], replay: bool = False) -> None:
        """Apply one journal record (live or replayed)."""
        kind, item = r.get("k"), r.get("item")
        if not isinstance(item, str):
            return
        rec = self._record(item)
        if kind == "submit":
            self._submitted(rec, r["file"], r["sha256"], int(r.get("size", 0)), r["t"])
            if not replay:
                self.m_submitted.inc()
        elif kind in ("result", "marker"):
            name = r.get("file")
            if name is not None:
                rec.results[name] = (r["parent"], r["sha256"])
                rec.last_result = r["t"]
            try:
                join = self.joiner.offer(item, r["parent"], name, int(r.get("files", 0)),
                                         r.get("error"))
            except JoinError as exc:
                log.error("journal: %s", exc)
                return
            if join is not None:
                self._joined(rec, join, r["t"], replay)
        elif kind == "failed":
            self._fail(rec, r.get("task", "?"), r.get("error") or "failed", r["t"], replay)
        elif kind == "tabled":
            rec.tabled = True

    def _joined(self, rec: ItemRecord, join: Join, t: float, replay: bool) -> None:
        if join.error is not None:  # "<task name>: <error>" carried down by edge markers
            where = join.error.split(":", 1)[0]
            task = next((k for n, k in self.tasks if n == where), "?")
            self._fail(rec, task, join.error, t, replay)
            return
        if rec.completed is None:
            rec.completed = t
            if rec.failed is None:
                self.last_completed = max(self.last_completed or t, t)
                if not replay:
                    self.m_completed.inc()
                    if rec.submitted is not None:
                        self.m_latency.observe(t - rec.submitted)
        if not rec.tabled:
            self.pending_table.add(rec.item)
        self._wake(rec.item)

    def _wake(self, item: str) -> None:
        event = self.waiters.pop(item, None)
        if event is not None:
            event.set()

    def _fail(self, rec: ItemRecord, task: str, error: str, t: float, replay: bool) -> None:
        if rec.failed is not None:
            return
        rec.failed, rec.failed_at = error, t
        self.failures.append({"item": rec.item, "task": task, "error": error, "t": t})
        del self.failures[:-100]
        if not replay:
            self.m_failed.inc()
            log.warning("item %s failed at %s: %s", rec.item, task, error)
        if not rec.tabled:
            self.pending_table.add(rec.item)
        self._wake(rec.item)

    # ---- ingress -----------------------------------------------------------------------
    async def submit(self, request: web.Request) -> web.Response:
        path = "/submit"
        if not self.ready:
            return self._answer(path, 503, {"error": "not ready"},
                                {"Retry-After": self.retry_after})
        name = request.match_info["name"]
        problem = file_name_problem(name)
        if problem:
            return self._answer(path, 400, {"error": problem})
        try:
            item = derive_item_id(name, request.headers.get(ITEM_HEADER) or None)
            sha = declared_sha(request)
            length = check_length(request, self.max_body)
        except ValueError as exc:
            return self._answer(path, 400, {"error": str(exc)})
        except BodyError as exc:
            return self._answer(path, exc.status, {"error": exc.message})
        pending = self.submitting.get(item)
        if pending is not None:
            await asyncio.shield(pending)
        verdict = self._resubmission(item, name, sha)
        if verdict is not None:
            return self._answer(path, *verdict)
        reason = self.spool.admission(item, length or 0)
        if reason:
            return self._answer(path, 503, {"error": reason}, {"Retry-After": self.retry_after})
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submitting[item] = future
        try:
            body = await read_body(request, self.max_body, sha)
            await self._accept_submission(item, name, body, sha)
        except BodyError as exc:
            return self._answer(path, exc.status, {"error": exc.message})
        finally:
            del self.submitting[item]
            future.set_result(None)
        return self._answer(path, 200, {"item": item, "file": name, "accepted": True})

    def _resubmission(self, item: str, name: str, sha: str) -> tuple[int, dict[str, Any]] | None:
        rec = self.items.get(item)
        if rec is None or rec.submitted is None:
            return None
        if rec.file == name and rec.sha256 == sha:
            return 200, {"item": item, "file": name, "duplicate": True}
        return 409, {"error": f"item id {item!r} was already submitted as {rec.file!r} with "
                     "other content; item ids must be unique in a deployment (rename the "
                     "file or give another id)"}

    async def _accept_submission(self, item: str, name: str, body: bytes, sha: str) -> None:
        size = len(body)
        self.spool.reserve(item, size)
        try:
            routes = {k: [name] for k in self.ingress}
            entry = await asyncio.to_thread(self.spool.write_out, item, {name: body}, routes)
            self.spool.commit_out(entry)
        finally:
            self.spool.release(item, size)
        t = time.time()
        record = {"k": "submit", "item": item, "file": name, "sha256": sha, "size": size, "t": t}
        await asyncio.to_thread(self.journal.append, record)
        self._apply(record)
        self.spawn(self._push(entry), f"push {item}")

    async def _push(self, entry: OutEntry) -> None:
        async def one(dest: str, name: str) -> None:
            url = item_url(self.cfg.url_of(dest), entry.item, HOME, name)
            result = await self.sender.deliver(
                url, entry.read(name), {FILES_HEADER: "1"},
                on_retry=lambda m: log.info("submit %s -> %s: %s", entry.item, dest, m),
                sha256=entry.file(name).sha256)
            if not result.ok:
                self._fail_live(entry.item, dest, f"{dest} rejected the input: {result.status} "
                                f"{result.body}")

        await asyncio.gather(*[one(d, n) for d, names in entry.routes.items() for n in names])
        paths = self.spool.finish(entry.item)
        if paths:
            await asyncio.to_thread(remove, paths)

    def _fail_live(self, item: str, task: str, error: str) -> None:
        record = {"k": "failed", "item": item, "task": task, "error": error, "t": time.time()}
        self.journal.append(record)
        self._apply(record)

    async def _watch(self) -> None:
        """Ingest files dropped into state_dir/input/ once their size and mtime are stable."""
        seen: dict[str, tuple[int, int]] = {}
        interval = float(self.cfg.options["watch_interval_s"])
        while True:
            try:
                current = await asyncio.to_thread(self._scan)
            except OSError as exc:
                log.error("cannot scan %s: %s", self.cfg.input_dir, exc)
                current = {}
            for name, sig in current.items():
                if seen.get(name) == sig:
                    await self._ingest(name)
            seen = current
            await asyncio.sleep(interval)

    def _scan(self) -> dict[str, tuple[int, int]]:
        out = {}
        with os.scandir(self.cfg.input_dir) as it:
            for e in it:
                if e.name.startswith(".") or e.name.endswith(IGNORED_SUFFIXES):
                    continue
                if e.is_file(follow_symlinks=False):
                    st = e.stat(follow_symlinks=False)
                    out[e.name] = (st.st_size, st.st_mtime_ns)
        return out

    async def _ingest(self, name: str) -> None:
        path = self.cfg.input_dir / name
        rejected = self.cfg.input_dir / ".rejected"
        try:
            item = derive_item_id(name)
            body = await asyncio.to_thread(path.read_bytes)
        except ValueError as exc:
            log.error("input/%s: %s; moved to input/.rejected/", name, exc)
            rejected.mkdir(exist_ok=True)
            path.replace(rejected / name)
            return
        except OSError:
            return  # vanished meanwhile
        sha = sha256_hex(body)
        verdict = self._resubmission(item, name, sha)
        if verdict is not None:
            if verdict[0] == 200:
                path.unlink(missing_ok=True)
            else:
                log.error("input/%s: %s; moved to input/.rejected/", name, verdict[1]["error"])
                rejected.mkdir(exist_ok=True)
                path.replace(rejected / name)
            return
        if len(body) > self.max_body:
            log.error("input/%s: %d bytes exceed max_body_bytes; moved to input/.rejected/",
                      name, len(body))
            rejected.mkdir(exist_ok=True)
            path.replace(rejected / name)
            return
        if self.spool.admission(item, len(body)) or item in self.submitting:
            return  # outbox full (or the same id arriving over HTTP): next scan
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submitting[item] = future
        try:
            await self._accept_submission(item, name, body, sha)
        finally:
            del self.submitting[item]
            future.set_result(None)
        path.unlink(missing_ok=True)
        log.info("input/%s submitted as item %s", name, item)

    # ---- egress ------------------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        path = "/items"
        if not self.ready:
            return self._answer(path, 503, {"error": "not ready"},
                                {"Retry-After": self.retry_after})
        item = request.match_info["item"]
        parent = request.match_info["parent"]
        name = request.match_info.get("name")
        problem = item_id_problem(item) or (file_name_problem(name) if name is not None
                                            else None)
        if problem:
            return self._answer(path, 400, {"error": problem})
        if parent not in self.sinks:
            return self._answer(path, 400, {"error": f"{parent!r} is not a sink task (sinks: "
                                            f"{', '.join(self.sinks)})"})
        try:
            sha = declared_sha(request)
            files = files_header(request) if name is not None else 0
            check_length(request, self.max_body)
        except BodyError as exc:
            return self._answer(path, exc.status, {"error": exc.message})
        pending = self.writing.get((item, name))
        if pending is not None:
            await asyncio.shield(pending)
        rec = self.items.get(item) or ItemRecord(item)
        if name is not None and name in rec.results:
            got_parent, got_sha = rec.results[name]
            if got_parent == parent and got_sha == sha:
                return self._answer(path, 200, {"item": item, "duplicate": True})
            return self._answer(path, 409, {"error": f"item {item!r}: result {name!r} already "
                                            f"came from {got_parent!r} with other content"})
        join = self.joiner.open.get(item)
        if rec.completed is not None or (
            name is None and join is not None and join.edges[parent].closed
        ):
            return self._answer(path, 200, {"item": item, "duplicate": True})
        try:
            probe = Join(item, tuple(self.sinks))
            if join is not None:
                for p, e in join.edges.items():
                    probe.edges[p].expected, probe.edges[p].names = e.expected, set(e.names)
            probe.add(parent, name, files)
        except JoinError as exc:
            return self._answer(path, 400, {"error": str(exc)})
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writing[(item, name)] = future
        try:
            body = await read_body(request, self.max_body, sha)
            t = time.time()
            if name is None:
                error = parse_marker(body)
                record = {"k": "marker", "item": item, "parent": parent, "error": error, "t": t}
            else:
                await asyncio.to_thread(self._store_result, item, name, body)
                record = {"k": "result", "item": item, "parent": parent, "file": name,
                          "files": files, "sha256": sha, "t": t}
            await asyncio.to_thread(self.journal.append, record)
            self._apply(record)
        except BodyError as exc:
            return self._answer(path, exc.status, {"error": exc.message})
        finally:
            del self.writing[(item, name)]
            future.set_result(None)
        return self._answer(path, 200, {"item": item, "stored": True})

    def _store_result(self, item: str, name: str, body: bytes) -> None:
        folder = self.cfg.results_dir / item
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                fsync_dir(self.cfg.results_dir)
        durable_write(self.root / "tmp", folder / name, [body], fsync=self.fsync)

    # ---- events and tables -------------------------------------------------------------
    async def receive_events(self, request: web.Request) -> web.Response:
        path = "/events"
        try:
            sha = declared_sha(request)
            body = await read_body(request, max(self.max_body, EVENTS_MAX_BYTES), sha)
            data = json.loads(body)
            events = data["events"]
            if not isinstance(events, list):
                raise ValueError("'events' must be a list")
        except BodyError as exc:
            return self._answer(path, exc.status, {"error": exc.message})
        except (ValueError, KeyError, TypeError) as exc:
            return self._answer(path, 400, {"error": f"malformed events body: {exc}"})
        accepted = 0
        lines = []
        for ev in events:
            try:
                self._event(ev, live=True)
            except (KeyError, TypeError, ValueError):
                continue
            accepted += 1
            lines.append(json.dumps(ev, separators=(",", ":")))
        if lines:
            self._events_fh.write("\n".join(lines) + "\n")
            self._events_fh.flush()
        return self._answer(path, 200, {"accepted": accepted})

    def _event(self, ev: dict[str, Any], live: bool = False) -> None:
        item, task, kind, t = ev["item"], ev["task"], ev["kind"], float(ev["t"])
        if not isinstance(item, str) or task not in self.task_counts:
            raise ValueError("unknown task or item")
        if kind not in self.task_counts[task]:
            raise ValueError(f"unknown event kind {kind!r}")
        cpu = ev.get("cpu") if kind == "finish" else None  # the task's CPU seconds so far
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int | float)
                                or not cpu >= 0):
            raise ValueError(f"cpu must be CPU seconds >= 0, got {cpu!r}")
        rec = self._record(item)
        times = rec.events.setdefault(task, {})
        if kind != "retry" and kind in times:
            return  # a repeat after a restart: keep the first
        self.task_counts[task][kind] += 1
        if kind == "retry":
            return
        times[kind] = t
        if ev.get("node"):
            times["node"] = ev["node"]
        if ev.get("error"):
            times["error"] = ev["error"]
        if cpu is not None:
            times["cpu"] = float(cpu)
        if kind == "failed" and live:
            name = next((n for n, k in self.tasks if k == task), task)
            self._fail_live(item, task, f"{name}: {ev.get('error') or 'failed'}")

    def _table_ready(self, rec: ItemRecord, now: float, grace: float) -> bool:
        if rec.terminal_at is None:
            return False
        if all(any(k in rec.events.get(key, {}) for k in TERMINAL) for _, key in self.tasks):
            return True
        return now - rec.terminal_at >= grace

    def _write_tables(self, force: bool) -> None:
        now = time.time()
        grace = float(self.cfg.options["table_grace_s"])
        ready = [self.items[i] for i in sorted(self.pending_table)
                 if force or self._table_ready(self.items[i], now, grace)]
        if not ready:
            return
        rows: list[dict[str, Any]] = []
        for rec in ready:
            rows += runtime_rows(rec, self.tasks, self.cfg.mapping)
        self.runtime_table.write(rows)
        self.items_table.write([item_row(r) for r in ready])
        for rec in ready:
            rec.tabled = True
            self.pending_table.discard(rec.item)
            self.journal.append({"k": "tabled", "item": rec.item}, sync=False)

    async def _tables(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._write_tables(force=False)

    # ---- results -----------------------------------------------------------------------
    async def list_results(self, request: web.Request) -> web.Response:
        return web.json_response({
            "results_dir": str(self.cfg.results_dir),
            "items": {
                i: {"status": r.state, "files": sorted(r.results), "error": r.failed}
                for i, r in sorted(self.items.items())
            },
        })

    async def item_status(self, request: web.Request) -> web.Response:
        """One item's record; ``?wait=S`` waits up to S seconds for it to complete or fail."""
        item = request.match_info["item"]
        try:
            wait = min(300.0, max(0.0, float(request.query.get("wait", "0"))))
        except ValueError:
            return error_response(400, "wait must be a number of seconds")
        rec = self.items.get(item)
        if wait and (rec is None or rec.terminal_at is None):
            event = self.waiters.setdefault(item, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
            rec = self.items.get(item)
        if rec is None:
            return error_response(404, "unknown item")
        return web.json_response({**item_row(rec), "files": sorted(rec.results),
                                  "tasks": rec.events})

    async def get_result(self, request: web.Request) -> web.Response:
        item, name = request.match_info["item"], request.match_info["name"]
        problem = item_id_problem(item) or file_name_problem(name)
        if problem:
            return error_response(400, problem)
        rec = self.items.get(item)
        if rec is None or name not in rec.results:
            return error_response(404, f"no result {name!r} for item {item!r}")
        body = await asyncio.to_thread((self.cfg.results_dir / item / name).read_bytes)
        return web.Response(body=body, headers={SHA_HEADER: sha256_hex(body),
                                                "Content-Type": "application/octet-stream"})
