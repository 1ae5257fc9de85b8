"""jupiter.report: figures from CIRCE's tables, the DAG picture, the text table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from jupiter.app import load_app
from jupiter.report import build_report, render_svg, stream_throughput, table

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
    runtime = [{"task": names[0], "duration": 0.004, "status": "ok"},
               {"task": names[0], "duration": 0.002, "status": "ok"},
               {"task": names[1], "duration": 9.0, "status": "failed"}]
    profile = {"exec": {names[0]: {"w1": {"seconds": 0.003, "output_bytes": 10}}}}
    r = build_report(app, mapping, items, runtime, started_at=5.0, profile=profile)
    assert (r["items_submitted"], r["items_completed"], r["items_failed"]) == (5, 4, 1)
    assert r["failures"] == [{"item": "d", "error": "task report raised ValueError"}]
    assert r["measured"]["first_item_latency_s"] == 10.05 - 10.0
    assert r["measured"]["throughput_per_s"] == 1 / (11.4 - 11.3)
    assert r["first_result_s"] == 9.5 - 5.0 and r["last_result_s"] == 11.4 - 5.0
    first = r["tasks"][0]
    assert (first["predicted_s"], first["measured_p50_s"], first["runs"]) == (0.003, 0.004, 2)
    assert r["tasks"][1]["runs"] == 0


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
