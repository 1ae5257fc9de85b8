"""Link estimation from probe samples (pure).

A *sweep* measures one directed link: probe payloads on a geometric ladder of sizes
(:func:`ladder`), growing until one transfer takes longer than a target time, repeated a few
times. :func:`estimate_sweep` turns the sweep's samples into

* ``latency_s``: half the fastest round trip of the smallest probes (one-way delay),
* ``bandwidth_bps``: from the slope of time over size of the largest probes
  (:func:`jupiter.profile.fit_line` over the fastest repeat of each size), where the
  transfer, not the round trip, dominates,
* ``burst_bytes``: what the link passes at once before its rate applies (a token-bucket
  shaper's bucket). Without one, the line through the largest probes passes through the
  smallest probe's time at its size; a bucket of B bytes lets the smallest probes through
  at once and lowers the line by B / bandwidth, so B = (smallest probe's time - intercept)
  x bandwidth - its size (0 when that is negative, as under TCP slow start; at most the
  largest probe),
* ``quad_ms_kbit``: Jupiter's time(ms) = a*x^2 + b*x + c, x in Kbit, over the fastest repeat
  of every size (:func:`jupiter.profile.fit_quadratic`).

:class:`LinkEstimator` smooths successive sweeps with an exponentially weighted moving average,
so a link that changes is seen to change within a few sweeps while single noisy sweeps are
damped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jupiter.profile import LinkProfile, fit_line, fit_quadratic

LARGE_SIZES = 3  # how many of the largest ladder sizes the bandwidth fit uses


@dataclass(frozen=True)
class Sample:
    """One probe: payload bytes, client-side seconds (request sent -> answer read)."""

    nbytes: int
    seconds: float
    server_seconds: float = 0.0


@dataclass(frozen=True)
class SweepEstimate:
    latency_s: float
    bandwidth_bps: float
    quad_ms_kbit: tuple[float, float, float]
    samples: int
    burst_bytes: float = 0.0


def ladder(min_bytes: int, max_bytes: int, factor: float) -> list[int]:
    """Geometric sizes from ``min_bytes`` up to ``max_bytes`` (inclusive, always the last)."""
    if min_bytes < 1 or max_bytes < min_bytes or factor <= 1:
        raise ValueError("ladder: need 1 <= min_bytes <= max_bytes and factor > 1")
    sizes = [min_bytes]
    while sizes[-1] < max_bytes:
        nxt = max(sizes[-1] + 1, round(sizes[-1] * factor))
        sizes.append(min(nxt, max_bytes))
    return sizes


def estimate_sweep(samples: Sequence[Sample], large_sizes: int = LARGE_SIZES) -> SweepEstimate:
    """Latency, bandwidth and the quadratic model from one sweep's samples.

    Raises ``ValueError`` when the samples cannot give a bandwidth (fewer than two sizes).
    """
    if not samples:
        raise ValueError("estimate_sweep: no samples")
    sizes = sorted({s.nbytes for s in samples})
    if len(sizes) < 2:
        raise ValueError("estimate_sweep: need probes of at least two sizes")
    # Delays (a busy CPU, a retransmission) only ever add time: the fastest repeat of each
    # size is the best view of the link, so latency and bandwidth use per-size minima.
    fastest = {n: min(s.seconds for s in samples if s.nbytes == n) for n in sizes}
    latency = fastest[sizes[0]] / 2.0
    large = sizes[-max(2, large_sizes):]
    intercept, slope = fit_line(large, [fastest[n] for n in large])
    if slope > 0:
        bandwidth = 8.0 / slope
        # the smallest probe's time holds its own bytes unless they came in a burst: what
        # the line says passed at once beyond them is the link's bucket
        burst = min(float(large[-1]),
                    max(0.0, (2 * latency - intercept) / slope - sizes[0]))
    else:
        # Noise hid the slope (e.g. a very fast link capped by max_bytes): use the mean rate of
        # the largest probes, net of the round trip.
        net = sum(max(fastest[n] - 2 * latency, 1e-9) for n in large)
        bandwidth = 8.0 * sum(large) / net
        burst = 0.0
    quad = fit_quadratic([8.0 * n / 1000.0 for n in sizes], [1000.0 * fastest[n] for n in sizes])
    return SweepEstimate(latency_s=latency, bandwidth_bps=bandwidth, quad_ms_kbit=quad,
                         samples=len(samples), burst_bytes=burst)


@dataclass
class LinkEstimator:
    """EWMA over sweeps of one directed link; ``alpha`` is the weight of the newest sweep."""

    alpha: float = 0.5
    latency_s: float | None = None
    bandwidth_bps: float | None = None
    quad_ms_kbit: tuple[float, float, float] = (0.0, 0.0, 0.0)
    samples: int = 0
    sweeps: int = 0
    updated: float = 0.0
    burst_bytes: float = 0.0

    def update(self, est: SweepEstimate, now: float) -> None:
        if self.latency_s is None or self.bandwidth_bps is None:
            self.latency_s, self.bandwidth_bps = est.latency_s, est.bandwidth_bps
            self.quad_ms_kbit = est.quad_ms_kbit
            self.burst_bytes = est.burst_bytes
        else:
            a = self.alpha
            self.latency_s = a * est.latency_s + (1 - a) * self.latency_s
            self.bandwidth_bps = a * est.bandwidth_bps + (1 - a) * self.bandwidth_bps
            self.burst_bytes = a * est.burst_bytes + (1 - a) * self.burst_bytes
            q = [a * n + (1 - a) * o for n, o in zip(est.quad_ms_kbit, self.quad_ms_kbit,
                                                       strict=True)]
            self.quad_ms_kbit = (q[0], q[1], q[2])
        self.samples += est.samples
        self.sweeps += 1
        self.updated = now

    def to_profile(self) -> LinkProfile:
        if self.latency_s is None or self.bandwidth_bps is None:
            raise ValueError("LinkEstimator: no sweep yet")
        return LinkProfile(latency_s=self.latency_s, bandwidth_bps=self.bandwidth_bps,
                           quad_ms_kbit=self.quad_ms_kbit, samples=self.samples,
                           updated=self.updated, burst_bytes=self.burst_bytes)
