"""Load a task script from its file and run it on one item, timing only the task's own work.

Both task interfaces, with CIRCE's semantics (so profiled times match what CIRCE runs):

``legacy``
    Jupiter's ``task(inputs, pathin, pathout[, *args])``: ``inputs`` is one file name when the
    task takes one input, else the list of names (parents' order). Files are placed in a fresh
    ``pathin`` folder; the outputs are the regular files the task wrote into the fresh
    ``pathout`` folder (or exactly the names it returns). Both folders end with a separator.
``process``
    ``process(item: str, inputs: dict[str, bytes]) -> dict[str, bytes]``.

The script's folder is put on ``sys.path`` (sibling imports work) and ``sys.argv`` is
``[script, *args]`` during the call.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from jupiter.errors import JupiterError
from jupiter.taskscript import import_script


class TaskFailed(JupiterError):
    """The task raised, or broke its interface; the message names task and script."""


def load_module(path: str | os.PathLike[str], label: str = "task") -> ModuleType:
    """Import a script by file path under a unique module name."""
    p = Path(path).resolve()
    if not p.is_file():
        raise JupiterError(f"{label}: script {p} not found")
    name = "jupiter_drupe_task_" + hashlib.sha256(str(p).encode()).hexdigest()[:12]
    return import_script(p, name, label)


@contextlib.contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


@dataclass
class TaskRunner:
    """One loaded task; :meth:`run` returns ``(outputs, seconds of the task call)``."""

    name: str
    script: Path
    interface: str
    func: Callable[..., Any]
    num_inputs: int = 1
    args: tuple[str, ...] = ()
    workdir: Path | None = None

    def run(self, item: str, inputs: dict[str, bytes]) -> tuple[dict[str, bytes], float]:
        if self.interface == "process":
            return self._run_process(item, inputs)
        return self._run_legacy(inputs)

    def _fail(self, what: str) -> TaskFailed:
        return TaskFailed(f"task {self.name!r} ({self.script}): {what}")

    def _run_process(self, item: str, inputs: dict[str, bytes]) -> tuple[dict[str, bytes], float]:
        with _argv([str(self.script), *self.args]):
            start = time.perf_counter()
            try:
                result = self.func(item, dict(inputs))
            except Exception as exc:
                raise self._fail(f"process() raised {type(exc).__name__}: {exc}") from exc
            seconds = time.perf_counter() - start
        if not isinstance(result, dict) or not all(
            isinstance(k, str) and isinstance(v, bytes | bytearray | memoryview)
            for k, v in result.items()
        ):
            raise self._fail("process() must return dict[str, bytes] (file name -> content)")
        return {k: bytes(v) for k, v in result.items()}, seconds

    def _run_legacy(self, inputs: dict[str, bytes]) -> tuple[dict[str, bytes], float]:
        work = Path(tempfile.mkdtemp(prefix=f"drupe-{self.name}-", dir=self.workdir))
        try:
            pathin, pathout = work / "in", work / "out"
            pathin.mkdir()
            pathout.mkdir()
            for fname, data in inputs.items():
                (pathin / fname).write_bytes(data)
            names = list(inputs)
            arg: str | list[str] = names[0] if self.num_inputs == 1 and len(names) == 1 \
                else names
            with _argv([str(self.script), *self.args]):
                start = time.perf_counter()
                try:
                    returned = self.func(arg, str(pathin) + os.sep, str(pathout) + os.sep,
                                         *self.args)
                except Exception as exc:
                    raise self._fail(f"task() raised {type(exc).__name__}: {exc}") from exc
                seconds = time.perf_counter() - start
            return self._collect(pathout, returned), seconds
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _collect(self, pathout: Path, returned: Any) -> dict[str, bytes]:
        if isinstance(returned, list | tuple) and returned and all(
            isinstance(r, str | os.PathLike) for r in returned
        ):
            files = []
            for r in returned:
                p = Path(r) if Path(r).is_absolute() else pathout / r
                if p.parent.resolve() != pathout.resolve() or not p.is_file():
                    raise self._fail(f"returned {str(r)!r}, not a file it wrote to pathout")
                files.append(p)
        else:
            files = sorted(p for p in pathout.iterdir() if p.is_file())
        return {p.name: p.read_bytes() for p in files}


def load_task(script: str | os.PathLike[str], *, name: str, interface: str = "legacy",
              num_inputs: int = 1, args: tuple[str, ...] = (),
              workdir: Path | None = None) -> TaskRunner:
    """Load ``script`` and find its entry point for ``interface`` (``legacy``/``process``)."""
    if interface not in ("legacy", "process"):
        raise JupiterError(f"task {name!r}: unknown interface {interface!r} (legacy | process)")
    module = load_module(script, f"task {name!r}")
    fn = "task" if interface == "legacy" else "process"
    func = getattr(module, fn, None)
    if not callable(func):
        sig = "(inputs, pathin, pathout)" if fn == "task" else "(item, inputs)"
        raise JupiterError(f"task {name!r}: {script} defines no {fn}{sig} (interface "
                           f"{interface!r}); define it or fix the task's interface")
    return TaskRunner(name=name, script=Path(script), interface=interface, func=func,
                      num_inputs=num_inputs, args=tuple(args), workdir=workdir)
