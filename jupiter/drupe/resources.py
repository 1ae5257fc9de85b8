"""Resource profile of the node this runs on: psutil figures plus a CPU benchmark.

The benchmark is a fixed amount of pure-Python work (an integer loop feeding ``hashlib``),
0.2 s on the reference machine, split into :data:`CHUNKS` equal chunks whose end times
are recorded. ``speed`` = :data:`REFERENCE_SECONDS` / measured seconds (1.0 = reference,
bigger is faster), so nodes with different CPU shares compare correctly.

A cgroup CFS quota lets a group run ``quota`` microseconds per ``period`` (100 ms by
default), then stalls it until the next period. A fixed-work timer started mid-period would
run without a stall for up to two quotas (the rest of the current period, then the whole
next one) and overestimate the node. The work is therefore long enough to span several
periods on a throttled node (3 x quota < 0.2 s for shares up to 2/3 of a core), and
:func:`effective_seconds` measures the throughput between the first and the last stall (a
whole number of periods) when it sees two or more stalls. Between 2/3 and one core a run may
see fewer stalls; the total time is used then, which overestimates such a node by up to
about 15 %.
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from jupiter.profile import NodeProfile

CHUNKS = 200
CHUNK_LOOP = 6000
REFERENCE_SECONDS = 0.2  # the fixed work on the reference machine (Xeon, CPython 3.11)
_BLOCK = bytes(range(256)) * 4


def _work_chunk(n: int = CHUNK_LOOP) -> int:
    h = hashlib.sha256()
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
        if not i & 7:
            h.update(_BLOCK)
    return acc ^ h.digest()[0]


@dataclass(frozen=True)
class Benchmark:
    seconds: float  # time the fixed work takes at this node's steady rate
    wall_seconds: float  # time it took in this run
    speed: float  # REFERENCE_SECONDS / seconds
    stalls: int  # throttling stalls seen


def effective_seconds(stamps: Sequence[float]) -> tuple[float, int]:
    """Seconds the whole work takes at the steady rate, and the number of stalls seen.

    ``stamps[0]`` is the start, ``stamps[i]`` the end of chunk ``i``. A stall is a chunk that
    took much longer than the median chunk (> median + max(5 ms, 2 x median)). With two or more
    stalls the rate is measured between the end of the first and the end of the last stalled
    chunk, a whole number of CFS periods; otherwise it is the total time.
    """
    if len(stamps) < 3:
        raise ValueError("effective_seconds: need at least two chunks")
    durations = [b - a for a, b in itertools.pairwise(stamps)]
    med = statistics.median(durations)
    limit = med + max(0.005, 2 * med)
    stalls = [i + 1 for i, d in enumerate(durations) if d > limit]  # index into stamps
    total = stamps[-1] - stamps[0]
    if len(stalls) >= 2:
        first, last = stalls[0], stalls[-1]
        per_chunk = (stamps[last] - stamps[first]) / (last - first)
        return per_chunk * len(durations), len(stalls)
    return total, len(stalls)


def cpu_benchmark(chunks: int = CHUNKS, clock: Callable[[], float] = time.perf_counter
                  ) -> Benchmark:
    """Run the fixed work (scaled by ``chunks``/:data:`CHUNKS`) and rate this CPU."""
    stamps = [clock()]
    for _ in range(chunks):
        _work_chunk()
        stamps.append(clock())
    seconds, stalls = effective_seconds(stamps)
    seconds *= CHUNKS / chunks  # normalise to the reference amount of work
    return Benchmark(seconds=seconds, wall_seconds=stamps[-1] - stamps[0],
                     speed=REFERENCE_SECONDS / seconds, stalls=stalls)


def resource_profile(speed: float, now: float | None = None) -> NodeProfile:
    """This node's resources now (psutil) with the given benchmark speed."""
    mem = psutil.virtual_memory()
    return NodeProfile(
        cpu_count=psutil.cpu_count(logical=True) or 1,
        speed=round(speed, 4),
        mem_total=int(mem.total),
        mem_free=int(mem.available),
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        mem_percent=float(mem.percent),
        updated=time.time() if now is None else now,
    )
