"""Durable, bounded on-disk spool of one CIRCE process (a task, or home's outbox).

Layout under the spool root::

    tmp/              records being written (removed on recovery)
    in/<h>.in         one received input: a JSON header line, then the body
    out/<h>.out       one item's persisted outputs: a JSON header line (names, sizes,
                      sha256, routes), then the bodies concatenated in header order
    done.log          ids of items finished here (one per line): repeats are acknowledged

``<h>`` is a hash of (item, parent, file name) for inputs and of the item for outputs, so
names never depend on user-controlled text. Every record is written to ``tmp/``, fsynced,
renamed into place and the folder fsynced before it counts (:func:`durable_write`).

Bounds (admission of *inputs*; outputs of admitted items are always kept): a new item is
refused while ``max_items`` items are spooled or when its body would push the spooled bytes
above ``max_bytes - reserve_bytes``; further inputs of an already admitted item are refused
only above ``max_bytes``. So an admitted item can always complete its join, and a full spool
answers 503 instead of filling the disk. An item leaves the spool when its outputs have been
acknowledged by every child (:meth:`Spool.finish`).

The index is kept in memory and mutated only from one thread (the event loop); the disk
writes themselves may run in worker threads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("jupiter.circe.spool")

RECORD_VERSION = 1
CACHE_BYTES = 256 * 1024  # outputs up to this size stay in memory until pushed


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(tmp_dir: Path, final: Path, parts: list[bytes], *, fsync: bool = True) -> None:
    """Write ``parts`` to ``final`` atomically: tmp file, fsync, rename, fsync the folder."""
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


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _header(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def _read_record(path: Path) -> tuple[dict[str, Any], int]:
    """The header of a record and the offset where its payload starts."""
    with open(path, "rb") as fh:
        line = fh.readline(1 << 20)
    if not line.endswith(b"\n"):
        raise ValueError("no header line")
    meta = json.loads(line)
    if not isinstance(meta, dict) or meta.get("v") != RECORD_VERSION:
        raise ValueError("unknown record version")
    return meta, len(line)


@dataclass(frozen=True)
class InEntry:
    """One received input (``name`` None: an edge marker, no file on that edge)."""

    item: str
    parent: str
    name: str | None
    files: int  # files the parent sends on this edge for this item (0 for a marker)
    sha256: str
    size: int
    path: Path
    offset: int
    received: float
    error: str | None = None  # upstream failure carried by a marker

    def read(self) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return fh.read()


@dataclass(frozen=True)
class OutFile:
    name: str
    size: int
    sha256: str
    offset: int


@dataclass(frozen=True)
class OutEntry:
    """An item's persisted outputs and where each goes (destination -> file names)."""

    item: str
    files: tuple[OutFile, ...]
    routes: dict[str, list[str]]
    path: Path
    error: str | None = None  # the item failed here: children get a failure marker
    created: float = 0.0
    cache: dict[str, bytes] | None = field(default=None, compare=False, repr=False)

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
        with open(self.path, "rb") as fh:
            fh.seek(f.offset)
            return fh.read(f.size)


@dataclass
class _Item:
    inputs: dict[tuple[str, str | None], InEntry] = field(default_factory=dict)
    out: OutEntry | None = None
    reserved: int = 0  # bytes of writes in progress
    spent: list[Path] = field(default_factory=list)  # inputs consumed, files not yet removed
    size: int = 0  # bytes counted for this item (inputs, outputs, reservations)


class Spool:
    def __init__(self, root: str | Path, *, max_items: int, max_bytes: int,
                 reserve_bytes: int = 0, fsync: bool = True) -> None:
        self.root = Path(root)
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.reserve_bytes = min(reserve_bytes, max_bytes // 2)
        self.fsync = fsync
        self.tmp = self.root / "tmp"
        self.in_dir = self.root / "in"
        self.out_dir = self.root / "out"
        self._items: dict[str, _Item] = {}
        self._done: set[str] = set()
        self._done_fh: Any = None
        self.bytes = 0
        self.high_items = 0  # high-water marks, for /status and tests
        self.high_bytes = 0

    # ---- lifecycle -------------------------------------------------------------------
    def recover(self) -> tuple[list[InEntry], list[OutEntry]]:
        """Create the folders, drop half-written files, load every record and done item."""
        for d in (self.tmp, self.in_dir, self.out_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in self.tmp.iterdir():
            stale.unlink(missing_ok=True)
        done_path = self.root / "done.log"
        if done_path.exists():
            self._done = {
                line.strip() for line in done_path.read_text("utf-8").splitlines() if line.strip()
            }
        self._done_fh = open(done_path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        ins: list[InEntry] = []
        outs: list[OutEntry] = []
        for path in sorted(self.out_dir.glob("*.out")):
            try:
                entry = self._load_out(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._quarantine(path, exc)
                continue
            if entry.item in self._done:  # finished; its file removal was interrupted
                path.unlink(missing_ok=True)
                continue
            slot = self._slot(entry.item)
            slot.out = entry
            self._count(slot, entry.size)
            outs.append(entry)
        for path in sorted(self.in_dir.glob("*.in")):
            try:
                entry = self._load_in(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self._quarantine(path, exc)
                continue
            slot = self._items.get(entry.item)
            if entry.item in self._done or (slot is not None and slot.out is not None):
                path.unlink(missing_ok=True)  # already run: outputs persisted or finished
                continue
            slot = self._slot(entry.item)
            slot.inputs[(entry.parent, entry.name)] = entry
            self._count(slot, entry.size)
            ins.append(entry)
        return ins, outs

    def close(self) -> None:
        if self._done_fh is not None:
            self._done_fh.close()
            self._done_fh = None

    def _quarantine(self, path: Path, exc: Exception) -> None:
        bad = self.root / "corrupt"
        bad.mkdir(exist_ok=True)
        log.error("spool record %s unreadable (%s); moved to %s", path, exc, bad)
        path.replace(bad / path.name)

    def _load_in(self, path: Path) -> InEntry:
        meta, offset = _read_record(path)
        return InEntry(
            item=meta["item"], parent=meta["parent"], name=meta["name"], files=int(meta["files"]),
            sha256=meta["sha256"], size=int(meta["size"]), path=path, offset=offset,
            received=float(meta["received"]), error=meta.get("error"),
        )

    def _load_out(self, path: Path) -> OutEntry:
        meta, offset = _read_record(path)
        files = []
        for f in meta["files"]:
            files.append(OutFile(f["name"], int(f["size"]), f["sha256"], offset))
            offset += int(f["size"])
        return OutEntry(item=meta["item"], files=tuple(files),
                        routes={k: list(v) for k, v in meta["routes"].items()}, path=path,
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
    def in_path(self, item: str, parent: str, name: str | None) -> Path:
        return self.in_dir / f"{_digest(item, parent, name or '')}.in"

    def out_path(self, item: str) -> Path:
        return self.out_dir / f"{_digest(item)}.out"

    def write_in(self, item: str, parent: str, name: str | None, files: int, data: bytes,
                 sha256: str, error: str | None = None) -> InEntry:
        meta = {"v": RECORD_VERSION, "item": item, "parent": parent, "name": name,
                "files": files, "sha256": sha256, "size": len(data), "received": time.time(),
                "error": error}
        head = _header(meta)
        path = self.in_path(item, parent, name)
        durable_write(self.tmp, path, [head, data], fsync=self.fsync)
        return InEntry(item, parent, name, files, sha256, len(data), path, len(head),
                       meta["received"], error)

    def commit_in(self, entry: InEntry) -> None:
        slot = self._slot(entry.item)
        slot.inputs[(entry.parent, entry.name)] = entry
        self._count(slot, entry.size)

    def write_out(self, item: str, outputs: dict[str, bytes], routes: dict[str, list[str]],
                  error: str | None = None) -> OutEntry:
        names = sorted(outputs)
        meta = {
            "v": RECORD_VERSION, "item": item, "error": error, "created": time.time(),
            "files": [{"name": n, "size": len(outputs[n]),
                       "sha256": hashlib.sha256(outputs[n]).hexdigest()} for n in names],
            "routes": routes,
        }
        head = _header(meta)
        path = self.out_path(item)
        durable_write(self.tmp, path, [head, *(outputs[n] for n in names)], fsync=self.fsync)
        offset = len(head)
        files = []
        for f in meta["files"]:
            files.append(OutFile(f["name"], f["size"], f["sha256"], offset))
            offset += f["size"]
        small = sum(f["size"] for f in meta["files"]) <= CACHE_BYTES
        return OutEntry(item, tuple(files), routes, path, error, meta["created"],
                        dict(outputs) if small else None)

    def commit_out(self, entry: OutEntry) -> None:
        """Outputs are durable: the item's inputs no longer count (their files are removed
        with the item's, after :meth:`finish`; recovery drops inputs of items whose outputs
        exist)."""
        slot = self._slot(entry.item)
        slot.out = entry
        slot.spent = [inp.path for inp in slot.inputs.values()]
        freed = sum(inp.size for inp in slot.inputs.values())
        slot.inputs.clear()
        self._count(slot, entry.size - freed)

    def finish(self, item: str) -> list[Path]:
        """Every destination acknowledged: forget the item (repeats of it are acknowledged
        from now on). Returns the item's files for the caller to remove (:func:`remove`),
        off the critical path; recovery removes them too if that is interrupted."""
        self._done.add(item)
        if self._done_fh is not None:
            self._done_fh.write(item + "\n")
            self._done_fh.flush()
        slot = self._forget(item)
        if slot is None:
            return []
        paths = [inp.path for inp in slot.inputs.values()] + slot.spent
        if slot.out is not None:
            paths.append(slot.out.path)
        return paths

    def stats(self) -> dict[str, int]:
        return {"items": len(self._items), "bytes": self.bytes, "max_items": self.max_items,
                "max_bytes": self.max_bytes, "high_items": self.high_items,
                "high_bytes": self.high_bytes, "done": len(self._done)}
