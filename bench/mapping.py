"""Benchmark: an app on the shaped testbed under each mapping, through deploy.yml.

For each algorithm (stream, heft, spread, random) a deployment of the default inventory
(6 emulated nodes, htb-shaped links, cgroup CPU shares) runs the whole flow (profile,
schedule, CIRCE, the report role: ``report_single_items`` items one at a time, the first a
warm-up, then the rest as a stream) and is torn down. The inputs are ``--items`` files made
once by the app's own ``generate_input.py`` (fixed seed), passed as ``report_input_dir``; an
app without a generator is fed its sample input.

Prints, per mapping, the measured single-item latency (median of the warm single items) and
stream throughput, the latency against `spread` (the network-blind baseline measured in the
same run), predicted vs measured, and how many single and stream items were measured. With
``--repeat K`` the whole set runs K times: one table per run, then the median per mapping.
Needs root (network namespaces).

Run: python bench/mapping.py [--app NAME] [--items N] [--packets P] [--only ALGO[,ALGO]]
     [--repeat K] [--single N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ALGORITHMS = ("stream", "heft", "spread", "random")
BASELINE = "spread"
INPUT_SEED = 14635
INPUT_PACKETS = 1000
SINGLE_ITEMS = 8  # fed one at a time: a warm-up, then 7 measured (the median is reported)
# A stream of ~400 items runs 10-40 s here: its completion rate in quarters of the stream
# stays within a few % (30.0, 31.1, 32.1, 30.7/s for spread), where 92 items (3-9 s) gave
# quarters 23-58/s and runs of one mapping 27-33/s.
ITEMS = 400

Metrics = dict[str, Any]  # one mapping's figures from one report.json (see metrics())
Results = dict[str, Metrics]  # algorithm -> metrics, one run of the set


# ---- pure parts: figures, medians, tables ---------------------------------------------------
def metrics(report: dict[str, Any]) -> Metrics:
    """The figures the bench compares, from one deployment's report.json."""
    p, m = report["predicted"], report["measured"]
    return {
        "pred_latency_s": p.get("latency_s"),
        "latency_s": m.get("single_item_latency_s"),
        "pred_throughput_per_s": p.get("throughput_per_s"),
        "throughput_per_s": m.get("throughput_per_s"),
        "single_items": m.get("single_item_runs", 0),
        "stream_items": m.get("stream_items", 0),
        "bottleneck": p.get("bottleneck"),
    }


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def median_of_runs(runs: Sequence[Results]) -> Results:
    """Per algorithm, the median of every figure over the runs (the first run's bottleneck)."""
    out: Results = {}
    for algorithm in dict.fromkeys(a for run in runs for a in run):
        per_run = [run[algorithm] for run in runs if algorithm in run]
        out[algorithm] = {key: _median([r[key] for r in per_run]) for key in per_run[0]
                          if key != "bottleneck"}
        out[algorithm]["bottleneck"] = per_run[0]["bottleneck"]
    return out


def _error(predicted: float | None, measured: float | None) -> float | None:
    """(predicted - measured) / measured, None when either is missing."""
    if predicted is None or not measured:
        return None
    return (predicted - measured) / measured


def _gain(latency: float | None, base: float | None) -> float | None:
    """Measured single-item latency reduction against the baseline's."""
    if latency is None or not base:
        return None
    return 1 - latency / base


def _num(value: float | None, spec: str, width: int) -> str:
    text = "-" if value is None or math.isnan(value) else format(value, spec)
    return text.rjust(width)


def format_table(results: Results) -> str:
    """One line per mapping: predicted vs measured latency and throughput, items measured."""
    base = results[BASELINE]["latency_s"] if BASELINE in results else None
    lines = [f"{'mapping':8} {'pred lat s':>10} {'meas lat s':>10} {'err':>7} {'vs spread':>9} "
             f"{'pred tput/s':>11} {'meas tput/s':>11} {'err':>7} {'single':>6} {'stream':>6}"
             "  bottleneck (predicted)"]
    for algorithm, r in results.items():
        lines.append(
            f"{algorithm:8} {_num(r['pred_latency_s'], '.4f', 10)} "
            f"{_num(r['latency_s'], '.4f', 10)} "
            f"{_num(_error(r['pred_latency_s'], r['latency_s']), '+.0%', 7)} "
            f"{_num(_gain(r['latency_s'], base), '+.0%', 9)} "
            f"{_num(r['pred_throughput_per_s'], '.2f', 11)} "
            f"{_num(r['throughput_per_s'], '.2f', 11)} "
            f"{_num(_error(r['pred_throughput_per_s'], r['throughput_per_s']), '+.0%', 7)} "
            f"{_num(r['single_items'], 'g', 6)} {_num(r['stream_items'], 'g', 6)}"
            f"  {r['bottleneck']}")
    return "\n".join(lines)


LEGEND = """\
meas lat: median latency of the warm single items (the warm-up left out)
vs spread: its reduction against the spread mapping of the same run (goal >= 30%)
err: (predicted - measured) / measured (goal within 15%)
single, stream: items measured one at a time and as the stream
"""


# ---- the runs -------------------------------------------------------------------------------
def parse_only(text: str) -> tuple[str, ...]:
    """ALGO[,ALGO]: a subset of ALGORITHMS, in the order given."""
    chosen = tuple(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    unknown = [a for a in chosen if a not in ALGORITHMS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"expected ALGO[,ALGO] from {', '.join(ALGORITHMS)}, got {text!r}")
    return chosen


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="network_monitoring_app",
                        help="app folder under task_specific_files/ (default: %(default)s)")
    parser.add_argument("--items", type=_positive_int, default=ITEMS, metavar="N",
                        help="inputs generated with the app's generate_input.py "
                        "(default: %(default)s)")
    parser.add_argument("--packets", type=_positive_int, default=INPUT_PACKETS, metavar="P",
                        help="packets per generated input (the sample input has 1000: about "
                        "58 KB) (default: %(default)s)")
    parser.add_argument("--only", type=parse_only, default=ALGORITHMS, metavar="ALGO[,ALGO]",
                        help=f"run a subset of {','.join(ALGORITHMS)} (default: all)")
    parser.add_argument("--repeat", type=_positive_int, default=1, metavar="K",
                        help="run the whole set K times, then print the median per mapping "
                        "(default: %(default)s)")
    parser.add_argument("--single", type=_positive_int, default=SINGLE_ITEMS, metavar="N",
                        help="items fed one at a time before the stream, the first a warm-up "
                        "(report_single_items; default: %(default)s)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="copy each deployment's profile, mapping, report and CIRCE tables "
                        "to DIR/run<K>/<algorithm>/ before its teardown")
    return parser.parse_args(argv)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def generate_inputs(app: str, items: int, packets: int, out: Path) -> Path | None:
    """``items`` deterministic inputs in ``out`` from the app's generator; None without one."""
    generator = REPO / "task_specific_files" / app / "generate_input.py"
    if not generator.is_file():
        return None
    subprocess.run([sys.executable, str(generator), "--out", str(out), "--files", str(items),
                    "--packets", str(packets), "--seed", str(INPUT_SEED)],
                   check=True, capture_output=True, text=True)
    return out


def playbook(name: str, extra: dict[str, str]) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH=f"{BIN}:{REPO / '.tools' / 'bin'}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(REPO / name), "-e",
                           json.dumps(extra)], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-6000:], proc.stderr[-2000:], sep="\n")
        raise SystemExit(f"{name} failed for {extra}")


KEPT = ("profile.json", "mapping-profile.json", "mapping.json", "report.json",
        "circe/runtime.csv", "circe/items.csv")


def deploy_and_measure(algorithm: str, app: str, state_root: str,
                       input_dir: Path | None, keep: Path | None = None,
                       single: int = 8) -> Metrics:
    """deploy.yml with one mapping algorithm, its report.json, then teardown.yml (purge);
    with ``keep``, the deployment's records are copied to ``keep/<algorithm>/`` first."""
    extra = {"jupiter_deployment": f"bm{algorithm[:6]}", "jupiter_app": app,
             "jupiter_scheduler": algorithm, "jupiter_state_root": state_root,
             "testbed_subnet": f"10.81.{ALGORITHMS.index(algorithm) + 1}.0/24",
             "report_single_items": str(single)}
    if input_dir is not None:  # fed these, and profiled with the first of them
        extra["report_input_dir"] = str(input_dir)
        extra["drupe_exec_input"] = str(min(input_dir.iterdir()))
    try:
        playbook("deploy.yml", extra)
        state = Path(state_root, extra["jupiter_deployment"])
        report = json.loads((state / "report.json").read_text())
        if keep is not None:
            for name in KEPT:
                if (state / name).is_file():
                    target = keep / algorithm / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(state / name, target)
    finally:
        playbook("teardown.yml", {**extra, "jupiter_purge": "true"})
    return metrics(report)


def run_set(algorithms: Sequence[str], app: str, input_dir: Path | None,
            keep: Path | None = None, single: int = 8) -> Results:
    results: Results = {}
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as state_root:
        for algorithm in algorithms:
            start = time.monotonic()
            results[algorithm] = deploy_and_measure(algorithm, app, state_root, input_dir,
                                                    keep, single)
            print(f"  {algorithm}: done in {time.monotonic() - start:.0f}s", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/mapping.py needs root: the shaped testbed uses network namespaces")
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-inputs-") as inputs:
        input_dir = generate_inputs(args.app, args.items, args.packets, Path(inputs))
        size = (sum(p.stat().st_size for p in input_dir.iterdir()) // args.items // 1024
                if input_dir else 0)
        fed = (f"{args.items} generated inputs (seed {INPUT_SEED}, {args.packets} packets, "
               f"~{size} KB each; the execution profile uses the first)"
               if input_dir else "its sample input")
        if input_dir is None:
            print(f"{args.app} has no generate_input.py: feeding its sample input "
                  f"instead of {args.items} generated items")
        print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores, "
              f"python {platform.python_version()}; app {args.app} fed {fed}; "
              "inventory/local (6 nodes)")
        runs: list[Results] = []
        for k in range(args.repeat):
            print(f"run {k + 1}/{args.repeat}: {', '.join(args.only)}", flush=True)
            runs.append(run_set(args.only, args.app, input_dir,
                                args.keep / f"run{k + 1}" if args.keep else None,
                                args.single))
            print(f"\nrun {k + 1}/{args.repeat}\n{format_table(runs[-1])}\n", flush=True)
    if args.repeat > 1:
        print(f"median of {args.repeat} runs (vs spread: against spread's median)\n"
              f"{format_table(median_of_runs(runs))}\n")
    print(LEGEND, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
