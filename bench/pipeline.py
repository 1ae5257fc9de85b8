"""CIRCE data-plane benchmark: per-hop overhead and pipeline throughput, with baselines.

Run: ``python bench/pipeline.py [--items N] [--quick]``. Prints the machine and its load,
then:

1. **Floor** (measured in this run): a bare aiohttp POST of a 1 KB body to a server in
   another process that makes one durable file write (write, fsync, rename; and a variant
   that also fsyncs the folder, as CIRCE's spool does) before answering; wall time and the
   CPU both processes spend per request. Beside it, the CPU the sending process spends on
   a 20 KB request with aiohttp's client and with CIRCE's own (``jupiter.circe.httpclient``).
2. **Per-hop overhead**: real ``jupiter circe task/home`` processes on loopback, 1 KB items
   sent one at a time (the next when home reports the previous done) through identity
   chains of 1 and 5 stages; one hop = (p50 latency of 5 stages - p50 of 1 stage) / 4, also
   the CPU a task process spends per item. A hop does more than the floor by design: the
   child's input is made durable before the ack and its outputs before they are pushed on
   (two records; one flush covers both when the task code runs inline), and the task code
   runs. Goals: <= 2x the floor, <= 3 ms p50.
3. **Throughput** of a 4-stage pipeline whose stage 2 waits ``--work-ms`` per item (the
   others a quarter of it), items submitted as fast as home accepts them, against the
   bottleneck bound 1 / (measured mean run time of the slowest stage). Goal >= 90%.
4. **Shaped testbed** (root with network namespaces): home and a 2-stage chain on three
   nodes of a netns testbed whose links are shaped with htb (20 Mbit/s): latency of 1 KB
   items over 3 shaped hops, and the throughput of 256 KB items against the link bound.

Numbers on a shared 2-core machine vary with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupiter.app.model import HOME, App, Task  # noqa: E402
from jupiter.circe.devrun import LocalPipeline, free_port  # noqa: E402

STAGE = '''
import time

WORK = {work}


def process(item, inputs):
    (name, data), = inputs.items()
    if WORK:
        time.sleep(WORK)  # a stage that waits (as on its own node), not burning this CPU
    return {{item + ".out": data}}
'''

FLOOR_SERVER = '''
import os, sys
from aiohttp import web

d = sys.argv[2]
dir_fsync = sys.argv[3] == "1"
n = 0


def durable(data):
    global n
    n += 1
    tmp = os.path.join(d, f"t{n}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, os.path.join(d, f"f{n}"))
    if dir_fsync:
        dfd = os.open(d, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)


async def put(request):
    durable(await request.read())
    return web.json_response({"ok": True})


async def ready(request):
    return web.json_response({"ready": True})


app = web.Application()
app.router.add_post("/x", put)
app.router.add_get("/ready", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average {load}")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def cpu_seconds(pids: list[int]) -> float:
    return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


# ---- 1. floor ---------------------------------------------------------------------------
async def _floor_client(port: int, n: int, body: bytes) -> list[float]:
    import aiohttp

    times = []
    async with aiohttp.ClientSession() as s:
        for i in range(n + 20):
            t = time.perf_counter()
            async with s.post(f"http://127.0.0.1:{port}/x", data=body) as r:
                await r.read()
            if i >= 20:  # warm-up excluded
                times.append(time.perf_counter() - t)
    return times


@contextlib.contextmanager
def floor_server(tmp: Path, dir_fsync: bool) -> Iterator[tuple[int, int]]:
    """The floor's server in another process: (port, pid) once it answers."""
    port = free_port()
    d = tmp / f"floor{int(dir_fsync)}.{port}"
    d.mkdir()
    script = tmp / "floor_server.py"
    script.write_text(FLOOR_SERVER)
    proc = subprocess.Popen([sys.executable, str(script), str(port), str(d),
                             "1" if dir_fsync else "0"])
    try:
        import urllib.request

        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait()


def floor(n: int, tmp: Path, dir_fsync: bool) -> tuple[list[float], float]:
    """(round-trip times, CPU seconds per request of server + client)."""
    with floor_server(tmp, dir_fsync) as (port, pid):
        before = cpu_seconds([pid, os.getpid()])
        times = asyncio.run(_floor_client(port, n, b"x" * 1024))
        return times, (cpu_seconds([pid, os.getpid()]) - before) / (n + 20)


async def _push_cpu(port: int, n: int, body: bytes, ours: bool) -> float:
    """CPU seconds per request of this process sending ``n`` bodies one at a time (after 20
    unmeasured ones), with CIRCE's client (``ours``) or aiohttp's."""
    import aiohttp

    from jupiter.circe.httpclient import HttpClient

    url = f"http://127.0.0.1:{port}/x"
    async with contextlib.AsyncExitStack() as stack:
        if ours:
            client = HttpClient(timeout=30)
            stack.push_async_callback(client.close)

            async def send() -> None:
                await client.request("POST", url, body)
        else:
            session = await stack.enter_async_context(aiohttp.ClientSession())

            async def send() -> None:
                async with session.post(url, data=body) as r:
                    await r.read()

        for _ in range(20):
            await send()
        t = time.process_time()
        for _ in range(n):
            await send()
        return (time.process_time() - t) / n


def push_client_cpu(n: int, tmp: Path, kb: int = 20) -> tuple[list[float], list[float]]:
    """CPU per 20 KB request of aiohttp's client and CIRCE's (two alternating rounds)."""
    body = os.urandom(kb * 1024)
    theirs: list[float] = []
    ours: list[float] = []
    with floor_server(tmp, False) as (port, _):
        for _ in range(2):
            theirs.append(asyncio.run(_push_cpu(port, n, body, ours=False)))
            ours.append(asyncio.run(_push_cpu(port, n, body, ours=True)))
    return theirs, ours


# ---- pipelines ---------------------------------------------------------------------------
def chain(root: Path, works: list[float]) -> App:
    scripts = root / "scripts"
    scripts.mkdir(parents=True)
    tasks = []
    for i, w in enumerate(works):
        (scripts / f"s{i}.py").write_text(STAGE.format(work=w))
        child = f"s{i + 1}" if i + 1 < len(works) else HOME
        tasks.append(Task(name=f"s{i}", key=f"s{i}", script=f"scripts/s{i}.py",
                          children=(child,), interface="process"))
    return App(name="bench-chain", tasks=tuple(tasks), root=str(root))


def read_items(state: Path) -> list[dict]:
    path = state / "circe" / "items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def sequential(stages: int, n: int, tmp: Path) -> tuple[list[float], float]:
    """Latencies (home: submission -> result) of 1 KB items sent one at a time, and the CPU
    seconds per item of one task process (mean over the stages)."""
    root = tmp / f"seq{stages}"
    app = chain(root / "app", [0.0] * stages)
    body = b"x" * 1024
    warmup = 10
    with LocalPipeline(app, root / "app", root / "state",
                       options={"table_grace_s": 0.5}) as p:
        for i in range(warmup):
            assert p.submit(f"v{i:05d}.bin", body)[0] == 200
            p.wait_item(f"v{i:05d}")
        pids = [p.procs[t.key].pid for t in app.tasks]
        before = cpu_seconds(pids)
        for i in range(n):
            assert p.submit(f"w{i:05d}.bin", body)[0] == 200
            p.wait_item(f"w{i:05d}")
        cpu = (cpu_seconds(pids) - before) / n / stages
        deadline = time.monotonic() + 30
        while len(read_items(root / "state")) < n + warmup and time.monotonic() < deadline:
            time.sleep(0.1)
    rows = [r for r in read_items(root / "state") if r["item"].startswith("w")]
    return [r["latency"] for r in rows if r["status"] == "completed"], cpu


def throughput(n: int, work: float, tmp: Path) -> tuple[float, float, dict[str, float]]:
    root = tmp / "tput"
    app = chain(root / "app", [work / 4, work, work / 4, work / 4])
    body = b"x" * 1024
    with LocalPipeline(app, root / "app", root / "state",
                       options={"event_interval_s": 0.1, "table_grace_s": 1.0}) as p:
        for i in range(n):
            assert p.submit(f"t{i:05d}.bin", body)[0] == 200
        status = p.wait_for(lambda s: s["done"] >= n, 600, "all items", interval=0.2)
        p.wait_for(lambda s: all(v["finish"] >= n for v in s["tasks"].values()), 60,
                   "all events")
    rows = [json.loads(line) for line in
            (root / "state" / "circe" / "runtime.jsonl").read_text().splitlines()]
    durations: dict[str, list[float]] = {}
    for r in rows:
        if r["duration"] is not None:
            durations.setdefault(r["task"], []).append(r["duration"])
    mean = {t: statistics.fmean(v) for t, v in durations.items()}
    return status["throughput_items_per_s"], 1.0 / max(mean.values()), mean


def shaped(tmp: Path, n_small: int, n_big: int, mbit: float, big_kb: int) -> list[str]:
    """Home and a 2-stage chain on three nodes of a netns testbed with htb-shaped links
    (home -> n1 -> n2 -> home at ``mbit``); returns report lines."""
    import secrets

    from jupiter.local import testbed
    from jupiter.local.spec import NodeSpec, TestbedSpec

    deployment = "bc" + secrets.token_hex(3)
    state = tmp / "shaped"
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}.0/24"
    links = {"home": {"n1": mbit}, "n1": {"n2": mbit}, "n2": {"home": mbit}}
    spec = TestbedSpec(deployment=deployment, subnet=subnet, links=links,
                       nodes=(NodeSpec("home"), NodeSpec("n1"), NodeSpec("n2")))
    _, bed = testbed.apply(spec, str(state), mode="netns")
    addr = {n["name"]: n["address"] for n in bed["nodes"]}
    lines = []
    try:
        app = chain(state / "app", [0.0, 0.0])
        placement = {HOME: ("home", addr["home"]), "s0": ("n1", addr["n1"]),
                     "s1": ("n2", addr["n2"])}
        with LocalPipeline(app, state / "app", state, placement=placement,
                           deployment=deployment) as p:
            for i in range(n_small + 5):
                assert p.submit(f"w{i:05d}.bin", b"x" * 1024)[0] == 200
                p.wait_item(f"w{i:05d}")
            big = os.urandom(big_kb * 1024)
            for i in range(n_big):
                assert p.submit(f"b{i:05d}.bin", big)[0] == 200
            status = p.wait_for(lambda s: s["done"] >= n_small + 5 + n_big, 600, "big items",
                                interval=0.2)
            deadline = time.monotonic() + 30
            while len(read_items(state)) < n_small + 5 + n_big and time.monotonic() < deadline:
                time.sleep(0.1)
        rows = read_items(state)
        lat = [r["latency"] for r in rows if r["item"].startswith("w")][5:]
        done = sorted(r["completed"] for r in rows if r["item"].startswith("b"))
        skip = len(done) // 4  # steady state: leave out the pipeline's filling
        got = (len(done) - 1 - skip) / (done[-1] - done[skip])
        bound = mbit * 1e6 / 8 / len(big)
        lines.append(f"shaped testbed (netns, htb {mbit:g} Mbit/s on home->n1->n2->home, "
                     f"2 stages on n1 and n2): 1 KB item latency p50 "
                     f"{statistics.median(lat) * 1e3:.3f} ms (p90 {pct(lat, 0.9) * 1e3:.3f}, "
                     f"3 shaped hops)")
        lines.append(f"  {big_kb} KB items (n={n_big}, steady state): {got:.2f} items/s vs link "
                     f"bound {bound:.2f} items/s = {got / bound * 100:.1f}% "
                     f"(completed {status['completed']})")
    finally:
        testbed.destroy(deployment, str(state))
    return lines


def testbed_lines(tmp: Path, quick: bool) -> list[str]:
    try:
        from jupiter.local import testbed

        mode, why = testbed.resolve_mode("auto")
    except ImportError:
        return ["shaped testbed: jupiter.local.testbed not available: not measured"]
    if mode != "netns":
        return [f"shaped testbed: not measured ({why})"]
    return shaped(tmp, 20 if quick else 50, 24 if quick else 60, 20.0, 256)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=200, help="items per latency series")
    ap.add_argument("--tput-items", type=int, default=300, help="items for throughput")
    ap.add_argument("--work-ms", type=float, default=20.0, help="bottleneck stage work (ms)")
    ap.add_argument("--quick", action="store_true", help="fewer items")
    args = ap.parse_args()
    if args.quick:
        args.items, args.tput_items = 50, 100
    print(machine())
    with tempfile.TemporaryDirectory(prefix="bench-circe-") as d:
        tmp = Path(d)
        fl, fl_cpu = floor(args.items * 2, tmp, dir_fsync=False)
        fd, fd_cpu = floor(args.items * 2, tmp, dir_fsync=True)
        f50, fd50 = statistics.median(fl), statistics.median(fd)
        print(f"floor: aiohttp POST of 1 KB to another process that writes it durably "
              f"(n={len(fl)}, one at a time):")
        print(f"  write+fsync+rename:           p50 {f50 * 1e3:.3f} ms, p90 "
              f"{pct(fl, 0.9) * 1e3:.3f} ms, CPU {fl_cpu * 1e3:.3f} ms/request")
        print(f"  write+fsync+rename+fsync dir: p50 {fd50 * 1e3:.3f} ms, p90 "
              f"{pct(fd, 0.9) * 1e3:.3f} ms, CPU {fd_cpu * 1e3:.3f} ms/request")
        theirs, ours = push_client_cpu(args.items * 2, tmp)
        print(f"push client, CPU per 20 KB request (n={args.items * 2}, two rounds): aiohttp "
              f"{' / '.join(f'{c * 1e3:.3f}' for c in theirs)} ms, CIRCE's "
              f"(jupiter.circe.httpclient) {' / '.join(f'{c * 1e3:.3f}' for c in ours)} ms")
        lat1, _ = sequential(1, args.items, tmp)
        lat5, cpu5 = sequential(5, args.items, tmp)
        p1, p5 = statistics.median(lat1), statistics.median(lat5)
        hop = (p5 - p1) / 4
        print(f"latency of a 1 KB item (home: submitted -> result), n={len(lat5)}: 1 stage p50 "
              f"{p1 * 1e3:.3f} ms (p90 {pct(lat1, 0.9) * 1e3:.3f}); 5 stages p50 "
              f"{p5 * 1e3:.3f} ms (p90 {pct(lat5, 0.9) * 1e3:.3f})")
        print(f"per-hop overhead p50: {hop * 1e3:.3f} ms = {hop / f50:.2f}x the floor "
              f"(write+fsync+rename), {hop / fd50:.2f}x the floor with the folder fsync; "
              f"CPU per item of a task process {cpu5 * 1e3:.3f} ms = {cpu5 / fd_cpu:.2f}x the "
              f"floor's")
        ok = hop <= 2 * f50 and hop <= 0.003
        print(f"  goal <= 2x the floor and <= 3 ms p50: {'met' if ok else 'NOT met'}")
        got, bound, mean = throughput(args.tput_items, args.work_ms / 1e3, tmp)
        stages = ", ".join(f"{t} {v * 1e3:.2f} ms" for t, v in sorted(mean.items()))
        verdict = "met" if got >= 0.9 * bound else "NOT met"
        print(f"throughput, 4 stages ({args.tput_items} items; mean run time {stages}): "
              f"{got:.1f} items/s vs bottleneck bound {bound:.1f} items/s = "
              f"{got / bound * 100:.1f}% (goal >= 90%: {verdict})")
        for line in testbed_lines(tmp, args.quick):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
