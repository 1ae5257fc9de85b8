"""The reference run: the whole DAG in one process, no network, same runners.

Each item flows through the tasks in topological order with the same join order, the same
:func:`jupiter.circe.runner.execute` (retries included) and the same routing as the task
servers; whatever the sinks send home is written to ``out_dir/<item>/<file>``, exactly where
and how home stores results. A deployment's ``state_dir/results`` must be byte-equal to it
(for deterministic tasks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jupiter.app.model import HOME, App
from jupiter.circe.join import Join, JoinError, RoutingError, input_names, route_outputs
from jupiter.circe.runner import TaskCode, execute, load_task_code
from jupiter.circe.spool import durable_write
from jupiter.circe.transport import derive_item_id
from jupiter.errors import InvalidInput, JupiterError, Problem


@dataclass
class ReferenceReport:
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # item -> first error
    results: dict[str, list[str]] = field(default_factory=dict)  # item -> result files


def items_from_dir(input_dir: str | Path) -> list[tuple[str, str, bytes]]:
    """(item id, file name, content) of every regular file in ``input_dir``, by name."""
    folder = Path(input_dir)
    if not folder.is_dir():
        raise JupiterError(f"input folder {folder} does not exist")
    items: list[tuple[str, str, bytes]] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            item = derive_item_id(path.name)
        except ValueError as exc:
            problems.append(Problem(str(path), str(exc)))
            continue
        if item in seen:
            problems.append(Problem(str(path), f"item id {item!r} also derived from "
                                    f"{seen[item]!r}; ids must be unique"))
            continue
        seen[item] = path.name
        items.append((item, path.name, path.read_bytes()))
    if problems:
        raise InvalidInput(problems, what="input folder")
    return items


def reference_run(app: App, app_dir: str | Path, items: Iterable[tuple[str, str, bytes]],
                  out_dir: str | Path, *, retries: int = 2,
                  work_root: str | Path | None = None) -> ReferenceReport:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".tmp"
    tmp.mkdir(exist_ok=True)
    work = Path(work_root) if work_root else out / ".work"
    codes: dict[str, TaskCode] = {t.name: load_task_code(t, app_dir, work) for t in app.tasks}
    key = {t.name: t.key for t in app.tasks}
    report = ReferenceReport()
    try:
        for item, filename, data in items:
            _run_item(app, codes, key, item, filename, data, out, tmp, retries, report)
    finally:
        for d in (tmp, work):
            if d.exists():
                for p in d.iterdir():
                    if p.is_file():
                        p.unlink()
                if not any(d.iterdir()):
                    d.rmdir()
    return report


def _run_item(app: App, codes: dict[str, TaskCode], key: dict[str, str], item: str,
              filename: str, data: bytes, out: Path, tmp: Path, retries: int,
              report: ReferenceReport) -> None:
    # deliveries[task name] = [(parent key, file name or None, content, error)]
    deliveries: dict[str, list[tuple[str, str | None, bytes, str | None]]] = {
        name: [] for name in app.names
    }
    for name in app.ingress:
        deliveries[name].append((HOME, filename, data, None))
    name_of = {v: k for k, v in key.items()}
    results: dict[str, tuple[str, bytes]] = {}
    first_error: str | None = None
    for name in app.topological_order():
        task = app.task(name)
        parents = tuple(key[p] for p in app.parents(name)) or (HOME,)
        join = Join(item, parents)
        counts: dict[str, int] = {}
        for parent, fname, _, _ in deliveries[name]:
            counts[parent] = counts.get(parent, 0) + (fname is not None)
        contents: dict[tuple[str, str], bytes] = {}
        for parent, fname, content, error in deliveries[name]:
            join.add(parent, fname, counts[parent], error)
            if fname is not None:
                contents[(parent, fname)] = content
        if not join.complete:
            raise JupiterError(f"reference run: item {item!r} at {name!r} is missing inputs "
                               f"from {', '.join(join.missing())}")
        children = [HOME if c == HOME else key[c] for c in task.children]
        carried: str | None = None
        routes: dict[str, list[str]] = {}
        outputs: dict[str, bytes] = {}
        if join.error is not None:
            carried = join.error
        elif not join.inputs():  # every parent sent nothing: the task does not run
            routes = {c: [] for c in children}
        else:
            try:
                names = input_names(join.inputs())
            except JoinError as exc:
                names, carried = [], f"{name}: {exc}"
            if carried is None:
                inputs = [(n, contents[pair]) for n, pair in zip(names, join.inputs(),
                                                                 strict=True)]
                outcome = execute(codes[name], item, inputs, retries)
                if outcome.outputs is None:
                    carried = f"{name}: {outcome.error}"
                else:
                    try:
                        routes = route_outputs(outcome.outputs, children, task.mode)
                        outputs = outcome.outputs
                    except RoutingError as exc:
                        carried = f"{name}: {exc}"
        if carried is not None:
            first_error = first_error or carried
            routes = {c: [] for c in children}
            outputs = {}
        for child, fnames in routes.items():
            child_name = name_of.get(child, HOME)
            if child == HOME:
                for f in fnames:
                    if f in results and results[f][0] != key[name]:
                        first_error = first_error or (
                            f"result {f!r} from both {results[f][0]!r} and {key[name]!r}")
                        continue
                    results[f] = (key[name], outputs[f])
                continue
            if not fnames:
                deliveries[child_name].append((key[name], None, b"", carried))
            for f in fnames:
                deliveries[child_name].append((key[name], f, outputs[f], None))
    if results:
        folder = out / item
        folder.mkdir(parents=True, exist_ok=True)
        for f, (_, content) in results.items():
            durable_write(tmp, folder / f, [content], fsync=False)
        report.results[item] = sorted(results)
    if first_error is not None:
        report.failed[item] = first_error
    else:
        report.completed.append(item)


def report_json(report: ReferenceReport) -> str:
    return json.dumps({"completed": report.completed, "failed": report.failed,
                       "results": report.results}, indent=2)
