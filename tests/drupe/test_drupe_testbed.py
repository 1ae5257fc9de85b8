"""DRUPE on the emulated testbed (root: network namespaces, htb, cgroup v1 cpu).

These tests FAIL (never skip) when root, iproute2 or namespaces are missing: CI runs as root.
Each uses its own deployment name and subnet and removes its testbed afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.drupe.localrun import LocalDrupe
from jupiter.drupe.resources import cpu_benchmark
from jupiter.local import testbed
from jupiter.local.spec import TestbedSpec
from jupiter.profile import Profile

pytestmark = pytest.mark.root

SHAPED = {"n5": 5.0, "n20": 20.0, "n80": 80.0}
OTHER_MBIT = 50.0


def _spec(dep: str, subnet: str, names: list[str], links: dict[str, dict[str, float]],
          shares: dict[str, float] | None = None) -> TestbedSpec:
    shares = shares or {}
    return TestbedSpec.from_dict({
        "deployment": dep, "subnet": subnet,
        "nodes": [{"name": n, "cpu_share": shares.get(n)} for n in names],
        "links": links,
    })


def _up(spec: TestbedSpec, state_dir: Path) -> dict[str, str]:
    _, st = testbed.apply(spec, str(state_dir), mode="netns")  # raises when not root
    assert st["mode"] == "netns" and st["shaped"], st.get("reason")
    return {n["name"]: n["address"] for n in st["nodes"]}


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    made: list[tuple[str, Path]] = []
    runs: list[LocalDrupe] = []

    def make(dep: str, spec: TestbedSpec, options: dict[str, Any]) -> LocalDrupe:
        sd = tmp_path / dep
        made.append((dep, sd))
        addresses = _up(spec, sd)
        ld = LocalDrupe(dep, sd, addresses, spec.node_names[0], options=options)
        ld.write_config()
        runs.append(ld)
        return ld

    yield {"make": make}
    for ld in runs:
        ld.stop()
    for dep, sd in made:
        testbed.destroy(dep, str(sd))


def test_shaped_links_are_measured_within_10_percent(bed: dict[str, Any]) -> None:
    names = ["h", *SHAPED]
    links = {s: {d: OTHER_MBIT for d in names if d != s} for s in names}
    links["h"].update(SHAPED)
    ld = bed["make"]("dtacc", _spec("dtacc", "10.93.0.0/24", names, links), {})
    ld.start()
    status, _ = ld.wait(timeout=120)
    assert status["done"] == status["total"] == 12
    prof = Profile.from_dict(ld.get("/profile"))
    assert prof.complete
    report = []
    for s in names:
        for d in names:
            if s == d:
                continue
            lp = prof.link(s, d)
            assert lp is not None
            want = links[s][d] * 1e6
            report.append(f"{s}->{d} {lp.bandwidth_bps / 1e6:.2f}/{want / 1e6:.0f}")
            assert lp.bandwidth_bps == pytest.approx(want, rel=0.10), report
            assert lp.samples >= 8
            # Jupiter's quadratic predicts, inside the probed range, the time of a transfer
            # that takes 0.15 s at the configured rate within 15 %
            a, b, c = lp.quad_ms_kbit
            nbytes = 0.15 * want / 8
            x = 8 * nbytes / 1000
            assert (a * x * x + b * x + c) / 1e3 == pytest.approx(0.15, rel=0.15), report
    published = json.loads((ld.state_dir / "profile.json").read_text())
    assert published["complete"] is True


def test_a_link_that_changes_is_seen_to_change(bed: dict[str, Any]) -> None:
    names = ["a", "b"]
    before = {"a": {"b": 20.0}, "b": {"a": 20.0}}
    ld = bed["make"]("dtchg", _spec("dtchg", "10.94.0.0/24", names, before),
                     {"interval_s": 0.5, "ewma_alpha": 0.5})
    ld.start()
    ld.wait(timeout=60)
    first = Profile.from_dict(ld.get("/profile")).link("a", "b")
    assert first is not None and first.bandwidth_bps == pytest.approx(20e6, rel=0.10)
    # reshape a -> b to 5 Mbit/s on the running testbed
    _up(_spec("dtchg", "10.94.0.0/24", names, {"a": {"b": 5.0}, "b": {"a": 20.0}}), ld.state_dir)

    def moved(_status: dict[str, Any]) -> bool:
        lp = Profile.from_dict(ld.get("/profile")).link("a", "b")
        return lp is not None and lp.bandwidth_bps < 5e6 * 1.15

    ld.wait(timeout=90, predicate=moved)
    after = Profile.from_dict(ld.get("/profile"))
    ab, ba = after.link("a", "b"), after.link("b", "a")
    assert ab is not None and ba is not None
    assert ab.updated > first.updated and ab.samples > first.samples
    assert ba.bandwidth_bps == pytest.approx(20e6, rel=0.10)  # the other direction did not move


def test_cpu_share_and_exec_profiler_inside_nodes(bed: dict[str, Any], tmp_path: Path) -> None:
    names = ["full", "quarter"]
    spec = _spec("dtcpu", "10.95.0.0/24", names, {"full": {"quarter": 50.0},
                                                   "quarter": {"full": 50.0}},
                 shares={"full": 1.0, "quarter": 0.25})
    ld = bed["make"]("dtcpu", spec, {})
    ld.start()
    ld.wait(timeout=60)
    prof = Profile.from_dict(ld.get("/profile"))
    # A quarter of a core cannot benchmark faster than about a quarter of this machine's
    # unconstrained speed (best of three runs here; other load on the machine only lowers
    # the quarter node further). Generous bound: 0.45.
    free = max(cpu_benchmark().speed for _ in range(3))
    assert prof.nodes["quarter"].speed < 0.45 * max(free, prof.nodes["full"].speed)
    # the exec profiler runs inside each node (namespace + cgroup) and posts to home
    app = Path(__file__).resolve().parents[2] / "task_specific_files" / "network_monitoring_app"
    for n in names:
        out = ld.run_on(n, ["drupe", "exec", "--app", str(app), "--node", n, "--out",
                            str(tmp_path / f"exec-{n}.json"), "--repeat", "1",
                            "--config", str(ld.config_path), "--post"])
        assert "home merged 14 entries" in out
    prof = Profile.from_dict(ld.get("/profile"))
    assert len(prof.exec) == 14 and all(set(per) == set(names) for per in prof.exec.values())
