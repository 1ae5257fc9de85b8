"""Fitting the dispatcher's constants to measured deployments (jupiter.wave.calibrate)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from wave_helpers import dnad_app, make_profile

from jupiter.errors import InvalidInput
from jupiter.wave import api, policies
from jupiter.wave.calibrate import (
    Observation,
    fit_overheads,
    kept_dirs,
    observation_from_dir,
    prediction_errors,
)
from jupiter.wave.simulate import evaluate

REPO = Path(__file__).resolve().parents[2]
SPEEDS = {"home": 1.0, "cloud": 2.0, "edge": 1.0, "pi": 0.4}
# off the starting grid: the search finds them
TRUTH = {"task_overhead_s": 0.0032, "request_overhead_s": 0.0007, "byte_overhead_s": 1.3e-8,
         "cold_per_colocated_task": 0.07, "crowding_per_colocated_task": 0.03}
ALGORITHMS = ("heft", "spread", "random", "stream", "peft")


def _warm(profile):
    """The profile with each task's back-to-back run 0.2 to 0.9 of its idle run: tasks cool
    by different shares of their CPU, so cooling and crowding do not move in step."""
    for i, per in enumerate(profile.exec.values()):
        for n, ep in per.items():
            per[n] = replace(ep, warm_seconds=ep.seconds * (0.2 + 0.1 * (i % 8)))
    return profile


def _profile():
    """Single-core nodes: one task at a time, so every constant moves the predictions
    smoothly (on two cores which tasks overlap changes in steps, and the search can stop
    on such a step short of the truth)."""
    app = dnad_app()
    slow = {(s, d): (0.004, 10e6) for s in SPEEDS for d in SPEEDS if s != d and "pi" in (s, d)}
    profile = make_profile(SPEEDS, latency=0.001, bandwidth_bps=100e6, links=slow,
                           exec_={t.name: {n: (0.001 / sp, 20_000) for n, sp in SPEEDS.items()}
                                  for t in app.tasks})
    profile = replace(profile, nodes={n: replace(p, cpu_count=1)
                                      for n, p in profile.nodes.items()})
    return _warm(profile)


def _observations() -> list[Observation]:
    """Five mappings 'measured' as the model predicts them with TRUTH: latency, throughput
    and each task's CPU per item."""
    app, profile = dnad_app(), _profile()
    options = {"home": "home", "input_bytes": 60_000}
    unmeasured = []
    for algorithm in ALGORITHMS:
        m = api.schedule(app, profile, list(SPEEDS), algorithm=algorithm, **options)
        unmeasured.append(Observation(algorithm, app, profile, tuple(m.nodes), m.mapping,
                                      options, 1.0, 1.0))
    # heft, stream and peft all fill the cloud node: mappings that share nodes otherwise
    names = [t.name for t in app.tasks]
    for label, nodes in (("pairs", ("cloud", "edge")), ("thirds", ("cloud", "edge", "pi"))):
        mapping = {t: nodes[i % len(nodes)] for i, t in enumerate(names)}
        unmeasured.append(Observation(label, app, profile, tuple(SPEEDS), mapping, options,
                                      1.0, 1.0))
    truth = prediction_errors(unmeasured, TRUTH)
    return [replace(ob, latency_s=e.latency + 1.0, throughput_per_s=e.throughput + 1.0,
                    task_cpu_s=_task_cpu(ob, TRUTH))
            for ob, e in zip(unmeasured, truth, strict=True)]


def test_the_fit_finds_the_constants_that_made_the_measurements():
    observations = _observations()
    fit = fit_overheads(observations)
    assert fit.constants == pytest.approx(TRUTH, rel=0.01)
    assert fit.worst < 0.001
    assert [e.label for e in fit.errors] == [*ALGORITHMS, "pairs", "thirds"]
    # other constants predict these measurements worse
    for other in ({**TRUTH, "request_overhead_s": 0.0}, {k: 0.0 for k in TRUTH}):
        assert max(abs(v) for e in prediction_errors(observations, other)
                   for v in e.values()) > 0.01


def _task_cpu(ob: Observation, constants: dict[str, float]) -> dict[str, float]:
    """Each task's CPU per item in a stream as the model predicts it with ``constants``."""
    cm = api.cost_model_for(ob.app, ob.profile, ob.nodes, {**ob.options, **constants})
    return evaluate(cm, policies.static(cm, ob.mapping)).to_dict()["task_cpu_s"]


def test_the_tasks_cpu_tells_the_constants_apart_where_one_figure_cannot():
    pairs = _observations()[5]
    assert pairs.label == "pairs"
    one_figure = replace(pairs, throughput_per_s=None, task_cpu_s={})
    fit = fit_overheads([one_figure])
    assert fit.worst < 0.001  # many constants predict one latency...
    assert fit.constants != pytest.approx(TRUTH, rel=0.05)  # ...and these are not the truth
    measured = replace(one_figure, task_cpu_s=pairs.task_cpu_s)
    fit = fit_overheads([measured])
    assert fit.constants == pytest.approx(TRUTH, rel=0.01)
    assert fit.errors[0].task_cpu_rms < 0.001 and fit.worst < 0.001
    assert fit.errors[0].task_cpu.keys() == set(pairs.mapping)
    # without the per-request part every task's CPU is under-predicted
    errors = prediction_errors([measured], {**TRUTH, "request_overhead_s": 0.0})[0]
    assert all(e < 0 for e in errors.task_cpu.values()) and errors.task_cpu_rms > 0.05


def test_a_constant_with_one_value_is_held():
    observations = _observations()
    grids = {"task_overhead_s": (0.0, 0.002, 0.004), "request_overhead_s": (0.0007,),
             "byte_overhead_s": (0.0, 2e-8), "cold_per_colocated_task": (0.07,),
             "crowding_per_colocated_task": (0.0, 0.04)}
    fit = fit_overheads(observations, grids=grids)
    assert fit.constants["request_overhead_s"] == 0.0007
    assert fit.constants["cold_per_colocated_task"] == 0.07
    assert fit.constants == pytest.approx(TRUTH, rel=0.01)


def test_the_fit_uses_what_was_measured_only():
    observations = _observations()
    only_latency = [replace(ob, throughput_per_s=None) for ob in observations]
    fit = fit_overheads(only_latency)
    assert all(e.throughput is None and e.latency is not None for e in fit.errors)
    assert fit.worst < 0.001
    with pytest.raises(InvalidInput, match="no measured latency or throughput"):
        fit_overheads([replace(ob, latency_s=None, throughput_per_s=None)
                       for ob in observations])


def _keep(folder: Path, ob: Observation, report_extra: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    m = api.predict(ob.app, ob.profile, ob.mapping, "home")  # validates the mapping
    assert m.latency_s > 0
    (folder / "profile.json").write_text(json.dumps(ob.profile.to_dict()))
    (folder / "mapping.json").write_text(json.dumps(
        {"mapping": dict(ob.mapping), "nodes": list(ob.nodes), "options": dict(ob.options)}))
    report = {"app": ob.app.name, "measured": {"single_item_latency_s": ob.latency_s,
                                               "throughput_per_s": ob.throughput_per_s}}
    report.update(report_extra or {})
    (folder / "report.json").write_text(json.dumps(report))
    return folder


def test_a_kept_deployment_reads_back_as_the_observation(tmp_path):
    ob = _observations()[0]
    folder = _keep(tmp_path / "run1" / "heft", ob)
    assert kept_dirs([tmp_path]) == [folder]
    back = observation_from_dir(folder, ob.app)
    assert back.label == str(folder)
    assert (back.mapping, back.nodes, back.latency_s, back.throughput_per_s) == \
        (dict(ob.mapping), ob.nodes, ob.latency_s, ob.throughput_per_s)
    assert prediction_errors([back], TRUTH)[0].values() == \
        pytest.approx([0.0, 0.0], abs=1e-9)
    assert back.task_cpu_s == {}  # a report without the tasks' CPU


def test_a_kept_deployment_reads_each_tasks_cpu_per_item(tmp_path):
    ob = _observations()[0]
    cpu = _task_cpu(ob, TRUTH)
    rows = [{"task": t, "node": n, "cpu_per_item_s": cpu[t] if t != "local_pro" else None}
            for t, n in ob.mapping.items()]
    back = observation_from_dir(_keep(tmp_path / "kept", ob, {"tasks": rows}), ob.app)
    assert back.task_cpu_s == {t: v for t, v in cpu.items() if t != "local_pro"}
    errors = prediction_errors([back], TRUTH)[0]
    assert errors.task_cpu.keys() == back.task_cpu_s.keys()
    assert errors.task_cpu_rms == pytest.approx(0.0, abs=1e-9)
    rows[1]["cpu_per_item_s"] = "fast"
    with pytest.raises(InvalidInput, match=r"\[tasks\[1\]\.cpu_per_item_s\]: must be a "
                       "number > 0, got 'fast'"):
        observation_from_dir(_keep(tmp_path / "bad", ob, {"tasks": rows}), ob.app)


@pytest.mark.parametrize(("broken", "message"), [
    ("report.json", "report.json: missing; a kept deployment holds"),
    ("mapping.json", "mapping.json: unreadable JSON"),
    ("throughput", "report.json [measured.throughput_per_s]: must be a number > 0, got -3"),
    ("app", "measured app 'other', not 'dnad'"),
    ("list", "report.json [measured]: no 'measured' object: not a report.json"),
])
def test_a_broken_kept_deployment_is_named(tmp_path, broken, message):
    ob = _observations()[0]
    folder = _keep(tmp_path / "kept", ob)
    if broken == "report.json":
        (folder / "report.json").unlink()
    elif broken == "mapping.json":
        (folder / "mapping.json").write_text("{not json")
    elif broken == "throughput":
        (folder / "report.json").write_text(json.dumps(
            {"app": "dnad", "measured": {"throughput_per_s": -3}}))
    elif broken == "list":
        (folder / "report.json").write_text(json.dumps([1, 2]))
    else:
        (folder / "report.json").write_text(json.dumps({"app": "other", "measured": {}}))
    with pytest.raises(InvalidInput) as err:
        observation_from_dir(folder, ob.app)
    assert message in str(err.value)
    assert str(folder) in str(err.value)


def test_the_profile_a_mapping_was_computed_from_is_read_not_a_later_one(tmp_path):
    ob = _observations()[0]
    folder = _keep(tmp_path / "kept", ob)
    used = replace(ob.profile, generated_at=1000.0)
    mapping = json.loads((folder / "mapping.json").read_text())
    (folder / "mapping.json").write_text(json.dumps({**mapping, "created_at": 1000.0}))
    (folder / "profile.json").write_text(json.dumps(used.to_dict()))
    assert observation_from_dir(folder, ob.app).profile == used  # still the one used
    # DRUPE published again while the items ran (a busy node measured slower)
    busy = {n: replace(p, speed=p.speed / 10) for n, p in used.nodes.items()}
    later = replace(used, generated_at=1058.0, nodes=busy)
    (folder / "profile.json").write_text(json.dumps(later.to_dict()))
    with pytest.raises(InvalidInput) as err:
        observation_from_dir(folder, ob.app)
    assert (f"{folder / 'profile.json'} [generated_at]: published at 1058.0, not the profile "
            "the mapping of 1000.0 was computed from") in str(err.value)
    assert "keep mapping-profile.json with the deployment" in str(err.value)
    # the wave role's record of the profile it used wins over profile.json
    (folder / "mapping-profile.json").write_text(json.dumps(used.to_dict()))
    back = observation_from_dir(folder, ob.app)
    assert back.profile == used
    assert prediction_errors([back], TRUTH)[0].values() == pytest.approx([0.0, 0.0], abs=1e-9)


def test_kept_dirs_refuses_a_missing_folder(tmp_path):
    with pytest.raises(InvalidInput, match="not a folder"):
        kept_dirs([tmp_path / "nope"])


def test_the_calibrate_bench_prints_the_baseline_and_the_fit(tmp_path):
    """bench/calibrate.py on deployments of the sample app kept on disk."""
    app_dir = REPO / "task_specific_files" / "network_monitoring_app"
    from jupiter.app.loader import load_app

    app = load_app(app_dir)
    profile = make_profile(SPEEDS, latency=0.001, bandwidth_bps=100e6,
                           exec_={t.name: {n: (0.001 / sp, 20_000) for n, sp in SPEEDS.items()}
                                  for t in app.tasks})
    profile = _warm(replace(profile, nodes={n: replace(p, cpu_count=1)  # as in _profile
                                            for n, p in profile.nodes.items()}))
    options = {"home": "home", "input_bytes": 60_000}
    for algorithm in ALGORITHMS:
        m = api.schedule(app, profile, list(SPEEDS), algorithm=algorithm, **options)
        ob = Observation(algorithm, app, profile, tuple(m.nodes), m.mapping, options, 1.0, 1.0)
        e = prediction_errors([ob], TRUTH)[0]
        tasks = [{"task": t, "cpu_per_item_s": v} for t, v in _task_cpu(ob, TRUTH).items()]
        _keep(tmp_path / algorithm, replace(ob, latency_s=e.latency + 1.0,
                                            throughput_per_s=e.throughput + 1.0),
              {"tasks": tasks})
    out = subprocess.run([sys.executable, str(REPO / "bench" / "calibrate.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert f"{len(ALGORITHMS)} deployments" in out
    assert "shipped: task_overhead_s" in out
    fitted = out.split("fitted:  ")[1].split(":")[0]
    assert {k: float(v) for k, v in (pair.split() for pair in fitted.split(", "))} == \
        pytest.approx(TRUTH, rel=0.01)
    figures = 2 * len(ALGORITHMS)
    assert f"worst 0.0%, {figures}/{figures} figures within 15%; tasks' CPU per item rms " \
        f"0.0% at worst ({len(ALGORITHMS)} deployments)" in out.split("fitted:")[1]
    use = out.split("use them in the inventory's group_vars: ")[1].strip()
    assert {k.removeprefix("wave_"): float(v) for k, v in
            (pair.split(": ") for pair in use.split(", "))} == pytest.approx(TRUTH, rel=0.01)
    bad = subprocess.run([sys.executable, str(REPO / "bench" / "calibrate.py"),
                          str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "nope: not a folder" in bad.stderr
