"""Predictions of latency, period, throughput and bottleneck, checked by hand.

Links: 10 ms latency, 8e6 bit/s = 1 MB/s, so N bytes take 0.01 + N/1e6 seconds.
"""

from __future__ import annotations

import pytest
from wave_helpers import make_app, make_profile

from jupiter.errors import InvalidInput
from jupiter.wave import predict

SPEEDS = {"home": 1.0, "n1": 1.0, "n2": 1.0}


def chain_profile(a_bytes: int = 2000) -> tuple:
    app = make_app({"a": ["b"], "b": ["home"]})
    prof = make_profile(SPEEDS, exec_={"a": {n: (1.0, a_bytes) for n in SPEEDS},
                                       "b": {n: (2.0, 500) for n in SPEEDS}})
    return app, prof


def test_latency_counts_input_and_result_transfers():
    app, prof = chain_profile()
    p = predict(app, prof, {"a": "n1", "b": "n2"}, "home", input_bytes=1000)
    # home->n1 11 ms, a 1 s, n1->n2 12 ms, b 2 s, n2->home 10.5 ms
    assert p.latency_s == pytest.approx(0.011 + 1 + 0.012 + 2 + 0.0105)
    assert p.period_s == pytest.approx(2.0)
    assert p.throughput_per_s == pytest.approx(0.5)
    assert p.bottleneck == "node n2"
    assert p.to_dict() == {"latency_s": p.latency_s, "period_s": 2.0,
                           "throughput_per_s": 0.5, "bottleneck": "node n2",
                           "task_cpu_s": {"a": 1.0, "b": 2.0}, "over_quota": {}}


def test_each_task_cpu_per_item_in_a_stream_adds_up_to_its_node_stage():
    app, prof = chain_profile()
    # dispatcher work: 0.1 s per request (a and b: one in, one out) and 1e-4 s per byte
    # (a: 1000 in + 2000 out, b: 2000 in + 500 out)
    p = predict(app, prof, {"a": "n1", "b": "n1"}, "home", input_bytes=1000,
                request_overhead_s=0.1, byte_overhead_s=1e-4)
    cpu = p.to_dict()["task_cpu_s"]
    assert cpu == pytest.approx({"a": 1.0 + 0.2 + 0.3, "b": 2.0 + 0.2 + 0.25})
    assert p.period_s == pytest.approx(cpu["a"] + cpu["b"])


def test_same_node_saves_the_transfer_but_adds_up_compute():
    app, prof = chain_profile()
    p = predict(app, prof, {"a": "n1", "b": "n1"}, "home", input_bytes=1000)
    assert p.latency_s == pytest.approx(0.011 + 1 + 2 + 0.0105)
    assert p.period_s == pytest.approx(3.0)
    assert p.bottleneck == "node n1"


def test_a_slow_link_is_the_bottleneck():
    app, prof = chain_profile(a_bytes=5_000_000)
    p = predict(app, prof, {"a": "n1", "b": "n2"}, "home")
    assert p.period_s == pytest.approx(5.0)  # 5 MB at 1 MB/s, latency overlaps
    assert p.bottleneck == "link n1->n2"
    assert p.latency_s == pytest.approx(0.01 + 1 + 5.01 + 2 + 0.0105)


def test_tasks_on_a_single_core_node_run_one_at_a_time_longest_path_first():
    app = make_app({"a": ["b", "c"], "b": ["home"], "c": ["home"]})
    prof = make_profile(SPEEDS, exec_={"a": {"n1": (1.0, 1000)}, "b": {"n1": (2.0, 0)},
                                       "c": {"n1": (1.0, 0)}})
    prof.nodes["n1"].cpu_count = 1
    p = predict(app, prof, {"a": "n1", "b": "n1", "c": "n1"}, "home")
    # a 0.01-1.01; b (longer) 1.01-3.01; c 3.01-4.01; c's result home at 4.02
    start = dict(zip(["a", "b", "c"], p.plan.start[:3].tolist(), strict=True))
    assert start == pytest.approx({"a": 0.01, "b": 1.01, "c": 3.01})
    assert p.latency_s == pytest.approx(4.02)
    # two cores: b and c run side by side; b's result home at 3.02
    prof.nodes["n1"].cpu_count = 2
    p = predict(app, prof, {"a": "n1", "b": "n1", "c": "n1"}, "home")
    start = dict(zip(["a", "b", "c"], p.plan.start[:3].tolist(), strict=True))
    assert start == pytest.approx({"a": 0.01, "b": 1.01, "c": 1.01})
    assert p.latency_s == pytest.approx(3.02)


def test_predict_accepts_a_mapping_object_and_checks_names(dnad):
    from jupiter.wave import schedule

    app, prof = dnad
    m = schedule(app, prof, algorithm="heft")
    assert predict(app, prof, m, "home").latency_s == pytest.approx(m.latency_s)
    with pytest.raises(InvalidInput) as exc:
        predict(app, prof, dict(m.mapping, local_pro="mars"), "home")
    assert [(p.file, p.field) for p in exc.value.problems] == [("profile", "nodes.mars")]
    incomplete = dict(m.mapping, ghost="edge1")
    del incomplete["global_fusion"]
    with pytest.raises(InvalidInput) as exc:
        predict(app, prof, incomplete, "home")
    assert {p.field for p in exc.value.problems} == {"mapping.ghost", "mapping.global_fusion"}
