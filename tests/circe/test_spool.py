"""The durable spool: records, recovery, bounds, done-set, segment lifetime."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from jupiter.circe.seglog import SegmentLog
from jupiter.circe.spool import Spool, durable_write, remove


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_durable_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    durable_write(tmp_path / "tmp", tmp_path / "f", [b"ab", b"cd"])
    assert (tmp_path / "f").read_bytes() == b"abcd"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_inputs_and_outputs_survive_a_restart(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    assert s.recover() == ([], [])
    e1 = s.write_in("7", "p0", "7split_0", 1, b"hello", sha(b"hello"))
    s.commit_in(e1)
    e2 = s.write_in("8", "p0", None, 0, b"", sha(b""), error="p0: boom")
    s.commit_in(e2)
    out = s.write_out("9", {"b.txt": b"BB", "a.txt": b"A"}, {"c1": ["a.txt", "b.txt"]})
    s.commit_out(out)
    s.close()
    segment = out.ref.path
    with open(segment, "r+b") as fh:  # a crash in the middle of the next write: torn record
        fh.seek(out.ref.offset + out.ref.size)
        fh.write(b"JCS1\x00\x00\x00\x10")

    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    ins, outs = again.recover()
    assert sorted((e.item, e.parent, e.name, e.error) for e in ins) == [
        ("7", "p0", "7split_0", None), ("8", "p0", None, "p0: boom")]
    assert next(e for e in ins if e.item == "7").read() == b"hello"
    assert [o.item for o in outs] == ["9"]
    assert outs[0].read("a.txt") == b"A" and outs[0].read("b.txt") == b"BB"
    assert outs[0].routes == {"c1": ["a.txt", "b.txt"]}
    assert again.items == 3 and again.bytes == 5 + 3
    # the torn bytes are kept for inspection; writing goes on in a new segment
    assert [p.name for p in (tmp_path / "corrupt").iterdir()] == [segment.name + ".tail-0"]
    again.commit_in(again.write_in("10", "p0", "f", 1, b"more", sha(b"more")))
    assert again.stats()["segments"] == 2


def test_finish_forgets_the_item_and_acknowledges_repeats(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    s.commit_in(s.write_in("x", "home", "x.bin", 1, b"data", sha(b"data")))
    out = s.write_out("x", {"o": b"out"}, {"home": ["o"]})
    s.commit_out(out)
    assert s.has_out("x") and s.inputs_of("x") == []
    remove(s.finish("x"))
    assert s.items == 0 and s.bytes == 0 and s.is_done("x") and s.cached == 0
    s.close()
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    again.recover()
    assert again.is_done("x")


def test_inputs_of_an_item_with_persisted_outputs_are_dropped_on_recovery(tmp_path: Path
                                                                          ) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    s.commit_in(s.write_in("x", "home", "x.bin", 1, b"data", sha(b"data")))
    s.commit_out(s.write_out("x", {"o": b"out"}, {"home": ["o"]}))
    s.close()  # crash before the item was acknowledged downstream
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    ins, outs = again.recover()
    assert ins == [] and [o.item for o in outs] == ["x"]
    assert outs[0].read("o") == b"out" and again.bytes == 3


def test_bounds_refuse_new_items_but_let_admitted_items_complete(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=2, max_bytes=1000, reserve_bytes=100)
    s.recover()
    for item in ("a", "b"):
        assert s.admission(item, 10) is None
        s.commit_in(s.write_in(item, "p0", "f", 1, b"0123456789", sha(b"0123456789")))
    assert "2/2 items" in (s.admission("c", 10) or "")
    assert s.admission("a", 10) is None  # the second input of an admitted item
    assert "bytes" in (s.admission("a", 981) or "")
    remove(s.finish("a"))
    assert s.admission("c", 10) is None
    # bytes: new items keep a reserve so admitted joins can still complete
    assert s.admission("d", 891) is not None and s.admission("b", 891) is None
    assert s.high_items == 2


def test_a_record_whose_body_does_not_match_its_hash_is_dropped(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    s.commit_in(s.write_in("a", "p0", "f", 1, b"good", sha(b"good")))
    bad = s.write_in("b", "p0", "f", 1, b"evil", sha(b"evil"))
    s.commit_in(s.write_in("c", "p0", "f", 1, b"fine", sha(b"fine")))
    s.close()
    with open(bad.ref.path, "r+b") as fh:  # bit rot in the middle of the segment
        fh.seek(bad.ref.offset)
        fh.write(b"EVIL")
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    ins, _ = again.recover()
    assert sorted(e.item for e in ins) == ["a", "c"]
    assert [e.read() for e in sorted(ins, key=lambda e: e.item)] == [b"good", b"fine"]


def test_stray_file_in_the_log_folder_is_quarantined(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    (tmp_path / "log" / "bogus.in").write_bytes(b"not json\n")
    s.close()
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    assert again.recover() == ([], [])
    assert (tmp_path / "corrupt" / "bogus.in").exists()


def test_segments_rotate_and_are_deleted_once_nothing_in_them_is_needed(tmp_path: Path
                                                                         ) -> None:
    s = Spool(tmp_path, max_items=100, max_bytes=10_000_000)
    s.log.segment_bytes = 4096
    s.recover()
    body = b"x" * 1000
    for n in range(12):  # about 3 records per segment
        s.commit_in(s.write_in(f"i{n}", "p0", "f", 1, body, sha(body)))
    big = b"y" * 10_000  # larger than a segment: a segment of its own
    s.commit_in(s.write_in("big", "p0", "f", 1, big, sha(big)))
    assert s.stats()["segments"] >= 5
    dead: list[Path] = []
    for n in range(12):
        s.commit_out(s.write_out(f"i{n}", {}, {}))
        dead += s.finish(f"i{n}")
    assert dead and all(p.exists() for p in dead)
    remove(dead)
    s.commit_out(s.write_out("big", {"o": big}, {}))
    remove(s.finish("big"))
    # only the current segment is left (it holds no live record, it is just still open)
    s.close()
    again = Spool(tmp_path, max_items=100, max_bytes=10_000_000)
    assert again.recover() == ([], [])
    assert again.stats()["segments"] == 0  # left on disk: only a prepared (empty) segment
    assert all(not p.read_bytes().strip(b"\0") for p in (tmp_path / "log").iterdir())
    assert all(again.is_done(f"i{n}") for n in range(12)) and again.is_done("big")
    again.close()


def test_concurrent_appends_share_flushes_and_all_survive(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path / "log", segment_bytes=64 * 1024)
    assert log.scan() == []
    refs = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for n in range(50):
            ref = log.append({"w": w, "n": n}, [f"{w}:{n}".encode() * 20])
            with lock:
                refs.append((w, n, ref))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(ref.read() == f"{w}:{n}".encode() * 20 for w, n, ref in refs)
    log.close()
    again = SegmentLog(tmp_path / "log")
    found = {(r.header["w"], r.header["n"]): r.ref.read() for r in again.scan()}
    assert found == {(w, n): f"{w}:{n}".encode() * 20 for w, n, _ in refs}


def test_an_unflushed_record_is_made_durable_by_a_later_flush(tmp_path: Path) -> None:
    log = SegmentLog(tmp_path / "log")
    log.scan()
    first = log.append({"n": 1}, [b"input"], sync=False)
    assert not log.flushed(first)
    second = log.append({"n": 2}, [b"outputs"])  # its flush covers the earlier record
    assert log.flushed(first) and log.flushed(second)
    third = log.append({"n": 3}, [b"more"], sync=False)
    log.flush(third)
    assert log.flushed(third)
    log.close()
    assert [r.ref.read() for r in SegmentLog(tmp_path / "log").scan()] == [
        b"input", b"outputs", b"more"]
