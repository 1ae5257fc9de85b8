"""Every scheduler on small cases checked by hand, and the schedule() interface."""

from __future__ import annotations

import json

import pytest
from wave_helpers import make_app, make_profile

from jupiter.errors import InvalidInput
from jupiter.wave import ALGORITHMS, Mapping, schedule

CHAIN = {"a": ["b"], "b": ["home"]}


def _fields(exc: pytest.ExceptionInfo[InvalidInput]) -> set[str | None]:
    return {p.field for p in exc.value.problems}


@pytest.mark.parametrize("algorithm", ["heft", "peft"])
def test_list_schedulers_keep_a_chain_on_the_fastest_node(algorithm):
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 2.0})
    m = schedule(make_app(CHAIN), prof, ["n1", "n2"], algorithm=algorithm)
    assert m.mapping == {"a": "n2", "b": "n2"}
    # 10 ms input latency, 0.5 s + 0.5 s, 10 ms back home
    assert m.latency_s == pytest.approx(1.02)
    assert m.period_s == pytest.approx(1.0)
    assert m.bottleneck == "node n2"


def test_heft_spreads_parallel_branches_when_links_are_cheap():
    app = make_app({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0}, latency=0.001,
                        exec_={t: {n: (1.0, 100) for n in ("n1", "n2")} for t in "abcd"})
    m = schedule(app, prof, ["n1", "n2"], algorithm="heft")
    assert m.mapping["b"] != m.mapping["c"]
    assert m.latency_s < 3.1  # b and c in parallel: ~3 s instead of 4 s in sequence


def test_stream_takes_the_second_node_for_a_lower_period():
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    heft = schedule(make_app(CHAIN), prof, ["n1", "n2"], algorithm="heft")
    stream = schedule(make_app(CHAIN), prof, ["n1", "n2"], algorithm="stream")
    assert heft.mapping == {"a": "n1", "b": "n1"}
    assert heft.period_s == pytest.approx(2.0)
    assert set(stream.mapping.values()) == {"n1", "n2"}
    assert stream.period_s == pytest.approx(1.0)
    assert stream.throughput_per_s == pytest.approx(1.0)
    # one more transfer (10 ms) on a 2.02 s latency: within 10 %
    assert stream.latency_s == pytest.approx(heft.latency_s + 0.01)


def test_stream_keeps_heft_when_no_latency_may_be_given_up():
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    m = schedule(make_app(CHAIN), prof, ["n1", "n2"], algorithm="stream", latency_slack=0.0)
    assert m.mapping == {"a": "n1", "b": "n1"}


def greedy_profile(loads=None):
    links = {("home", "n1"): (0.001, 8e6), ("home", "n2"): (0.05, 8e6),
             ("home", "n3"): (0.02, 8e6), ("n1", "n2"): (0.05, 8e6),
             ("n1", "n3"): (0.002, 8e6)}
    return make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0, "n3": 1.0}, links=links,
                        loads=loads)


def test_wave_greedy_follows_the_fastest_links():
    m = schedule(make_app(CHAIN), greedy_profile(), ["n1", "n2", "n3"], algorithm="wave_greedy")
    # a: closest to home is n1 (1 ms); b: among unused nodes, closest to n1 is n3 (2 ms)
    assert m.mapping == {"a": "n1", "b": "n3"}
    same = schedule(make_app(CHAIN), greedy_profile(), ["n1", "n2", "n3"],
                    algorithm="wave_greedy", distinct=False)
    assert same.mapping == {"a": "n1", "b": "n1"}  # no transfer at all


def test_wave_greedy_avoids_loaded_nodes():
    prof = greedy_profile(loads={"n3": (90.0, 0.0)})
    m = schedule(make_app(CHAIN), prof, ["n1", "n2", "n3"], algorithm="wave_greedy")
    # n3: 2 ms + 90 % cpu = 92 > n2: 50 ms + 0
    assert m.mapping == {"a": "n1", "b": "n2"}


def test_random_is_seeded_and_uses_distinct_nodes_first():
    app = make_app({"a": ["b"], "b": ["c"], "c": ["home"]})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0, "n3": 1.0})
    runs = [schedule(app, prof, algorithm="random", seed=s).mapping for s in (5, 5, 6, 7, 8)]
    assert runs[0] == runs[1]
    assert len({json.dumps(r, sort_keys=True) for r in runs}) > 1
    for r in runs:
        assert sorted(r.values()) == ["n1", "n2", "n3"]  # home excluded, one task each


def test_spread_is_round_robin_and_pins_do_not_take_a_turn():
    app = make_app({"t1": ["t2"], "t2": ["t3"], "t3": ["t4"], "t4": ["t5"], "t5": ["home"]},
                   pins={"t2": "n2"})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    m = schedule(app, prof, ["n1", "n2"], algorithm="spread")
    assert m.mapping == {"t1": "n1", "t2": "n2", "t3": "n2", "t4": "n1", "t5": "n2"}


def test_static_uses_the_given_or_the_apps_mapping():
    app = make_app(CHAIN, static={"a": "n2", "b": "n1"})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    assert schedule(app, prof, algorithm="static").mapping == {"a": "n2", "b": "n1"}
    given = schedule(app, prof, algorithm="static", mapping={"a": "home", "b": "n2"})
    assert given.mapping == {"a": "home", "b": "n2"}  # the user may put a task on home


def test_static_names_every_wrong_entry():
    app = make_app({"a": ["b"], "b": ["c"], "c": ["home"]}, pins={"c": "n1"})
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    with pytest.raises(InvalidInput) as exc:
        schedule(app, prof, algorithm="static",
                 mapping={"a": "mars", "x": "n1", "c": "n2"})
    assert _fields(exc) == {"mapping.a", "mapping.x", "mapping.c", "mapping.b"}
    text = str(exc.value)
    assert "mars" in text and "'x'" in text and "pinned" in text and "'b' has no node" in text
    with pytest.raises(InvalidInput) as exc:
        schedule(make_app(CHAIN), prof, algorithm="static")
    assert _fields(exc) == {"mapping"}


@pytest.mark.parametrize("algorithm", [a for a in ALGORITHMS if a != "static"])
def test_every_algorithm_honours_pins_and_leaves_home_alone(algorithm, dnad):
    app, prof = dnad
    pinned = make_app({t.name: t.children for t in app.tasks}, name="dnad",
                      pins={"local_pro": "edge2", "global_fusion": "home"},
                      modes={"local_pro": "split"})
    m = schedule(pinned, prof, algorithm=algorithm)
    assert set(m.mapping) == {t.name for t in app.tasks}
    assert m.mapping["local_pro"] == "edge2"
    assert m.mapping["global_fusion"] == "home"
    others = {n for t, n in m.mapping.items() if t != "global_fusion"}
    assert "home" not in others
    assert m.home == "home" and m.latency_s > 0 and m.period_s > 0


def test_use_home_lets_tasks_run_on_home():
    prof = make_profile({"home": 4.0, "n1": 1.0})
    assert schedule(make_app(CHAIN), prof, algorithm="heft").mapping == {"a": "n1", "b": "n1"}
    m = schedule(make_app(CHAIN), prof, algorithm="heft", use_home=True)
    assert m.mapping == {"a": "home", "b": "home"}
    assert m.latency_s == pytest.approx(0.5)  # no transfer at all


def test_stream_beats_heft_on_the_dnad_app(dnad):
    app, prof = dnad
    heft = schedule(app, prof, algorithm="heft", input_bytes=50_000)
    stream = schedule(app, prof, algorithm="stream", input_bytes=50_000)
    assert stream.period_s < heft.period_s
    assert stream.latency_s <= heft.latency_s * 1.1 + 1e-12


def test_bad_algorithm_and_options_are_named(dnad):
    app, prof = dnad
    with pytest.raises(InvalidInput) as exc:
        schedule(app, prof, algorithm="magic", sed=3, latency_slack=-1, comm_model="cubic",
                 crowding_per_colocated_task="much", item_quota_share=0)
    assert _fields(exc) == {"algorithm", "sed", "latency_slack", "comm_model",
                            "crowding_per_colocated_task", "item_quota_share"}
    assert "heft" in str(exc.value)


def test_mapping_contract_round_trips_and_is_reproducible(dnad):
    app, prof = dnad
    a = schedule(app, prof, algorithm="stream", input_bytes=1000)
    b = schedule(app, prof, algorithm="stream", input_bytes=1000)
    d = a.to_dict()
    assert d == b.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["schema"] == "jupiter.mapping/v1"
    assert d["created_at"] == prof.generated_at
    assert set(d["predicted"]) == {"latency_s", "period_s", "throughput_per_s", "bottleneck",
                                   "task_cpu_s", "over_quota"}
    assert d["predicted"]["over_quota"] == {}  # no node of this profile has a CPU quota
    assert set(d["predicted"]["task_cpu_s"]) == {t.name for t in app.tasks}
    assert d["options"] == {"input_bytes": 1000}
    assert Mapping.from_dict(d) == a


def test_mapping_from_dict_names_bad_fields():
    with pytest.raises(InvalidInput) as exc:
        Mapping.from_dict({"schema": "nope", "mapping": {"a": 1}, "predicted": {}})
    assert _fields(exc) >= {"schema", "mapping", "algorithm", "predicted.latency_s"}


def test_stale_nodes_are_left_out_unless_listed():
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 8.0})
    prof.nodes["n2"].stale = True
    assert set(schedule(make_app(CHAIN), prof).mapping.values()) == {"n1"}
    listed = schedule(make_app(CHAIN), prof, ["n1", "n2"])
    assert set(listed.mapping.values()) == {"n2"}


def test_stream_with_no_search_budget_is_heft():
    prof = make_profile({"home": 1.0, "n1": 1.0, "n2": 1.0})
    m = schedule(make_app(CHAIN), prof, ["n1", "n2"], algorithm="stream", budget=0)
    assert m.mapping == {"a": "n1", "b": "n1"}
