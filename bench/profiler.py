"""DRUPE benchmark on the emulated testbed (root: namespaces, htb, cgroup v1 cpu).

Run: ``python bench/profiler.py [--quick]``. Prints the machine, then:

1. **Accuracy**: 4 nodes; links home->n5, home->n20, home->n80 shaped at 5, 20, 80 Mbit/s
   (every other link at 50): configured vs measured bandwidth, error %, and the mean
   absolute error over all 12 directed links.
2. **Time to the first complete profile** (processes started -> ``/status`` complete) for 4
   and 8 emulated nodes (goal: <= 30 s for 8), the first cycle's length and the probe bytes
   sent in it (one full round: every ordered pair once, every node benchmarked).
3. **Baseline in the same run**: the original DRUPE's way, one 10 MB file per ordered pair
   sent one after the other (scp-style). Measured on the three shaped links, then computed
   for every pair of both testbeds from the link rates and the measured efficiency.
4. **Execution profile, per node vs scaled**: a CPU-bound legacy app (tasks of ~30-150 ms)
   and the shipped network_monitoring_app (tasks of ~1 ms) profiled inside 4 nodes with CPU
   shares 1.0 / 0.8 / 0.5 / 0.25, against the cheap mode (profile on the full node, scale by
   the measured CPU speed): mean and worst error of the scaled seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupiter.drupe.localrun import AGENT_PORT, LocalDrupe  # noqa: E402
from jupiter.drupe.resources import cpu_benchmark  # noqa: E402
from jupiter.local import testbed  # noqa: E402
from jupiter.local.spec import TestbedSpec  # noqa: E402
from jupiter.profile import Profile  # noqa: E402

FILE_MB = 10
SHAPED = {"n5": 5.0, "n20": 20.0, "n80": 80.0}
UPLINKS8 = [100, 80, 50, 20, 20, 10, 5, 5]

SEND_FILE = """
import json, sys, time, urllib.request
url, token, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = bytes(size)
req = urllib.request.Request(url, data=body, method="POST",
                             headers={"Authorization": "Bearer " + token})
t = time.perf_counter()
with urllib.request.urlopen(req, timeout=600) as r:
    json.loads(r.read())
print(time.perf_counter() - t)
"""

CPU_TASK = """
import hashlib, os

ROUNDS = {rounds}


def task(inputs, pathin, pathout):
    names = inputs if isinstance(inputs, list) else [inputs]
    prefix = names[0].split("_")[0] if "_" in names[0] else names[0][:1]
    data = b"".join(open(os.path.join(pathin, n), "rb").read() for n in names)
    h = data
    for _ in range(ROUNDS):
        h = hashlib.sha256(h).digest()
        acc = 0
        for i in range(200):
            acc += i * i
    for i in range({outputs}):
        with open(os.path.join(pathout, prefix + "_{name}" + str(i)), "wb") as f:
            f.write(h * 64)
"""


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"kernel {platform.release()}, load {os.getloadavg()[0]:.2f}")


def spec(dep: str, subnet: str, names: list[str], links: dict[str, dict[str, float]],
         shares: dict[str, float] | None = None) -> TestbedSpec:
    shares = shares or {}
    return TestbedSpec.from_dict({"deployment": dep, "subnet": subnet,
                                  "nodes": [{"name": n, "cpu_share": shares.get(n)}
                                            for n in names],
                                  "links": links})


def up(sp: TestbedSpec, sd: Path) -> dict[str, str]:
    _, st = testbed.apply(sp, str(sd), mode="netns")
    return {n["name"]: n["address"] for n in st["nodes"]}


def run_profile(dep: str, sp: TestbedSpec, work: Path,
                options: dict[str, Any] | None = None) -> tuple[LocalDrupe, float, dict]:
    sd = work / dep
    addresses = up(sp, sd)
    ld = LocalDrupe(dep, sd, addresses, sp.node_names[0], options=options or {})
    ld.write_config()
    t0 = time.monotonic()
    ld.start()
    status, _ = ld.wait(timeout=180)
    return ld, time.monotonic() - t0, status


def send_file(ld: LocalDrupe, src: str, dst: str, nbytes: int) -> float:
    url = f"http://{ld.addresses[dst]}:{AGENT_PORT}/probe"
    argv = [sys.executable, "-m", "jupiter.local.execnode", "--deployment", ld.deployment,
            "--node", src, "--state-dir", str(ld.state_dir), "--", sys.executable, "-c",
            SEND_FILE, url, ld.token_file.read_text().strip(), str(nbytes)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True)
    return float(r.stdout.strip())


def pct(measured: float, want: float) -> float:
    return 100.0 * (measured - want) / want


def accuracy_and_baseline(work: Path, quick: bool) -> dict[str, Any]:
    names = ["home", *SHAPED]
    links = {s: {d: 50.0 for d in names if d != s} for s in names}
    links["home"].update(SHAPED)
    sp = spec("bprof4", "10.97.0.0/24", names, links)
    ld, secs, status = run_profile("bprof4", sp, work, {"interval_s": 3600})
    try:
        prof = Profile.from_dict(ld.get("/profile"))
        print("\n1. accuracy (4 nodes)")
        print(f"   {'link':14} {'configured':>11} {'measured':>10} {'error':>7} "
              f"{'latency':>8} {'samples':>7}")
        errs = []
        for s in names:
            for d in names:
                if s == d:
                    continue
                lp = prof.link(s, d)
                assert lp is not None
                want = links[s][d]
                e = pct(lp.bandwidth_bps / 1e6, want)
                errs.append(abs(e))
                if s == "home":
                    print(f"   {s + '->' + d:14} {want:>7.0f} Mb/s {lp.bandwidth_bps / 1e6:>6.2f} "
                          f"Mb/s {e:>+6.1f}% {lp.latency_s * 1e3:>6.2f}ms {lp.samples:>7}")
        print(f"   all 12 links: mean |error| {statistics.mean(errs):.1f}%, "
              f"worst {max(errs):.1f}%")
        cyc = status["last_cycle"]
        print("\n2. time to the first complete profile")
        print(f"   4 nodes: {secs:.1f} s (first cycle {cyc['seconds']:.1f} s, "
              f"{cyc['slots']} slots, {cyc['probe_bytes'] / 1e6:.1f} MB probed in the full "
              "round)")
        # baseline: one 10 MB file per pair, sequentially (measured on the shaped links)
        nbytes = FILE_MB * 1_000_000
        eff = []
        measured = {}
        for d in (["n80", "n20"] if quick else ["n80", "n20", "n5"]):
            t = send_file(ld, "home", d, nbytes)
            measured[d] = t
            eff.append((8 * nbytes / (links["home"][d] * 1e6)) / t)
        efficiency = statistics.mean(eff)
        return {"links4": links, "names4": names, "first4": secs, "cycle4": cyc,
                "efficiency": efficiency, "measured_10mb": measured}
    finally:
        ld.stop()
        testbed.destroy("bprof4", str(work / "bprof4"))


def eight_nodes(work: Path) -> dict[str, Any]:
    names = [f"n{i}" for i in range(len(UPLINKS8))]
    links = {s: {d: float(min(UPLINKS8[i], UPLINKS8[j])) for j, d in enumerate(names) if d != s}
             for i, s in enumerate(names)}
    sp = spec("bprof8", "10.98.0.0/24", names, links)
    ld, secs, status = run_profile("bprof8", sp, work, {"interval_s": 3600})
    try:
        prof = Profile.from_dict(ld.get("/profile"))
        errs = [abs(pct(prof.links[s][d].bandwidth_bps / 1e6, links[s][d]))
                for s in names for d in names if s != d]
        cyc = status["last_cycle"]
        goal = "meets" if secs <= 30 else "MISSES"
        print(f"   8 nodes: {secs:.1f} s ({goal} the 30 s goal; first cycle "
              f"{cyc['seconds']:.1f} s, {cyc['slots']} slots, "
              f"{cyc['probe_bytes'] / 1e6:.1f} MB probed in the full round); "
              f"mean |bandwidth error| over 56 links {statistics.mean(errs):.1f}%, "
              f"worst {max(errs):.1f}%")
        return {"links8": links, "names8": names, "first8": secs, "cycle8": cyc}
    finally:
        ld.stop()
        testbed.destroy("bprof8", str(work / "bprof8"))


def baseline(r: dict[str, Any]) -> None:
    nbytes = FILE_MB * 1_000_000
    print(f"\n3. baseline: one {FILE_MB} MB file per ordered pair, one after the other")
    for d, t in r["measured_10mb"].items():
        want = r["links4"]["home"][d]
        print(f"   measured home->{d} ({want:.0f} Mbit/s): {t:.2f} s "
              f"(ideal {8 * nbytes / (want * 1e6):.2f} s)")
    eff = r["efficiency"]
    for label, links, names, drupe in (("4 nodes", r["links4"], r["names4"], r["first4"]),
                                       ("8 nodes", r["links8"], r["names8"], r["first8"])):
        total = sum(8 * nbytes / (links[s][d] * 1e6) / eff for s in names for d in names
                    if s != d)
        print(f"   {label}: {total:.0f} s for one round ({total / drupe:.0f}x DRUPE's first "
              f"complete profile of {drupe:.1f} s; computed from the link rates at the "
              f"measured efficiency {eff:.2f})")


def make_cpu_app(root: Path) -> Path:
    tasks = [("prep", 1, "false", ["left", "right"], 2, 150),
             ("left", 1, "true", ["join"], 1, 60),
             ("right", 1, "true", ["join"], 1, 30),
             ("join", 2, "true", ["home"], 1, 90)]
    lines = [str(len(tasks))]
    (root / "scripts").mkdir(parents=True)
    (root / "sample_input").mkdir()
    for name, k, flag, children, outputs, rounds in tasks:
        lines.append(f"{name} {k} {flag} {' '.join(children)}")
        (root / "scripts" / f"{name}.py").write_text(textwrap.dedent(CPU_TASK).format(
            rounds=rounds * 150, outputs=outputs, name=name))
    (root / "configuration.txt").write_text("\n".join(lines) + "\n")
    (root / "sample_input" / "1_input.txt").write_text("sample " * 100)
    return root


def exec_modes(work: Path, quick: bool) -> None:
    names = ["full", "c08", "c05", "c025"]
    shares = {"full": 1.0, "c08": 0.8, "c05": 0.5, "c025": 0.25}
    links = {s: {d: 100.0 for d in names if d != s} for s in names}
    sp = spec("bprofx", "10.99.0.0/24", names, links, shares)
    ld, _, _ = run_profile("bprofx", sp, work, {"interval_s": 3600})
    apps = {"cpu-bound legacy app": make_cpu_app(work / "cpuapp"),
            "network_monitoring_app": ROOT / "task_specific_files" / "network_monitoring_app"}
    try:
        speeds = {n: v.speed for n, v in Profile.from_dict(ld.get("/profile")).nodes.items()}
        print("\n4. execution profile: per node vs scaled from 'full' by CPU speed")
        print("   CPU shares " + ", ".join(f"{n} {shares[n]}" for n in names)
              + "; measured speed " + ", ".join(f"{n} {speeds[n]:.2f}" for n in names))
        for label, app in apps.items():
            per: dict[str, dict[str, float]] = {}
            t0 = time.monotonic()
            for n in names:
                out = work / f"exec-{app.name}-{n}.json"
                ld.run_on(n, ["drupe", "exec", "--app", str(app), "--node", n, "--out",
                              str(out), "--repeat", "1" if quick else "3"])
                doc = json.loads(out.read_text())
                per[n] = {t: v[n]["seconds"] for t, v in doc["exec"].items()}
            t_all = time.monotonic() - t0
            errs = []
            for n in names[1:]:
                for t, secs in per[n].items():
                    scaled = per["full"][t] * speeds["full"] / speeds[n]
                    errs.append(abs(scaled - secs) / secs * 100)
            task_ms = statistics.mean(per["full"].values()) * 1e3
            print(f"   {label} (mean task {task_ms:.1f} ms on 'full'): per-node profiling "
                  f"took {t_all:.1f} s for 4 nodes; scaled estimate error mean "
                  f"{statistics.mean(errs):.0f}%, worst {max(errs):.0f}% over "
                  f"{len(errs)} task x node pairs")
            slow = {t: per["c025"][t] / per["full"][t] for t in per["full"]}
            print(f"      measured slowdown on c025 (share 0.25, speed ratio "
                  f"{speeds['full'] / speeds['c025']:.1f}x): "
                  f"{statistics.mean(slow.values()):.1f}x on average")
    finally:
        ld.stop()
        testbed.destroy("bprofx", str(work / "bprofx"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, skip the 5 Mbit file")
    args = ap.parse_args()
    print("DRUPE profiler benchmark")
    print(machine())
    b = cpu_benchmark()
    print(f"cpu benchmark here: speed {b.speed:.2f} ({b.wall_seconds * 1e3:.0f} ms for the "
          "reference work)")
    if os.geteuid() != 0 or not shutil.which("tc"):
        print("needs root and iproute2 (network namespaces, htb): not measured", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="drupe-bench-"))
    try:
        r = accuracy_and_baseline(work, args.quick)
        r.update(eight_nodes(work))
        baseline(r)
        exec_modes(work, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
