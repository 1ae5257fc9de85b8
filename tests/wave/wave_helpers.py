"""Builders for WAVE tests: apps, profiles and the published example graphs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jupiter.app.model import App, Task
from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile
from jupiter.wave.cost import CostModel

# Topcuoglu, Hariri & Wu 2002, Fig. 2: computation costs on P1..P3 and edge costs.
HEFT_W = [[14, 16, 9], [13, 19, 18], [11, 13, 19], [13, 8, 17], [12, 13, 10],
          [13, 16, 9], [7, 15, 11], [5, 11, 14], [18, 12, 20], [21, 7, 16]]
HEFT_EDGES = [(1, 2, 18), (1, 3, 12), (1, 4, 9), (1, 5, 11), (1, 6, 14), (2, 8, 19),
              (2, 9, 16), (3, 7, 23), (4, 8, 27), (4, 9, 23), (5, 9, 13), (6, 8, 15),
              (7, 10, 17), (8, 10, 11), (9, 10, 13)]

# Arabnejad & Barbosa 2014, Fig. 3: the PEFT paper's own sample graph.
PEFT_W = [[22, 21, 36], [22, 18, 18], [32, 27, 43], [7, 10, 4], [29, 27, 35],
          [26, 17, 24], [14, 25, 30], [29, 23, 36], [15, 21, 8], [13, 16, 33]]
PEFT_EDGES = [(0, 1, 17), (0, 2, 31), (0, 3, 29), (0, 4, 13), (0, 5, 7), (1, 7, 3),
              (1, 8, 30), (2, 6, 16), (3, 7, 11), (3, 8, 7), (4, 8, 57), (5, 7, 5),
              (6, 9, 9), (7, 9, 42), (8, 9, 7)]


def heft_paper_model() -> CostModel:
    names = [f"n{i}" for i in range(1, 11)]
    return CostModel.from_matrices(names, ["P1", "P2", "P3"], HEFT_W,
                                   [(f"n{a}", f"n{b}", c) for a, b, c in HEFT_EDGES])


def peft_paper_model() -> CostModel:
    names = [f"T{i}" for i in range(10)]
    return CostModel.from_matrices(names, ["P0", "P1", "P2"], PEFT_W,
                                   [(f"T{a}", f"T{b}", c) for a, b, c in PEFT_EDGES])


def task(name: str, children: Iterable[str], *, mode: str = "broadcast", pin: str | None = None,
         num_inputs: int = 1) -> Task:
    return Task(name=name, key=name.replace("_", "-"), script=f"scripts/{name}.py",
                children=tuple(children), mode=mode, pin=pin,  # type: ignore[arg-type]
                num_inputs=num_inputs)


def make_app(children: Mapping[str, Iterable[str]], *, name: str = "app",
             pins: Mapping[str, str] | None = None, modes: Mapping[str, str] | None = None,
             static: Mapping[str, str] | None = None) -> App:
    pins = pins or {}
    modes = modes or {}
    parents: dict[str, int] = {}
    for cs in children.values():
        for c in cs:
            parents[c] = parents.get(c, 0) + 1
    tasks = tuple(task(t, cs, pin=pins.get(t), mode=modes.get(t, "broadcast"),
                       num_inputs=max(1, parents.get(t, 1)))
                  for t, cs in children.items())
    return App(name=name, tasks=tasks, static_mapping=dict(static or {}))


def make_profile(speeds: Mapping[str, float], *, latency: float = 0.01,
                 bandwidth_bps: float = 8e6,
                 links: Mapping[tuple[str, str], tuple[float, float]] | None = None,
                 exec_: Mapping[str, Mapping[str, tuple[float, int]]] | None = None,
                 loads: Mapping[str, tuple[float, float]] | None = None,
                 quad: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Profile:
    """Every link ``latency``/``bandwidth_bps`` unless overridden in ``links``; exec
    entries ``{task: {node: (seconds, output_bytes)}}``; loads ``{node: (cpu%, mem%)}``."""
    links = links or {}
    loads = loads or {}
    return Profile(
        nodes={n: NodeProfile(cpu_count=2, speed=s, cpu_percent=loads.get(n, (0, 0))[0],
                              mem_percent=loads.get(n, (0, 0))[1]) for n, s in speeds.items()},
        links={s: {d: LinkProfile(latency_s=links.get((s, d), (latency, bandwidth_bps))[0],
                                  bandwidth_bps=links.get((s, d), (latency, bandwidth_bps))[1],
                                  quad_ms_kbit=quad)
                   for d in speeds if d != s} for s in speeds},
        exec={t: {n: ExecProfile(seconds=v[0], output_bytes=v[1]) for n, v in per.items()}
              for t, per in (exec_ or {}).items()},
        complete=True,
        generated_at=1_764_000_000.0,
    )


def dnad_app() -> App:
    """The 14-task network anomaly detection app of the original Jupiter."""
    children: dict[str, list[str]] = {"local_pro": [f"aggregate{i}" for i in range(3)]}
    for i in range(3):
        children[f"aggregate{i}"] = [f"simple_detector{i}", f"astute_detector{i}"]
        children[f"simple_detector{i}"] = [f"fusion_center{i}"]
        children[f"astute_detector{i}"] = [f"fusion_center{i}"]
        children[f"fusion_center{i}"] = ["global_fusion"]
    children["global_fusion"] = ["home"]
    return make_app(children, name="dnad", modes={"local_pro": "split"})


def dnad_profile() -> Profile:
    speeds = {"home": 1.0, "edge1": 1.0, "edge2": 0.8, "cloud1": 3.0, "pi1": 0.3}
    slow = {(s, d): (0.03, 5e6) for s in speeds for d in speeds
            if s != d and "cloud1" in (s, d)}
    app = dnad_app()
    return make_profile(speeds, latency=0.002, bandwidth_bps=50e6, links=slow,
                        exec_={t.name: {n: (0.05 / sp, 20_000) for n, sp in speeds.items()}
                               for t in app.tasks},
                        loads={"pi1": (60.0, 70.0)})
