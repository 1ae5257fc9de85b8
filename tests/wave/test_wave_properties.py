"""Properties every mapping and every predicted schedule must have (hypothesis)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wave_helpers import make_app, make_profile

from jupiter.wave.api import ALGORITHMS, cost_model_for, run_algorithm
from jupiter.wave.heft import heft
from jupiter.wave.peft import peft
from jupiter.wave.simulate import evaluate, host_loads, loads


@st.composite
def problems(draw):
    n_tasks = draw(st.integers(1, 10))
    names = [f"t{i}" for i in range(n_tasks)]
    children: dict[str, list[str]] = {t: [] for t in names}
    for i in range(n_tasks):
        for j in range(i + 1, n_tasks):
            if draw(st.booleans()) and draw(st.booleans()):
                children[names[i]].append(names[j])
        if not children[names[i]] or draw(st.integers(0, 4)) == 0:
            children[names[i]].append("home")
    workers = [f"w{i}" for i in range(draw(st.integers(1, 4)))]
    nodes = ["home", *workers]
    use_home = draw(st.booleans())
    pins = {t: draw(st.sampled_from(nodes)) for t in names if draw(st.integers(0, 5)) == 0}
    speeds = {n: draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])) for n in nodes}
    links = {(s, d): (draw(st.sampled_from([0.0, 0.001, 0.05])),
                      draw(st.sampled_from([1e5, 1e7, 1e9])))
             for s in nodes for d in nodes if s != d}
    exec_ = {}
    for t in names:
        if draw(st.booleans()):  # else: fallback from default_seconds and speed
            exec_[t] = {n: (draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
                            draw(st.sampled_from([0, 1000, 100_000])))
                        for n in nodes if draw(st.integers(0, 3)) > 0}
    modes = {t: draw(st.sampled_from(["broadcast", "split"])) for t in names}
    app = make_app(children, pins=pins, modes=modes)
    prof = make_profile(speeds, links=links, exec_=exec_)
    machines = draw(st.sampled_from(["own", "one", "pairs"]))  # emulated nodes share one
    for i, n in enumerate(nodes):
        node = prof.nodes[n]
        node.host = {"own": "", "one": "m", "pairs": f"m{i // 2}"}[machines]
        node.cpu_count = draw(st.integers(1, 3))
        if draw(st.booleans()):  # a CPU quota: short runs faster than a stream
            node.burst_speed = node.speed * draw(st.sampled_from([1.0, 2.0, 4.0]))
    options = {"use_home": use_home, "input_bytes": draw(st.sampled_from([0, 5000])),
               "seed": draw(st.integers(0, 3)),
               "task_overhead_s": draw(st.sampled_from([0.0, 0.01])),
               "byte_overhead_s": draw(st.sampled_from([0.0, 1e-6])),
               "crowding_per_colocated_task": draw(st.sampled_from([0.0, 0.03]))}
    return app, prof, nodes, options


def check_plan(cm, plan, edge_cost, machines=True):
    """Precedence and, per node, at most ``cores`` tasks at once and at most its machine's
    cores busy per machine (simulated plans); one task at a time per node (the list
    schedulers plan as in HEFT's model, every node a machine of its own)."""
    for e in range(cm.E):
        u, v = int(cm.esrc[e]), int(cm.edst[e])
        assert plan.start[v] >= plan.finish[u] + edge_cost[e] - 1e-9
    for v in range(cm.V):
        assert plan.finish[v] >= plan.start[v]
    real = np.arange(cm.T)
    for q in range(cm.N):
        on = real[plan.assign[: cm.T] == q]
        slots = cm.cores[q] if machines else 1
        for v in on.tolist():  # tasks of node q running at v's start, v included
            t = plan.start[v]
            at_once = [u for u in on.tolist()
                       if plan.start[u] <= t + 1e-12 and plan.finish[u] > t + 1e-12]
            assert len(at_once) <= slots or plan.finish[v] <= t + 1e-12
        if not machines:
            spans = sorted(zip(plan.start[on].tolist(), plan.finish[on].tolist(), strict=True))
            for (_, end), (begin, _) in itertools.pairwise(spans):
                assert end <= begin + 1e-9
    if not machines:
        return
    busy = [v for v in range(cm.V) if v < cm.T or plan.finish[v] > plan.start[v]]
    for v in busy:  # vertices running at v's start on v's machine, v included
        h = cm.host[plan.assign[v]]
        t = plan.start[v]
        at_once = [u for u in busy if cm.host[plan.assign[u]] == h
                   and plan.start[u] <= t + 1e-12 and plan.finish[u] > t + 1e-12]
        assert len(at_once) <= cm.host_cores[h] or plan.finish[v] <= t + 1e-12


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_every_algorithm_gives_a_valid_mapping_and_schedule(problem):
    app, prof, nodes, options = problem
    cm = cost_model_for(app, prof, nodes, options)
    pins = {t.name: t.pin for t in app.tasks if t.pin}
    home = cm.node_index["home"]
    results = {}
    for algorithm in ALGORITHMS:
        opts = dict(options)
        if algorithm == "static":  # any valid mapping: HEFT's
            opts["mapping"] = {t: cm.nodes[int(q)] for t, q in
                               zip(cm.tasks, heft(cm).assign.tolist(), strict=False)}
        assign = run_algorithm(cm, algorithm, opts, app)
        # every vertex mapped, only to allowed nodes, pins honoured, home only if allowed
        assert (assign >= 0).all() and (assign < cm.N).all()
        assert cm.allowed[np.arange(cm.V), assign].all(), algorithm
        for t, node in pins.items():
            assert cm.nodes[int(assign[cm.tasks.index(t)])] == node
        if not options["use_home"]:
            for i, t in enumerate(cm.tasks):
                assert assign[i] != home or pins.get(t) == "home"
        pred = evaluate(cm, assign)
        check_plan(cm, pred.plan, cm.edge_costs(assign))
        assert pred.latency_s == pred.plan.finish.max()
        node, link = loads(cm, assign)
        assert pred.period_s == max(node.max(), link.max(), host_loads(cm, assign).max())
        # a node runs at most ``cores`` of its tasks of one item at once: their runs fit in
        # that many times the latency
        runs = np.zeros(cm.N)
        np.add.at(runs, assign, cm.W[np.arange(cm.V), assign])
        assert (runs <= cm.cores * pred.latency_s * (1 + 1e-9) + 1e-9).all()
        assert (node * cm.share >= runs * (1 - 1e-9)).all()  # a stream pays at least that
        results[algorithm] = pred
    h, s = results["heft"], results["stream"]
    assert s.period_s <= h.period_s + 1e-12
    assert s.latency_s <= h.latency_s * 1.1 * (1 + 1e-9) + 1e-12


@settings(max_examples=120, deadline=None)
@given(problems())
def test_list_schedules_are_valid(problem):
    app, prof, nodes, options = problem
    cm = cost_model_for(app, prof, nodes, options)
    for plan in (heft(cm), peft(cm)):
        check_plan(cm, plan, cm.edge_costs(plan.assign), machines=False)
        assert cm.allowed[np.arange(cm.V), plan.assign].all()
