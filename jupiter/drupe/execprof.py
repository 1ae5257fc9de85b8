"""Execution profiler: each task's run time and output size on one node.

:func:`profile_app` runs the tasks in topological order on ONE sample item, so each task gets
realistic inputs: ingress tasks get the sample file, every other task gets what its parents
produced for it (``broadcast``: every output to every child; ``split``: the i-th output in
name order to the i-th child). Each task runs ``repeat`` times on fresh folders back to back,
then once in each of ``repeat`` rounds that follow an idle pause; the medians are kept
(``warm_seconds`` and ``seconds``), with the bytes it received (``input_bytes``: the sample
file, or the parents' outputs for it) and output. The result is the ``exec`` part of a
profile (``{task: {node: {seconds, output_bytes, input_bytes, digest, warm_seconds}}}``).
``digest`` (:func:`exec_digest`) names what was profiled, the app's files and the sample, so
a later run sees an entry made for other code or another sample as out of date (``jupiter
drupe exec --only-missing`` redoes it).

:func:`scale_exec` is the cheap alternative: profile on one reference node, then estimate the
other nodes by their benchmark speed (seconds x speed_ref / speed_node).
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from jupiter.app.model import HOME, App, Task
from jupiter.drupe.taskrun import TaskFailed, TaskRunner, load_task
from jupiter.errors import JupiterError
from jupiter.profile import SCHEMA, ExecProfile, Profile


@dataclass
class TaskResult:
    seconds: float  # median of the runs after an idle pause (warm_seconds without pauses)
    runs: list[float] = field(default_factory=list)  # back to back
    output_bytes: int = 0
    outputs: list[str] = field(default_factory=list)
    input_bytes: int = 0  # sum over the input files of the run
    warm_seconds: float = 0.0  # median of the back-to-back runs
    idle_runs: list[float] = field(default_factory=list)  # each after an idle pause

    def to_exec(self, digest: str = "") -> ExecProfile:
        return ExecProfile(seconds=self.seconds, output_bytes=self.output_bytes,
                           input_bytes=self.input_bytes, digest=digest,
                           warm_seconds=self.warm_seconds)


METHOD = "exec/2"  # how entries are measured; a new method makes the old entries out of date
IDLE_S = 0.5  # default idle pause before each round of runs after idle


def exec_digest(app: App, sample: Path, idle_s: float = IDLE_S) -> str:
    """What an execution profile of ``app`` on ``sample`` depends on, hashed (16 hex): every
    file of the app folder (definition, scripts, helpers; not the sample inputs, nor hidden
    or ``__pycache__`` entries) by relative path, then the sample's bytes, then how it is
    measured (:data:`METHOD` and the idle pause: ``seconds`` depends on it)."""
    root = Path(app.root)
    skip = Path(app.sample_input).parts[:1] if app.sample_input else ()
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (not path.is_file() or rel.parts[:1] == skip
                or any(part.startswith(".") or part == "__pycache__" for part in rel.parts)):
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(b"sample\0" + hashlib.sha256(sample.read_bytes()).digest())
    h.update(f"method\0{METHOD} idle={idle_s!r}".encode())
    return h.hexdigest()[:16]


def item_of(filename: str) -> str:
    """Item id of a sample file: Jupiter's leading-digits prefix, else the name's stem."""
    m = re.match(r"^(\d+)", filename)
    return m.group(1) if m else Path(filename).stem


def default_sample(app: App) -> Path:
    """The first file (name order) of the app's ``sample_input`` folder."""
    if not app.sample_input:
        raise JupiterError(f"app {app.name!r} has no sample_input folder; pass --input FILE")
    folder = Path(app.root) / app.sample_input
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        raise JupiterError(f"app {app.name!r}: no sample file in {folder}; add one or pass "
                           "--input FILE")
    return files[0]


def route(task: Task, outputs: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """Which outputs go to which child (Jupiter's FLAG: broadcast / split)."""
    if task.mode == "broadcast":
        return {c: dict(outputs) for c in task.children}
    names = sorted(outputs)
    return {c: {names[i]: outputs[names[i]]} for i, c in enumerate(task.children)
            if i < len(names)}


def _groups(task: Task, files: dict[str, bytes]) -> list[dict[str, bytes]]:
    names = list(files)
    k = max(1, task.num_inputs)
    if len(names) % k:
        raise JupiterError(f"task {task.name!r} takes {k} input(s) per run but its parents "
                           f"produced {len(names)} file(s) for the sample item: "
                           f"{', '.join(names)}")
    return [{n: files[n] for n in names[i:i + k]} for i in range(0, len(names), k)]


def profile_app(
    app: App,
    *,
    sample: Path,
    repeat: int = 3,
    idle_s: float = IDLE_S,
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> dict[str, TaskResult]:
    """Run every task of ``app`` on ``sample`` here; ``{task: TaskResult}``.

    Each task first runs ``repeat`` times back to back (``warm_seconds``: what a busy
    stream meets). Then come ``repeat`` rounds: everything idles ``idle_s``, then every
    task runs once more (``seconds``: what an item that comes alone meets). A process that
    has idled runs its first item several times slower than the same code run again at
    once (on virtual machines most of all), and the penalty is the process's: a task run
    right after another in the same process finds it paid. CIRCE runs each task in a
    process of its own, which waits for its item, so the rounds do too (:class:`_Idlers`).
    ``idle_s`` 0: no rounds, ``seconds`` is ``warm_seconds``."""
    if repeat < 1:
        raise JupiterError("exec profiler: --repeat must be >= 1")
    if not 0 <= idle_s <= 60:
        raise JupiterError(f"exec profiler: --idle must be between 0 and 60 seconds, got "
                           f"{idle_s}")
    data = sample.read_bytes()
    item = item_of(sample.name)
    inbox: dict[str, dict[str, bytes]] = {t: {sample.name: data} for t in app.ingress}
    results: dict[str, TaskResult] = {}
    loaded: dict[str, tuple[TaskRunner, list[dict[str, bytes]]]] = {}
    with tempfile.TemporaryDirectory(prefix="drupe-exec-", dir=workdir) as tmp:
        for name in app.topological_order():
            task = app.task(name)
            files = inbox.get(name) or {}
            if not files:
                raise JupiterError(f"task {name!r} got no input for the sample item from its "
                                   f"parents {app.parents(name)}; do they write output files?")
            runner: TaskRunner = load_task(Path(app.root) / task.script, name=name,
                                           interface=task.interface, num_inputs=task.num_inputs,
                                           args=task.args, workdir=Path(tmp))
            groups = _groups(task, files)
            runs: list[float] = []
            outputs: dict[str, bytes] = {}
            for _ in range(repeat):
                outputs, total = {}, 0.0
                for group in groups:
                    out, secs = runner.run(item, group)
                    outputs.update(out)
                    total += secs
                runs.append(total)
            warm = statistics.median(runs)
            results[name] = TaskResult(seconds=warm, runs=runs, warm_seconds=warm,
                                       output_bytes=sum(len(v) for v in outputs.values()),
                                       outputs=sorted(outputs),
                                       input_bytes=sum(len(v) for v in files.values()))
            loaded[name] = (runner, groups)
            for child, files_for_child in route(task, outputs).items():
                if child != HOME:
                    inbox.setdefault(child, {}).update(files_for_child)
        if idle_s > 0:
            with _Idlers(item, loaded) as idlers:
                for round_ in range(repeat):
                    if progress:
                        progress(f"round {round_ + 1}/{repeat}: every task once, each in a "
                                 f"process of its own, after {idle_s:g} s idle")
                    pause(idle_s)
                    for name in loaded:
                        results[name].idle_runs.append(idlers.run(name))
    for name, res in results.items():
        if res.idle_runs:
            res.seconds = statistics.median(res.idle_runs)
        if progress:
            progress(f"{name}: {res.seconds * 1e3:.2f} ms after idle, "
                     f"{res.warm_seconds * 1e3:.2f} ms back to back (medians of {repeat}), "
                     f"{res.input_bytes} input bytes, {res.output_bytes} output bytes in "
                     f"{len(res.outputs)} file(s)")
    return results


class _Idlers:
    """One forked process per loaded task, each holding its runner and inputs: ``run``
    has that process run its task once and answers the run's seconds. Forked after the
    tasks ran, so nothing is loaded again; each waits in ``recv`` like a CIRCE task server
    waiting for its item."""

    TIMEOUT_S = 600.0  # a run the back-to-back runs took well under this

    def __init__(self, item: str, loaded: dict[str, tuple[TaskRunner, list[dict[str, bytes]]]]
                 ) -> None:
        self.item, self.loaded = item, loaded
        self.conns: dict[str, Connection] = {}
        self.procs: list[BaseProcess] = []

    def __enter__(self) -> _Idlers:
        ctx = multiprocessing.get_context("fork")
        try:
            for name, (runner, groups) in self.loaded.items():
                here, there = ctx.Pipe()
                proc = ctx.Process(target=_idler, args=(there, self.item, runner, groups),
                                   name=f"drupe-exec-{name}", daemon=True)
                proc.start()
                there.close()
                self.conns[name] = here
                self.procs.append(proc)
            for name in self.loaded:
                self._answer(name)  # "ready"
        except BaseException:
            self.__exit__()
            raise
        return self

    def run(self, name: str) -> float:
        self.conns[name].send(True)
        return float(self._answer(name))

    def _answer(self, name: str) -> float | str:
        conn = self.conns[name]
        if not conn.poll(self.TIMEOUT_S):
            raise JupiterError(f"task {name!r}: no answer from its profiling process in "
                               f"{self.TIMEOUT_S:.0f} s")
        try:
            kind, value = conn.recv()
        except EOFError:
            raise JupiterError(f"task {name!r}: its profiling process died") from None
        if kind == "error":
            raise TaskFailed(value)
        return value

    def __exit__(self, *exc: object) -> None:
        for conn in self.conns.values():
            with contextlib.suppress(OSError):
                conn.send(False)
            conn.close()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _idler(conn: Connection, item: str, runner: TaskRunner,
           groups: list[dict[str, bytes]]) -> None:
    """A forked process of :class:`_Idlers`: one run of the task per ``True`` received."""
    conn.send(("ready", "ready"))
    while conn.recv():
        try:
            conn.send(("seconds", sum(runner.run(item, g)[1] for g in groups)))
        except TaskFailed as exc:
            conn.send(("error", str(exc)))
    conn.close()


def exec_document(per_node: dict[str, dict[str, ExecProfile]]) -> dict[str, Any]:
    """A profile-shaped document holding only ``exec`` (``{node: {task: ExecProfile}}`` in)."""
    exec_: dict[str, dict[str, ExecProfile]] = {}
    for node, tasks in per_node.items():
        for task, ep in tasks.items():
            exec_.setdefault(task, {})[node] = ep
    return Profile(exec=exec_, generated_at=time.time()).to_dict()


def scale_exec(profile: Profile, ref: str, node: str, tasks: list[str] | None = None
               ) -> dict[str, ExecProfile]:
    """Estimate ``node``'s exec profile from ``ref``'s: seconds x speed[ref] / speed[node].

    Output and input bytes and the digest are copied.
    """
    for n in (ref, node):
        if n not in profile.nodes:
            raise JupiterError(f"scale: node {n!r} has no resource profile (speed) yet; wait "
                               "for DRUPE to profile it")
    s_ref, s_node = profile.nodes[ref].speed, profile.nodes[node].speed
    if s_ref <= 0 or s_node <= 0:
        raise JupiterError(f"scale: speeds must be > 0 (ref {s_ref}, {node} {s_node})")
    names = tasks if tasks is not None else sorted(profile.exec)
    out: dict[str, ExecProfile] = {}
    for t in names:
        ep = profile.exec.get(t, {}).get(ref)
        if ep is None:
            raise JupiterError(f"scale: task {t!r} has no execution profile on reference node "
                               f"{ref!r}; run `jupiter drupe exec --node {ref}` first")
        out[t] = ExecProfile(seconds=ep.seconds * s_ref / s_node, output_bytes=ep.output_bytes,
                             input_bytes=ep.input_bytes, digest=ep.digest,
                             warm_seconds=ep.warm_seconds * s_ref / s_node)
    return out


def check_schema(doc: dict[str, Any]) -> None:
    if doc.get("schema") != SCHEMA:
        raise JupiterError(f"expected a {SCHEMA} document, got schema {doc.get('schema')!r}")
