"""Fit the dispatcher's own CPU (``task_overhead_s`` and the like) to measured runs.

WAVE's predictions hold constants that no profile measures: CIRCE's CPU per task run, per
request and per byte a run receives or sends (docs/scheduling.md, "The dispatcher's
work"). This module fits them to deployments that were measured. An :class:`Observation` is what one
deployment used (app, profile, the ``{task: node}`` mapping and its options) and what its
report measured (the single-item latency, the stream throughput, and each task's CPU per
item in the stream). :func:`fit_overheads` returns the constants that make the root mean
square of the relative errors smallest (ties: the smaller worst error of the figures): the
best point of a grid, then a Nelder-Mead search from it. Each measured latency and
throughput is one term, and so is each deployment's root mean square error of its tasks'
CPU per item: the figures alone cannot tell a cost per request from a cost per byte when a
few tasks carry most of both, and a split that fits them may put too little on the many
small tasks a crowded node holds; the tasks' own CPU tells them apart.

:func:`observation_from_dir` reads a deployment kept by ``bench/mapping.py --keep``
(``mapping-profile.json``, ``mapping.json``, ``report.json``); ``bench/calibrate.py`` is the
command line. Everything else here is pure.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.app.model import App
from jupiter.errors import InvalidInput, Problem
from jupiter.profile import Profile
from jupiter.wave import api, policies
from jupiter.wave.simulate import evaluate

# The constants fitted, each with its starting grid; the grid's steps are the size of the
# first simplex of the Nelder-Mead search that follows, ITERATIONS steps long.
GRIDS: dict[str, tuple[float, ...]] = {
    "task_overhead_s": tuple(i * 0.001 for i in range(5)),  # 0 .. 4 ms per run
    "request_overhead_s": tuple(i * 0.0005 for i in range(4)),  # 0 .. 1.5 ms per request
    "byte_overhead_s": tuple(i * 1e-8 for i in range(5)),  # 0 .. 40 ns per byte
    "cold_per_colocated_task": (0.0, 0.05, 0.1, 0.2),  # of a task's cold extra per neighbour
    "crowding_per_colocated_task": (0.0, 0.02, 0.04),  # of a task's CPU per neighbour
}
ITERATIONS = 120
Constants = dict[str, float]


@dataclass(frozen=True)
class Observation:
    """One measured deployment: its inputs to WAVE and the figures its report measured."""

    label: str
    app: App
    profile: Profile
    nodes: tuple[str, ...]
    mapping: MappingABC[str, str]
    options: MappingABC[str, Any]
    latency_s: float | None  # single-item latency, measured
    throughput_per_s: float | None  # stream throughput, measured
    # CPU seconds per item of each task in the stream, measured (report: cpu_per_item_s)
    task_cpu_s: MappingABC[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Errors:
    """Relative errors of one observation's predictions, (predicted - measured) / measured."""

    label: str
    latency: float | None
    throughput: float | None
    task_cpu: MappingABC[str, float] = field(default_factory=dict)  # per task measured

    def values(self) -> list[float]:
        """The figures' errors (latency, throughput), those measured."""
        return [e for e in (self.latency, self.throughput) if e is not None]

    @property
    def task_cpu_rms(self) -> float | None:
        """Root mean square of the tasks' CPU errors, None when none was measured."""
        if not self.task_cpu:
            return None
        return math.sqrt(sum(e * e for e in self.task_cpu.values()) / len(self.task_cpu))


@dataclass(frozen=True)
class Fit:
    constants: Constants  # {option: value}, the options of GRIDS
    worst: float  # the largest |relative error|
    rms: float  # their root mean square, what the fit makes smallest
    errors: tuple[Errors, ...]


def _relative(predicted: float, measured: float | None) -> float | None:
    if measured is None or measured <= 0 or not math.isfinite(predicted):
        return None
    return predicted / measured - 1.0


def prediction_errors(observations: Sequence[Observation],
                      constants: MappingABC[str, float]) -> list[Errors]:
    """Every observation's latency and throughput error with these constants (options of
    the cost model, e.g. ``task_overhead_s``) in place of the ones it was deployed with."""
    out: list[Errors] = []
    for ob in observations:
        cm = api.cost_model_for(ob.app, ob.profile, ob.nodes, {**ob.options, **constants})
        pred = evaluate(cm, policies.static(cm, ob.mapping, source=ob.label))
        throughput = 1.0 / pred.period_s if pred.period_s > 0 else math.inf
        cpu = pred.to_dict()["task_cpu_s"]
        task_cpu = {t: err for t, seconds in ob.task_cpu_s.items()
                    if t in cpu and (err := _relative(cpu[t], seconds)) is not None}
        out.append(Errors(ob.label, _relative(pred.latency_s, ob.latency_s),
                          _relative(throughput, ob.throughput_per_s), task_cpu))
    return out


def _score(errors: Sequence[Errors]) -> tuple[float, float]:
    """(worst figure, RMS of every term) of the relative errors: the figures, and one term
    per deployment for its tasks' CPU; infinite when no prediction was finite."""
    figures = [abs(e) for err in errors for e in err.values()]
    terms = figures + [rms for err in errors if (rms := err.task_cpu_rms) is not None]
    if not figures:
        return math.inf, math.inf
    return max(figures), math.sqrt(sum(v * v for v in terms) / len(terms))


def _key(fit: Fit) -> tuple[float, float]:
    return fit.rms, fit.worst


Point = tuple[float, ...]


def _nelder_mead(at: Callable[[Point], Fit], start: Point, steps: Point,
                 iterations: int) -> tuple[Point, Fit]:
    """Nelder-Mead from ``start``, the first simplex one step away on each axis; ``at``
    scores a point (the caller remembers the points it scored)."""
    n = len(start)
    simplex = [start] + [tuple(x + (steps[i] if i == k else 0.0) for i, x in enumerate(start))
                         for k in range(n)]
    for _ in range(iterations):
        simplex.sort(key=lambda p: _key(at(p)))
        best, worst = simplex[0], simplex[-1]
        centroid = tuple(sum(p[i] for p in simplex[:-1]) / n for i in range(n))

        def toward(f: float, c: Point = centroid, w: Point = worst) -> Point:
            return tuple(ci + f * (wi - ci) for ci, wi in zip(c, w, strict=True))

        reflected = toward(-1.0)
        if _key(at(reflected)) < _key(at(best)):
            expanded = toward(-2.0)
            simplex[-1] = min(expanded, reflected, key=lambda p: _key(at(p)))
        elif _key(at(reflected)) < _key(at(simplex[-2])):
            simplex[-1] = reflected
        else:
            outside = _key(at(reflected)) < _key(at(worst))
            contracted = toward(-0.5 if outside else 0.5)
            if _key(at(contracted)) < min(_key(at(worst)), _key(at(reflected))):
                simplex[-1] = contracted
            else:  # shrink toward the best
                simplex = [best] + [tuple((b + x) / 2 for b, x in zip(best, p, strict=True))
                                    for p in simplex[1:]]
    best = min(simplex, key=lambda p: _key(at(p)))
    return best, at(best)


def fit_overheads(observations: Sequence[Observation], *,
                  grids: MappingABC[str, Sequence[float]] = GRIDS,
                  iterations: int = ITERATIONS) -> Fit:
    """The constants (the options named in ``grids``) whose relative errors over every
    measured latency and throughput have the smallest root mean square (ties: the smaller
    worst error): the best point of the grids, then a Nelder-Mead search from it (run
    twice: once more from where the first ended, with the first simplex's size). A constant
    with a one-value grid is held there."""
    measured = [ob for ob in observations
                if ob.latency_s is not None or ob.throughput_per_s is not None]
    if not measured:
        raise InvalidInput([Problem("observations", "no measured latency or throughput to fit "
                                    "to; keep deployments that ran items "
                                    "(bench/mapping.py --keep DIR)")], "calibration")
    names = list(grids)
    free = [k for k in names if len(grids[k]) > 1]
    fixed = {k: float(grids[k][0]) for k in names if k not in free}

    def constants(point: Point) -> Constants:
        return {**fixed, **dict(zip(free, point, strict=True))}

    scored: dict[Point, Fit] = {}  # every point is scored once: grid and both searches

    def score(point: Point) -> Fit:
        if point not in scored:
            if any(x < 0 for x in point):
                scored[point] = Fit(constants(point), math.inf, math.inf, ())
            else:
                errors = prediction_errors(measured, constants(point))
                worst, rms = _score(errors)
                scored[point] = Fit(constants(point), worst, rms, tuple(errors))
        return scored[point]

    starts = [tuple(p) for p in itertools.product(*(grids[k] for k in free))]
    best_point = min(starts, key=lambda p: _key(score(p)))
    if not free:
        return score(best_point)
    steps = tuple((max(grids[k]) - min(grids[k])) / (len(grids[k]) - 1) for k in free)
    for _ in range(2):
        best_point, best = _nelder_mead(score, best_point, steps, iterations)
    return best


# ---- the edge: a deployment kept on disk --------------------------------------------------
MAPPING_PROFILE = "mapping-profile.json"  # the profile a mapping was computed from


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput([Problem(str(path), "missing; a kept deployment holds "
                                    "mapping-profile.json (or profile.json), mapping.json and "
                                    "report.json (bench/mapping.py --keep)")],
                           "kept deployment") from None
    except (OSError, ValueError) as err:
        raise InvalidInput([Problem(str(path), f"unreadable JSON: {err}")],
                           "kept deployment") from None


def _measured(measured: dict[str, Any], key: str, path: Path,
              where: str = "measured") -> float | None:
    value = measured.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInput([Problem(str(path), f"must be a number > 0, got {value!r}",
                                    field=f"{where}.{key}")], "kept deployment")
    return float(value)


def observation_from_dir(folder: str | Path, app: App, *, label: str | None = None) -> Observation:
    """The observation kept in ``folder`` (mapping-profile.json, mapping.json, report.json).

    The profile is the one the mapping was computed from: ``mapping-profile.json`` (the wave
    role stores it beside the mapping), else ``profile.json`` unless it was published after
    the mapping (its ``generated_at`` is not the mapping's ``created_at``). DRUPE keeps
    publishing while the items run, and a profile measured on busy nodes would predict
    another deployment."""
    folder = Path(folder)
    mapping = _read_json(folder / "mapping.json")
    report = _read_json(folder / "report.json")
    profile_file = folder / MAPPING_PROFILE
    if not profile_file.is_file():
        profile_file = folder / "profile.json"
    raw_profile = _read_json(profile_file)
    profile = api.parse_profile(raw_profile, source=str(profile_file))
    created = mapping.get("created_at") if isinstance(mapping, dict) else None
    if (profile_file.name != MAPPING_PROFILE and created is not None
            and created != raw_profile.get("generated_at")):
        raise InvalidInput([Problem(
            str(profile_file), f"published at {raw_profile.get('generated_at')!r}, not the "
            f"profile the mapping of {created!r} was computed from (DRUPE published again while "
            f"the items ran); keep {MAPPING_PROFILE} with the deployment, or leave it out",
            field="generated_at")], "kept deployment")
    mapping_file = str(folder / "mapping.json")
    if not isinstance(mapping, dict) or not isinstance(mapping.get("mapping"), dict):
        raise InvalidInput([Problem(mapping_file, "no 'mapping' object {task: node}",
                                    field="mapping")], "kept deployment")
    nodes = mapping.get("nodes") or list(profile.nodes)
    options = mapping.get("options") or {}
    if not isinstance(nodes, list) or not isinstance(options, dict):
        raise InvalidInput([Problem(mapping_file, "'nodes' must be a list and 'options' an "
                                    "object", field="nodes")], "kept deployment")
    measured = report.get("measured") if isinstance(report, dict) else None
    if not isinstance(measured, dict):
        raise InvalidInput([Problem(str(folder / "report.json"), "no 'measured' object: not "
                                    "a report.json of deploy.yml", field="measured")],
                           "kept deployment")
    if report.get("app") not in (None, app.name):
        raise InvalidInput([Problem(str(folder / "report.json"),
                                    f"measured app {report.get('app')!r}, not {app.name!r}",
                                    field="app")], "kept deployment")
    return Observation(
        label=label or str(folder),
        app=app,
        profile=profile,
        nodes=tuple(str(n) for n in nodes),
        mapping=dict(mapping["mapping"]),
        options=options,
        latency_s=_measured(measured, "single_item_latency_s", folder / "report.json"),
        throughput_per_s=_measured(measured, "throughput_per_s", folder / "report.json"),
        task_cpu_s=_task_cpu(report, folder / "report.json"),
    )


def _task_cpu(report: dict[str, Any], path: Path) -> dict[str, float]:
    """{task: CPU seconds per item} the report measured (reports before it: none)."""
    rows = report.get("tasks") or []
    if not isinstance(rows, list):
        raise InvalidInput([Problem(str(path), "must be a list of task rows", field="tasks")],
                           "kept deployment")
    out: dict[str, float] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("task"), str):
            raise InvalidInput([Problem(str(path), "must be an object with a 'task' name",
                                        field=f"tasks[{i}]")], "kept deployment")
        seconds = _measured(row, "cpu_per_item_s", path, f"tasks[{i}]")
        if seconds is not None:
            out[row["task"]] = seconds
    return out


def kept_dirs(roots: Sequence[str | Path]) -> list[Path]:
    """Every folder under ``roots`` (themselves included) that holds a report.json."""
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise InvalidInput([Problem(str(root), "not a folder")], "kept deployment")
        found.extend(sorted(p.parent for p in root.rglob("report.json")))
    return list(dict.fromkeys(found))


__all__ = ["Errors", "Fit", "Observation", "fit_overheads", "kept_dirs",
           "observation_from_dir", "prediction_errors"]
