"""The two sample apps: valid, their tasks run on the committed sample input, outputs carry
the item prefix and are byte-deterministic.

A small in-process runner walks each app's DAG the way CIRCE routes items (broadcast: every
output to every child; split: i-th output in sorted name order to the i-th child; a task
runs once it has one delivery per parent), calling the real task functions in fresh
folders.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from app_helpers import APPS

from jupiter.app.loader import inspect_app
from jupiter.app.model import HOME, App

NMA = APPS / "network_monitoring_app"
DIAMOND = APPS / "diamond"


def _load(app: App, name: str) -> ModuleType:
    t = app.task(name)
    path = Path(app.root) / t.script
    spec = importlib.util.spec_from_file_location(f"sample_{app.key}_{t.key}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # sibling imports, as jupiter.taskscript allows
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def run_item(app: App, first: str, data: bytes, work: Path) -> dict[str, dict[str, bytes]]:
    """Run one item through ``app``; return every task's outputs (and ``home``'s inputs)."""
    modules = {n: _load(app, n) for n in app.names}
    inbox: dict[str, dict[str, list[tuple[str, bytes]]]] = {n: {} for n in [*app.names, HOME]}
    item = first.split(".", 1)[0]
    inbox[app.ingress[0]]["<submit>"] = [(first, data)]
    produced: dict[str, dict[str, bytes]] = {}
    for name in app.topological_order():
        t = app.task(name)
        parents = app.parents(name) or ["<submit>"]
        assert sorted(inbox[name]) == sorted(parents), f"{name} did not get all inputs"
        inputs = [f for p in parents for f in sorted(inbox[name][p])]
        if t.interface == "legacy":
            pathin, pathout = work / name / "in", work / name / "out"
            pathin.mkdir(parents=True)
            pathout.mkdir(parents=True)
            for fname, content in inputs:
                (pathin / fname).write_bytes(content)
            names = [f for f, _ in inputs]
            arg = names[0] if t.num_inputs == 1 and len(names) == 1 else names
            modules[name].task(arg, str(pathin) + "/", str(pathout) + "/", *t.args)
            outputs = {p.name: p.read_bytes() for p in sorted(pathout.iterdir())}
        else:
            outputs = modules[name].process(item, dict(inputs))
        produced[name] = outputs
        ordered = sorted(outputs.items())
        for i, child in enumerate(t.children):
            chosen = ordered if t.mode == "broadcast" else [ordered[i]]
            inbox[child][name] = chosen
    produced[HOME] = {f: c for deliveries in inbox[HOME].values() for f, c in deliveries}
    return produced


# ---- network monitoring app ------------------------------------------------------------------


def test_network_monitoring_app_is_valid_with_jupiter_shape() -> None:
    app, warnings = inspect_app(NMA)
    assert warnings == []
    assert app.format == "legacy"
    assert len(app.tasks) == 14
    assert app.ingress == ["local_pro"]
    assert app.sinks == ["global_fusion"]
    lp = app.task("local_pro")
    assert (lp.mode, lp.num_inputs, lp.children) == (
        "split",
        1,
        ("aggregate0", "aggregate1", "aggregate2"),
    )
    for i in range(3):
        assert app.task(f"aggregate{i}").children == (f"simple_detector{i}", f"astute_detector{i}")
        assert app.task(f"simple_detector{i}").children == (f"fusion_center{i}",)
        assert app.task(f"astute_detector{i}").children == (f"fusion_center{i}",)
        assert app.task(f"fusion_center{i}").num_inputs == 2
        assert app.task(f"fusion_center{i}").children == ("global_fusion",)
    assert app.task("global_fusion").num_inputs == 3
    assert app.task("global_fusion").children == (HOME,)
    assert all(t.interface == "legacy" for t in app.tasks)


SAMPLES = sorted((NMA / "sample_input").glob("*botnet.ipsum"))


def test_sample_input_is_what_the_generator_makes(tmp_path: Path) -> None:
    sys.path.insert(0, str(NMA))
    try:
        import generate_input  # the app's own generator
    finally:
        sys.path.remove(str(NMA))
    made = generate_input.generate(tmp_path, files=8, packets=1000, seed=14635)
    assert [p.name for p in made] == [p.name for p in SAMPLES]
    for ours, committed in zip(made, SAMPLES, strict=True):
        assert ours.read_bytes() == committed.read_bytes(), committed.name
    # a different seed gives different traffic
    other = generate_input.generate(tmp_path / "other", files=1, packets=1000, seed=1)
    assert other[0].read_bytes() != SAMPLES[0].read_bytes()


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_input_looks_like_ipsumdump(sample: Path) -> None:
    lines = sample.read_text().splitlines()
    header = [line for line in lines if line.startswith("!")]
    packets = [line for line in lines if not line.startswith("!")]
    assert header[0].startswith("!IPSummaryDump")
    assert "!data timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags" in header
    assert len(packets) == 1000
    stamps = []
    for line in packets:
        ts, src, sport, _dst, dport, length, proto, flags = line.split()
        assert re.fullmatch(r"\d+\.\d{6}", ts)
        assert re.fullmatch(r"10\.0\.\d+\.\d+", src)
        assert proto in {"T", "U", "I"}
        assert (sport == "-") == (proto == "I") and (dport == "-") == (proto == "I")
        assert (flags == "-") == (proto != "T")
        assert int(length) > 0
        stamps.append(float(ts))
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_network_monitoring_app_runs_on_sample(sample: Path, tmp_path: Path) -> None:
    app, _ = inspect_app(NMA)
    n = sample.name.split("botnet")[0]
    out = run_item(app, sample.name, sample.read_bytes(), tmp_path / "run1")
    # every task carries the item prefix forward in its output names
    assert sorted(out["local_pro"]) == [f"{n}split_{i}.ipsum" for i in range(3)]
    for i in range(3):
        assert list(out[f"aggregate{i}"]) == [f"{n}merged_file{i}.ipsum"]
        assert list(out[f"simple_detector{i}"]) == [f"{n}anomalies_simple{i}.log"]
        assert list(out[f"astute_detector{i}"]) == [f"{n}anomalies_astute{i}.log"]
        assert list(out[f"fusion_center{i}"]) == [f"{n}fused_anomalies{i}.log"]
    assert list(out[HOME]) == [f"{n}global_anomalies.log"]
    # the split keeps every packet exactly once, with the header in every part
    packets_in = [ln for ln in sample.read_text().splitlines() if not ln.startswith("!")]
    parts = [out["local_pro"][f"{n}split_{i}.ipsum"].decode().splitlines() for i in range(3)]
    assert sum(len([ln for ln in p if not ln.startswith("!")]) for p in parts) == len(packets_in)
    assert all(any(ln.startswith("!data") for ln in p) for p in parts)
    # the result: a header, then '<ip> confirmed|suspected <parts>' sorted by address
    result = out[HOME][f"{n}global_anomalies.log"].decode().splitlines()
    assert result[0].startswith("!global_fusion")
    rows = [r.split() for r in result[1:]]
    assert rows, "the injected anomalies were not found"
    assert all(
        r[1] in {"confirmed", "suspected"} and re.fullmatch(r"[0-2](,[0-2])*", r[2]) for r in rows
    )
    if int(n) % 2 == 1:  # the generator injects a port scanner in odd items
        assert any(r[1] == "confirmed" for r in rows)
    # byte-deterministic: a second run gives the same bytes everywhere
    again = run_item(app, sample.name, sample.read_bytes(), tmp_path / "run2")
    assert again == out


def test_local_pro_hash_is_crc32_seeded() -> None:
    import zlib

    app, _ = inspect_app(NMA)
    lp = _load(app, "local_pro")
    assert lp.part_of("10.0.0.1", "8.8.8.8") == zlib.crc32(b"10.0.0.18.8.8.8", 14635) % 3
    assert lp.item_prefix("12botnet.ipsum") == "12"


def test_detectors_on_synthetic_summaries(tmp_path: Path) -> None:
    app, _ = inspect_app(NMA)
    simple = _load(app, "simple_detector0")
    astute = _load(app, "astute_detector0")
    counts = {f"10.0.0.{i}": 10 + (i % 3) for i in range(30)}
    counts["10.0.9.9"] = 200
    _, flagged = simple.detect(counts)
    assert flagged == ["10.0.9.9"]
    fanout = {f"10.0.0.{i}": 1 + (i % 4) for i in range(30)}
    fanout["10.0.8.8"] = 40
    _, _, flagged = astute.detect(fanout)
    assert flagged == ["10.0.8.8"]
    # a uniform population has no outlier
    assert astute.detect({f"h{i}": 3 for i in range(10)})[2] == []
    assert simple.detect({})[1] == []


def test_indexed_scripts_differ_only_by_index() -> None:
    for kind in ("aggregate", "simple_detector", "astute_detector", "fusion_center"):
        base = (NMA / "scripts" / f"{kind}0.py").read_text().splitlines()
        for i in (1, 2):
            other = (NMA / "scripts" / f"{kind}{i}.py").read_text().splitlines()
            assert len(other) == len(base), kind
            for a, b in zip(base, other, strict=True):
                if a != b:  # a line naming the index: only the index may differ
                    assert a.replace("0", str(i)) == b, (kind, a, b)


def test_fusion_center_intersection_and_union(tmp_path: Path) -> None:
    app, _ = inspect_app(NMA)
    fusion = _load(app, "fusion_center1")
    (tmp_path / "7anomalies_simple1.log").write_text("!x\n10.0.0.1 50\n10.0.0.2 40\n")
    (tmp_path / "7anomalies_astute1.log").write_text("!x\n10.0.0.2 30\n10.0.0.3 20\n")
    out = fusion.task(
        ["7anomalies_simple1.log", "7anomalies_astute1.log"], str(tmp_path), str(tmp_path)
    )
    assert [Path(p).name for p in out] == ["7fused_anomalies1.log"]
    lines = Path(out[0]).read_text().splitlines()[1:]
    assert lines == [
        "10.0.0.1 suspected simple",
        "10.0.0.2 confirmed simple,astute",
        "10.0.0.3 suspected astute",
    ]


# ---- diamond -------------------------------------------------------------------------------------

DIAMOND_SAMPLES = sorted((DIAMOND / "sample_input").iterdir())


def test_diamond_is_valid() -> None:
    app, warnings = inspect_app(DIAMOND)
    assert warnings == []
    assert app.format == "yaml"
    assert app.ingress == ["tokenize"] and app.sinks == ["report"]
    assert app.task("report").num_inputs == 2
    assert all(t.interface == "process" for t in app.tasks)
    assert app.task("count_words").resources == {"cpu": "100m", "memory": "64Mi"}
    assert len(DIAMOND_SAMPLES) >= 3


@pytest.mark.parametrize("sample", DIAMOND_SAMPLES, ids=[p.name for p in DIAMOND_SAMPLES])
def test_diamond_runs_on_sample(sample: Path, tmp_path: Path) -> None:
    app, _ = inspect_app(DIAMOND)
    out = run_item(app, sample.name, sample.read_bytes(), tmp_path)
    item = sample.name.split(".", 1)[0]
    assert list(out["tokenize"]) == ["tokens.txt"]
    assert list(out["count_words"]) == ["top_words.tsv"]
    assert list(out["word_lengths"]) == ["lengths.tsv"]
    report = out[HOME]["report.txt"].decode()
    words = len(out["tokenize"]["tokens.txt"].decode().split())
    assert report.startswith(f"item {item}: {words} words, mean length ")
    top = out["count_words"]["top_words.tsv"].decode().splitlines()
    assert len(top) == 10 and top[0].startswith("the\t")
    assert run_item(app, sample.name, sample.read_bytes(), tmp_path / "again") == out
