"""Benchmark: WAVE's schedulers on random DAGs generated as in the HEFT paper.

Run: ``python bench/schedulers.py [--graphs 240] [--seed 1] [--quick]``

Random DAGs follow Topcuoglu, Hariri & Wu (IEEE TPDS 2002, section 5.2): ``v`` tasks,
shape ``alpha`` (levels ~ sqrt(v)/alpha, width ~ alpha*sqrt(v)), out-degree, CCR (mean
communication over mean computation cost) and heterogeneity ``beta`` (a task's costs
spread over [w(1-beta/2), w(1+beta/2)] around its mean w). An edge costs its
communication cost between two distinct nodes, nothing on the same node.

Reported per algorithm, with HEFT as the baseline measured in the same run:
* SLR (makespan over the sum of minimum costs on the minimum critical path) and speedup
  (best sequential time over makespan), makespan = WAVE's predicted single-item latency;
* better / equal / worse makespan than HEFT;
* stream period (busiest node or link per item) of ``stream`` against HEFT at CCR >= 1,
  with the latency ratio (goal: period >= 20 % lower, latency within 10 %);
* scheduling time of 1000 tasks on 100 nodes through ``schedule(app, profile, nodes)``
  (goal <= 1 s), the profile-to-cost-model build included.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupiter.app.model import App, Task
from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile
from jupiter.wave.api import ALGORITHMS, run_algorithm, schedule
from jupiter.wave.cost import CostModel
from jupiter.wave.simulate import evaluate

ALGOS = [a for a in ALGORITHMS if a != "static"]
V_CHOICES = (20, 40, 60, 80, 100)
CCR_CHOICES = (0.1, 0.5, 1.0, 5.0, 10.0)
ALPHA_CHOICES = (0.5, 1.0, 2.0)
OUT_DEGREE_CHOICES = (1, 2, 3, 4, 5)
BETA_CHOICES = (0.1, 0.25, 0.5, 0.75, 1.0)
NODE_CHOICES = (4, 8, 16, 32)


def random_dag(rng: np.random.Generator, v: int, alpha: float, out_degree: int
               ) -> list[tuple[int, int]]:
    """Levelled random DAG: ~sqrt(v)/alpha levels of mean width alpha*sqrt(v); every task
    below the first level has a parent in the level above; out-degree 1..out_degree."""
    height = int(min(v, max(1, round(np.sqrt(v) / alpha))))
    widths = 1 + rng.multinomial(v - height, np.full(height, 1.0 / height))
    levels: list[list[int]] = []
    start = 0
    for w in widths.tolist():
        levels.append(list(range(start, start + w)))
        start += w
    edges: set[tuple[int, int]] = set()
    for i in range(1, len(levels)):
        for t in levels[i]:  # at least one parent in the level above
            edges.add((int(rng.choice(levels[i - 1])), t))
    for i in range(len(levels) - 1):
        later = [t for lv in levels[i + 1 : i + 3] for t in lv]
        for t in levels[i]:
            k = int(rng.integers(1, out_degree + 1))
            for c in rng.choice(later, size=min(k, len(later)), replace=False):
                edges.add((t, int(c)))
    return sorted(edges)


def random_model(rng: np.random.Generator, v: int, ccr: float, alpha: float,
                 out_degree: int, beta: float, n: int) -> CostModel:
    edges = random_dag(rng, v, alpha, out_degree)
    w_dag = float(rng.uniform(10, 100))
    mean = rng.uniform(0, 2 * w_dag, size=v)
    W = np.array([rng.uniform(m * (1 - beta / 2), m * (1 + beta / 2), size=n) for m in mean])
    comm = rng.uniform(0, 2 * ccr * w_dag, size=len(edges))
    names = [f"t{i}" for i in range(v)]
    return CostModel.from_matrices(
        names, [f"p{j}" for j in range(n)], W,
        [(names[a], names[b], float(c)) for (a, b), c in zip(edges, comm, strict=True)])


def cp_min_sum(cm: CostModel) -> float:
    """Sum of minimum costs along the critical path computed with minimum costs."""
    wmin = cm.W.min(axis=1)
    best = np.zeros(cm.V)
    for v in reversed(cm.topo):
        best[v] = wmin[v] + max((best[int(cm.edst[e])] for e in cm.succ[v]), default=0.0)
    return float(best.max())


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {cpu}, {os.cpu_count()} cores, python {platform.python_version()}, "
            f"numpy {np.__version__}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w)
                      in enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join(out)


def large_app_profile(rng: np.random.Generator, v: int, n: int) -> tuple[App, Profile, list[str]]:
    edges = random_dag(rng, v, 1.0, 3)
    children: dict[int, list[str]] = {i: [] for i in range(v)}
    for a, b in edges:
        children[a].append(f"t{b}")
    for i in range(v):
        if not children[i]:
            children[i].append("home")
    tasks = tuple(Task(name=f"t{i}", key=f"t{i}", script=f"scripts/t{i}.py",
                       children=tuple(children[i])) for i in range(v))
    app = App(name="big", tasks=tasks)
    nodes = ["home"] + [f"n{j}" for j in range(n - 1)]
    speed = {x: float(rng.uniform(0.3, 3.0)) for x in nodes}
    prof = Profile(
        nodes={x: NodeProfile(cpu_count=2, speed=speed[x]) for x in nodes},
        links={s: {d: LinkProfile(latency_s=float(rng.uniform(1e-4, 2e-2)),
                                  bandwidth_bps=float(rng.uniform(1e6, 1e9)))
                   for d in nodes if d != s} for s in nodes},
        exec={f"t{i}": {x: ExecProfile(seconds=float(rng.uniform(0.01, 0.5)) / speed[x],
                                       output_bytes=int(rng.integers(1_000, 2_000_000)))
                        for x in nodes} for i in range(v)},
        complete=True, generated_at=1.0)
    return app, prof, nodes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=240, help="random DAGs (default 240)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="40 graphs, smaller timing case")
    args = ap.parse_args()
    graphs = 40 if args.quick else args.graphs
    rng = np.random.default_rng(args.seed)
    print(machine())
    print(f"random DAGs: {graphs}, seed {args.seed}; v {V_CHOICES}, CCR {CCR_CHOICES}, "
          f"alpha {ALPHA_CHOICES}, out-degree {OUT_DEGREE_CHOICES}, beta {BETA_CHOICES}, "
          f"nodes {NODE_CHOICES}")
    slr: dict[str, list[float]] = {a: [] for a in ALGOS}
    speedup: dict[str, list[float]] = {a: [] for a in ALGOS}
    cmp: dict[str, list[int]] = {a: [0, 0, 0] for a in ALGOS}
    secs: dict[str, float] = dict.fromkeys(ALGOS, 0.0)
    period_ratio: list[float] = []
    latency_ratio: list[float] = []
    period_ratio_all: list[float] = []
    t_all = time.perf_counter()
    for _ in range(graphs):
        v = int(rng.choice(V_CHOICES))
        ccr = float(rng.choice(CCR_CHOICES))
        cm = random_model(rng, v, ccr, float(rng.choice(ALPHA_CHOICES)),
                          int(rng.choice(OUT_DEGREE_CHOICES)), float(rng.choice(BETA_CHOICES)),
                          int(rng.choice(NODE_CHOICES)))
        base = cp_min_sum(cm)
        seq = float(cm.W.sum(axis=0).min())
        preds = {}
        for a in ALGOS:
            c0 = time.process_time()
            assign = run_algorithm(cm, a, {"seed": 7})
            secs[a] += time.process_time() - c0
            preds[a] = evaluate(cm, assign)
        h = preds["heft"]
        for a in ALGOS:
            p = preds[a]
            slr[a].append(p.latency_s / base)
            speedup[a].append(seq / p.latency_s)
            d = p.latency_s - h.latency_s
            cmp[a][0 if d < -1e-9 else 1 if abs(d) <= 1e-9 else 2] += 1
        s = preds["stream"]
        period_ratio_all.append(s.period_s / h.period_s)
        if ccr >= 1:
            period_ratio.append(s.period_s / h.period_s)
            latency_ratio.append(s.latency_s / h.latency_s)
    elapsed = time.perf_counter() - t_all
    rows = []
    for a in ALGOS:
        b, e, w = cmp[a]
        rows.append([a, f"{statistics.mean(slr[a]):.3f}", f"{statistics.mean(speedup[a]):.3f}",
                     f"{b}/{e}/{w}" if a != "heft" else "baseline",
                     f"{1000 * secs[a] / graphs:.1f}"])
    print()
    print(table(["algorithm", "mean SLR", "mean speedup", "vs heft better/equal/worse",
                 "cpu ms/graph"], rows))
    print()
    n_hi = len(period_ratio)
    print(f"stream vs heft, CCR >= 1 ({n_hi} graphs): period "
          f"{100 * (1 - statistics.mean(period_ratio)):.1f} % lower on average "
          f"(median {100 * (1 - statistics.median(period_ratio)):.1f} %), latency "
          f"x{statistics.mean(latency_ratio):.3f} on average (max x{max(latency_ratio):.3f}); "
          f"goal: >= 20 % lower at <= x1.10")
    print(f"stream vs heft, all CCR ({graphs} graphs): period "
          f"{100 * (1 - statistics.mean(period_ratio_all)):.1f} % lower on average")
    print(f"random-DAG part took {elapsed:.1f} s wall")

    v, n = (300, 30) if args.quick else (1000, 100)
    app, prof, nodes = large_app_profile(np.random.default_rng(args.seed), v, n)
    print()
    print(f"scheduling time, {v} tasks x {n} nodes (profile -> cost model -> mapping -> "
          "predictions); goal <= 1 s")
    print(f"(CPU time is this process's own; wall time also counts other load, "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    rows = []
    for a in ALGOS:
        t0, c0 = time.perf_counter(), time.process_time()
        m = schedule(app, prof, nodes, algorithm=a, input_bytes=100_000)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rows.append([a, f"{dc:.3f}", f"{dt:.3f}", f"{m.latency_s:.3f}", f"{m.period_s:.3f}",
                     m.bottleneck])
    print(table(["algorithm", "cpu s", "wall s", "latency s", "period s", "bottleneck"],
                rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
