"""Benchmark: `helm template` of the CIRCE chart for a 1000-task app (goal <= 10 s).

Values come from the real path (inventory -> nominal profile -> WAVE heft -> build_values ->
chart_values); the baseline in the same run is the 14-task sample app through the same path.
Run: python bench/charts.py
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jupiter.app.loader import load_app  # noqa: E402
from jupiter.app.model import App, Task, safe_key  # noqa: E402
from jupiter.inventory import Inventory, Node  # noqa: E402
from jupiter.k8s.chart_values import chart_values  # noqa: E402
from jupiter.k8s.preview import nominal_profile  # noqa: E402
from jupiter.values import build_values  # noqa: E402
from jupiter.wave.api import schedule_dicts  # noqa: E402

HELM = REPO / ".tools" / "bin" / "helm"
IMAGE = {"repository": "registry.example.org/jupiter/app", "tag": "0.1.0", "digest": "",
         "pullPolicy": "IfNotPresent"}
RUNS = 3


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def layered_app(n: int, width: int = 25) -> dict[str, Any]:
    layers = [list(range(i, min(i + width, n))) for i in range(0, n, width)]
    names = {i: f"stage{li}_task{i}" for li, layer in enumerate(layers) for i in layer}
    parents: dict[str, int] = {}
    edges: dict[int, tuple[str, ...]] = {}
    for li, layer in enumerate(layers):
        for i in layer:
            if li + 1 < len(layers):
                nxt = layers[li + 1]
                edges[i] = (names[nxt[(i - layer[0]) % len(nxt)]],)
            else:
                edges[i] = ("home",)
            for c in edges[i]:
                parents[c] = parents.get(c, 0) + 1
    tasks = tuple(Task(name=names[i], key=safe_key(names[i]), script=f"scripts/t{i}.py",
                       children=edges[i], num_inputs=max(1, parents.get(names[i], 1)))
                  for i in sorted(names))
    return App(name="generated", tasks=tasks, root=str(REPO / "generated")).to_dict()


def circe_values(app: dict[str, Any], workers: int = 20) -> dict[str, Any]:
    nodes = [Node("home", "home", k8s_hostname="control-1")]
    nodes += [Node(f"w{i}", "worker", k8s_hostname=f"node-{i}") for i in range(workers)]
    inv = Inventory(nodes=tuple(nodes), target="kubernetes", deployment="bench").to_dict()
    names = [n["name"] for n in inv["nodes"] if n["role"] == "worker"]
    mapping = schedule_dicts(app, nominal_profile(inv), names, "heft", home="home")
    values = build_values(inv, app, mapping, target="kubernetes", state_dir="/unused",
                          token_file="/unused/token")
    return chart_values(values, "circe", image=IMAGE)


def time_template(values: dict[str, Any]) -> tuple[float, int]:
    times, objects = [], 0
    data = json.dumps(values)
    for _ in range(RUNS):
        start = time.perf_counter()
        out = subprocess.run([str(HELM), "template", "bench-circe", str(REPO / "charts/circe"),
                              "--namespace", "bench", "--values", "-"], input=data,
                             capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        objects = out.stdout.count("\nkind: ")
    return statistics.median(times), objects


def main() -> int:
    version = subprocess.run([str(HELM), "version", "--short"], capture_output=True,
                             text=True, check=True).stdout.strip()
    print(f"machine: {cpu_model()}, {len(__import__('os').sched_getaffinity(0))} cores, "
          f"python {platform.python_version()}, helm {version}")
    rows = []
    sample = load_app(REPO / "task_specific_files" / "network_monitoring_app").to_dict()
    for label, app in (("baseline: network_monitoring_app (14 tasks)", sample),
                       ("generated app (1000 tasks, 20 workers)", layered_app(1000))):
        start = time.perf_counter()
        values = circe_values(app)
        build_s = time.perf_counter() - start
        median, objects = time_template(values)
        rows.append((label, build_s, median, objects))
    print(f"{'case':46} {'values s':>9} {'helm template s (median of 3)':>30} {'objects':>8}")
    for label, build_s, median, objects in rows:
        print(f"{label:46} {build_s:9.3f} {median:30.3f} {objects:8d}")
    goal = rows[-1][2] <= 10.0
    print(f"goal: helm template of the 1000-task app <= 10 s: {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
