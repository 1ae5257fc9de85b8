"""Loading a task script once and running it on one item's inputs: the one implementation
CIRCE's task servers run and DRUPE's execution profiler times, so a profiled run is the run
CIRCE makes.

Two interfaces (``Task.interface``):

``legacy``
    Jupiter's ``task(inputs, pathin, pathout[, *args])``. ``inputs`` is a file name when the
    task has ``num_inputs: 1`` and received one file, else a list of names (join order:
    parents in definition order, names sorted). The files are in ``pathin``; the task writes
    its outputs into the empty folder ``pathout``. Its outputs are the regular files it wrote
    there, or, when it returns a list of names/paths, exactly those (each must exist in
    ``pathout``). Both folders end with a separator (``pathin + name`` works, as does
    ``os.path.join``). The folders are emptied after every run and reused by the next one
    (creating and removing folders costs more than a small task on a journalling file
    system).

``process``
    ``process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]``: input file name ->
    content in, output file name -> content out (insertion order = join order).

Both run with the script's folder on ``sys.path`` (sibling imports work) and ``sys.argv``
set to ``[script, *args]`` during the call.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Protocol

from jupiter.app.model import Task
from jupiter.errors import JupiterError

_import_lock = threading.Lock()
_argv_lock = threading.Lock()
_argv_depth = 0
_argv_saved: list[str] = []


class TaskCode(Protocol):
    task: Task

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]: ...


class TaskOutputError(Exception):
    """The task's outputs break the interface (bad names, types, missing files)."""


def import_script(path: Path, module_name: str, label: str) -> ModuleType:
    """Import ``path`` once as ``module_name``; its folder goes on ``sys.path`` first so
    that a script may import its siblings (as Jupiter's scripts do).

    Raises :class:`JupiterError` starting with ``label`` when the import fails; a failed
    import leaves nothing in ``sys.modules``.
    """
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise JupiterError(f"{label}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise JupiterError(f"{label}: importing {path} failed: {msg}") from exc
    return module


def load_module(task: Task, app_dir: str | Path) -> ModuleType:
    """Import the task's script once per process (its folder on ``sys.path``)."""
    root = Path(app_dir)
    path = (root / task.script).resolve()
    if not path.is_file():
        raise JupiterError(
            f"task {task.name!r}: script {task.script!r} not found under {root} "
            "(the app folder must hold the task's scripts)"
        )
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    with _import_lock:
        return import_script(path, f"jupiter_task_{task.key.replace('-', '_')}_{digest}",
                             f"task {task.name!r}")


@contextlib.contextmanager
def task_argv(argv: list[str]) -> Iterator[None]:
    """``sys.argv = argv`` while a task runs; concurrent runs of the same task (threads of
    one task server) share it, and the first value comes back when the last run ends."""
    global _argv_depth, _argv_saved
    with _argv_lock:
        if _argv_depth == 0:
            _argv_saved = sys.argv
        _argv_depth += 1
        sys.argv = argv
    try:
        yield
    finally:
        with _argv_lock:
            _argv_depth -= 1
            if _argv_depth == 0:
                sys.argv = _argv_saved


def _entry(module: ModuleType, task: Task, fn: str, signature: str) -> Callable[..., object]:
    func = getattr(module, fn, None)
    if not callable(func):
        raise JupiterError(
            f"task {task.name!r}: {task.script} defines no {fn}{signature} "
            f"(interface {task.interface!r}); define it or fix the task's interface"
        )
    return func


def _empty(folder: Path) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


class LegacyTask:
    """``task(inputs, pathin, pathout)`` on an empty pair of folders per run. Folders are
    kept in a free list and reused; concurrent runs each take their own pair."""

    def __init__(self, task: Task, module: ModuleType, work_root: str | Path) -> None:
        self.task = task
        self.func = _entry(module, task, "task", "(inputs, pathin, pathout)")
        self.argv = [str(module.__file__), *task.args]
        self.work_root = Path(work_root)
        self.work_root.mkdir(parents=True, exist_ok=True)
        self._free: list[Path] = []
        self._lock = threading.Lock()

    def _take(self) -> Path:
        with self._lock:
            if self._free:
                return self._free.pop()
        work = Path(tempfile.mkdtemp(prefix=f"{self.task.key}-", dir=self.work_root))
        (work / "in").mkdir()
        (work / "out").mkdir()
        return work

    def _give_back(self, work: Path) -> None:
        try:
            _empty(work / "in")
            _empty(work / "out")
        except OSError:  # the task changed the folders beyond repair: start afresh
            shutil.rmtree(work, ignore_errors=True)
            return
        with self._lock:
            self._free.append(work)

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]:
        work = self._take()
        try:
            pathin, pathout = work / "in", work / "out"
            for name, data in inputs:
                (pathin / name).write_bytes(data)
            names = [n for n, _ in inputs]
            arg: str | list[str] = (
                names[0] if self.task.num_inputs == 1 and len(names) == 1 else names
            )
            with task_argv(self.argv):
                returned = self.func(arg, str(pathin) + os.sep, str(pathout) + os.sep,
                                     *self.task.args)
            return self._collect(pathout, returned)
        finally:
            self._give_back(work)

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
        self.argv = [str(module.__file__), *task.args]
        params = inspect.signature(self.func).parameters
        if len(params) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params.values()):
            raise JupiterError(
                f"task {task.name!r}: process{inspect.signature(self.func)} in {task.script} "
                "must take (item, inputs)"
            )

    def run(self, item: str, inputs: list[tuple[str, bytes]]) -> dict[str, bytes]:
        with task_argv(self.argv):
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
    """The task's code, loaded once; ``work_root`` holds the legacy interface's folders."""
    module = load_module(task, app_dir)
    if task.interface == "process":
        return ProcessTask(task, module)
    if task.interface == "legacy":
        return LegacyTask(task, module, work_root)
    raise JupiterError(f"task {task.name!r}: unknown interface {task.interface!r} "
                       "(legacy | process)")
