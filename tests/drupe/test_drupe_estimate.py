"""Fits on synthetic data with known answers, EWMA tracking, the schedule, the benchmark maths."""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupiter.drupe.estimate import LinkEstimator, Sample, estimate_sweep, ladder
from jupiter.drupe.resources import burst_seconds, cpu_benchmark, effective_seconds
from jupiter.drupe.schedule import directed_phases, round_robin
from jupiter.profile import fit_quadratic


def synthetic_sweep(latency: float, bps: float, noise: float = 0.0, seed: int = 1,
                    sizes: list[int] | None = None, repeats: int = 3) -> list[Sample]:
    rnd = random.Random(seed)
    sizes = sizes or ladder(1024, 4 * 1024 * 1024, 2.0)
    out = []
    for _ in range(repeats):
        for n in sizes:
            t = 2 * latency + 8 * n / bps  # request + answer round trip, then the transfer
            out.append(Sample(nbytes=n, seconds=t * (1 + rnd.uniform(-noise, noise))))
    return out


def test_ladder_is_geometric_and_capped() -> None:
    assert ladder(1024, 16384, 2.0) == [1024, 2048, 4096, 8192, 16384]
    assert ladder(1000, 5000, 2.0) == [1000, 2000, 4000, 5000]
    assert ladder(1, 3, 1.1) == [1, 2, 3]
    with pytest.raises(ValueError):
        ladder(10, 5, 2.0)


@pytest.mark.parametrize("mbit", [1, 5, 20, 80, 1000])
def test_sweep_recovers_bandwidth_and_latency(mbit: float) -> None:
    bps = mbit * 1e6
    est = estimate_sweep(synthetic_sweep(0.002, bps, noise=0.02))
    assert est.bandwidth_bps == pytest.approx(bps, rel=0.05)
    # one-way latency + the transfer of the smallest (1 KB) probe, halved
    assert est.latency_s == pytest.approx(0.002 + 4 * 1024 / bps, rel=0.05)
    assert est.samples == 13 * 3


def test_quadratic_model_fits_known_coefficients() -> None:
    # time(ms) = a x^2 + b x + c with x in Kbit, as Jupiter's DRUPE fitted scp times
    a, b, c = 2e-6, 0.05, 3.0
    xs = [8 * 2**k / 1000 * 1024 for k in range(12)]
    ys = [a * x * x + b * x + c for x in xs]
    fa, fb, fc = fit_quadratic(xs, ys)
    assert (fa, fb, fc) == pytest.approx((a, b, c), rel=1e-6)
    # estimate_sweep reports the same model for a linear link: a ~ 0, b = ms per Kbit
    est = estimate_sweep(synthetic_sweep(0.001, 8e6))
    qa, qb, qc = est.quad_ms_kbit
    assert abs(qa) < 1e-9
    assert qb == pytest.approx(1000 / 8e6 * 1000, rel=1e-3)  # 0.125 ms per Kbit at 8 Mbit/s
    assert qc == pytest.approx(2.0, rel=1e-3)


def test_sweep_needs_two_sizes() -> None:
    with pytest.raises(ValueError):
        estimate_sweep([Sample(1024, 0.01), Sample(1024, 0.011)])
    with pytest.raises(ValueError):
        estimate_sweep([])


def test_noise_without_slope_falls_back_to_mean_rate() -> None:
    # a very fast link where every probe takes about the same time: no usable slope
    samples = [Sample(n, 0.001) for n in (1024, 2048, 4096, 8192)] * 2
    est = estimate_sweep(samples)
    assert est.bandwidth_bps > 0


def test_ewma_tracks_a_link_that_changes() -> None:
    e = LinkEstimator(alpha=0.5)
    for i in range(3):
        e.update(estimate_sweep(synthetic_sweep(0.001, 20e6, noise=0.02, seed=i)), now=i)
    assert e.bandwidth_bps == pytest.approx(20e6, rel=0.05)
    # the link drops to 5 Mbit/s: after a few sweeps the estimate follows
    history = []
    for i in range(3, 11):
        e.update(estimate_sweep(synthetic_sweep(0.001, 5e6, noise=0.02, seed=i)), now=i)
        history.append(e.bandwidth_bps)
    assert history == sorted(history, reverse=True)  # moves monotonically towards 5
    assert history[0] < 15e6  # visibly changed after one sweep
    assert e.bandwidth_bps == pytest.approx(5e6, rel=0.05)
    assert e.sweeps == 11 and e.samples == 11 * 39 and e.updated == 10
    lp = e.to_profile()
    assert lp.samples == e.samples and lp.transfer_seconds(5e6 / 8) == pytest.approx(
        lp.latency_s + 1.0, rel=0.06)


def test_ewma_damps_a_single_outlier() -> None:
    e = LinkEstimator(alpha=0.3)
    for i in range(5):
        e.update(estimate_sweep(synthetic_sweep(0.001, 50e6, seed=i)), now=i)
    e.update(estimate_sweep(synthetic_sweep(0.001, 10e6, seed=9)), now=9)
    assert e.bandwidth_bps > 35e6


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9])
def test_round_robin_covers_every_pair_once_with_disjoint_rounds(n: int) -> None:
    nodes = [f"n{i}" for i in range(n)]
    rounds = round_robin(nodes)
    assert len(rounds) == (n - 1 if n % 2 == 0 else n)
    pairs = [frozenset(p) for r in rounds for p in r]
    assert len(pairs) == len(set(pairs)) == n * (n - 1) // 2
    for r in rounds:
        members = [x for p in r for x in p]
        assert len(members) == len(set(members))


@given(st.integers(min_value=0, max_value=14), st.integers(min_value=0, max_value=4))
def test_directed_phases_properties(n: int, max_parallel: int) -> None:
    nodes = [f"n{i}" for i in range(n)]
    phases = directed_phases(nodes, max_parallel)
    slots = [p for ph in phases for p in ph]
    assert sorted(slots) == sorted(itertools.permutations(nodes, 2))
    for ph in phases:
        members = [x for p in ph for x in p]
        assert len(members) == len(set(members)), ph  # no node in two probes at once
        assert ph and (max_parallel == 0 or len(ph) <= max_parallel)
    if n >= 2 and max_parallel == 0:
        assert len(phases) == 2 * (n - 1 if n % 2 == 0 else n)


def test_effective_seconds_sees_through_cfs_throttling() -> None:
    # 100 chunks of 1 ms of work; quota 25 ms per 100 ms period, starting mid-period with a
    # full quota: the naive timer would say ~0.32 s, the steady rate is 0.4 s.
    stamps, t, budget = [0.0], 0.0, 25
    for _ in range(100):
        if budget == 0:
            t = (int(t / 0.1) + 1) * 0.1  # stalled until the next period
            budget = 25
        t += 0.001
        budget -= 1
        stamps.append(t)
    seconds, stalls = effective_seconds(stamps)
    assert stalls == 3
    assert seconds == pytest.approx(0.4, rel=0.02)
    assert stamps[-1] < 0.33  # what a plain timer would have measured


def test_effective_seconds_without_stalls_is_the_total() -> None:
    stamps = [i * 0.001 for i in range(101)]
    assert effective_seconds(stamps) == (pytest.approx(0.1), 0)


def test_cpu_benchmark_runs_fixed_work() -> None:
    b = cpu_benchmark(chunks=5)
    assert b.speed > 0 and b.seconds > 0 and b.wall_seconds > 0


def test_delayed_probes_do_not_bend_the_estimate() -> None:
    # a busy CPU delays some probes by 50 ms; the fastest repeat of each size is clean
    clean = synthetic_sweep(0.001, 5e6, repeats=1, sizes=ladder(1024, 256 * 1024, 2.0))
    delayed = [Sample(s.nbytes, s.seconds + (0.05 if i % 3 == 0 else 0.0))
               for i, s in enumerate(synthetic_sweep(0.001, 5e6, repeats=2,
                                                     sizes=ladder(1024, 256 * 1024, 2.0)))]
    est = estimate_sweep(clean + delayed)
    assert est.bandwidth_bps == pytest.approx(5e6, rel=0.01)
    assert est.latency_s == pytest.approx(0.001 + 4 * 1024 / 5e6, rel=0.01)


def throttled_stamps(chunks: int, chunk_s: float, quota_chunks: int, period_s: float = 0.1
                     ) -> list[float]:
    """Chunk end times under a CFS quota of ``quota_chunks`` chunks per period."""
    stamps, t, budget = [0.0], 0.0, quota_chunks
    for _ in range(chunks):
        if budget == 0:
            t = (int(t / period_s) + 1) * period_s  # stalled until the next period
            budget = quota_chunks
        t += chunk_s
        budget -= 1
        stamps.append(t)
    return stamps


def fake_clock(stamps: list[float]) -> Callable[[], float]:
    """A clock that returns ``stamps`` one call after the other."""
    return iter(stamps).__next__


def test_burst_seconds_is_the_median_chunk_times_the_chunks() -> None:
    stamps = throttled_stamps(100, 0.001, 25)
    assert burst_seconds(stamps) == pytest.approx(0.1)  # no stall: 100 chunks of 1 ms
    assert effective_seconds(stamps)[0] == pytest.approx(0.4, rel=0.02)
    with pytest.raises(ValueError, match="two chunks"):
        burst_seconds([0.0, 1.0])


def test_cpu_benchmark_burst_speed_of_a_throttled_node() -> None:
    # a quarter-core quota: fast chunks, long stalls; half the reference work per chunk count
    b = cpu_benchmark(chunks=100, clock=fake_clock(throttled_stamps(100, 0.001, 25)))
    assert b.stalls == 3
    assert b.seconds == pytest.approx(0.8, rel=0.02)  # normalised to CHUNKS
    assert b.speed == pytest.approx(0.25, rel=0.02)
    assert b.burst_speed == pytest.approx(1.0, rel=0.01)
    assert b.burst_speed > b.speed


def test_cpu_benchmark_burst_speed_of_an_unthrottled_node() -> None:
    b = cpu_benchmark(chunks=100, clock=fake_clock([i * 0.001 for i in range(101)]))
    assert b.stalls == 0
    assert b.speed == pytest.approx(1.0)
    assert b.burst_speed == pytest.approx(b.speed) and b.burst_speed >= b.speed


def test_cpu_benchmark_burst_speed_is_never_below_speed() -> None:
    # uneven chunks without stalls: the median chunk (2 ms) is slower than the mean rate
    durations = [0.002] * 51 + [0.0005] * 49
    stamps = [0.0]
    for d in durations:
        stamps.append(stamps[-1] + d)
    b = cpu_benchmark(chunks=100, clock=fake_clock(stamps))
    assert b.stalls == 0
    assert b.speed > 0.2 / (0.002 * 200)  # what the median alone would say
    assert b.burst_speed == b.speed


def bucket_sweep(rtt: float, bps: float, bucket: int, jitter: float = 0.0, seed: int = 3,
                 target_s: float = 0.2) -> list[Sample]:
    """A token-bucket shaped link: the first ``bucket`` bytes go at once, the rest at ``bps``;
    the ladder grows until a transfer takes ``target_s``, as DRUPE's does; each probe is
    late by up to ``jitter`` seconds."""
    rnd = random.Random(seed)
    sizes = [n for n in ladder(1024, 64 * 1024 * 1024, 2.0)
             if n <= 2 * (bucket + target_s * bps / 8)]
    return [Sample(n, rtt + 8 * max(0, n - bucket) / bps + rnd.uniform(0, jitter))
            for _ in range(3) for n in sizes]


@pytest.mark.parametrize("mbit, bucket", [(5, 3125), (20, 12500), (100, 62500)])
def test_sweep_recovers_a_shapers_burst(mbit: float, bucket: int) -> None:
    # htb with a 5 ms burst at the rate, as the local testbed shapes its links; probes late
    # by up to 0.2 ms (the fastest of three repeats of a size is used)
    est = estimate_sweep(bucket_sweep(0.0003, mbit * 1e6, bucket, jitter=0.0002))
    assert est.bandwidth_bps == pytest.approx(mbit * 1e6, rel=0.05)
    # the bucket beyond the smallest probe, which itself went at once
    assert est.burst_bytes == pytest.approx(bucket - 1024, rel=0.15)


def test_sweep_reports_no_burst_for_a_plain_or_slow_starting_link() -> None:
    assert estimate_sweep(synthetic_sweep(0.002, 20e6)).burst_bytes == pytest.approx(0, abs=1)
    # TCP slow start from an idle window (10 segments): a transfer pays one more round trip
    # each time its size doubles past the window, so the large ones' line meets zero bytes
    # above the smallest probe's time
    def slow_start(n: int, rtt: float = 0.02) -> float:
        return rtt + rtt * max(0.0, math.log2(n / (10 * 1448))) + 8 * n / 20e6

    slow = [Sample(n, slow_start(n)) for n in ladder(1024, 1024 * 1024, 2.0)]
    assert estimate_sweep(slow).burst_bytes == 0.0


def test_ewma_carries_the_burst_into_the_profile() -> None:
    e = LinkEstimator(alpha=0.5)
    e.update(estimate_sweep(bucket_sweep(0.0003, 20e6, 12500)), now=1.0)
    e.update(estimate_sweep(synthetic_sweep(0.0003, 20e6)), now=2.0)
    lp = e.to_profile()
    assert lp.burst_bytes == pytest.approx((12500 - 1024) / 2, rel=0.1)
    assert lp.transfer_seconds(1000) == pytest.approx(lp.latency_s)
    assert lp.transfer_seconds(100_000) == pytest.approx(
        lp.latency_s + 8 * (100_000 - lp.burst_bytes) / lp.bandwidth_bps)


class BucketLink:
    """A token-bucket shaped link for an agent's sweep: a probe of n bytes takes the round
    trip plus what the bucket cannot pass at once, at the rate. The bucket refills only while
    the link idles between probes (the real time between one probe's answer and the next)."""

    def __init__(self, rate_bytes_s: float, bucket: int, rtt: float = 0.0003) -> None:
        self.rate, self.bucket, self.rtt = rate_bytes_s, bucket, rtt
        self.tokens = float(bucket)
        self.last = time.monotonic()

    async def probe(self, peer: str, url: str, nbytes: int) -> Sample:
        now = time.monotonic()
        self.tokens = min(self.bucket, self.tokens + (now - self.last) * self.rate)
        passed = min(float(nbytes), self.tokens)
        self.tokens -= passed
        self.last = time.monotonic()
        return Sample(nbytes, self.rtt + (nbytes - passed) / self.rate)


@pytest.mark.parametrize("idle_s", [0.02, 0.0])
async def test_a_sweep_rests_the_link_before_the_probes_that_show_its_burst(
        tmp_path: Path, idle_s: float) -> None:
    from drupe_helpers import make_config

    from jupiter.drupe.agent import Agent

    cfg, _ = make_config(tmp_path, ["a", "b"], options={"probe": {
        "idle_s": idle_s, "target_s": 0.2, "min_bytes": 1024, "max_bytes": 1 << 24,
        "repeats": 2}})
    agent = Agent(cfg, "a", "t" * 20, listen=("127.0.0.1", 1))
    link = BucketLink(20e6 / 8, 12500)  # 20 Mbit/s, a 5 ms bucket (as the testbed's htb)
    agent.probe = link.probe  # type: ignore[method-assign]
    samples, _ = await agent.sweep("b", "http://b")
    est = estimate_sweep(samples)
    assert est.bandwidth_bps == pytest.approx(20e6, rel=0.05)
    if idle_s:
        assert est.burst_bytes == pytest.approx(12500 - 1024, rel=0.15)
    else:  # back to back, every probe found the bucket empty
        assert est.burst_bytes < 0.2 * 12500
