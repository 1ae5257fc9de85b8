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

``burst_speed`` is the rate of a run short enough to fit in one quota slice (no stall): from
the median chunk, which is a chunk run inside a slice, as :func:`burst_seconds`. It is never
below ``speed``; on an unthrottled node the two agree.

``host`` (:func:`host_id`) tells which nodes share a machine: a hash of the kernel's boot id,
equal for network namespaces on one kernel, distinct across machines.
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from jupiter.profile import NodeProfile

CHUNKS = 200
CHUNK_LOOP = 6000
REFERENCE_SECONDS = 0.2  # the fixed work on the reference machine (Xeon, CPython 3.11)
_BLOCK = bytes(range(256)) * 4
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")  # one per kernel boot


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
    burst_speed: float = 0.0  # REFERENCE_SECONDS / burst seconds, >= speed; 0.0 = unknown


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


def burst_seconds(stamps: Sequence[float]) -> float:
    """Seconds the whole work takes without a stall: the median chunk x the number of chunks.

    Stalls are rare chunks (a few per quota period), so the median is a chunk run inside a
    quota slice, at the CPU's full speed.
    """
    if len(stamps) < 3:
        raise ValueError("burst_seconds: need at least two chunks")
    durations = [b - a for a, b in itertools.pairwise(stamps)]
    return statistics.median(durations) * len(durations)


def cpu_benchmark(chunks: int = CHUNKS, clock: Callable[[], float] = time.perf_counter
                  ) -> Benchmark:
    """Run the fixed work (scaled by ``chunks``/:data:`CHUNKS`) and rate this CPU."""
    stamps = [clock()]
    for _ in range(chunks):
        _work_chunk()
        stamps.append(clock())
    seconds, stalls = effective_seconds(stamps)
    seconds *= CHUNKS / chunks  # normalise to the reference amount of work
    speed = REFERENCE_SECONDS / seconds
    burst = burst_seconds(stamps) * CHUNKS / chunks
    # the median can come out a little slower than the mean rate (noise): never below speed
    burst_speed = max(speed, REFERENCE_SECONDS / burst) if burst > 0 else speed
    return Benchmark(seconds=seconds, wall_seconds=stamps[-1] - stamps[0], speed=speed,
                     stalls=stalls, burst_speed=burst_speed)


def host_id() -> str:
    """Opaque id of the machine (kernel instance) this runs on; "" when unknown.

    The first 16 hex digits of the sha256 of the kernel's boot id: network namespaces on one
    kernel share it, other machines (and reboots) differ. The boot id itself is not exposed.
    """
    try:
        boot_id = BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    if not boot_id:
        return ""
    return hashlib.sha256(boot_id.encode("ascii")).hexdigest()[:16]


def resource_profile(speed: float, now: float | None = None, *,
                     burst_speed: float = 0.0) -> NodeProfile:
    """This node's resources now (psutil) with the given benchmark speeds (burst 0 = unknown)."""
    mem = psutil.virtual_memory()
    return NodeProfile(
        cpu_count=psutil.cpu_count(logical=True) or 1,
        speed=round(speed, 4),
        mem_total=int(mem.total),
        mem_free=int(mem.available),
        cpu_percent=float(psutil.cpu_percent(interval=None)),
        mem_percent=float(mem.percent),
        updated=time.time() if now is None else now,
        burst_speed=round(max(burst_speed, speed), 4) if burst_speed > 0 else 0.0,
        host=host_id(),
    )
