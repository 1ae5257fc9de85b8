"""jupiter.report: figures from CIRCE's tables, the DAG picture, the text table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from jupiter.app import load_app
from jupiter.report import (
    build_report,
    render_svg,
    render_text,
    split_lone,
    stream_throughput,
    table,
    task_cpu_per_item,
)

ROOT = Path(__file__).resolve().parents[2]


def _item(item: str, submitted: float, completed: float | None,
          status: str = "completed") -> dict[str, object]:
    return {"item": item, "submitted": submitted, "completed": completed,
            "latency": None if completed is None else completed - submitted, "status": status}


def test_stream_throughput_leaves_out_the_lone_first_item_and_the_fill_time() -> None:
    lone = _item("1", 100.0, 100.5)
    stream = [_item(str(i), 101.0, 101.2 + 0.1 * i) for i in range(2, 7)]  # 0.1 s period
    assert abs(stream_throughput([lone, *stream]) - 10.0) < 1e-9
    assert stream_throughput([lone]) is None


def test_stream_throughput_of_a_windowed_stream_leaves_out_the_drain() -> None:
    # a window of 2: each completion lets the next item in, one every 0.1 s; the last two
    # items are submitted at 20.7, and once nothing is fed they drain 0.02 s apart
    fed = [_item(str(i), 20.0 + max(0, 0.1 * (i - 1)), 20.1 + 0.1 * i) for i in range(8)]
    drain = [_item("8", 20.7, 20.82), _item("9", 20.7, 20.84)]
    assert stream_throughput([*fed, *drain]) == pytest.approx(10.0)
    # the whole stream's rate would count the drain: (10 - 1) / 0.74 s
    assert stream_throughput([*fed, *drain]) < 9 / (20.84 - 20.1)


def test_stream_throughput_of_a_folder_fed_at_once_is_over_every_item() -> None:
    # all submitted at 20.0: no completion while fed, so the rate is over all of them
    burst = [_item(str(i), 20.0, 20.5 + 0.1 * i) for i in range(5)]
    assert stream_throughput(burst) == pytest.approx(10.0)
    # a few completions before the last submission are not enough to stand for the stream
    early = [_item("a", 19.0, 19.4), _item("b", 19.0, 19.5), _item("z", 19.6, 21.0)]
    assert stream_throughput([*early, *burst]) == pytest.approx(7 / (21.0 - 19.4))


def _cpu_row(task: str, item: str, finish: float, cpu: float | None,
             status: str = "ok") -> dict[str, object]:
    return {"task": task, "item": item, "finish": finish, "process_cpu_s": cpu,
            "status": status}


def test_task_cpu_per_item_is_the_cpu_between_finishes_while_the_stream_was_fed() -> None:
    # a window of 2: one item every 0.1 s; the last two are submitted at 20.7 and drain
    fed = [_item(str(i), 20.0 + max(0, 0.1 * (i - 1)), 20.1 + 0.1 * i) for i in range(8)]
    drain = [_item("8", 20.7, 20.82), _item("9", 20.7, 20.84)]
    stream = [*fed, *drain]
    # task "a" uses 4 ms per item; its process had used 1.5 s before the stream
    rows = [_cpu_row("a", str(i), 20.05 + 0.1 * i, 1.5 + 0.004 * i) for i in range(8)]
    # the drain's items ran on a machine the others had left: 1 ms each, not counted
    rows += [_cpu_row("a", "8", 20.81, 1.5 + 0.004 * 7 + 0.001),
             _cpu_row("a", "9", 20.83, 1.5 + 0.004 * 7 + 0.002)]
    # task "b" finished two items out of order (run side by side), and one of its runs
    # failed (no figure); it uses 2 ms per item
    rows += [_cpu_row("b", str(i), 20.06 + 0.1 * i, 0.7 + 0.002 * i) for i in (0, 1, 3, 4)]
    rows += [_cpu_row("b", "2", 20.37, 0.7 + 0.002 * 2), _cpu_row("b", "5", 20.6, None,
                                                                "failed")]
    # an item that is not the stream's (a lone one) and a task that reported no CPU
    rows += [_cpu_row("a", "lone", 19.0, 0.2), _cpu_row("c", "0", 20.1, None)]
    cpu = task_cpu_per_item(rows, stream)
    assert cpu.keys() == {"a", "b"}
    assert cpu["a"] == pytest.approx(0.004)
    assert cpu["b"] == pytest.approx(0.002)


def test_task_cpu_per_item_starts_again_after_a_restart() -> None:
    stream = [_item(str(i), 10.0 + 0.1 * i, 10.2 + 0.1 * i) for i in range(8)]
    # 3 ms per item; after item 3 the process was restarted and counts from 0.4 s again
    before = [_cpu_row("a", str(i), 10.2 + 0.1 * i, 2.0 + 0.003 * i) for i in range(4)]
    after = [_cpu_row("a", str(i), 10.2 + 0.1 * i, 0.4 + 0.003 * (i - 4)) for i in range(4, 8)]
    assert task_cpu_per_item([*before, *after], stream)["a"] == pytest.approx(0.003)
    # one finish alone measures nothing
    assert task_cpu_per_item(before[:1], stream) == {}
    assert task_cpu_per_item(before, []) == {}


def test_report_compares_prediction_with_measurements() -> None:
    app = load_app(ROOT / "task_specific_files" / "diamond").to_dict()
    names = [t["name"] for t in app["tasks"]]
    mapping = {"algorithm": "heft", "mapping": dict.fromkeys(names, "w1"), "home": "hub",
               "predicted": {"latency_s": 0.02, "period_s": 0.01, "throughput_per_s": 100.0,
                             "bottleneck": "node w1"}}
    items = [_item("w", 9.0, 9.5), _item("a", 10.0, 10.05), _item("b", 11.0, 11.3),
             _item("c", 11.0, 11.4),
             _item("d", 11.0, None, status="failed"), _item("b", 11.0, 11.3)]
    items[4]["error"] = "task report raised ValueError"
    mapping["predicted"]["task_cpu_s"] = {names[0]: 0.0025}
    runtime = [{"task": names[0], "item": "b", "duration": 0.004, "status": "ok",
                "finish": 11.25, "process_cpu_s": 1.0},
               {"task": names[0], "item": "c", "duration": 0.002, "status": "ok",
                "finish": 11.35, "process_cpu_s": 1.003},
               {"task": names[1], "duration": 9.0, "status": "failed"}]
    profile = {"exec": {names[0]: {"w1": {"seconds": 0.003, "output_bytes": 10}}}}
    r = build_report(app, mapping, items, runtime, started_at=5.0, profile=profile)
    assert (r["items_submitted"], r["items_completed"], r["items_failed"]) == (5, 4, 1)
    assert r["failures"] == [{"item": "d", "error": "task report raised ValueError"}]
    assert r["measured"]["single_item_latency_s"] == 10.05 - 10.0
    assert r["measured"]["single_item_runs"] == 1 and r["measured"]["stream_items"] == 2
    assert r["measured"]["throughput_per_s"] == 1 / (11.4 - 11.3)
    assert r["first_result_s"] == 9.5 - 5.0 and r["last_result_s"] == 11.4 - 5.0
    first = r["tasks"][0]
    assert (first["predicted_s"], first["measured_p50_s"], first["runs"]) == (0.003, 0.004, 2)
    assert first["predicted_cpu_per_item_s"] == 0.0025
    assert first["cpu_per_item_s"] == pytest.approx(0.003)
    assert r["tasks"][1]["runs"] == 0
    assert r["tasks"][1]["cpu_per_item_s"] is r["tasks"][1]["predicted_cpu_per_item_s"] is None
    header = render_text(r, {}).splitlines()[2]
    assert "pred CPU/item s" in header and header.endswith("measured")
    assert r["predicted"]["over_quota"] == {}  # a mapping of before: nothing past a quota
    assert "period this mapping may plan on" not in render_text(r, {})


def test_the_report_names_a_node_past_its_quota_share_per_item() -> None:
    app = load_app(ROOT / "task_specific_files" / "diamond").to_dict()
    mapping = {"algorithm": "static", "mapping": {t["name"]: "w1" for t in app["tasks"]},
               "predicted": {"latency_s": 0.04, "period_s": 0.01, "throughput_per_s": 100.0,
                             "bottleneck": "node w1",
                             "over_quota": {"w1": {"item_cpu_s": 0.0558, "cap_s": 0.0408}}}}
    r = build_report(app, mapping, [_item("1", 10.0, 10.1)], [], started_at=None)
    assert r["predicted"]["over_quota"] == {"w1": {"item_cpu_s": 0.0558, "cap_s": 0.0408}}
    warning = [line for line in render_text(r, {}).splitlines() if line.startswith("w1:")]
    assert len(warning) == 1
    assert "55.8 ms of CPU" in warning[0] and "40.8 ms" in warning[0]
    assert "wave_item_quota_share" in warning[0]


def _diamond_report(items: list[dict[str, object]]) -> dict[str, Any]:
    app = load_app(ROOT / "task_specific_files" / "diamond").to_dict()
    mapping = {"algorithm": "stream", "mapping": {t["name"]: "w1" for t in app["tasks"]},
               "predicted": {"latency_s": 0.04, "period_s": 0.01, "throughput_per_s": 100.0,
                             "bottleneck": "node w1"}}
    return build_report(app, mapping, items, [], started_at=None)


# item, submitted, completed: a warm-up, three more items one at a time, then a stream of 5
# (all submitted at 20.0, one completion every 0.1 s after a fill time of 0.5 s).
SINGLE_THEN_STREAM = [
    ("1", 10.0, 10.5),  # warm-up: slow, left out
    ("2", 11.0, 11.046),
    ("3", 12.0, 12.036),
    ("4", 13.0, 13.040),
    *[(str(n), 20.0, 20.5 + 0.1 * (n - 5)) for n in range(5, 10)],
]


def test_single_item_latency_is_the_median_of_the_lone_items_after_the_warm_up() -> None:
    items = [_item(i, s, c) for i, s, c in SINGLE_THEN_STREAM]
    lone, stream = split_lone(items)
    assert [r["item"] for r in lone] == ["1", "2", "3", "4"]
    assert [r["item"] for r in stream] == ["5", "6", "7", "8", "9"]
    m = _diamond_report(items)["measured"]
    assert m["single_item_latencies_s"] == pytest.approx([0.046, 0.036, 0.040])
    assert m["single_item_latency_s"] == pytest.approx(0.040)
    assert (m["single_item_runs"], m["stream_items"]) == (3, 5)
    # the stream's completion rate: 4 intervals of 0.1 s, lone items and fill time left out
    assert m["throughput_per_s"] == pytest.approx(10.0)
    assert m["latency_p50_s"] == pytest.approx(0.7)  # over the stream only
    assert "single-item latency, warm, median of 3 (s)" in render_text(
        _diamond_report(items), {})


def test_single_item_latency_of_an_even_number_of_runs_averages_the_middle_two() -> None:
    items = [_item("1", 1.0, 1.5), _item("2", 2.0, 2.03), _item("3", 3.0, 3.05)]
    m = _diamond_report(items)["measured"]
    assert m["single_item_latency_s"] == pytest.approx(0.04)
    assert (m["single_item_runs"], m["stream_items"], m["throughput_per_s"]) == (2, 0, None)


def test_one_lone_item_is_the_single_item_latency() -> None:
    items = [_item("1", 10.0, 10.05), *[_item(str(n), 11.0, 11.2 + 0.1 * n) for n in (2, 3, 4)]]
    m = _diamond_report(items)["measured"]
    assert m["single_item_latencies_s"] == pytest.approx([0.05])
    assert m["single_item_latency_s"] == pytest.approx(0.05)
    assert (m["single_item_runs"], m["stream_items"]) == (1, 3)
    assert m["throughput_per_s"] == pytest.approx(10.0)


def test_no_lone_items_gives_no_single_item_latency() -> None:
    items = [_item(str(n), 11.0, 11.2 + 0.1 * n) for n in range(1, 6)]  # all in flight at once
    report = _diamond_report(items)
    m = report["measured"]
    assert (m["single_item_latency_s"], m["single_item_latencies_s"]) == (None, [])
    assert (m["single_item_runs"], m["stream_items"]) == (0, 5)
    assert m["throughput_per_s"] == pytest.approx(10.0)
    assert "single-item latency, warm, median of 0 (s)" in render_text(report, {})


def test_the_only_item_ran_alone() -> None:
    lone, stream = split_lone([_item("1", 10.0, 10.05)])
    assert ([r["item"] for r in lone], stream) == (["1"], [])
    assert _diamond_report([_item("1", 10.0, 10.05)])["measured"]["single_item_runs"] == 1


def test_picture_colours_every_task_by_its_node() -> None:
    app = load_app(ROOT / "task_specific_files" / "network_monitoring_app").to_dict()
    mapping = {t["name"]: ("edge1" if "detector" in t["name"] else "cloud1")
               for t in app["tasks"]}
    svg = ET.fromstring(render_svg(app, mapping, "hub"))
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    for t in app["tasks"]:
        assert t["name"] in texts
    assert {"@edge1", "@cloud1", "@hub", "edge1", "cloud1", "hub"} <= set(texts)
    fills = {r.get("fill") for r in svg.iter("{http://www.w3.org/2000/svg}rect")}
    assert len(fills - {"white"}) == 3  # one colour per node


def test_table_aligns_columns() -> None:
    text = table(["a", "bb"], [[1.23456, None], ["long", "x"]])
    assert text.splitlines() == ["a      bb", "-----  --", "1.235  -", "long   x"]


def test_the_report_covers_the_items_of_the_folder_that_was_fed(tmp_path: Path) -> None:
    """Home's tables keep every item of the state folder: earlier deploys, items fed by hand."""
    import json

    from jupiter.report import write_report

    app = load_app(ROOT / "task_specific_files" / "diamond").to_dict()
    names = [t["name"] for t in app["tasks"]]
    state = tmp_path / "state"
    (state / "circe").mkdir(parents=True)
    (state / "mapping.json").write_text(json.dumps(
        {"algorithm": "heft", "mapping": dict.fromkeys(names, "w1"), "home": "hub",
         "predicted": {"latency_s": 0.02}}))
    by_hand = [_item(f"old{i}", 1.0 + i, 1.5 + i) for i in range(50)]  # a slow run by hand
    fed = [_item("1", 100.0, 100.5), _item("2", 101.0, 101.04), _item("3", 102.0, 102.03)]
    (state / "circe" / "items.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in by_hand + fed))
    (state / "circe" / "runtime.jsonl").write_text(json.dumps(
        {"item": "old1", "task": names[0], "duration": 9.0, "status": "ok"}) + "\n")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in ("1", "2", "3"):
        (inputs / f"{n}.bin").write_bytes(b"x")
    write_report(state, app, None, inputs)
    r = json.loads((state / "report.json").read_text())
    assert r["items_submitted"] == 3 and r["measured"]["single_item_runs"] == 2
    assert r["measured"]["single_item_latency_s"] == pytest.approx(0.035)
    assert r["tasks"][0]["runs"] == 0  # the hand-fed item's row is not this run's
    write_report(state, app, None)  # without the folder: everything home saw
    assert json.loads((state / "report.json").read_text())["items_submitted"] == 53


def test_items_an_earlier_deploy_ran_are_left_out_and_counted() -> None:
    """A second deploy feeds the same files: home acknowledges them without running them, so
    their figures are an earlier run's (maybe on another mapping) and stay out."""
    app = load_app(ROOT / "task_specific_files" / "diamond").to_dict()
    first = app["tasks"][0]["name"]
    mapping = {"algorithm": "heft", "mapping": {t["name"]: "w1" for t in app["tasks"]},
               "predicted": {"latency_s": 0.02, "period_s": 0.01, "throughput_per_s": 100.0,
                             "bottleneck": "node w1"}}
    old = [_item("1", 10.0, 10.5), _item("2", 11.0, 11.2)]
    runtime = [{"item": "1", "task": first, "duration": 0.9, "status": "ok"},
               {"item": "3", "task": first, "duration": 0.004, "status": "ok"}]
    r = build_report(app, mapping, [*old, _item("3", 105.0, 105.05)], runtime,
                     started_at=100.0)
    assert (r["items_submitted"], r["items_completed"], r["items_earlier"]) == (1, 1, 2)
    assert r["measured"]["single_item_latency_s"] == pytest.approx(0.05)
    assert r["tasks"][0]["runs"] == 1 and r["tasks"][0]["measured_p50_s"] == 0.004
    assert r["first_result_s"] == pytest.approx(5.05)
    # nothing new ran: no figures, and the text says why and what to do
    r = build_report(app, mapping, old, runtime, started_at=100.0)
    assert (r["items_submitted"], r["items_earlier"], r["first_result_s"]) == (0, 2, None)
    assert r["measured"]["single_item_latency_s"] is None and r["tasks"][0]["runs"] == 0
    text = render_text(r, {})
    assert "2 item(s) fed were done by an earlier run" in text
    assert "jupiter_purge=true" in text and "after deploy.yml started" not in text
    # without a start time (jupiter report by hand) every item counts
    assert build_report(app, mapping, old, runtime, started_at=None)["items_submitted"] == 2
