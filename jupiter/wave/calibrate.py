"""Fit the dispatcher's own CPU (``task_overhead_s``, ``byte_overhead_s``) to measured runs.

WAVE's predictions hold two constants that no profile measures: CIRCE's CPU per task run
and per byte a run receives or sends (docs/scheduling.md, "The dispatcher's work"). This
module fits them to deployments that were measured. An :class:`Observation` is what one
deployment used (app, profile, the ``{task: node}`` mapping and its options) and what its
report measured (the single-item latency, the stream throughput). :func:`fit_overheads`
returns the pair that makes the largest relative error over every measured figure, latency
and throughput alike, smallest (ties: the smaller root mean square): the best point of a
grid, then a Nelder-Mead search from it.

:func:`observation_from_dir` reads a deployment kept by ``bench/mapping.py --keep``
(``profile.json``, ``mapping.json``, ``report.json``); ``bench/calibrate.py`` is the
command line. Everything else here is pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupiter.app.model import App
from jupiter.errors import InvalidInput, Problem
from jupiter.profile import Profile
from jupiter.wave import api, policies
from jupiter.wave.simulate import evaluate

# The starting grid (seconds per run, seconds per byte); its steps are the size of the first
# simplex of the Nelder-Mead search that follows, ITERATIONS steps long.
TASK_GRID = tuple(i * 0.0005 for i in range(13))  # 0 .. 6 ms
BYTE_GRID = tuple(i * 5e-9 for i in range(11))  # 0 .. 50 ns
ITERATIONS = 60


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


@dataclass(frozen=True)
class Errors:
    """Relative errors of one observation's predictions, (predicted - measured) / measured."""

    label: str
    latency: float | None
    throughput: float | None

    def values(self) -> list[float]:
        return [e for e in (self.latency, self.throughput) if e is not None]


@dataclass(frozen=True)
class Fit:
    task_overhead_s: float
    byte_overhead_s: float
    worst: float  # the largest |relative error|
    rms: float
    errors: tuple[Errors, ...]


def _relative(predicted: float, measured: float | None) -> float | None:
    if measured is None or measured <= 0 or not math.isfinite(predicted):
        return None
    return predicted / measured - 1.0


def prediction_errors(observations: Sequence[Observation], task_overhead_s: float,
                      byte_overhead_s: float) -> list[Errors]:
    """Every observation's latency and throughput error with these two constants."""
    out: list[Errors] = []
    for ob in observations:
        options = {**ob.options, "task_overhead_s": task_overhead_s,
                   "byte_overhead_s": byte_overhead_s}
        cm = api.cost_model_for(ob.app, ob.profile, ob.nodes, options)
        pred = evaluate(cm, policies.static(cm, ob.mapping, source=ob.label))
        throughput = 1.0 / pred.period_s if pred.period_s > 0 else math.inf
        out.append(Errors(ob.label, _relative(pred.latency_s, ob.latency_s),
                          _relative(throughput, ob.throughput_per_s)))
    return out


def _score(errors: Sequence[Errors]) -> tuple[float, float]:
    values = [abs(e) for err in errors for e in err.values()]
    return max(values), math.sqrt(sum(v * v for v in values) / len(values))


def _fit_at(observations: Sequence[Observation], t: float, b: float) -> Fit:
    errors = prediction_errors(observations, t, b)
    worst, rms = _score(errors)
    return Fit(t, b, worst, rms, tuple(errors))


def _key(fit: Fit) -> tuple[float, float]:
    return fit.worst, fit.rms


def _nelder_mead(score: Callable[[float, float], Fit], start: Fit, steps: tuple[float, float],
                 iterations: int) -> Fit:
    """Nelder-Mead over (task_overhead_s, byte_overhead_s) from ``start`` with a first
    simplex one step away on each axis (negative constants score as infinitely bad)."""
    simplex = [start, score(start.task_overhead_s + steps[0], start.byte_overhead_s),
               score(start.task_overhead_s, start.byte_overhead_s + steps[1])]
    for _ in range(iterations):
        simplex.sort(key=_key)
        best, mid, worst = simplex
        cx = (best.task_overhead_s + mid.task_overhead_s) / 2
        cy = (best.byte_overhead_s + mid.byte_overhead_s) / 2

        def toward(f: float, cx: float = cx, cy: float = cy, w: Fit = worst) -> Fit:
            return score(cx + f * (w.task_overhead_s - cx), cy + f * (w.byte_overhead_s - cy))

        reflected = toward(-1.0)
        if _key(reflected) < _key(best):
            expanded = toward(-2.0)
            simplex[2] = min(expanded, reflected, key=_key)
        elif _key(reflected) < _key(mid):
            simplex[2] = reflected
        else:
            contracted = toward(0.5) if _key(reflected) >= _key(worst) else toward(-0.5)
            if _key(contracted) < min(_key(worst), _key(reflected)):
                simplex[2] = contracted
            else:  # shrink toward the best
                simplex = [best] + [score((best.task_overhead_s + f.task_overhead_s) / 2,
                                          (best.byte_overhead_s + f.byte_overhead_s) / 2)
                                    for f in (mid, worst)]
    return min(simplex, key=_key)


def fit_overheads(observations: Sequence[Observation], *,
                  task_grid: Sequence[float] = TASK_GRID,
                  byte_grid: Sequence[float] = BYTE_GRID,
                  iterations: int = ITERATIONS) -> Fit:
    """The (task_overhead_s, byte_overhead_s) whose worst relative error over every
    measured latency and throughput is smallest (ties: the smaller RMS): the best point of
    the grid, then a Nelder-Mead search from it (run twice: once more from where the first
    ended, with the first simplex's size)."""
    measured = [ob for ob in observations
                if ob.latency_s is not None or ob.throughput_per_s is not None]
    if not measured:
        raise InvalidInput([Problem("observations", "no measured latency or throughput to fit "
                                    "to; keep deployments that ran items "
                                    "(bench/mapping.py --keep DIR)")], "calibration")

    def score(t: float, b: float) -> Fit:
        if t < 0 or b < 0:
            return Fit(t, b, math.inf, math.inf, ())
        return _fit_at(measured, t, b)

    best = min((score(t, b) for t in task_grid for b in byte_grid), key=_key)
    steps = ((max(task_grid) - min(task_grid)) / max(1, len(task_grid) - 1),
             (max(byte_grid) - min(byte_grid)) / max(1, len(byte_grid) - 1))
    for _ in range(2):
        best = _nelder_mead(score, best, steps, iterations)
    return best


# ---- the edge: a deployment kept on disk --------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput([Problem(str(path), "missing; a kept deployment holds profile.json, "
                                    "mapping.json and report.json (bench/mapping.py --keep)")],
                           "kept deployment") from None
    except (OSError, ValueError) as err:
        raise InvalidInput([Problem(str(path), f"unreadable JSON: {err}")],
                           "kept deployment") from None


def _measured(report: Any, key: str, path: Path) -> float | None:
    measured = report.get("measured") if isinstance(report, dict) else None
    if not isinstance(measured, dict):
        raise InvalidInput([Problem(str(path), "no 'measured' object: not a report.json of "
                                    "deploy.yml", field="measured")], "kept deployment")
    value = measured.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidInput([Problem(str(path), f"must be a number > 0, got {value!r}",
                                    field=f"measured.{key}")], "kept deployment")
    return float(value)


def observation_from_dir(folder: str | Path, app: App, *, label: str | None = None) -> Observation:
    """The observation kept in ``folder`` (profile.json, mapping.json, report.json)."""
    folder = Path(folder)
    profile = api.parse_profile(_read_json(folder / "profile.json"),
                                source=str(folder / "profile.json"))
    mapping = _read_json(folder / "mapping.json")
    report = _read_json(folder / "report.json")
    mapping_file = str(folder / "mapping.json")
    if not isinstance(mapping, dict) or not isinstance(mapping.get("mapping"), dict):
        raise InvalidInput([Problem(mapping_file, "no 'mapping' object {task: node}",
                                    field="mapping")], "kept deployment")
    nodes = mapping.get("nodes") or list(profile.nodes)
    options = mapping.get("options") or {}
    if not isinstance(nodes, list) or not isinstance(options, dict):
        raise InvalidInput([Problem(mapping_file, "'nodes' must be a list and 'options' an "
                                    "object", field="nodes")], "kept deployment")
    if report.get("app") not in (None, app.name):
        raise InvalidInput([Problem(str(folder / "report.json"),
                                    f"measured app {report.get('app')!r}, not {app.name!r}",
                                    field="app")], "kept deployment")
    options = {k: v for k, v in options.items() if k != "mapping"}
    return Observation(
        label=label or str(folder),
        app=app,
        profile=profile,
        nodes=tuple(str(n) for n in nodes),
        mapping=dict(mapping["mapping"]),
        options=options,
        latency_s=_measured(report, "single_item_latency_s", folder / "report.json"),
        throughput_per_s=_measured(report, "throughput_per_s", folder / "report.json"),
    )


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
