"""The cost model's machine facts, checked by hand: burst speed and sustained cores (CPU
quotas), nodes sharing one machine's cores, the dispatcher's work per run and per byte,
and the input size DRUPE profiled the ingress tasks with.

Links here are fast (1 GB/s, no latency) unless said otherwise, so compute dominates.
"""

from __future__ import annotations

import numpy as np
import pytest
from wave_helpers import make_app

from jupiter.errors import InvalidInput
from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile
from jupiter.wave import predict, schedule
from jupiter.wave.cost import build_cost_model
from jupiter.wave.simulate import evaluate, host_loads, loads


def profile(nodes: dict[str, NodeProfile], exec_: dict[str, dict[str, ExecProfile]],
            bandwidth_bps: float = 8e9) -> Profile:
    return Profile(
        nodes=nodes,
        links={s: {d: LinkProfile(latency_s=0.0, bandwidth_bps=bandwidth_bps)
                   for d in nodes if d != s} for s in nodes},
        exec=exec_, complete=True, generated_at=1.0)


def fork_app():
    """a -> (b, c) -> home: b and c can run at the same time."""
    return make_app({"a": ["b", "c"], "b": ["home"], "c": ["home"]})


def fork_exec(seconds: float = 1.0) -> dict[str, dict[str, ExecProfile]]:
    return {t: {n: ExecProfile(seconds=seconds, output_bytes=0) for n in ("n1", "n2")}
            for t in ("a", "b", "c")}


def test_nodes_on_one_machine_share_its_cores_in_the_latency() -> None:
    apart = {"home": NodeProfile(), "n1": NodeProfile(), "n2": NodeProfile()}
    one_core = {n: NodeProfile(cpu_count=1, host="m1") for n in ("home", "n1", "n2")}
    two_cores = {n: NodeProfile(cpu_count=2, host="m1") for n in ("home", "n1", "n2")}
    mapping = {"a": "n1", "b": "n1", "c": "n2"}
    app = fork_app()
    # apart: b (n1) and c (n2) run side by side after a: 1 + 1
    assert predict(app, profile(apart, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(2.0)
    # one machine, one core: b and c take turns: 1 + 1 + 1
    assert predict(app, profile(one_core, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(3.0)
    # one machine, two cores: side by side again
    assert predict(app, profile(two_cores, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(2.0)


def test_a_node_runs_its_tasks_side_by_side_up_to_its_cores() -> None:
    mapping = {"a": "n1", "b": "n1", "c": "n1"}
    # a node that sees 4 cores of its machine runs b and c (one process each) at once
    four = {n: NodeProfile(cpu_count=4, host="m1") for n in ("home", "n1", "n2")}
    assert predict(fork_app(), profile(four, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(2.0)
    # a single-core node takes them in turn
    one = {n: NodeProfile(cpu_count=1, host="m1") for n in ("home", "n1", "n2")}
    assert predict(fork_app(), profile(one, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(3.0)
    # a machine of its own: likewise its cores
    own = {n: NodeProfile(cpu_count=2) for n in ("home", "n1", "n2")}
    assert predict(fork_app(), profile(own, fork_exec()), mapping, "home").latency_s == \
        pytest.approx(2.0)


def test_a_shared_machine_bounds_the_period_and_is_named() -> None:
    nodes = {n: NodeProfile(cpu_count=2, host="m1") for n in ("home", "n1", "n2")}
    p = predict(fork_app(), profile(nodes, fork_exec()), {"a": "n1", "b": "n2", "c": "n2"},
                "home")
    # nodes: n1 1 s, n2 2 s per item; the machine: 3 s of CPU on 2 cores = 1.5 s
    assert p.period_s == pytest.approx(2.0)
    assert p.bottleneck == "node n2"
    spread = predict(fork_app(), profile(nodes, fork_exec()),
                     {"a": "n1", "b": "n2", "c": "home"}, "home")
    # each node 1 s, the machine 1.5 s: the machine is the bottleneck
    assert spread.period_s == pytest.approx(1.5)
    assert spread.bottleneck == "host n1+n2+home"


def test_machines_of_their_own_add_no_stage() -> None:
    nodes = {n: NodeProfile(cpu_count=2, host=f"m-{n}") for n in ("home", "n1", "n2")}
    cm = build_cost_model(fork_app(), profile(nodes, fork_exec()), ["n1", "n2"], home="home")
    assign = cm.pin.copy()
    assign[:] = [cm.node_index[n] for n in ("n1", "n2", "n2", "home", "home")]
    assert not cm.shared_hosts
    assert host_loads(cm, assign).max() == 0.0


def test_a_cpu_quota_lets_a_short_item_run_at_burst_speed_and_throttles_a_long_one() -> None:
    # a 0.25-core quota (25 ms per 100 ms CFS period): runs at full speed (burst 1.0)
    # while the period's quota lasts, then at a quarter
    quota = {"home": NodeProfile(), "n1": NodeProfile(speed=0.25, burst_speed=1.0),
             "n2": NodeProfile(speed=0.25, burst_speed=1.0)}
    mapping = {"a": "n1", "b": "n1", "c": "n2"}
    short = predict(fork_app(), profile(quota, fork_exec(0.01)), mapping, "home")
    assert short.latency_s == pytest.approx(0.02)  # a, then b (n1) beside c (n2)
    assert short.period_s == pytest.approx(0.08)  # a stream: n1's 20 ms at a quarter core
    # 1 s runs: a earns its CPU at a quarter core, less the 25 ms quota it started with
    long = predict(fork_app(), profile(quota, fork_exec(1.0)), mapping, "home")
    a_end = (1.0 - 0.025) / 0.25
    assert long.plan.finish[0] == pytest.approx(a_end)
    assert long.latency_s == pytest.approx((2.0 - 0.025) / 0.25)  # b: n1 used 2 s
    assert long.period_s == pytest.approx(8.0)
    # unknown burst speed (old profiles): measured seconds are the load, no throttling
    old = {"home": NodeProfile(), "n1": NodeProfile(speed=0.25), "n2": NodeProfile(speed=0.25)}
    q = predict(fork_app(), profile(old, fork_exec()), mapping, "home")
    assert q.latency_s == pytest.approx(2.0)
    assert q.period_s == pytest.approx(2.0)


def test_burst_speed_rates_the_nodes_a_task_was_not_profiled_on() -> None:
    nodes = {"home": NodeProfile(), "n1": NodeProfile(speed=0.5, burst_speed=2.0),
             "n2": NodeProfile(speed=0.5, burst_speed=1.0)}
    exec_ = {"a": {"n1": ExecProfile(seconds=0.5, output_bytes=0)}}  # 1 s at reference
    cm = build_cost_model(make_app({"a": ["home"]}), profile(nodes, exec_), ["n1", "n2"],
                          home="home")
    assert cm.W[0, cm.node_index["n1"]] == pytest.approx(0.5)
    assert cm.W[0, cm.node_index["n2"]] == pytest.approx(1.0)


def test_dispatcher_work_per_run_and_per_byte_on_tasks_and_home() -> None:
    nodes = {"home": NodeProfile(burst_speed=1.0),
             "n1": NodeProfile(speed=2.0, burst_speed=2.0, cpu_count=4),
             "n2": NodeProfile(burst_speed=1.0)}
    exec_ = {"a": {n: ExecProfile(seconds=0.1, output_bytes=1000, input_bytes=4000)
                   for n in ("n1", "n2")},
             "b": {n: ExecProfile(seconds=0.2, output_bytes=500) for n in ("n1", "n2")}}
    app = make_app({"a": ["b"], "b": ["home"]})
    plain = build_cost_model(app, profile(nodes, exec_), ["n1", "n2"], home="home")
    cm = build_cost_model(app, profile(nodes, exec_), ["n1", "n2"], home="home",
                          task_overhead_s=0.01, byte_overhead_s=1e-6)
    n1, n2, home = (cm.node_index[n] for n in ("n1", "n2", "home"))
    # per run: the fixed part, at the node's burst speed
    assert cm.W[0, n1] - plain.W[0, n1] == pytest.approx(0.01 / 2.0)
    assert cm.W[1, n2] - plain.W[1, n2] == pytest.approx(0.01)
    assert cm.W[cm.source, home] == pytest.approx(0.01)
    assert cm.W[cm.sink, home] == pytest.approx(0.01)
    # CPU per item adds the bytes: a 4000 in (the profiled input) + 1000 out; b 1000 + 500;
    # home sends the input and receives the result
    assert cm.cpu[0, n1] - cm.W[0, n1] == pytest.approx(5000e-6 / 2.0)
    assert cm.cpu[1, n2] - cm.W[1, n2] == pytest.approx(1500e-6)
    assert cm.cpu[cm.source, home] - cm.W[cm.source, home] == pytest.approx(4000e-6)
    assert cm.cpu[cm.sink, home] - cm.W[cm.sink, home] == pytest.approx(500e-6)
    # one item: the per-byte work streams with the transfer (1 GB/s links: it is the
    # longer), at the slower end; on one node (a -> b on n1) there is no link
    p = evaluate(cm, np.array([n1, n1, home, home]))
    assert p.latency_s == pytest.approx(
        cm.W[cm.source, home] + 4000e-6 + cm.W[0, n1] + 1000e-6 / 2.0 + cm.W[1, n1]
        + 500e-6 + cm.W[cm.sink, home])
    # a stream pays the bytes on both ends
    node, _ = loads(cm, p.plan.assign)
    assert node[home] == pytest.approx(cm.cpu[cm.source, home] + cm.cpu[cm.sink, home])
    assert node[n1] == pytest.approx(cm.cpu[0, n1] + cm.cpu[1, n1])


def test_input_bytes_default_to_what_drupe_fed_the_ingress_task() -> None:
    nodes = {n: NodeProfile() for n in ("home", "n1")}
    exec_ = {"a": {"n1": ExecProfile(seconds=0.0, output_bytes=0, input_bytes=1_000_000)}}
    app = make_app({"a": ["home"]})
    slow = profile(nodes, exec_, bandwidth_bps=8e6)  # 1 MB/s
    p = predict(app, slow, {"a": "n1"}, "home")
    assert p.latency_s == pytest.approx(1.0)  # the profiled megabyte, home -> n1
    # an explicit option wins
    assert predict(app, slow, {"a": "n1"}, "home", input_bytes=0).latency_s == \
        pytest.approx(0.0)
    m = schedule(app, slow, ["n1"], algorithm="heft", home="home")
    assert m.predicted["latency_s"] == pytest.approx(1.0)


def test_a_links_burst_shortens_one_items_transfer_but_not_the_streams_period() -> None:
    nodes = {n: NodeProfile() for n in ("home", "n1")}
    exec_ = {"a": {"n1": ExecProfile(seconds=0.0, output_bytes=0, input_bytes=1_000_000)}}
    app = make_app({"a": ["home"]})
    plain = profile(nodes, exec_, bandwidth_bps=8e6)  # 1 MB/s
    bursty = profile(nodes, exec_, bandwidth_bps=8e6)
    bursty.links["home"]["n1"].burst_bytes = 250_000.0
    p, b = (predict(app, prof, {"a": "n1"}, "home") for prof in (plain, bursty))
    assert p.latency_s == pytest.approx(1.0)
    assert b.latency_s == pytest.approx(0.75)  # the first quarter megabyte went at once
    assert b.period_s == pytest.approx(p.period_s) == pytest.approx(1.0)
    # a burst larger than the item: latency only
    bursty.links["home"]["n1"].burst_bytes = 5_000_000.0
    assert predict(app, bursty, {"a": "n1"}, "home").latency_s == pytest.approx(0.0)
    # the schedulers see it too (HEFT's placement uses the same edge costs)
    m = schedule(app, bursty, ["n1"], algorithm="heft", home="home")
    assert m.predicted["latency_s"] == pytest.approx(0.0)


def test_a_lone_item_pays_the_idle_run_time_and_a_stream_the_warm_one() -> None:
    """seconds (a run after the process idled) makes the latency; warm_seconds (a run right
    after another) the period; unknown warm_seconds (0) falls back to seconds."""
    nodes = {n: NodeProfile() for n in ("home", "n1", "n2")}
    chain = make_app({"a": ["b"], "b": ["home"]})
    mapping = {"a": "n1", "b": "n2"}
    exec_ = {t: {n: ExecProfile(seconds=0.010, output_bytes=0, warm_seconds=0.004)
                 for n in ("n1", "n2")} for t in ("a", "b")}
    p = predict(chain, profile(nodes, exec_), mapping, "home")
    assert p.latency_s == pytest.approx(0.020)  # two idle runs one after the other
    assert p.period_s == pytest.approx(0.004)  # each node runs one warm run per item
    unknown = {t: {n: ExecProfile(seconds=0.010, output_bytes=0) for n in ("n1", "n2")}
               for t in ("a", "b")}
    assert predict(chain, profile(nodes, unknown), mapping, "home").period_s == \
        pytest.approx(0.010)
    # a node without a profile of its own is estimated from the others, for both figures
    exec_["a"].pop("n2")
    cm = build_cost_model(chain, profile(nodes, exec_), ["n1", "n2"], home="home",
                          task_overhead_s=0.001)
    a, n2 = cm.tasks.index("a"), cm.nodes.index("n2")
    assert cm.W[a, n2] == pytest.approx(0.011) and cm.cpu[a, n2] == pytest.approx(0.005)


def test_transfers_over_one_link_take_turns_and_share_its_burst() -> None:
    """a sends 1 MB to each of b and c, both on n2, over a 1 MB/s link: the second push waits
    for the first (2 s, not 1 s); a burst serves the first bytes once, not each push."""
    nodes = {n: NodeProfile() for n in ("home", "n1", "n2")}
    app = make_app({"a": ["b", "c"], "b": ["home"], "c": ["home"]})
    exec_ = {"a": {n: ExecProfile(seconds=0.0, output_bytes=1_000_000) for n in ("n1", "n2")},
             **{t: {n: ExecProfile(seconds=0.0, output_bytes=0) for n in ("n1", "n2")}
                for t in ("b", "c")}}
    prof = profile(nodes, exec_, bandwidth_bps=8e9)
    prof.links["n1"]["n2"].bandwidth_bps = 8e6
    apart = {"a": "n1", "b": "n2", "c": "n2"}
    assert predict(app, prof, apart, "home").latency_s == pytest.approx(2.0)
    prof.links["n1"]["n2"].burst_bytes = 500_000.0
    assert predict(app, prof, apart, "home").latency_s == pytest.approx(1.5)
    # c beside a (no link): b's push has the link and the burst to itself
    assert predict(app, prof, {"a": "n1", "b": "n2", "c": "n1"}, "home").latency_s == \
        pytest.approx(0.5)
    # models built from a profile have it; the literature's models (from_matrices) keep
    # links without contention, so the HEFT paper's schedule still comes out (test_wave_paper)
    assert build_cost_model(app, prof, ["n1", "n2"], home="home").link_contention


def chain_on_a_quota_node(extra_quota_node: bool = False) -> tuple:
    """a -> b -> c -> d -> home. n1 runs each task in 10 ms at burst speed under a
    quarter-core quota (25 ms per 100 ms CFS period); n2 has no quota but takes 40 ms per
    task. Links cost 5 ms, so without a quota rule HEFT stacks the whole chain on n1."""
    app = make_app({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["home"]})
    nodes = {"home": NodeProfile(), "n1": NodeProfile(speed=0.5, burst_speed=2.0),
             "n2": NodeProfile(speed=1.0, burst_speed=1.0)}
    if extra_quota_node:  # n2 under a quota too: no node has room for the whole chain
        nodes["n2"] = NodeProfile(speed=0.25, burst_speed=1.0)
    exec_ = {t: {"n1": ExecProfile(seconds=0.01, output_bytes=100),
                 "n2": ExecProfile(seconds=0.04, output_bytes=100)} for t in "abcd"}
    prof = Profile(nodes=nodes, links={s: {d: LinkProfile(latency_s=0.005, bandwidth_bps=8e9)
                                           for d in nodes if d != s} for s in nodes},
                   exec=exec_, complete=True, generated_at=1.0)
    return app, prof


def item_cpu_on(prof: Profile, mapping: dict[str, str], node: str) -> float:
    return sum(prof.exec[t][node].seconds for t, n in mapping.items() if n == node)


@pytest.mark.parametrize("algorithm", ["heft", "peft", "stream"])
def test_one_items_cpu_on_a_quota_node_stays_within_its_share_of_a_period(algorithm) -> None:
    app, prof = chain_on_a_quota_node()
    # a lax share (10 periods' quota): the chain stays on n1, 40 ms of CPU per item
    lax = schedule(app, prof, ["n1", "n2"], algorithm=algorithm, item_quota_share=10.0)
    assert set(lax.mapping.values()) == {"n1"}
    cm = build_cost_model(app, prof, ["n1", "n2"], home="home")
    n1 = cm.node_index["n1"]
    assert cm.item_cpu_cap[n1] == pytest.approx(0.025)  # the default share: 1.0
    assert np.isinf(cm.item_cpu_cap[cm.node_index["n2"]])  # no quota, no cap
    for share, on_n1 in ((1.0, 2), (0.8, 2), (0.5, 1)):  # caps of 25, 20 and 12.5 ms
        m = schedule(app, prof, ["n1", "n2"], algorithm=algorithm, item_quota_share=share)
        assert list(m.mapping.values()).count("n1") == on_n1, (share, m.mapping)
        assert item_cpu_on(prof, m.mapping, "n1") <= share * 0.25 * 0.1 + 1e-12
        assert m.options["item_quota_share"] == share


def test_when_no_node_has_room_every_allowed_node_is_a_candidate_again() -> None:
    app, prof = chain_on_a_quota_node(extra_quota_node=True)
    tight = schedule(app, prof, ["n1", "n2"], algorithm="heft", item_quota_share=1e-6)
    lax = schedule(app, prof, ["n1", "n2"], algorithm="heft", item_quota_share=10.0)
    assert tight.mapping == lax.mapping  # plain HEFT: nothing fits anywhere
    assert set(tight.mapping) == {"a", "b", "c", "d"}
    # ... and the prediction names the nodes past their share, with the CPU and the cap
    assert set(tight.predicted["over_quota"]) == set(tight.mapping.values())
    assert lax.predicted["over_quota"] == {}


def test_a_mapping_past_a_nodes_quota_share_is_named_in_the_prediction() -> None:
    app, prof = chain_on_a_quota_node()
    stacked = predict(app, prof, dict.fromkeys("abcd", "n1"), "home")
    assert stacked.to_dict()["over_quota"] == {
        "n1": {"item_cpu_s": pytest.approx(0.04), "cap_s": pytest.approx(0.025)}}
    bounded = schedule(app, prof, ["n1", "n2"], algorithm="heft")
    assert bounded.predicted["over_quota"] == {}


def test_one_items_cpu_on_home_counts_its_ingress_and_egress_work() -> None:
    """Home under a quota (use_home): an item's CPU there is home's ingress and egress work
    plus its tasks', as list scheduling counts it while it places them."""
    app, prof = chain_on_a_quota_node()
    prof.nodes["home"] = NodeProfile(speed=0.5, burst_speed=1.0)  # half a core
    cm = build_cost_model(app, prof, ["home", "n1", "n2"], home="home", use_home=True,
                          task_overhead_s=0.002, item_quota_share=0.4)
    home, n1 = cm.node_index["home"], cm.node_index["n1"]
    pseudo = cm.W[cm.source, home] + cm.W[cm.sink, home]
    assert pseudo > 0
    assign = np.full(cm.V, n1)
    assign[[cm.source, cm.sink]] = home
    assign[0] = home  # task a runs on home too
    cpu = cm.item_cpu(assign)
    assert cpu[home] == pytest.approx(pseudo + cm.W[0, home])
    assert cpu[n1] == pytest.approx(cm.W[1:cm.T, n1].sum())
    assert cm.item_cpu_cap[home] == pytest.approx(0.4 * 0.5 * 0.1)


def test_models_without_quotas_have_no_cap() -> None:
    cm = build_cost_model(fork_app(), profile({n: NodeProfile() for n in ("home", "n1", "n2")},
                                              fork_exec()), ["n1", "n2"], home="home",
                          item_quota_share=0.5)
    assert np.isinf(cm.item_cpu_cap).all()


@pytest.mark.parametrize("bad", [0, -0.5, "most", True, float("nan")])
def test_a_bad_item_quota_share_is_named(bad) -> None:
    app, prof = chain_on_a_quota_node()
    with pytest.raises(InvalidInput) as exc:
        build_cost_model(app, prof, ["n1", "n2"], home="home", item_quota_share=bad)
    assert [p.field for p in exc.value.problems] == ["item_quota_share"]
    with pytest.raises(InvalidInput) as exc:
        schedule(app, prof, ["n1", "n2"], algorithm="heft", item_quota_share=bad)
    assert [p.field for p in exc.value.problems] == ["item_quota_share"]
