"""Agent/home protocol over real sockets on 127.0.0.x: a complete profile, published."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from drupe_helpers import Cluster, make_config, wait_until

from jupiter.profile import Profile
from jupiter.wait import WaitSpec, wait_for_status

JUPITER = [sys.executable, "-m", "jupiter.cli"]


async def test_three_agents_produce_a_complete_profile(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, ["home", "edge1", "edge2"])
    c = Cluster(cfg)
    await c.start_home()
    try:
        for n in cfg.nodes:
            await c.start_agent(n)

        async def complete() -> bool:
            return bool((await c.status())["complete"])

        await wait_until(complete, 60, "a complete profile", c.status)
        st = await c.status()
        assert st["done"] == st["total"] == 6
        assert st["missing"] == [] and st["stale"] == [] and st["unregistered"] == []

        code, prof_doc = await c.get("/profile")
        assert code == 200
        prof = Profile.from_dict(prof_doc)
        assert prof.complete
        assert set(prof.nodes) == {"home", "edge1", "edge2"}
        for s in cfg.nodes:
            assert prof.nodes[s].speed > 0 and prof.nodes[s].mem_total > 0
            assert prof.nodes[s].cpu_count >= 1 and not prof.nodes[s].stale
            for d in cfg.nodes:
                if s == d:
                    continue
                lp = prof.link(s, d)
                assert lp is not None, f"{s}->{d} missing"
                assert lp.samples >= cfg.min_samples
                assert lp.bandwidth_bps > 1e6  # loopback: far above 1 Mbit/s
                assert lp.latency_s >= 0 and lp.updated > 0
                # loopback timings are microseconds of noise: the model's shape is checked on
                # synthetic data (test_drupe_estimate) and on shaped links (test_drupe_testbed)
                assert len(lp.quad_ms_kbit) == 3 and all(map(math.isfinite, lp.quad_ms_kbit))

        # the published file is the same complete profile (written atomically)
        async def file_complete() -> bool:
            p = cfg.profile_path
            return p.is_file() and json.loads(p.read_text())["complete"] is True

        await wait_until(file_complete, 10, "profile.json with complete: true")
        on_disk = Profile.from_dict(json.loads(cfg.profile_path.read_text()))
        assert set(on_disk.links) == {"home", "edge1", "edge2"}

        # metrics are Prometheus text without a token
        code, text = await c.get("/metrics", token=None)
        assert code == 200
        assert "drupe_links_measured 6.0" in text and "drupe_profile_complete 1.0" in text
        # the agents' probe servers counted what they received
        for a in c.agents.values():
            assert a.m_recv._value.get() > 0
    finally:
        await c.stop()
    # home keeps publishing while it runs; once stopped, no temp file is left beside the profile
    leftovers = [p.name for p in cfg.profile_path.parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def _popen(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    f = log.open("wb")
    return subprocess.Popen([*JUPITER, *args], stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_cli_processes_home_and_agents(tmp_path: Path) -> None:
    """`jupiter drupe home` and `jupiter drupe agent` as real processes; jupiter.wait waits."""
    cfg, _ = make_config(tmp_path, ["home", "n1", "n2", "n3"], base_ip=20)
    conf = str(tmp_path / "drupe.json")
    procs = [_popen(["drupe", "home", "--config", conf], tmp_path / "drupe-home.log")]
    try:
        procs += [_popen(["drupe", "agent", "--config", conf, "--node", n], tmp_path / f"{n}.log")
                  for n in cfg.nodes]
        status, _elapsed = wait_for_status(
            WaitSpec(url=f"{cfg.home_url}/status", token_file=cfg.token_file, until="complete",
                     missing_key="missing", label="drupe", timeout=90, interval=0.2),
            progress=lambda _line: None)
        assert status["done"] == status["total"] == 12
        prof = Profile.from_dict(json.loads(cfg.profile_path.read_text()))
        assert prof.complete and len(prof.nodes) == 4
        for p in procs:
            assert p.poll() is None, (tmp_path / "drupe-home.log").read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    # SIGTERM is a clean shutdown
    assert all(p.returncode == 0 for p in procs), [p.returncode for p in procs]
    home_log = (tmp_path / "drupe-home.log").read_text()
    assert "profile complete" in home_log


@pytest.mark.parametrize("n", [2, 5])
async def test_odd_and_even_node_counts(tmp_path: Path, n: int) -> None:
    names = [f"x{i}" for i in range(n)]
    cfg, _ = make_config(tmp_path, names, base_ip=40)
    c = Cluster(cfg)
    await c.start_home()
    try:
        for name in names:
            await c.start_agent(name)

        async def complete() -> bool:
            return bool((await c.status())["complete"])

        await wait_until(complete, 90, "complete", c.status)
        st = await c.status()
        assert st["total"] == n * (n - 1) and st["done"] == st["total"]
        assert st["cycles"] >= 1 and st["probe_bytes_total"] > 0
    finally:
        await c.stop()


def test_cli_rejects_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "drupe.json"
    bad.write_text('{"schema": "jupiter.drupe/v1", "nodes": []', encoding="utf-8")
    r = subprocess.run([*JUPITER, "drupe", "home", "--config", str(bad)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert str(bad) in r.stderr and "not valid JSON" in r.stderr
    make_config(tmp_path, ["a", "b"], base_ip=60)
    r = subprocess.run([*JUPITER, "drupe", "agent", "--config", str(tmp_path / "drupe.json"),
                        "--node", "zz"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "'zz'" in r.stderr and "a, b" in r.stderr


async def test_single_node_deployment_completes_without_links(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, ["solo"], base_ip=150)
    c = Cluster(cfg)
    await c.start_home()
    try:
        await c.start_agent("solo")

        async def complete() -> bool:
            return bool((await c.status())["complete"])

        await wait_until(complete, 30, "complete", c.status)
        st = await c.status()
        assert st["done"] == st["total"] == 0 and st["unbenched"] == []
        prof = Profile.from_dict((await c.get("/profile"))[1])
        assert prof.complete and list(prof.nodes) == ["solo"] and prof.links == {}
    finally:
        await c.stop()
