"""Run one task of an app on one item and time it, for the execution profiler.

The code is :mod:`jupiter.taskscript`, the same that CIRCE's task servers run (both
interfaces, ``sys.argv = [script, *args]`` during the call, the legacy interface's folders
reused between runs), and the time is the whole run as CIRCE makes it: the legacy
interface's input files written, the call, the outputs read back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from jupiter.app.model import Task, safe_key
from jupiter.errors import JupiterError
from jupiter.taskscript import TaskCode, TaskOutputError, load_task_code


class TaskFailed(JupiterError):
    """The task raised, or broke its interface; the message names task and script."""


@dataclass
class TaskRunner:
    """One loaded task; :meth:`run` returns ``(outputs, seconds of the run)``."""

    name: str
    script: Path
    code: TaskCode

    def run(self, item: str, inputs: dict[str, bytes]) -> tuple[dict[str, bytes], float]:
        start = time.perf_counter()
        try:
            outputs = self.code.run(item, list(inputs.items()))
        except TaskOutputError as exc:
            raise TaskFailed(f"task {self.name!r} ({self.script}): {exc}") from exc
        except Exception as exc:
            fn = "task()" if self.code.task.interface == "legacy" else "process()"
            raise TaskFailed(f"task {self.name!r} ({self.script}): {fn} raised "
                             f"{type(exc).__name__}: {exc}") from exc
        return outputs, time.perf_counter() - start


def load_task(script: str | os.PathLike[str], *, name: str, interface: str = "legacy",
              num_inputs: int = 1, args: tuple[str, ...] = (),
              workdir: Path | None = None) -> TaskRunner:
    """Load ``script`` and find its entry point for ``interface`` (``legacy``/``process``)."""
    if interface not in ("legacy", "process"):
        raise JupiterError(f"task {name!r}: unknown interface {interface!r} (legacy | process)")
    path = Path(script).resolve()
    task = Task(name=name, key=safe_key(name), script=path.name, interface=interface,  # type: ignore[arg-type]
                num_inputs=num_inputs, args=tuple(args))
    work = Path(workdir if workdir is not None else tempfile.mkdtemp(prefix="drupe-task-"))
    code = load_task_code(task, path.parent, work / task.key)
    runner = TaskRunner(name=name, script=Path(script), code=code)
    if workdir is None:  # our own folder: gone with the runner
        weakref.finalize(runner, shutil.rmtree, work, True)
    return runner
