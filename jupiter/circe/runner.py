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


def execute(code: TaskCode, item: str, inputs: list[tuple[str, bytes]], retries: int,
            on_failure: Callable[[int, str], None] | None = None) -> Outcome:
    """Run ``code`` on one item; a raising task is retried ``retries`` times."""
    started = time.time()
    cpu = time.thread_time()
    error = ""
    for attempt in range(1, retries + 2):
        try:
            outputs = code.run(item, inputs)
            check_outputs(outputs)
            return Outcome(outputs, None, attempt, started, time.time(),
                           time.thread_time() - cpu)
        except Exception as exc:  # the task's own failure: recorded, never fatal
            error = describe(exc)
            if on_failure is not None:
                on_failure(attempt, error)
    return Outcome(None, error, retries + 1, started, time.time(), time.thread_time() - cpu)


class InlinePolicy:
    """Whether a task's code is fast enough to run on the event loop instead of a worker
    thread: handing an item to a thread and back costs more than a tiny task itself.

    Judged by the CPU time of recent runs, at most ``max_seconds``, and their wall time, at
    most ``WALL_FACTOR`` times that. CPU time is what a run costs the loop; its wall time
    on a node under a CPU quota also holds the periods the whole process was throttled
    (the pool would not run it sooner), so it only catches code that waits (I/O, sleeps)
    rather than computes. Each estimate is a decaying maximum of observed runs, so one slow
    run sends the next ones back to the pool and only a series of fast runs brings them
    inline again; the first run always goes to the pool (nothing is known yet). Inputs
    above ``max_input_bytes`` always go to the pool (a run's time tends to grow with its
    input). ``max_seconds`` 0 never runs code inline.
    """

    DECAY = 0.9  # per observed run
    WALL_FACTOR = 100  # 1 ms of CPU: up to 100 ms of wall, one CFS period of throttling

    def __init__(self, max_seconds: float, max_input_bytes: int = 64 * 1024) -> None:
        self.max_seconds = max_seconds
        self.max_input_bytes = max_input_bytes
        self.cpu_estimate: float | None = None
        self.wall_estimate = 0.0

    def inline(self, input_bytes: int) -> bool:
        return (self.max_seconds > 0 and self.cpu_estimate is not None
                and self.cpu_estimate <= self.max_seconds
                and self.wall_estimate <= self.max_seconds * self.WALL_FACTOR
                and input_bytes <= self.max_input_bytes)

    def observe(self, cpu_s: float, wall_s: float) -> None:
        self.cpu_estimate = (cpu_s if self.cpu_estimate is None
                             else max(cpu_s, self.cpu_estimate * self.DECAY))
        self.wall_estimate = max(wall_s, self.wall_estimate * self.DECAY)


# ---- process-pool workers (executor: process) ----------------------------------------
_worker_code: TaskCode | None = None


def worker_init(task_dict: dict[str, object], app_dir: str, work_root: str) -> None:
    """Initializer of a process-pool worker: load the task code once per worker."""
    global _worker_code
    _worker_code = load_task_code(Task.from_dict(task_dict), app_dir, work_root)


def worker_execute(item: str, inputs: list[tuple[str, bytes]], retries: int) -> Outcome:
    assert _worker_code is not None, "worker_init did not run"
    return execute(_worker_code, item, inputs, retries)
