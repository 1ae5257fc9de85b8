"""Append-only segment log: where a CIRCE spool keeps its records durably.

A record is a frame (magic, header length, payload length, CRC-32 of the header), a JSON
header and the payload, appended to the *current* segment ``<root>/<seq>.seg``. A write is
durable when ``fdatasync`` of the segment returns. Segments are *prepared* before use: filled
with zeros, flushed, their name made durable with one folder fsync. Appending then only
overwrites blocks that already exist, which changes no file-system metadata, so a record
costs one data flush: no temporary file, no rename, no per-record folder fsync, no journal
commit, no file to unlink per record. The next segment is prepared in the background while
the current one fills. Appends from several threads are serialised, their flushes shared
(group commit: a writer whose bytes another writer's flush already covered does not flush
again). A caller may append without flushing and :meth:`SegmentLog.flush` the record later:
a flush covers every earlier record, so two records written in a row need one flush.

When a record does not fit in the rest of the current segment (``segment_bytes``), that
segment is flushed and closed (*sealed*) and the prepared one becomes current. A record
larger than a segment gets a segment of its own. A sealed segment is deleted once none of
its records is *live* (:meth:`SegmentLog.release`), so dead bytes on disk are bounded by one
segment per live record (``segment_bytes`` each).

Recovery (:meth:`SegmentLog.scan`) reads each segment from its start up to the first frame
that does not check out: zeros (the unused rest of the segment) or a write torn by a crash.
A torn write's writer never got past its flush, so it was never acknowledged; every
acknowledged record lies before it, because a flush covers every earlier write of the
segment. A damaged tail is copied to ``corrupt/`` (logged) and writing always continues in
a fresh segment. Payloads are checked by the caller against the hashes in their headers
(:func:`sha256_range`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("jupiter.circe.seglog")

MAGIC = b"JCS1"
FRAME = struct.Struct(">4sIQI")  # magic, header length, payload length, crc32(header)
SEGMENT_BYTES = 256 * 1024
MAX_HEADER_BYTES = 1 << 24
_NAME = re.compile(r"^(\d{16})\.seg$")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_range(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(size)
    if len(data) != size:
        raise OSError(f"{path}: {size} bytes at {offset} expected, {len(data)} found")
    return data


def sha256_range(path: Path, offset: int, size: int, chunk: int = 1 << 20) -> str:
    """Hex sha256 of ``size`` bytes of ``path`` at ``offset`` (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        left = size
        while left:
            data = fh.read(min(chunk, left))
            if not data:
                raise OSError(f"{path}: ends {left} bytes before the record does")
            h.update(data)
            left -= len(data)
    return h.hexdigest()


def _write_all(fd: int, parts: list[bytes], offset: int) -> None:
    views = [memoryview(p) for p in parts if len(p)]
    while views:
        n = os.pwritev(fd, views, offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


@dataclass(frozen=True)
class Ref:
    """Where a record's payload is: ``size`` bytes at ``offset`` of segment ``seq``."""

    seq: int
    path: Path
    offset: int
    size: int

    def read(self, start: int = 0, size: int | None = None) -> bytes:
        return read_range(self.path, self.offset + start, self.size - start
                          if size is None else size)


@dataclass(frozen=True)
class Record:
    header: dict[str, Any]
    ref: Ref


@dataclass(eq=False)
class _Segment:
    seq: int
    path: Path
    size: int = 0  # bytes of records
    disk: int = 0  # bytes of the file
    live: int = 0  # records a caller still needs
    synced: int = 0  # bytes known to be on stable storage
    fd: int | None = None  # open while the segment is current
    sealed: bool = True
    sync_lock: threading.Lock = field(default_factory=threading.Lock)


class SegmentLog:
    def __init__(self, root: str | Path, *, fsync: bool = True,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()  # appends, the segments, live counts, rotation
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._spare: _Segment | None = None  # prepared, next to become current
        self._preparing: threading.Thread | None = None
        self._spare_lock = threading.Lock()  # _spare and _closed
        self._closed = False
        self._next_seq = 1

    # ---- recovery ----------------------------------------------------------------------
    def scan(self) -> list[Record]:
        """Every intact record of every segment, in write order; segments start with no
        live record (:meth:`keep` the ones still needed, then :meth:`collect`)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        records: list[Record] = []
        for path in sorted(self.root.iterdir()):
            m = _NAME.match(path.name)
            if m is None or not path.is_file():
                bad = self._corrupt_dir()
                log.error("spool %s: not a segment; moved to %s", path, bad)
                path.replace(bad / path.name)
                continue
            seq = int(m.group(1))
            size = path.stat().st_size
            seg = _Segment(seq, path, size=size, disk=size, synced=size)
            self._segments[seq] = seg
            self._next_seq = max(self._next_seq, seq + 1)
            records += self._scan_segment(seg)
        with self._lock:  # the first segment to write to, ready before the first write
            self._start_preparing()
        return records

    def _scan_segment(self, seg: _Segment) -> list[Record]:
        out: list[Record] = []
        with open(seg.path, "rb") as fh:
            data_end = seg.size
            pos = 0
            while pos < data_end:
                why = None
                frame = fh.read(FRAME.size)
                if len(frame) < FRAME.size:
                    why = "truncated frame"
                else:
                    magic, hlen, plen, crc = FRAME.unpack(frame)
                    end = pos + FRAME.size + hlen + plen
                    if magic != MAGIC or hlen > MAX_HEADER_BYTES:
                        why = "bad frame"
                    elif end > data_end:
                        why = "truncated record"
                    else:
                        head = fh.read(hlen)
                        if zlib.crc32(head) != crc:
                            why = "header checksum mismatch"
                        else:
                            try:
                                header = json.loads(head)
                                if not isinstance(header, dict):
                                    raise ValueError("header is not an object")
                            except ValueError as exc:
                                why = f"unreadable header ({exc})"
                if why is not None:
                    fh.seek(pos)
                    tail = fh.read()
                    if tail.strip(b"\0"):
                        self._quarantine(seg.path, tail, f"{why} at byte {pos}")
                    break
                start = pos + FRAME.size + hlen
                out.append(Record(header, Ref(seg.seq, seg.path, start, plen)))
                pos = end
                fh.seek(pos)
        return out

    def _corrupt_dir(self) -> Path:
        bad = self.root.parent / "corrupt"
        bad.mkdir(exist_ok=True)
        return bad

    def _quarantine(self, path: Path, data: bytes, why: str) -> None:
        """Keep a copy of a segment's damaged tail for inspection."""
        bad = self._corrupt_dir()
        target = bad / f"{path.name}.tail-{len(list(bad.iterdir()))}"
        target.write_bytes(data)
        log.error("spool %s: %s (%d bytes, never acknowledged); kept in %s", path, why,
                  len(data), target)

    def keep(self, ref: Ref) -> None:
        """Recovery: the caller still needs this record."""
        self._segments[ref.seq].live += 1

    def collect(self) -> list[Path]:
        """Sealed segments without live records (the caller deletes them)."""
        with self._lock:
            dead = [s for s in self._segments.values() if s.sealed and s.live <= 0]
            for s in dead:
                del self._segments[s.seq]
        return [s.path for s in dead]

    # ---- writing -----------------------------------------------------------------------
    def append(self, header: dict[str, Any], parts: list[bytes], *, sync: bool = True) -> Ref:
        """Append one record; durable when this returns (``sync``, and fsync on), else once
        :meth:`flush` of it returned. Thread-safe."""
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
        size = sum(len(p) for p in parts)
        frame = FRAME.pack(MAGIC, len(head), size, zlib.crc32(head)) + head
        total = len(frame) + size
        if total > self.segment_bytes:
            return self._append_alone(frame, parts, size)
        with self._lock:
            seg = self._current
            if seg is None or seg.size + total > self.segment_bytes:
                seg = self._rotate()
            start = seg.size
            assert seg.fd is not None
            try:
                _write_all(seg.fd, [frame, *parts], start)
            except BaseException:
                self._seal(seg)  # no record may follow a damaged one
                raise
            seg.size += total
            seg.live += 1
        try:
            if sync:
                self._sync(seg, start + total)
        except BaseException:
            with self._lock:
                seg.live -= 1
                if seg is self._current:
                    self._seal(seg)
            raise
        return Ref(seg.seq, seg.path, start + len(frame), size)

    def _new_path(self) -> tuple[int, Path]:
        """The next segment number and file name. Holds _lock."""
        seq = self._next_seq
        self._next_seq += 1
        return seq, self.root / f"{seq:016d}.seg"

    def _create(self, path: Path, parts: list[bytes]) -> int:
        """A new file holding ``parts``, durable with its name; returns its open fd."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, parts, 0)
            if self.fsync:
                os.fdatasync(fd)
                fsync_dir(self.root)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return fd

    def _append_alone(self, frame: bytes, parts: list[bytes], size: int) -> Ref:
        """A large record in a segment of its own (written outside the lock)."""
        with self._lock:
            seq, path = self._new_path()
        os.close(self._create(path, [frame, *parts]))
        total = len(frame) + size
        seg = _Segment(seq, path, size=total, disk=total, live=1, synced=total)
        with self._lock:
            self._segments[seq] = seg
        return Ref(seq, path, len(frame), size)

    def _prepare(self, seq: int, path: Path) -> _Segment:
        """A zero-filled segment, durable with its name, ready to become current."""
        fd = self._create(path, [bytes(self.segment_bytes)])
        return _Segment(seq, path, disk=self.segment_bytes, fd=fd, sealed=False)

    def _prepare_spare(self, seq: int, path: Path) -> None:
        """Background thread: prepare the next segment (takes only _spare_lock)."""
        try:
            spare = self._prepare(seq, path)
        except OSError as exc:  # the next rotation prepares one itself (and reports)
            log.warning("spool %s: cannot prepare the next segment: %s", self.root, exc)
            return
        with self._spare_lock:
            if not self._closed:
                self._spare = spare
                return
        self._discard(spare)

    @staticmethod
    def _discard(seg: _Segment) -> None:
        if seg.fd is not None:
            os.close(seg.fd)
            seg.fd = None
        seg.path.unlink(missing_ok=True)

    def _rotate(self) -> _Segment:
        """Seal the current segment, make the prepared one current (preparing one now if
        there is none) and start preparing the next. Holds _lock."""
        old = self._current
        if old is not None:
            self._seal(old)
            if old.live <= 0:  # every record of it already released
                del self._segments[old.seq]
                old.path.unlink(missing_ok=True)
        if self._preparing is not None:
            self._preparing.join()  # normally long done
            self._preparing = None
        with self._spare_lock:
            seg, self._spare = self._spare, None
        if seg is None:
            seg = self._prepare(*self._new_path())
        self._segments[seg.seq] = seg
        self._current = seg
        self._start_preparing()
        return seg

    def _start_preparing(self) -> None:
        """Prepare the next segment in a background thread. Holds _lock."""
        self._preparing = threading.Thread(target=self._prepare_spare, args=self._new_path(),
                                           daemon=True, name="spool-prepare")
        self._preparing.start()

    def _seal(self, seg: _Segment) -> None:
        """Flush and close a segment; no more appends go there. Holds _lock."""
        with seg.sync_lock:
            if seg.fd is not None:
                try:
                    if self.fsync and seg.synced < seg.size:
                        os.fdatasync(seg.fd)
                finally:
                    os.close(seg.fd)
                    seg.fd = None
            seg.synced = seg.size
            seg.sealed = True
        if self._current is seg:
            self._current = None

    def flushed(self, ref: Ref) -> bool:
        """Whether the record is known to be on stable storage."""
        seg = self._segments.get(ref.seq)
        return not self.fsync or seg is None or seg.synced >= ref.offset + ref.size

    def flush(self, ref: Ref) -> None:
        """Make the record (and every earlier one of its segment) durable. Thread-safe."""
        seg = self._segments.get(ref.seq)
        if seg is not None:
            self._sync(seg, ref.offset + ref.size)

    def _sync(self, seg: _Segment, end: int) -> None:
        """Make the segment durable up to ``end`` (group commit)."""
        if not self.fsync:
            return
        with seg.sync_lock:
            if seg.synced >= end:
                return  # another writer's flush covered these bytes
            target = seg.size  # every record appended so far is written (under _lock)
            assert seg.fd is not None
            os.fdatasync(seg.fd)
            seg.synced = max(seg.synced, target)

    # ---- lifetime ----------------------------------------------------------------------
    def release(self, ref: Ref) -> list[Path]:
        """The record is no longer needed; returns its segment's path if that segment is
        sealed and now holds no live record (the caller deletes it)."""
        with self._lock:
            seg = self._segments.get(ref.seq)
            if seg is None:
                return []
            seg.live -= 1
            if seg.live > 0 or not seg.sealed:
                return []
            del self._segments[seg.seq]
            return [seg.path]

    def segments(self) -> int:
        return len(self._segments)

    def disk_bytes(self) -> int:
        return sum(s.disk for s in list(self._segments.values()))

    def close(self) -> None:
        with self._spare_lock:
            self._closed = True
            spare, self._spare = self._spare, None
        with self._lock:
            if self._preparing is not None:
                self._preparing.join()
                self._preparing = None
            if self._current is not None:
                self._seal(self._current)
        if spare is not None:
            self._discard(spare)
