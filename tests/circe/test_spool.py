"""The durable spool: records, recovery, bounds, done-set."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
    (s.tmp / "half-written.tmp").write_bytes(b"x")  # a crash in the middle of a write
    s.close()

    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    ins, outs = again.recover()
    assert sorted((e.item, e.parent, e.name, e.error) for e in ins) == [
        ("7", "p0", "7split_0", None), ("8", "p0", None, "p0: boom")]
    assert next(e for e in ins if e.item == "7").read() == b"hello"
    assert [o.item for o in outs] == ["9"]
    assert outs[0].read("a.txt") == b"A" and outs[0].read("b.txt") == b"BB"
    assert outs[0].routes == {"c1": ["a.txt", "b.txt"]}
    assert list(again.tmp.iterdir()) == []
    assert again.items == 3 and again.bytes == 5 + 3


def test_finish_forgets_the_item_and_acknowledges_repeats(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    s.commit_in(s.write_in("x", "home", "x.bin", 1, b"data", sha(b"data")))
    out = s.write_out("x", {"o": b"out"}, {"home": ["o"]})
    s.commit_out(out)
    assert s.has_out("x") and s.inputs_of("x") == []
    remove(s.finish("x"))
    assert s.items == 0 and s.bytes == 0 and s.is_done("x")
    assert list(s.in_dir.iterdir()) == [] and list(s.out_dir.iterdir()) == []
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
    s.close()  # crash before the input files were removed
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    ins, outs = again.recover()
    assert ins == [] and [o.item for o in outs] == ["x"]
    assert list(again.in_dir.iterdir()) == []


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


def test_corrupt_record_is_quarantined(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_items=10, max_bytes=10_000)
    s.recover()
    (s.in_dir / "bogus.in").write_bytes(b"not json\n")
    s.close()
    again = Spool(tmp_path, max_items=10, max_bytes=10_000)
    assert again.recover() == ([], [])
    assert (tmp_path / "corrupt" / "bogus.in").exists()
