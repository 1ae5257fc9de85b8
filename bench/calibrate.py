"""Calibrate WAVE's dispatcher constants on deployments kept by ``bench/mapping.py --keep``.

Reads every kept deployment under the given folders (``profile.json``, ``mapping.json``,
``report.json``), fits ``task_overhead_s``, ``request_overhead_s``, ``byte_overhead_s`` and
``cold_per_colocated_task`` (jupiter.wave.calibrate: the constants whose relative errors
over every measured latency and throughput, and each deployment's tasks' CPU per item, have
the smallest root mean square) and prints, per deployment, the errors with the shipped
constants (the baseline, from roles/wave/defaults/main.yml) and with the fitted ones
(``cpu``: the root mean square error of its tasks' CPU per item). Set the fitted values as
``wave_task_overhead_s`` etc. (inventory group_vars) to use them.

Run: python bench/calibrate.py [--app NAME] KEPT_DIR [KEPT_DIR ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mapping import _num, cpu_model  # noqa: E402  (bench/mapping.py, beside this file)

from jupiter.app.loader import load_app  # noqa: E402
from jupiter.errors import JupiterError  # noqa: E402
from jupiter.wave.calibrate import (  # noqa: E402
    GRIDS,
    Errors,
    fit_overheads,
    kept_dirs,
    observation_from_dir,
    prediction_errors,
)

DEFAULTS = REPO / "roles" / "wave" / "defaults" / "main.yml"


def _pct(value: float | None) -> str:
    return _num(value, "+.0%", 6)


def format_errors(before: Sequence[Errors], after: Sequence[Errors]) -> str:
    width = max([len(e.label) for e in before] + [10])
    lines = [f"{'deployment':<{width}}  {'shipped':>20}  {'fitted':>20}",
             f"{'':<{width}}  {'lat':>6} {'tput':>6} {'cpu':>6}  {'lat':>6} {'tput':>6} "
             f"{'cpu':>6}"]
    for b, a in zip(before, after, strict=True):
        lines.append(f"{b.label:<{width}}  {_pct(b.latency)} {_pct(b.throughput)} "
                     f"{_num(b.task_cpu_rms, '.0%', 6)}  {_pct(a.latency)} "
                     f"{_pct(a.throughput)} {_num(a.task_cpu_rms, '.0%', 6)}")
    return "\n".join(lines)


def _constants(constants: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in constants.items())


def _summary(errors: Sequence[Errors], bound: float = 0.15) -> str:
    values = [abs(v) for e in errors for v in e.values()]
    within = sum(v <= bound for v in values)
    text = f"worst {max(values):.1%}, {within}/{len(values)} figures within {bound:.0%}"
    cpu = [e.task_cpu_rms for e in errors if e.task_cpu_rms is not None]
    if cpu:
        text += f"; tasks' CPU per item rms {max(cpu):.1%} at worst ({len(cpu)} deployments)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kept", nargs="+", help="folders holding kept deployments")
    parser.add_argument("--app", default="network_monitoring_app",
                        help="the app under task_specific_files/ the deployments ran")
    args = parser.parse_args(argv)
    try:
        app = load_app(REPO / "task_specific_files" / args.app)
        folders = kept_dirs(args.kept)
        observations = [observation_from_dir(f, app, label=os.path.relpath(f)) for f in folders]
        if not observations:
            print(f"no kept deployment (report.json) under {', '.join(args.kept)}",
                  file=sys.stderr)
            return 2
        defaults = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8"))
        shipped = {k: float(defaults.get(f"wave_{k}", 0.0)) for k in GRIDS}
        started = time.perf_counter()
        fit = fit_overheads(observations)
        took = time.perf_counter() - started
    except JupiterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    before = prediction_errors(observations, shipped)
    print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores, "
          f"python {platform.python_version()}; {len(observations)} deployments")
    print(format_errors(before, fit.errors))
    print(f"shipped: {_constants(shipped)}: {_summary(before)}")
    print(f"fitted:  {_constants(fit.constants)}: {_summary(fit.errors)} (rms {fit.rms:.1%}; "
          f"fit took {took:.1f} s)")
    print("use them in the inventory's group_vars: "
          + ", ".join(f"wave_{k}: {v:.3g}" for k, v in fit.constants.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
