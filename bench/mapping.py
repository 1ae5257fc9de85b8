"""Benchmark: the sample app on the shaped testbed under each mapping, through deploy.yml.

For each algorithm (stream, heft, spread, random) a deployment of the default inventory
(6 emulated nodes, htb-shaped links, cgroup CPU shares) runs the whole flow (profile,
schedule, CIRCE, sample input: one item alone, then the rest as a stream) and is torn down.
Prints measured single-item latency and stream throughput per mapping, the latency of
each against `spread` (the network-blind baseline measured in the same run), and predicted
vs measured. Needs root (network namespaces). Run: python bench/mapping.py [--app NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ALGORITHMS = ("stream", "heft", "spread", "random")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def playbook(name: str, extra: dict[str, str]) -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               PATH=f"{BIN}:{REPO / '.tools' / 'bin'}:{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(REPO / name), "-e",
                           json.dumps(extra)], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-6000:], proc.stderr[-2000:], sep="\n")
        raise SystemExit(f"{name} failed for {extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", default="network_monitoring_app")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/mapping.py needs root: the shaped testbed uses network namespaces")
    print(f"machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores, "
          f"python {platform.python_version()}; app {args.app}; inventory/local (6 nodes)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="jupiter-bench-") as state_root:
        for i, algorithm in enumerate(ALGORITHMS):
            extra = {"jupiter_deployment": f"bm{algorithm[:6]}", "jupiter_app": args.app,
                     "jupiter_scheduler": algorithm, "jupiter_state_root": state_root,
                     "testbed_subnet": f"10.81.{i + 1}.0/24"}
            start = time.monotonic()
            try:
                playbook("deploy.yml", extra)
                report = json.loads(Path(state_root, extra["jupiter_deployment"],
                                         "report.json").read_text())
            finally:
                playbook("teardown.yml", {**extra, "jupiter_purge": "true"})
            results[algorithm] = report
            print(f"  {algorithm}: done in {time.monotonic() - start:.0f}s", flush=True)
    base = results["spread"]["measured"]["first_item_latency_s"]
    print()
    print(f"{'mapping':8} {'pred lat s':>10} {'meas lat s':>10} {'err':>7} {'vs spread':>9} "
          f"{'pred tput/s':>11} {'meas tput/s':>11} {'err':>7}  bottleneck (predicted)")
    for algorithm, r in results.items():
        p, m = r["predicted"], r["measured"]
        lat_err = (p["latency_s"] - m["first_item_latency_s"]) / m["first_item_latency_s"]
        tput_err = ((p["throughput_per_s"] - m["throughput_per_s"]) / m["throughput_per_s"]
                    if m["throughput_per_s"] else float("nan"))
        gain = 1 - m["first_item_latency_s"] / base
        print(f"{algorithm:8} {p['latency_s']:10.4f} {m['first_item_latency_s']:10.4f} "
              f"{lat_err:+7.0%} {gain:+9.0%} {p['throughput_per_s']:11.2f} "
              f"{m['throughput_per_s'] or 0:11.2f} {tput_err:+7.0%}  {p['bottleneck']}")
    print("vs spread: measured single-item latency reduction against the spread mapping "
          "(goal >= 30%); err: (predicted - measured) / measured (goal within 15%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
