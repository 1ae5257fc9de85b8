"""Running a task's code on one item with retries (:func:`execute`), and where it runs.

The code itself (both interfaces, loaded once) is :mod:`jupiter.taskscript`, shared with
DRUPE's execution profiler. :func:`execute` returns an :class:`Outcome`; the task servers
call it in a worker pool or inline, the reference run calls it directly, so both produce
the same bytes.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jupiter.app.model import Task
from jupiter.circe.transport import file_name_problem
from jupiter.taskscript import TaskCode, TaskOutputError, load_task_code

__all__ = ["InlinePolicy", "Outcome", "TaskCode", "execute", "load_task_code",
           "worker_execute", "worker_init"]


def check_outputs(outputs: dict[str, bytes]) -> None:
    for name in outputs:
        problem = file_name_problem(name)
        if problem:
            raise TaskOutputError(f"output {problem}")


@dataclass(frozen=True)
class Outcome:
    outputs: dict[str, bytes] | None  # None when every attempt failed
    error: str | None
    attempts: int
    started: float  # wall clock of the first attempt
    finished: float
    cpu_s: float = 0.0  # CPU time of the thread that ran the attempts
    waited_s: float = 0.0  # off CPU by the code's own doing (I/O, sleeps, locks)

    @property
    def wall_s(self) -> float:
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        return self.outputs is not None


def describe(exc: BaseException) -> str:
    """One line naming the exception and where in the task it was raised."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    if tb and not isinstance(exc, TaskOutputError):
        where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


SCHEDSTAT = "/proc/thread-self/schedstat"


def run_delay_s() -> float | None:
    """Seconds this thread has spent runnable but not running (waiting for a core, or its
    cgroup throttled by a CPU quota), from the kernel's schedstat; None where unavailable."""
    try:
        with open(SCHEDSTAT, "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def execute(code: TaskCode, item: str, inputs: list[tuple[str, bytes]], retries: int,
            on_failure: Callable[[int, str], None] | None = None) -> Outcome:
    """Run ``code`` on one item; a raising task is retried ``retries`` times.

    Besides wall time, the outcome has the thread's CPU time and the time the code spent
    off CPU by its own doing (waiting on I/O, sleeping): wall - CPU - the time the kernel
    kept it runnable but not running (others on the core, CPU-quota throttling). Without
    schedstat that last part is unknown and counts as waiting."""
    started = time.time()
    cpu0, delay0 = time.thread_time(), run_delay_s()

    def outcome(outputs: dict[str, bytes] | None, error: str | None, attempts: int) -> Outcome:
        finished = time.time()
        cpu, delay1 = time.thread_time() - cpu0, run_delay_s()
        delayed = delay1 - delay0 if delay0 is not None and delay1 is not None else 0.0
        return Outcome(outputs, error, attempts, started, finished, cpu,
                       max(0.0, finished - started - cpu - delayed))

    error = ""
    for attempt in range(1, retries + 2):
        try:
            outputs = code.run(item, inputs)
            check_outputs(outputs)
            return outcome(outputs, None, attempt)
        except Exception as exc:  # the task's own failure: recorded, never fatal
            error = describe(exc)
            if on_failure is not None:
                on_failure(attempt, error)
    return outcome(None, error, retries + 1)


class InlinePolicy:
    """Whether a task's code is fast enough to run on the event loop instead of a worker
    thread: handing an item to a thread and back costs more than a tiny task itself.

    Judged by two measures of recent runs (:func:`execute`), each at most ``max_seconds``:
    their CPU time, what a run costs the loop, and the time they waited by their own doing
    (I/O, sleeps), which would hold the loop without using it. Wall time is not the
    measure: on a node under a CPU quota a 0.3 ms run can span a throttled period, and a
    worker thread would not run it any sooner. Each estimate is a decaying maximum, so one
    slow run sends the next ones back to the pool and only a series of fast runs brings them
    inline again; the first run always goes to the pool (nothing is known yet). Inputs
    above ``max_input_bytes`` always go to the pool (a run's time tends to grow with its
    input). ``max_seconds`` 0 never runs code inline.
    """

    DECAY = 0.9  # per observed run

    def __init__(self, max_seconds: float, max_input_bytes: int = 64 * 1024) -> None:
        self.max_seconds = max_seconds
        self.max_input_bytes = max_input_bytes
        self.cpu_estimate: float | None = None
        self.wait_estimate = 0.0

    def inline(self, input_bytes: int) -> bool:
        return (self.max_seconds > 0 and self.cpu_estimate is not None
                and self.cpu_estimate <= self.max_seconds
                and self.wait_estimate <= self.max_seconds
                and input_bytes <= self.max_input_bytes)

    def observe(self, cpu_s: float, waited_s: float) -> None:
        self.cpu_estimate = (cpu_s if self.cpu_estimate is None
                             else max(cpu_s, self.cpu_estimate * self.DECAY))
        self.wait_estimate = max(waited_s, self.wait_estimate * self.DECAY)


# ---- process-pool workers (executor: process) ----------------------------------------
_worker_code: TaskCode | None = None


def worker_init(task_dict: dict[str, object], app_dir: str, work_root: str) -> None:
    """Initializer of a process-pool worker: load the task code once per worker."""
    global _worker_code
    _worker_code = load_task_code(Task.from_dict(task_dict), app_dir, work_root)


def worker_execute(item: str, inputs: list[tuple[str, bytes]], retries: int) -> Outcome:
    assert _worker_code is not None, "worker_init did not run"
    return execute(_worker_code, item, inputs, retries)
