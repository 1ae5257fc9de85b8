"""Loading a task's code once and running it on one item's inputs.

Two interfaces (``Task.interface``):

``legacy``
    Jupiter's ``task(inputs, pathin, pathout[, *args])``. ``inputs`` is a file name when the
    task has ``num_inputs: 1`` and received one file, else a list of names (join order:
    parents in definition order, names sorted). The files are in ``pathin``; the task writes
    its outputs into the empty folder ``pathout``. Its outputs are the regular files it wrote
    there, or, when it returns a list of names/paths, exactly those (each must exist in
    ``pathout``). Both folders end with a separator (``pathin + name`` works, as does
    ``os.path.join``). The script's folder is put on ``sys.path`` so it may import sibling
    modules.

``process``
    ``process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]``: input file name ->
    content in, output file name -> content out (insertion order = join order).

:func:`execute` runs either with retries and returns an :class:`Outcome`; the task servers
call it in a worker pool, the reference run calls it directly, so both produce the same bytes.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

from jupiter.app.model import Task
from jupiter.circe.transport import file_name_problem
from jupiter.errors import JupiterError
from jupiter.taskscript import import_script

_import_lock = threading.Lock()


class TaskCode(Protocol):
    task: Task

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]: ...


class TaskOutputError(Exception):
    """The task's outputs break the interface (bad names, types, missing files)."""


def _module_name(task: Task, path: Path) -> str:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"jupiter_task_{task.key.replace('-', '_')}_{digest}"


def load_module(task: Task, app_dir: str | Path) -> ModuleType:
    """Import the task's script once (its folder on ``sys.path`` for sibling imports)."""
    root = Path(app_dir)
    path = (root / task.script).resolve()
    if not path.is_file():
        raise JupiterError(
            f"task {task.name!r}: script {task.script!r} not found under {root} "
            "(app_dir in the CIRCE config must be the app folder holding the scripts)"
        )
    with _import_lock:
        return import_script(path, _module_name(task, path), f"task {task.name!r}")


def _entry(module: ModuleType, task: Task, fn: str, signature: str) -> Callable[..., object]:
    func = getattr(module, fn, None)
    if not callable(func):
        raise JupiterError(
            f"task {task.name!r}: {task.script} defines no {fn}{signature} "
            f"(interface {task.interface!r}); define it or fix the task's interface"
        )
    return func


class LegacyTask:
    """``task(inputs, pathin, pathout)`` on a fresh pair of folders per run."""

    def __init__(self, task: Task, module: ModuleType, work_root: str | Path) -> None:
        self.task = task
        self.func = _entry(module, task, "task", "(inputs, pathin, pathout)")
        self.work_root = Path(work_root)
        self.work_root.mkdir(parents=True, exist_ok=True)

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]:
        work = Path(tempfile.mkdtemp(prefix=f"{self.task.key}-", dir=self.work_root))
        try:
            pathin, pathout = work / "in", work / "out"
            pathin.mkdir()
            pathout.mkdir()
            for name, data in inputs:
                (pathin / name).write_bytes(data)
            names = [n for n, _ in inputs]
            arg: str | list[str] = (
                names[0] if self.task.num_inputs == 1 and len(names) == 1 else names
            )
            returned = self.func(arg, str(pathin) + os.sep, str(pathout) + os.sep,
                                 *self.task.args)
            return self._collect(pathout, returned)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _collect(self, pathout: Path, returned: object) -> dict[str, bytes]:
        if isinstance(returned, list | tuple) and returned and all(
            isinstance(r, str | os.PathLike) for r in returned
        ):
            chosen: list[Path] = []
            for r in returned:
                p = Path(r)
                p = p if p.is_absolute() else pathout / p
                if p.parent.resolve() != pathout.resolve() or not p.is_file():
                    raise TaskOutputError(
                        f"task returned {str(r)!r}, which is not a file it wrote to pathout"
                    )
                chosen.append(p)
        else:
            chosen = sorted(p for p in pathout.iterdir() if p.is_file())
            extra = [p.name for p in pathout.iterdir() if not p.is_file()]
            if extra:
                raise TaskOutputError(
                    f"task left folders in pathout ({', '.join(sorted(extra))}); outputs are "
                    "plain files"
                )
        return {p.name: p.read_bytes() for p in chosen}


class ProcessTask:
    """``process(item, inputs) -> outputs``."""

    def __init__(self, task: Task, module: ModuleType) -> None:
        self.task = task
        self.func = _entry(module, task, "process", "(item, inputs)")
        params = inspect.signature(self.func).parameters
        if len(params) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params.values()):
            raise JupiterError(
                f"task {task.name!r}: process{inspect.signature(self.func)} in {task.script} "
                "must take (item, inputs)"
            )

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]:
        result = self.func(item, dict(inputs))
        if not isinstance(result, dict):
            raise TaskOutputError(
                f"process() returned {type(result).__name__}; expected dict[str, bytes] "
                "(output file name -> content)"
            )
        outputs: dict[str, bytes] = {}
        for name, data in result.items():
            if not isinstance(name, str):
                raise TaskOutputError(f"process() output name {name!r} is not a string")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TaskOutputError(
                    f"process() output {name!r} is {type(data).__name__}; expected bytes "
                    "(encode text with .encode())"
                )
            outputs[name] = bytes(data)
        return outputs


def load_task_code(task: Task, app_dir: str | Path, work_root: str | Path) -> TaskCode:
    module = load_module(task, app_dir)
    if task.interface == "process":
        return ProcessTask(task, module)
    if task.interface == "legacy":
        return LegacyTask(task, module, work_root)
    raise JupiterError(f"task {task.name!r}: unknown interface {task.interface!r}")


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
    error = ""
    for attempt in range(1, retries + 2):
        try:
            outputs = code.run(item, inputs)
            check_outputs(outputs)
            return Outcome(outputs, None, attempt, started, time.time())
        except Exception as exc:  # the task's own failure: recorded, never fatal
            error = describe(exc)
            if on_failure is not None:
                on_failure(attempt, error)
    return Outcome(None, error, retries + 1, started, time.time())


class InlinePolicy:
    """Whether a task's code is fast enough to run on the event loop instead of a worker
    thread: handing an item to a thread and back costs more than a tiny task itself.

    The estimate is a decaying maximum of observed run times, so one slow run sends the
    next ones back to the pool and only a series of fast runs brings them inline again; the
    first run always goes to the pool (nothing is known yet). Inputs above
    ``max_input_bytes`` always go to the pool (a run's time tends to grow with its input).
    ``max_seconds`` 0 never runs code inline.
    """

    DECAY = 0.9  # per observed run

    def __init__(self, max_seconds: float, max_input_bytes: int = 64 * 1024) -> None:
        self.max_seconds = max_seconds
        self.max_input_bytes = max_input_bytes
        self.estimate: float | None = None

    def inline(self, input_bytes: int) -> bool:
        return (self.max_seconds > 0 and self.estimate is not None
                and self.estimate <= self.max_seconds and input_bytes <= self.max_input_bytes)

    def observe(self, seconds: float) -> None:
        self.estimate = (seconds if self.estimate is None
                         else max(seconds, self.estimate * self.DECAY))


# ---- process-pool workers (executor: process) ----------------------------------------
_worker_code: TaskCode | None = None


def worker_init(task_dict: dict[str, object], app_dir: str, work_root: str) -> None:
    """Initializer of a process-pool worker: load the task code once per worker."""
    global _worker_code
    _worker_code = load_task_code(Task.from_dict(task_dict), app_dir, work_root)


def worker_execute(item: str, inputs: list[tuple[str, bytes]], retries: int) -> Outcome:
    assert _worker_code is not None, "worker_init did not run"
    return execute(_worker_code, item, inputs, retries)
