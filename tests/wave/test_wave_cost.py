"""The cost model built from a profile, checked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from wave_helpers import make_app, make_profile

from jupiter.errors import InvalidInput
from jupiter.wave.cost import build_cost_model


def _problems(exc: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str | None]]:
    return [(p.file, p.field) for p in exc.value.problems]


def test_compute_costs_measured_and_fallback_by_speed():
    app = make_app({"a": ["b"], "b": ["home"], "c": ["home"]})
    prof = make_profile({"home": 1.0, "fast": 2.0, "slow": 0.5},
                        exec_={"a": {"fast": (1.0, 100), "slow": (5.0, 300)}})
    cm = build_cost_model(app, prof, ["fast", "slow"], default_seconds=3.0)
    assert cm.nodes == ["fast", "slow", "home"]
    # measured values are used as they are
    assert cm.W[0, 0] == 1.0 and cm.W[0, 1] == 5.0
    # home was not measured: base = mean(seconds * speed) = mean(2.0, 2.5) = 2.25 at speed 1
    assert cm.W[0, 2] == pytest.approx(2.25)
    # b and c were never profiled: default_seconds / speed
    assert cm.W[1].tolist() == pytest.approx([1.5, 6.0, 3.0])
    # tasks run on workers only; home's source and sink are pinned to home
    assert cm.allowed[:3].tolist() == [[True, True, False]] * 3
    assert cm.allowed[cm.source].tolist() == [False, False, True]
    assert cm.allowed[cm.sink].tolist() == [False, False, True]


def test_edge_data_and_linear_transfer_costs():
    app = make_app({"a": ["b", "c"], "b": ["home"], "c": ["home"]}, modes={"a": "split"})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0}, latency=0.01, bandwidth_bps=8e6,
                        exec_={"a": {"n1": (1.0, 4000), "n2": (1.0, 4000)},
                               "b": {"n1": (1.0, 1000), "n2": (1.0, 1000)}})
    cm = build_cost_model(app, prof, ["n1", "n2"], input_bytes=2000)
    edges = {(cm.vertex_name(int(u)), cm.vertex_name(int(v))): e
             for e, (u, v) in enumerate(zip(cm.esrc, cm.edst, strict=True))}
    n1, n2, home = (cm.node_index[n] for n in ("n1", "n2", "home"))
    # split: a's 4000 bytes are shared between its two children
    e_ab = edges[("a", "b")]
    assert cm.edata[e_ab, n1] == 2000
    # 8e6 bit/s = 1e6 byte/s: 10 ms + 2000 bytes -> 12 ms; nothing on the same node
    assert cm.comm(e_ab, n1, n2) == pytest.approx(0.012)
    assert cm.comm(e_ab, n1, n1) == 0.0
    # home injects 2000 bytes into the ingress task
    e_in = edges[("(home:source)", "a")]
    assert cm.comm(e_in, home, n1) == pytest.approx(0.012)
    # b's 1000 bytes (broadcast) back home: 11 ms
    assert cm.comm(edges[("b", "(home:sink)")], n2, home) == pytest.approx(0.011)
    # link occupancy leaves the latency out
    assert cm.occupancy_row(e_ab, n1)[n2] == pytest.approx(0.002)


def test_quadratic_model_uses_jupiter_coefficients():
    app = make_app({"a": ["home"]})
    # time(ms) = 0.001 x^2 + 0.5 x + 3, x in Kbit
    prof = make_profile({"home": 1.0, "n1": 1.0}, quad=(0.001, 0.5, 3.0),
                        exec_={"a": {"n1": (1.0, 12_500)}})  # 100 Kbit
    cm = build_cost_model(app, prof, ["n1"], comm_model="quadratic")
    e = next(e for e in range(cm.E) if cm.edst[e] == cm.sink)
    expected_ms = 0.001 * 100**2 + 0.5 * 100 + 3.0
    assert cm.comm(e, cm.node_index["n1"], cm.node_index["home"]) == pytest.approx(
        expected_ms / 1000)


def test_mean_communication_cost_is_over_distinct_pairs():
    app = make_app({"a": ["b"], "b": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0},
                        links={("n1", "n2"): (0.1, 8e6)},
                        exec_={"a": {"n1": (1.0, 0), "n2": (1.0, 0)}})
    cm = build_cost_model(app, prof, ["n1", "n2"])
    e_ab = next(e for e in range(cm.E) if cm.esrc[e] == 0 and cm.edst[e] == 1)
    # six ordered pairs: five links with 10 ms, one with 100 ms; no data
    assert cm.mean_comm[e_ab] == pytest.approx((5 * 0.01 + 0.1) / 6)


def test_pins_restrict_a_task_to_its_node_even_home():
    app = make_app({"a": ["b"], "b": ["home"]}, pins={"a": "n2", "b": "home"})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    cm = build_cost_model(app, prof, ["n1", "n2"])
    assert np.flatnonzero(cm.allowed[0]).tolist() == [cm.node_index["n2"]]
    assert np.flatnonzero(cm.allowed[1]).tolist() == [cm.node_index["home"]]


def test_missing_profile_data_is_named():
    app = make_app({"a": ["home"]}, pins={"a": "nowhere"})
    prof = make_profile({"home": 1.0, "n1": 1.0})
    del prof.links["n1"]["home"]
    with pytest.raises(InvalidInput) as exc:
        build_cost_model(app, prof, ["n1", "ghost"])
    found = _problems(exc)
    assert ("profile", "nodes.ghost") in found
    assert ("profile", "links.n1.home") in found
    assert ("app", "tasks.a.pin") in found
    assert "nowhere" in str(exc.value)


def test_quadratic_without_coefficients_is_refused():
    app = make_app({"a": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0})
    with pytest.raises(InvalidInput) as exc:
        build_cost_model(app, prof, ["n1"], comm_model="quadratic")
    assert ("profile", "links.n1.home.quad_ms_kbit") in _problems(exc)


def test_only_home_and_no_use_home_is_refused():
    app = make_app({"a": ["home"]})
    prof = make_profile({"home": 1.0})
    with pytest.raises(InvalidInput) as exc:
        build_cost_model(app, prof, ["home"])
    assert ("options", "nodes") in _problems(exc)
    cm = build_cost_model(app, prof, ["home"], use_home=True)
    assert cm.allowed[0].tolist() == [True]


def test_cycle_is_reported():
    app = make_app({"a": ["b"], "b": ["a", "home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0})
    with pytest.raises(InvalidInput, match="cycle"):
        build_cost_model(app, prof, ["n1"])


def test_task_overhead_is_added_to_every_task_and_scaled_by_speed() -> None:
    from jupiter.app.model import App, Task
    from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile
    from jupiter.wave.cost import build_cost_model

    app = App(name="one", tasks=(Task(name="t", key="t", script="t.py", children=("home",)),))
    prof = Profile(
        nodes={"home": NodeProfile(speed=1.0), "fast": NodeProfile(speed=2.0),
               "slow": NodeProfile(speed=0.5)},
        links={s: {d: LinkProfile(latency_s=0.0, bandwidth_bps=1e9) for d in ("home", "fast",
               "slow") if d != s} for s in ("home", "fast", "slow")},
        exec={"t": {"fast": ExecProfile(seconds=0.01, output_bytes=1),
                    "slow": ExecProfile(seconds=0.04, output_bytes=1)}},
        complete=True)
    plain = build_cost_model(app, prof, ["fast", "slow"], home="home")
    loaded = build_cost_model(app, prof, ["fast", "slow"], home="home", task_overhead_s=0.002)
    fast, slow = plain.nodes.index("fast"), plain.nodes.index("slow")
    assert loaded.W[0, fast] - plain.W[0, fast] == pytest.approx(0.001)
    assert loaded.W[0, slow] - plain.W[0, slow] == pytest.approx(0.004)


def test_request_overhead_counts_the_requests_of_each_run() -> None:
    """a -> (b, c) -> d -> home: a receives home's push and sends two, b and c one in and one
    out, d two in and one out; home's ingress receives the submission and sends one, its
    egress receives one. Per request 1 ms, on nodes of speed 1 and 2."""
    app = make_app({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 2.0},
                        exec_={t: {n: (0.01, 100) for n in ("home", "n1", "n2")}
                               for t in "abcd"})
    plain = build_cost_model(app, prof, ["n1", "n2"], home="home")
    loaded = build_cost_model(app, prof, ["n1", "n2"], home="home", request_overhead_s=0.001)
    requests = {"a": 3, "b": 2, "c": 2, "d": 3}
    for v, name in enumerate(loaded.tasks):
        for n, speed in ((loaded.node_index["n1"], 1.0), (loaded.node_index["n2"], 2.0)):
            assert loaded.W[v, n] - plain.W[v, n] == pytest.approx(0.001 * requests[name] / speed)
            assert loaded.cpu[v, n] - plain.cpu[v, n] == pytest.approx(
                0.001 * requests[name] / speed)
    home = loaded.node_index["home"]
    assert loaded.source is not None and loaded.sink is not None
    assert loaded.W[loaded.source, home] - plain.W[loaded.source, home] == pytest.approx(0.002)
    assert loaded.W[loaded.sink, home] - plain.W[loaded.sink, home] == pytest.approx(0.001)
    with pytest.raises(InvalidInput, match="request_overhead_s"):
        build_cost_model(app, prof, ["n1", "n2"], home="home", request_overhead_s=-1.0)


def _chain_idle_and_warm() -> tuple[Any, Any]:
    """a -> b -> c -> home: each task 10 ms after idle and 4 ms back to back on n1 and n2."""
    import dataclasses

    app = make_app({"a": ["b"], "b": ["c"], "c": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0}, latency=0.0, bandwidth_bps=1e12,
                        exec_={t: {n: (0.010, 0) for n in ("n1", "n2")} for t in "abc"})
    for per in prof.exec.values():
        for n, ep in per.items():
            per[n] = dataclasses.replace(ep, warm_seconds=0.004)
    return app, prof


def test_colocated_tasks_pay_part_of_their_cold_run_in_a_stream() -> None:
    """a -> b -> c -> home, each 10 ms after idle and 4 ms back to back on nodes of speed 1:
    in a stream each pays 4 ms plus, per other task on its node, the given share of the
    6 ms between (at most all of it). A lone item's latency is the idle runs either way."""
    from jupiter.wave.simulate import evaluate, loads

    app, prof = _chain_idle_and_warm()

    def stream_cpu(share: float, nodes: list[str]) -> tuple[list[float], np.ndarray, Any]:
        cm = build_cost_model(app, prof, ["n1", "n2"], home="home",
                              cold_per_colocated_task=share)
        assign = np.array([cm.node_index[n] for n in nodes] + [cm.home, cm.home])
        return cm.stream_cpu(assign)[:3].tolist(), loads(cm, assign)[0], evaluate(cm, assign)

    together, node, pred = stream_cpu(0.25, ["n1"] * 3)
    assert together == pytest.approx([0.007, 0.007, 0.007])  # two others: half of 6 ms
    assert node.max() == pytest.approx(0.021)
    assert pred.period_s == pytest.approx(0.021)
    assert pred.latency_s == pytest.approx(0.030)  # idle runs, as without the share
    apart, _, _ = stream_cpu(0.25, ["n1", "n1", "n2"])
    assert apart == pytest.approx([0.0055, 0.0055, 0.004])
    capped, _, _ = stream_cpu(0.6, ["n1"] * 3)
    assert capped == pytest.approx([0.010, 0.010, 0.010])
    warm, _, plain = stream_cpu(0.0, ["n1"] * 3)
    assert warm == pytest.approx([0.004] * 3) and plain.period_s == pytest.approx(0.012)
    with pytest.raises(InvalidInput, match="cold_per_colocated_task"):
        build_cost_model(app, prof, ["n1", "n2"], home="home", cold_per_colocated_task=-0.1)


def test_a_crowded_node_costs_every_task_more_cpu_in_a_stream() -> None:
    """The same chain: per other task on its node, a task's CPU per item in a stream grows by
    the share ``crowding_per_colocated_task`` (its cooled CPU, without bound)."""
    from jupiter.wave.simulate import evaluate

    app, prof = _chain_idle_and_warm()

    def predicted(nodes: list[str], **options: float) -> Any:
        cm = build_cost_model(app, prof, ["n1", "n2"], home="home", **options)
        return evaluate(cm, np.array([cm.node_index[n] for n in nodes] + [cm.home, cm.home]))

    crowded = predicted(["n1"] * 3, crowding_per_colocated_task=0.1)
    assert crowded.cpu[:3] == pytest.approx([0.0048] * 3)  # two others: 20 % more
    assert crowded.period_s == pytest.approx(0.0144)
    assert crowded.latency_s == pytest.approx(0.030)  # a lone item: the idle runs
    assert crowded.to_dict()["task_cpu_s"] == pytest.approx(dict.fromkeys("abc", 0.0048))
    apart = predicted(["n1", "n1", "n2"], crowding_per_colocated_task=0.1)
    assert apart.cpu[:3] == pytest.approx([0.0044, 0.0044, 0.004])
    unbounded = predicted(["n1"] * 3, crowding_per_colocated_task=0.6)
    assert unbounded.cpu[:3] == pytest.approx([0.0088] * 3)
    both = predicted(["n1"] * 3, crowding_per_colocated_task=0.1, cold_per_colocated_task=0.25)
    assert both.cpu[:3] == pytest.approx([(0.004 + 0.003) * 1.2] * 3)
    with pytest.raises(InvalidInput, match="crowding_per_colocated_task"):
        build_cost_model(app, prof, ["n1", "n2"], home="home", crowding_per_colocated_task=-1)
