"""The WAVE cost model: what a task costs on a node and what an edge costs on a link.

Everything the schedulers need is held in numpy arrays so that 1000 tasks on 100 nodes
schedule in well under a second:

* ``W[v, n]`` CPU seconds of task ``v`` on node ``n`` for one item, at the node's *burst*
  speed (a short run inside its CPU quota: ``burst_speed``, else ``speed``). From the
  profile's ``exec[task][node].seconds`` where measured; otherwise the task's *base cost*
  divided by the node's burst speed (1.0 = the reference). The base cost is the mean of
  the measured seconds normalised to the reference speed (``seconds * burst speed``) over
  the nodes where the task was measured, else ``default_seconds``. To that comes the
  dispatcher's own work per run (CIRCE receives, spools, hashes, joins, persists and
  pushes): ``task_overhead_s`` per run plus ``request_overhead_s`` per request the run
  receives or sends (one per edge and item; home's ingress also receives the submission),
  at reference speed, divided by the burst speed. Home's ingress and egress are the same
  work, so the ``source`` and ``sink`` pseudo-tasks (below) cost that much on home.
* ``cpu[v, n]`` CPU seconds per item: ``W`` plus the dispatcher's work per byte the run
  receives or sends, ``byte_overhead_s * (bytes in + bytes out)`` divided by the burst
  speed (``byte_cpu[n]`` seconds per byte). That work streams with the bytes: it overlaps
  a transfer over a link slower than it, so for one item an edge takes the longer of the
  two (below), while a stream of items pays it in full on the nodes.
* ``share[n]`` the cores node ``n`` sustains (``speed / burst_speed``: below 1 under a CPU
  quota, capped at ``cpu_count``; 1 when the burst speed is unknown). With a stream, a
  node's busy time per item is ``sum(cpu) / share``.
* ``cores[n]`` the tasks node ``n`` runs at once, one process per task (its profile's
  ``cpu_count``; 1 in ``from_matrices``, the literature's one task at a time). A CPU quota
  limits the CPU they use together, not how many run: a node with half a core on a
  two-core machine runs two tasks side by side until its quota of the period is spent.
* ``host[n]`` the machine a node runs on and ``host_cores[h]`` its cores: nodes whose
  profiles name the same non-empty ``host`` (emulated nodes on one machine) share its
  ``cpu_count`` cores; any other node is a machine of its own.
* an edge ``e = (u, v)`` carries ``edata[e, p]`` bytes when its parent ``u`` runs on node
  ``p``: the parent's ``output_bytes`` on that node (mean of the measured nodes, else
  ``default_output_bytes``). In ``split`` mode the parent's outputs are shared out one per
  child, so each child edge carries ``output_bytes / len(children)``; in ``broadcast``
  mode every child receives all of it.
* moving an edge's data from node ``p`` to node ``q != p`` costs ``latency + max(0, bytes
  - burst) / bandwidth`` (linear model; ``burst``: the bytes the link passes at once before
  its rate applies, as DRUPE measured it, 0 for none) or Jupiter's DRUPE quadratic
  ``a*x^2 + b*x + c`` ms with ``x`` in Kbit (``comm_model="quadratic"``). The burst
  only shortens one item's transfer: a stream keeps the bucket empty, so a link's busy
  time per item stays ``bytes / bandwidth``. HEFT's mean edge cost (the rank that orders
  the tasks) leaves the burst out. A crossing edge always pays the latency,
  even for an empty output: one request per item. On the same node there is no link.
  Either way the edge takes at least the dispatcher's per-byte work at its slower end
  (``bytes * max(byte_cpu[p], byte_cpu[q])``), 0 without ``byte_overhead_s``.

The home node (where CIRCE injects inputs and collects results) enters the graph as two
pseudo-tasks pinned to it: ``source`` (its edges to the ingress tasks carry
``input_bytes``; by default the ``input_bytes`` DRUPE's execution profiler fed each
ingress task) and ``sink`` (every task whose children include ``home`` sends its
output there). Transfers from home and back home are thus part of every schedule and of
the predicted latency.

``CostModel.from_matrices`` builds the same model from explicit cost tables (a
homogeneous network where an edge's cost is its data), as used in the scheduling
literature; tests and the benchmark use it.

This module is pure: data in, data out.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from jupiter.app.model import HOME, App
from jupiter.errors import InvalidInput, Problem
from jupiter.profile import ExecProfile, NodeProfile, Profile

COMM_MODELS = ("linear", "quadratic")
CFS_PERIOD_S = 0.1  # the CFS bandwidth period (Linux and Kubernetes default: 100 ms)


@dataclass
class CostModel:
    """Dense cost arrays for ``V`` vertices (tasks, then source/sink) on ``N`` nodes."""

    tasks: list[str]  # real task names; vertex i < len(tasks) is tasks[i]
    nodes: list[str]
    W: np.ndarray  # [V, N] compute seconds
    allowed: np.ndarray  # [V, N] bool: where each vertex may run
    esrc: np.ndarray  # [E] parent vertex
    edst: np.ndarray  # [E] child vertex
    edata: np.ndarray  # [E, N] bytes sent, by the parent's node
    lat: np.ndarray  # [N, N] seconds; 0 on the diagonal
    inv_bw: np.ndarray  # [N, N] seconds per byte; 0 on the diagonal
    quad: np.ndarray | None = None  # [3, N, N] (a, b, c) of time(ms) over Kbit, or None
    home: int | None = None  # node index of home
    source: int | None = None  # pseudo-task: home injects the inputs
    sink: int | None = None  # pseudo-task: home collects the results
    cpu_load: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] percent
    mem_load: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] percent
    pin: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [V] or -1
    share: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] sustained cores
    host: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # [N]
    host_cores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [H]
    cores: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] tasks run at once
    cpu: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [V, N] CPU per item
    byte_cpu: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [N] s per byte
    # [N, N] bytes a link passes at once before its rate applies (a shaper's bucket)
    link_burst: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # transfers over one link take turns in the latency simulation (real networks, with
    # the linear link model); the scheduling literature's models (from_matrices) and
    # Jupiter's quadratic one have links without contention
    link_contention: bool = False
    # [V, N] CPU an idle run costs above a warm one (cold caches); a task pays the share
    # ``cold_per_colocated_task`` of it per other task process on its node in a stream
    cold: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cold_per_colocated_task: float = 0.0
    # the share of its CPU per item a task pays more in a stream per other task process on
    # its node (more processes taking turns: the caches and the scheduler are shared)
    crowding_per_colocated_task: float = 0.0
    # the share of a quota-limited node's CPU quota of one CFS period that one item's runs
    # there may take in a mapping (list scheduling and the stream search; see item_cpu_cap)
    item_quota_share: float = 1.0

    def __post_init__(self) -> None:
        V, N = self.W.shape
        if self.pin.size == 0:
            self.pin = np.full(V, -1, dtype=np.int64)
        if self.share.size == 0:
            self.share = np.ones(N)
        if self.cores.size == 0:  # one task at a time
            self.cores = np.ones(N)
        if self.host.size == 0:  # every node a machine of its own
            self.host = np.arange(N, dtype=np.int64)
            self.host_cores = self.cores.copy()
        self.H = int(self.host_cores.size)
        # machines holding several nodes (a machine of one node adds no stage of its own)
        self.shared_host = np.bincount(self.host, minlength=self.H) > 1  # [H]
        self.shared_hosts = bool(self.shared_host.any())
        if self.cpu.size == 0:
            self.cpu = self.W
        if self.byte_cpu.size == 0:
            self.byte_cpu = np.zeros(N)
        if self.link_burst.size == 0:
            self.link_burst = np.zeros((N, N))
        if self.cold.size == 0:
            self.cold = np.zeros((V, N))
        self.per_byte = bool(self.byte_cpu.any())
        # busy seconds per item a task puts on its node when items stream (cpu / share)
        self.load = self.cpu / self.share[None, :]
        # the CPU one item's runs may take on each node ([N] seconds, inf without a quota):
        # ``item_quota_share`` of the quota of one CFS period. Above it, an item whose runs
        # there fall within one period exhausts its quota and waits for the next period
        # (up to CFS_PERIOD_S more), so a lone item's latency turns on where in a period it
        # arrives.
        self.item_cpu_cap = np.where(self.share < 1.0,
                                     self.item_quota_share * self.share * CFS_PERIOD_S, np.inf)
        self.item_cpu_capped = bool(np.isfinite(self.item_cpu_cap).any())
        if self.cpu_load.size == 0:
            self.cpu_load = np.zeros(N)
        if self.mem_load.size == 0:
            self.mem_load = np.zeros(N)
        self.pred: list[list[int]] = [[] for _ in range(V)]
        self.succ: list[list[int]] = [[] for _ in range(V)]
        for e, (u, v) in enumerate(zip(self.esrc.tolist(), self.edst.tolist(), strict=True)):
            self.succ[u].append(e)
            self.pred[v].append(e)
        self.node_index = {n: i for i, n in enumerate(self.nodes)}
        # mean compute over allowed nodes (HEFT's w-bar)
        masked = np.where(self.allowed, self.W, np.nan)
        with np.errstate(invalid="ignore"):
            self.mean_w = np.nan_to_num(np.nanmean(masked, axis=1), nan=0.0)
        self.mean_comm = self._mean_comm()
        self.topo = self._topological_order()
        self.topo_pos = [0] * V
        for i, v in enumerate(self.topo):
            self.topo_pos[v] = i
        self.edst_list: list[int] = self.edst.tolist()

    # ---- sizes ---------------------------------------------------------------------
    @property
    def V(self) -> int:
        return int(self.W.shape[0])

    @property
    def N(self) -> int:
        return int(self.W.shape[1])

    @property
    def T(self) -> int:
        return len(self.tasks)

    @property
    def E(self) -> int:
        return int(self.esrc.size)

    def vertex_name(self, v: int) -> str:
        if v < self.T:
            return self.tasks[v]
        return "(home:source)" if v == self.source else "(home:sink)"

    # ---- costs ---------------------------------------------------------------------
    def comm_row(self, e: int, p: int) -> np.ndarray:
        """Seconds to move edge ``e``'s data from node ``p`` to every node (at ``p`` itself:
        the per-byte work only, 0 without it)."""
        data = self.edata[e, p]
        if self.quad is None:
            row = _linear_seconds(self.lat[p], data, self.link_burst[p], self.inv_bw[p])
        else:
            x = data * 0.008  # bytes -> Kbit
            a, b, c = self.quad[0, p], self.quad[1, p], self.quad[2, p]
            row = np.maximum(0.0, (a * x * x + b * x + c) / 1000.0)
        if self.per_byte:
            return np.maximum(row, data * np.maximum(self.byte_cpu[p], self.byte_cpu))
        return row

    def comm(self, e: int, p: int, q: int) -> float:
        if p == q and not self.per_byte:
            return 0.0
        return float(self.comm_row(e, p)[q])

    def occupancy_row(self, e: int, p: int) -> np.ndarray:
        """Seconds edge ``e`` keeps each link ``p -> q`` busy (latency excluded: it overlaps)."""
        data = self.edata[e, p]
        if self.quad is None:
            return data * self.inv_bw[p]
        x = data * 0.008
        return np.maximum(0.0, (self.quad[0, p] * x * x + self.quad[1, p] * x) / 1000.0)

    def stream_cpu(self, assign: np.ndarray) -> np.ndarray:
        """CPU per item of every vertex ([V]) when items stream through ``assign``.

        ``cpu`` is a run right after another of the same task. Task processes sharing a node
        take turns on it, so a run finds its caches cooled by the others: each other task
        on the node adds the share ``cold_per_colocated_task`` (at most all) of the task's
        ``cold`` extra (its idle run over its warm run). And every process on a crowded
        node works harder for the same item, dispatcher and task code alike (measured on
        the reference machine: about 2-3 % more CPU per item for each other task process
        sharing a node under a CPU quota): each other task multiplies the task's CPU by
        ``1 + crowding_per_colocated_task``, without bound."""
        idx = np.arange(self.V)
        cpu = self.cpu[idx, assign]
        cold, crowding = self.cold_per_colocated_task, self.crowding_per_colocated_task
        if (cold <= 0 and crowding <= 0) or not self.T:
            return cpu
        others = np.maximum(np.bincount(assign[:self.T], minlength=self.N) - 1, 0)[assign]
        if cold > 0:
            cpu = cpu + self.cold[idx, assign] * np.minimum(1.0, cold * others)
        if crowding > 0:
            cpu = cpu * (1.0 + crowding * others)
        return cpu

    def item_cpu(self, assign: np.ndarray) -> np.ndarray:
        """[N] CPU seconds one lone item's runs take on each node under ``assign`` ([V]:
        ``W``, the dispatcher's work and home's ingress and egress included, as list
        scheduling counts them), to set beside ``item_cpu_cap``."""
        return np.bincount(assign, self.W[np.arange(self.V), assign], minlength=self.N)

    def edge_costs(self, assign: np.ndarray) -> np.ndarray:
        """[E] seconds each edge takes under the node assignment ``assign`` ([V])."""
        pu, pv = assign[self.esrc], assign[self.edst]
        data = self.edata[np.arange(self.E), pu]
        if self.quad is None:
            cost = _linear_seconds(self.lat[pu, pv], data, self.link_burst[pu, pv],
                                   self.inv_bw[pu, pv])
        else:
            x = data * 0.008
            q = self.quad[:, pu, pv]
            cost = np.maximum(0.0, (q[0] * x * x + q[1] * x + q[2]) / 1000.0)
        if self.per_byte:
            return np.maximum(cost, data * np.maximum(self.byte_cpu[pu], self.byte_cpu[pv]))
        return cost

    def edge_occupancy(self, assign: np.ndarray) -> np.ndarray:
        """[E] seconds each edge keeps its link busy under ``assign`` (0 on one node)."""
        pu, pv = assign[self.esrc], assign[self.edst]
        data = self.edata[np.arange(self.E), pu]
        if self.quad is None:
            return data * self.inv_bw[pu, pv]
        x = data * 0.008
        q = self.quad[:, pu, pv]
        return np.maximum(0.0, (q[0] * x * x + q[1] * x) / 1000.0)

    def occupancy_col(self, e: int, q: int) -> np.ndarray:
        """[N] link-busy seconds of edge ``e`` sent from each node ``p`` to node ``q``."""
        data = self.edata[e]
        if self.quad is None:
            return data * self.inv_bw[:, q]
        x = data * 0.008
        return np.maximum(0.0, (self.quad[0, :, q] * x * x + self.quad[1, :, q] * x) / 1000.0)

    def _mean_comm(self) -> np.ndarray:
        """HEFT's c-bar: each edge's cost averaged over ordered pairs of distinct nodes."""
        N, E = self.N, self.E
        if N < 2 or E == 0:
            return np.zeros(E)
        pairs = N * (N - 1)
        if self.quad is None:
            mean_lat = self.lat.sum() / pairs
            return mean_lat + self.edata @ self.inv_bw.sum(axis=1) / pairs
        x = self.edata * 0.008
        qa, qb, qc = (self.quad[i].sum(axis=1) for i in range(3))
        ms = ((x * x) @ qa + x @ qb + qc.sum()) / pairs
        return np.maximum(0.0, ms / 1000.0)

    def _topological_order(self) -> list[int]:
        indeg = [len(p) for p in self.pred]
        ready = [v for v in range(self.V) if indeg[v] == 0]
        order: list[int] = []
        i = 0
        while i < len(ready):
            v = ready[i]
            i += 1
            order.append(v)
            for e in self.succ[v]:
                c = int(self.edst[e])
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        if len(order) != self.V:
            stuck = [self.vertex_name(v) for v in range(self.V) if indeg[v] > 0]
            raise InvalidInput(
                [Problem("app", f"the task graph has a cycle through {', '.join(stuck[:5])}")],
                "app",
            )
        return order

    # ---- constructors --------------------------------------------------------------
    @classmethod
    def from_matrices(
        cls,
        tasks: Sequence[str],
        nodes: Sequence[str],
        W: np.ndarray | Sequence[Sequence[float]],
        edges: Sequence[tuple[str, str, float]],
        *,
        link_scale: np.ndarray | None = None,
    ) -> CostModel:
        """A model from explicit tables, as in the scheduling literature.

        ``W[i][n]`` is task ``tasks[i]``'s cost on node ``nodes[n]``; each edge
        ``(parent, child, cost)`` costs ``cost`` between two distinct nodes (times
        ``link_scale[p, q]`` when given) and 0 on the same node. No home node.
        """
        names = list(tasks)
        index = {t: i for i, t in enumerate(names)}
        Wa = np.asarray(W, dtype=float)
        N = len(nodes)
        if Wa.shape != (len(names), N):
            raise ValueError(f"W must be {len(names)}x{N}, got {Wa.shape}")
        esrc = np.array([index[u] for u, _, _ in edges], dtype=np.int64)
        edst = np.array([index[v] for _, v, _ in edges], dtype=np.int64)
        edata = np.repeat(np.array([c for _, _, c in edges], dtype=float)[:, None], N, axis=1)
        inv_bw = np.ones((N, N)) - np.eye(N)
        if link_scale is not None:
            inv_bw = inv_bw * np.asarray(link_scale, dtype=float)
        return cls(
            tasks=names,
            nodes=list(nodes),
            W=Wa,
            allowed=np.ones_like(Wa, dtype=bool),
            esrc=esrc,
            edst=edst,
            edata=edata.reshape(len(edges), N),
            lat=np.zeros((N, N)),
            inv_bw=inv_bw,
        )


def _input_bytes_for(
    input_bytes: float | MappingABC[str, float] | None, task: str, problems: list[Problem]
) -> float:
    if input_bytes is None:
        return 0.0
    value = input_bytes.get(task, 0.0) if isinstance(input_bytes, MappingABC) else input_bytes
    try:
        value = float(value)
    except (TypeError, ValueError):
        problems.append(Problem("options", f"must be a number of bytes, got {value!r}",
                                field="input_bytes"))
        return 0.0
    if value < 0:
        problems.append(Problem("options", "must be >= 0", field="input_bytes"))
        return 0.0
    return value


def build_cost_model(
    app: App,
    profile: Profile,
    nodes: Sequence[str],
    *,
    home: str | None = HOME,
    use_home: bool = False,
    input_bytes: float | MappingABC[str, float] | None = None,
    comm_model: str = "linear",
    default_seconds: float = 1.0,
    default_output_bytes: float = 0.0,
    task_overhead_s: float = 0.0,
    byte_overhead_s: float = 0.0,
    request_overhead_s: float = 0.0,
    cold_per_colocated_task: float = 0.0,
    crowding_per_colocated_task: float = 0.0,
    item_quota_share: float = 1.0,
) -> CostModel:
    """Build the cost model of ``app`` on ``nodes`` from a DRUPE ``profile``.

    ``nodes`` are the candidate nodes; ``home`` (added when missing from ``nodes``) is
    where inputs come from and results go to. Tasks run on every node but home, unless
    ``use_home`` is true or a task's ``pin`` names it. Raises :class:`InvalidInput`
    naming every missing or wrong profile field, unknown pin, or bad option.
    ``task_overhead_s``, ``request_overhead_s`` and ``byte_overhead_s`` are the
    dispatcher's own CPU work per task run, per request the run receives or sends (one per
    edge and item; home's ingress also receives the submission) and per byte it receives or
    sends, at reference speed (CIRCE: receive, hash, spool, join, persist, push); see the
    module documentation. ``cold_per_colocated_task`` and ``crowding_per_colocated_task``:
    see :meth:`CostModel.stream_cpu`. ``item_quota_share``: see ``CostModel.item_cpu_cap``.
    ``input_bytes`` ``None`` takes the input size DRUPE profiled
    each ingress task with (0 when not recorded).
    """
    problems: list[Problem] = []
    if comm_model not in COMM_MODELS:
        problems.append(Problem("options", f"must be one of {', '.join(COMM_MODELS)}, "
                                f"got {comm_model!r}", field="comm_model"))
    node_list = list(dict.fromkeys(nodes))
    if home is not None and home not in node_list:
        node_list.append(home)
    if not node_list:
        problems.append(Problem("options", "no nodes to schedule on", field="nodes"))
    for n in node_list:
        np_ = profile.nodes.get(n)
        if np_ is None:
            problems.append(Problem(
                "profile", f"node {n!r} is not in the profile; profile it with DRUPE or "
                "leave it out of the node list", field=f"nodes.{n}"))
        elif not np_.speed > 0:
            problems.append(Problem("profile", f"speed must be > 0, got {np_.speed!r}",
                                    field=f"nodes.{n}.speed"))
    known = [n for n in node_list if n in profile.nodes]  # the others are reported above
    for s in known:
        for d in known:
            if s == d:
                continue
            lp = profile.link(s, d)
            if lp is None:
                problems.append(Problem(
                    "profile", f"no link measured from {s!r} to {d!r}; wait for DRUPE to "
                    "finish (profile 'complete': true) or leave a node out",
                    field=f"links.{s}.{d}"))
            elif comm_model == "quadratic" and not any(lp.quad_ms_kbit):
                problems.append(Problem(
                    "profile", "quadratic model requested but not measured (all zero); use "
                    "comm_model 'linear'", field=f"links.{s}.{d}.quad_ms_kbit"))
    names = [t.name for t in app.tasks]
    task_index = {n: i for i, n in enumerate(names)}
    workers = [i for i, n in enumerate(node_list) if n != home or use_home]
    for t in app.tasks:
        if t.pin is not None and t.pin not in node_list:
            problems.append(Problem(
                app.source or "app", f"task {t.name!r} is pinned to {t.pin!r}, which is not "
                f"among the nodes ({', '.join(node_list)})", line=t.line,
                field=f"tasks.{t.name}.pin"))
        for c in t.children:
            if c != HOME and c not in task_index:
                problems.append(Problem(app.source or "app",
                                        f"task {t.name!r} has unknown child {c!r}",
                                        line=t.line, field=f"tasks.{t.name}.children"))
    if node_list and not workers and any(t.pin is None for t in app.tasks):
        problems.append(Problem("options", f"no node to run tasks on: only home {home!r} is "
                                "listed and use_home is false", field="nodes"))
    if not app.tasks:
        problems.append(Problem(app.source or "app", "the app has no tasks", field="tasks"))
    for label, value in (("default_seconds", default_seconds),
                         ("default_output_bytes", default_output_bytes),
                         ("task_overhead_s", task_overhead_s),
                         ("request_overhead_s", request_overhead_s),
                         ("byte_overhead_s", byte_overhead_s),
                         ("cold_per_colocated_task", cold_per_colocated_task),
                         ("crowding_per_colocated_task", crowding_per_colocated_task)):
        if not isinstance(value, int | float) or value < 0:
            problems.append(Problem("options", f"must be a number >= 0, got {value!r}",
                                    field=label))
    if (not isinstance(item_quota_share, int | float) or isinstance(item_quota_share, bool)
            or not item_quota_share > 0):
        problems.append(Problem("options", f"must be a number > 0, got {item_quota_share!r}",
                                field="item_quota_share"))
    for t, per in profile.exec.items():
        for n, ep in per.items():
            if ep.seconds < 0 or ep.output_bytes < 0:
                problems.append(Problem("profile", "seconds and output_bytes must be >= 0",
                                        field=f"exec.{t}.{n}"))
    ingress = app.ingress
    in_bytes = {t: _input_bytes_for(input_bytes, t, problems) if input_bytes is not None
                else _profiled_input_bytes(profile, t) for t in ingress}
    if problems:
        raise InvalidInput(problems, "schedule input")

    N = len(node_list)
    T = len(names)
    has_home = home is not None
    V = T + (2 if has_home else 0)
    profiles = [profile.nodes[n] for n in node_list]
    speed = np.array([p.speed for p in profiles], dtype=float)
    burst = np.array([p.burst_speed if p.burst_speed > 0 else p.speed for p in profiles])
    pos = {n: i for i, n in enumerate(node_list)}
    W = np.zeros((V, N))
    W_warm = np.zeros((V, N))  # a run right after another: what a stream pays per item
    out = np.zeros((T, N))
    for i, t in enumerate(app.tasks):
        per = profile.exec.get(t.name) or profile.exec.get(t.key) or {}
        known = [(pos[n], ep) for n, ep in per.items() if n in pos]
        measured_all = [(n, ep) for n, ep in per.items() if n in profile.nodes]
        if measured_all:
            at_ref = [(ep, _burst_speed(profile.nodes[n])) for n, ep in measured_all]
            base = float(np.mean([ep.seconds * b for ep, b in at_ref]))
            base_warm = float(np.mean([_warm_seconds(ep) * b for ep, b in at_ref]))
            base_out = float(np.mean([ep.output_bytes for _, ep in measured_all]))
        else:
            base = base_warm = float(default_seconds)
            base_out = float(default_output_bytes)
        W[i], W_warm[i] = base / burst, base_warm / burst
        out[i] = base_out
        for j, ep in known:
            W[i, j], W_warm[i, j] = ep.seconds, _warm_seconds(ep)
            out[i, j] = ep.output_bytes
    allowed = np.zeros((V, N), dtype=bool)
    allowed[:T, workers] = True
    home_idx = pos[home] if has_home else None
    pin = np.full(V, -1, dtype=np.int64)
    for i, t in enumerate(app.tasks):
        if t.pin is not None:
            allowed[i] = False
            allowed[i, pos[t.pin]] = True
            pin[i] = pos[t.pin]
    source = sink = None
    esrc: list[int] = []
    edst: list[int] = []
    rows: list[np.ndarray] = []
    if has_home:
        source, sink = T, T + 1
        allowed[source, home_idx] = True
        allowed[sink, home_idx] = True
        for t in ingress:
            esrc.append(source)
            edst.append(task_index[t])
            rows.append(np.full(N, in_bytes[t]))
    for i, t in enumerate(app.tasks):
        share = out[i] / len(t.children) if t.mode == "split" and t.children else out[i]
        for c in t.children:
            if c == HOME:
                if sink is None:
                    continue
                esrc.append(i)
                edst.append(sink)
            else:
                esrc.append(i)
                edst.append(task_index[c])
            rows.append(share)
    edata = np.array(rows, dtype=float).reshape(len(rows), N)
    src, dst = np.array(esrc, dtype=np.int64), np.array(edst, dtype=np.int64)
    requests = np.zeros(V)  # requests per run: one per edge in and out, per item
    if source is not None:
        requests[source] = 1.0  # home's ingress also receives the submission
    np.add.at(requests, src, 1.0)
    np.add.at(requests, dst, 1.0)
    per_run = task_overhead_s + request_overhead_s * requests  # the dispatcher's work per run
    cold = np.maximum(W - W_warm, 0.0)  # the task code's own cold extra
    W += per_run[:, None] / burst[None, :]  # home's ingress and egress too
    W_warm += per_run[:, None] / burst[None, :]
    moved = np.zeros(V)  # bytes in + out per run (mean over the parent's nodes)
    if rows and N:
        mean_data = edata.mean(axis=1)
        np.add.at(moved, src, mean_data)
        np.add.at(moved, dst, mean_data)
    byte_cpu = byte_overhead_s / burst if N else np.zeros(0)
    cpu_item = W_warm + moved[:, None] * byte_cpu[None, :]
    lat = np.zeros((N, N))
    inv_bw = np.zeros((N, N))
    link_burst = np.zeros((N, N))
    quad = np.zeros((3, N, N)) if comm_model == "quadratic" else None
    for a, s in enumerate(node_list):
        for b, d in enumerate(node_list):
            if a == b:
                continue
            lp = profile.links[s][d]
            lat[a, b] = lp.latency_s
            inv_bw[a, b] = 8.0 / lp.bandwidth_bps
            link_burst[a, b] = lp.burst_bytes
            if quad is not None:
                quad[:, a, b] = lp.quad_ms_kbit
    cpu = np.array([p.cpu_percent for p in profiles], dtype=float)
    mem = np.array([p.mem_percent for p in profiles], dtype=float)
    cores = np.array([max(1, p.cpu_count) for p in profiles], dtype=float)
    share = np.where([p.burst_speed > 0 for p in profiles],
                     np.minimum(cores, speed / burst), 1.0) if N else np.ones(0)
    machines: dict[str, int] = {}
    host = np.array([machines.setdefault(p.host or f"\0{i}", len(machines))
                     for i, p in enumerate(profiles)], dtype=np.int64)
    host_cores = np.ones(len(machines))
    for i, h in enumerate(host.tolist()):  # a machine's cores, shared by its nodes
        host_cores[h] = cores[i]
    return CostModel(
        tasks=names,
        nodes=node_list,
        W=W,
        allowed=allowed,
        esrc=src,
        edst=dst,
        edata=edata,
        lat=lat,
        inv_bw=inv_bw,
        quad=quad,
        home=home_idx,
        source=source,
        sink=sink,
        cpu_load=cpu,
        mem_load=mem,
        pin=pin,
        share=share,
        host=host,
        host_cores=host_cores,
        cores=cores,
        cpu=cpu_item,
        byte_cpu=byte_cpu,
        link_burst=link_burst,
        link_contention=quad is None,
        cold=cold,
        cold_per_colocated_task=float(cold_per_colocated_task),
        crowding_per_colocated_task=float(crowding_per_colocated_task),
        item_quota_share=float(item_quota_share),
    )


def _warm_seconds(ep: ExecProfile) -> float:
    """One run right after another, as in a busy stream; ``seconds`` where not measured."""
    return ep.warm_seconds if ep.warm_seconds > 0 else ep.seconds


def _linear_seconds(lat: np.ndarray, data: np.ndarray | float, burst: np.ndarray,
                    inv_bw: np.ndarray) -> np.ndarray:
    """One item's transfer on links (the linear model, as ``LinkProfile.transfer_seconds``):
    latency + the bytes beyond the link's burst / bandwidth."""
    return lat + np.maximum(0.0, data - burst) * inv_bw


def _burst_speed(node: NodeProfile) -> float:
    return node.burst_speed if node.burst_speed > 0 else node.speed


def _profiled_input_bytes(profile: Profile, task: str) -> float:
    """Mean input size DRUPE profiled ``task`` with (0 when none was recorded)."""
    sizes = [ep.input_bytes for ep in (profile.exec.get(task) or {}).values()
             if ep.input_bytes > 0]
    return float(np.mean(sizes)) if sizes else 0.0
