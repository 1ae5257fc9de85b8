"""Durable, bounded spool of one CIRCE process (a task, or home's outbox).

Layout under the spool root::

    log/<seq>.seg     the records, appended to segments (:mod:`jupiter.circe.seglog`):
                      an input received (header: item, parent, name, files, sha256, size,
                      received, error; payload: the body) or an item's persisted outputs
                      (header: names, sizes, sha256, routes, error; payload: the bodies
                      concatenated in header order)
    done.log          ids of items finished here (one per line): repeats are acknowledged
    corrupt/          damaged bytes found at start-up (never acknowledged), for inspection

A record is durable once flushed (one ``fdatasync`` of its segment, which covers every
earlier record too). Records may be written unflushed and flushed by :meth:`Spool.flush`
later: an input before it is acknowledged, an item's outputs while they are pushed (the
task server finishes the item, releasing its inputs, only once that flush returned), so
when the outputs follow an input right away one flush covers both. Recovery checks every
payload against the sha256 of its header and drops torn records.

Bounds (admission of *inputs*; outputs of admitted items are always kept): a new item is
refused while ``max_items`` items are spooled or when its body would push the spooled bytes
above ``max_bytes - reserve_bytes``; further inputs of an already admitted item are refused
only above ``max_bytes``. So an admitted item can always complete its join, and a full spool
answers 503 instead of filling the disk. An item leaves the spool when its outputs have been
acknowledged by every child (:meth:`Spool.finish`); a segment is deleted once no record in
it is needed.

Small bodies stay in memory (up to ``CACHE_BYTES`` each, ``CACHE_TOTAL_BYTES`` in all) from
their write until they are consumed, so a run and a push do not read back what was just
written.

The index is kept in memory and mutated only from one thread (the event loop); the disk
writes themselves (``write_in``, ``write_out``) may run in worker threads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.circe.seglog import Ref, SegmentLog, fsync_dir, sha256_range

__all__ = ["InEntry", "OutEntry", "OutFile", "Spool", "durable_write", "fsync_dir", "remove"]

log = logging.getLogger("jupiter.circe.spool")

RECORD_VERSION = 2
CACHE_BYTES = 256 * 1024  # a body up to this size stays in memory until consumed...
CACHE_TOTAL_BYTES = 64 * 1024 * 1024  # ...while the spool's cached bodies stay below this


def durable_write(tmp_dir: Path, final: Path, parts: list[bytes], *, fsync: bool = True) -> None:
    """Write ``parts`` to ``final`` atomically: tmp file, fsync, rename, fsync the folder
    (home's result files; spool records go to the segment log)."""
    tmp = tmp_dir / f"{final.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    if fsync:
        fsync_dir(final.parent)


def remove(paths: list[Path]) -> None:
    """Remove spool files (unlink is slow on a journaling file system: call it in a thread)."""
    for path in paths:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class InEntry:
    """One received input (``name`` None: an edge marker, no file on that edge)."""

    item: str
    parent: str
    name: str | None
    files: int  # files the parent sends on this edge for this item (0 for a marker)
    sha256: str
    size: int
    ref: Ref
    received: float
    error: str | None = None  # upstream failure carried by a marker
    data: bytes | None = field(default=None, compare=False, repr=False)  # cached body

    @property
    def path(self) -> Path:
        return self.ref.path

    def read(self) -> bytes:
        return self.data if self.data is not None else self.ref.read()


@dataclass(frozen=True)
class OutFile:
    name: str
    size: int
    sha256: str
    offset: int  # within the record's payload


@dataclass(frozen=True)
class OutEntry:
    """An item's persisted outputs and where each goes (destination -> file names)."""

    item: str
    files: tuple[OutFile, ...]
    routes: dict[str, list[str]]
    ref: Ref
    error: str | None = None  # the item failed here: children get a failure marker
    created: float = 0.0
    cache: dict[str, bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> Path:
        return self.ref.path

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, name: str) -> OutFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)

    def read(self, name: str) -> bytes:
        if self.cache is not None and name in self.cache:
            return self.cache[name]
        f = self.file(name)
        return self.ref.read(f.offset, f.size)


@dataclass
class _Item:
    inputs: dict[tuple[str, str | None], InEntry] = field(default_factory=dict)
    out: OutEntry | None = None
    reserved: int = 0  # bytes of writes in progress
    spent: list[Ref] = field(default_factory=list)  # inputs consumed, records still kept
    size: int = 0  # bytes counted for this item (inputs, outputs, reservations)


class Spool:
    def __init__(self, root: str | Path, *, max_items: int, max_bytes: int,
                 reserve_bytes: int = 0, fsync: bool = True) -> None:
        self.root = Path(root)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.reserve_bytes = min(reserve_bytes, max_bytes // 2)
        self.fsync = fsync
        self.log = SegmentLog(self.root / "log", fsync=fsync)
        self._items: dict[str, _Item] = {}
        self._done: set[str] = set()
        self._done_fh: Any = None
        self.bytes = 0
        self.cached = 0  # bytes of bodies kept in memory
        self.high_items = 0  # high-water marks, for /status and tests
        self.high_bytes = 0

    # ---- lifecycle -------------------------------------------------------------------
    def recover(self) -> tuple[list[InEntry], list[OutEntry]]:
        """Load every intact record and the done items; drop torn records and records of
        finished items, delete segments nothing needs any more."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in ("in", "out"):
            if (self.root / old).is_dir() and any((self.root / old).iterdir()):
                log.error("%s holds records of an earlier CIRCE version; they are ignored "
                          "(drain a pipeline before upgrading)", self.root / old)
        done_path = self.root / "done.log"
        if done_path.exists():
            self._done = {
                line.strip() for line in done_path.read_text("utf-8").splitlines() if line.strip()
            }
        self._done_fh = open(done_path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        entries: list[InEntry | OutEntry] = []
        for record in self.log.scan():
            try:
                entries.append(self._load(record.header, record.ref))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("spool record at byte %d of %s unusable (%s); dropped (it was never "
                          "acknowledged)", record.ref.offset, record.ref.path, exc)
        outs: list[OutEntry] = []
        for out in entries:
            if not isinstance(out, OutEntry) or out.item in self._done or self.has_out(out.item):
                continue
            slot = self._slot(out.item)
            slot.out = out
            self._count(slot, out.size)
            self.log.keep(out.ref)
            outs.append(out)
        ins: list[InEntry] = []
        for inp in entries:
            if (not isinstance(inp, InEntry) or inp.item in self._done or self.has_out(inp.item)
                    or self.lookup_in(inp.item, inp.parent, inp.name) is not None):
                continue  # finished, already run (outputs persisted), or a repeat
            slot = self._slot(inp.item)
            slot.inputs[(inp.parent, inp.name)] = inp
            self._count(slot, inp.size)
            self.log.keep(inp.ref)
            ins.append(inp)
        remove(self.log.collect())
        return ins, outs

    def close(self) -> None:
        self.log.close()
        if self._done_fh is not None:
            self._done_fh.close()
            self._done_fh = None

    @staticmethod
    def _load(meta: dict[str, Any], ref: Ref) -> InEntry | OutEntry:
        """An entry from a record, its payload checked against the header's hashes."""
        if meta.get("v") != RECORD_VERSION:
            raise ValueError(f"unknown record version {meta.get('v')!r}")
        if meta["kind"] == "in":
            size = int(meta["size"])
            if size != ref.size or sha256_range(ref.path, ref.offset, size) != meta["sha256"]:
                raise ValueError("body does not match its sha256")
            return InEntry(
                item=meta["item"], parent=meta["parent"], name=meta["name"],
                files=int(meta["files"]), sha256=meta["sha256"], size=size, ref=ref,
                received=float(meta["received"]), error=meta.get("error"),
            )
        if meta["kind"] != "out":
            raise ValueError(f"unknown record kind {meta['kind']!r}")
        files = []
        offset = 0
        for f in meta["files"]:
            size = int(f["size"])
            if sha256_range(ref.path, ref.offset + offset, size) != f["sha256"]:
                raise ValueError(f"output {f['name']!r} does not match its sha256")
            files.append(OutFile(f["name"], size, f["sha256"], offset))
            offset += size
        if offset != ref.size:
            raise ValueError("outputs do not fill the record")
        return OutEntry(item=meta["item"], files=tuple(files),
                        routes={k: list(v) for k, v in meta["routes"].items()}, ref=ref,
                        error=meta.get("error"), created=float(meta.get("created", 0.0)))

    # ---- bookkeeping -----------------------------------------------------------------
    def _slot(self, item: str) -> _Item:
        slot = self._items.get(item)
        if slot is None:
            slot = self._items[item] = _Item()
        return slot

    def _count(self, slot: _Item, delta: int) -> None:
        slot.size += delta
        self.bytes += delta
        self.high_items = max(self.high_items, len(self._items))
        self.high_bytes = max(self.high_bytes, self.bytes)

    def _cache(self, size: int) -> bool:
        """Whether a body of ``size`` bytes may stay in memory (and count it if so)."""
        if size > CACHE_BYTES or self.cached + size > CACHE_TOTAL_BYTES:
            return False
        self.cached += size
        return True

    @property
    def items(self) -> int:
        return len(self._items)

    def item_ids(self) -> list[str]:
        return list(self._items)

    def is_done(self, item: str) -> bool:
        return item in self._done

    def done_count(self) -> int:
        return len(self._done)

    def has_out(self, item: str) -> bool:
        slot = self._items.get(item)
        return slot is not None and slot.out is not None

    def lookup_in(self, item: str, parent: str, name: str | None) -> InEntry | None:
        slot = self._items.get(item)
        return None if slot is None else slot.inputs.get((parent, name))

    def inputs_of(self, item: str) -> list[InEntry]:
        slot = self._items.get(item)
        return [] if slot is None else list(slot.inputs.values())

    def out_of(self, item: str) -> OutEntry | None:
        slot = self._items.get(item)
        return None if slot is None else slot.out

    def admission(self, item: str, size: int) -> str | None:
        """Why an input of ``size`` bytes for ``item`` cannot be admitted now, or None."""
        if item in self._items:
            if self.bytes + size > self.max_bytes:
                return f"spool full: {self.bytes} + {size} bytes > {self.max_bytes}"
            return None
        if len(self._items) >= self.max_items:
            return f"spool full: {len(self._items)}/{self.max_items} items"
        if self.bytes + size > self.max_bytes - self.reserve_bytes:
            return (f"spool full: {self.bytes} + {size} bytes > "
                    f"{self.max_bytes - self.reserve_bytes}")
        return None

    def reserve(self, item: str, size: int) -> None:
        """Count ``size`` bytes for ``item`` while its write is in progress."""
        slot = self._slot(item)
        slot.reserved += size
        self._count(slot, size)

    def release(self, item: str, size: int) -> None:
        slot = self._items.get(item)
        if slot is None:
            return
        slot.reserved -= size
        self._count(slot, -size)
        if not slot.inputs and slot.out is None and slot.reserved <= 0:
            self._forget(item)

    def _forget(self, item: str) -> _Item | None:
        slot = self._items.pop(item, None)
        if slot is not None:
            self.bytes -= slot.size
        return slot

    # ---- records (the write_* methods touch only the disk: safe in a worker thread) ----
    def write_in(self, item: str, parent: str, name: str | None, files: int, data: bytes,
                 sha256: str, error: str | None = None, *, sync: bool = True) -> InEntry:
        """Write an input record; unless ``sync``, it is durable only after :meth:`flush`."""
        meta = {"v": RECORD_VERSION, "kind": "in", "item": item, "parent": parent,
                "name": name, "files": files, "sha256": sha256, "size": len(data),
                "received": time.time(), "error": error}
        ref = self.log.append(meta, [data], sync=sync)
        return InEntry(item, parent, name, files, sha256, len(data), ref, meta["received"],
                       error, data)

    def flushed(self, entry: InEntry | OutEntry) -> bool:
        return self.log.flushed(entry.ref)

    def flush(self, entry: InEntry | OutEntry) -> None:
        """Make a record durable, and every record written before it (safe in a worker
        thread)."""
        self.log.flush(entry.ref)

    def commit_in(self, entry: InEntry) -> None:
        if entry.data is not None and not self._cache(entry.size):
            entry = dataclasses.replace(entry, data=None)
        slot = self._slot(entry.item)
        slot.inputs[(entry.parent, entry.name)] = entry
        self._count(slot, entry.size)

    def write_out(self, item: str, outputs: dict[str, bytes], routes: dict[str, list[str]],
                  error: str | None = None, *, sync: bool = True) -> OutEntry:
        """Write an item's outputs; unless ``sync``, durable only after :meth:`flush`."""
        names = sorted(outputs)
        meta = {
            "v": RECORD_VERSION, "kind": "out", "item": item, "error": error,
            "created": time.time(),
            "files": [{"name": n, "size": len(outputs[n]),
                       "sha256": hashlib.sha256(outputs[n]).hexdigest()} for n in names],
            "routes": routes,
        }
        ref = self.log.append(meta, [outputs[n] for n in names], sync=sync)
        offset = 0
        files = []
        for f in meta["files"]:
            files.append(OutFile(f["name"], f["size"], f["sha256"], offset))
            offset += f["size"]
        return OutEntry(item, tuple(files), routes, ref, error, meta["created"], dict(outputs))

    def commit_out(self, entry: OutEntry) -> None:
        """Outputs are written: the item's inputs no longer count (their records are released
        with the item's, after :meth:`finish`, which must wait until the outputs are durable;
        recovery drops inputs of items whose outputs exist)."""
        if entry.cache is not None and not self._cache(entry.size):
            entry = dataclasses.replace(entry, cache=None)
        slot = self._slot(entry.item)
        slot.out = entry
        slot.spent += [inp.ref for inp in slot.inputs.values()]
        freed = sum(inp.size for inp in slot.inputs.values())
        self.cached -= sum(inp.size for inp in slot.inputs.values() if inp.data is not None)
        slot.inputs.clear()
        self._count(slot, entry.size - freed)

    def finish(self, item: str) -> list[Path]:
        """Every destination acknowledged: forget the item (repeats of it are acknowledged
        from now on). Returns the segments no longer needed, for the caller to delete
        (:func:`remove`) off the critical path; recovery deletes them too if that is
        interrupted."""
        self._done.add(item)
        if self._done_fh is not None:
            self._done_fh.write(item + "\n")
            self._done_fh.flush()
        slot = self._forget(item)
        if slot is None:
            return []
        refs = [inp.ref for inp in slot.inputs.values()] + slot.spent
        self.cached -= sum(inp.size for inp in slot.inputs.values() if inp.data is not None)
        if slot.out is not None:
            refs.append(slot.out.ref)
            if slot.out.cache is not None:
                self.cached -= slot.out.size
        dead: list[Path] = []
        for ref in refs:
            dead += self.log.release(ref)
        return dead

    def stats(self) -> dict[str, int]:
        return {"items": len(self._items), "bytes": self.bytes, "max_items": self.max_items,
                "max_bytes": self.max_bytes, "high_items": self.high_items,
                "high_bytes": self.high_bytes, "done": len(self._done),
                "segments": self.log.segments(), "disk_bytes": self.log.disk_bytes(),
                "cached_bytes": self.cached}
