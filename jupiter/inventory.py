"""The inventory model: which nodes exist, their roles and the emulated network.

Built from what an Ansible filter receives (``groups`` and ``hostvars``) by
:func:`inventory_from_hostvars`, which checks everything and raises
:class:`~jupiter.errors.InvalidInput` naming the host and the variable of every problem.
See docs/inventory.md for the variables.

* group ``home``: exactly one host (the home node: ingress/egress, profiler home, WAVE);
* group ``workers``: at least one host; a host may not be in both groups;
* per host: ``k8s_hostname`` (the Kubernetes node name, default the inventory name),
  ``jupiter_cpu_share`` (CPU of the emulated node in cores, ``0 < x <= cores``, default 1),
  ``jupiter_uplink_mbit`` (default 100), ``jupiter_delay_ms`` (one-way delay between the
  node and the network core, default 0: a link ``s -> d`` delays by both ends' sum);
* for all hosts (group_vars/all): ``jupiter_target`` (``local`` | ``kubernetes``),
  ``jupiter_app``, ``jupiter_deployment`` (a DNS label), ``jupiter_links``
  (``{src: {dst: mbit}}`` overriding the default link rate ``min(uplink src, uplink dst)``).

Pure: no Ansible import, no I/O.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jupiter.app.model import is_dns_label, safe_key
from jupiter.errors import InvalidInput, Problem
from jupiter.local.spec import MAX_DELAY_MS, tcp_congestion_problem

SCHEMA = "jupiter.inventory/v1"
TARGETS = ("local", "kubernetes")
DEFAULT_UPLINK_MBIT = 100.0
DEFAULT_CPU_SHARE = 1.0
DEFAULT_DEPLOYMENT = "jupiter"
#: deployment names above this length make Kubernetes object names
#: ``<deployment>-circe-<task key>`` longer than 63 characters for the longest task keys
DEPLOYMENT_SOFT_MAX = 16
#: the inventory variables this module reads
HOST_VARS = ("k8s_hostname", "jupiter_cpu_share", "jupiter_uplink_mbit", "jupiter_delay_ms")
SHARED_VARS = ("jupiter_target", "jupiter_app", "jupiter_deployment", "jupiter_links")
#: shared variables that must be the same on every host but are used by other components
CHECKED_SHARED_VARS = ("jupiter_scheduler", "jupiter_run_sample_input", "jupiter_namespace",
                       "jupiter_tcp_congestion")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_APP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

Role = Literal["home", "worker"]


@dataclass(frozen=True)
class Node:
    """One inventory host (a real machine, or an emulated one on the local target)."""

    name: str
    role: Role
    k8s_hostname: str | None = None
    cpu_share: float = DEFAULT_CPU_SHARE
    uplink_mbit: float = DEFAULT_UPLINK_MBIT
    delay_ms: float = 0.0  # one-way delay to the network core (local target)
    vars: dict[str, Any] = field(default_factory=dict)  # other jupiter_* host variables
    key: str = ""  # DNS-1123 label, unique in the inventory (derived from name if empty)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", safe_key(self.name))

    @property
    def hostname(self) -> str:
        """The Kubernetes node name (``kubernetes.io/hostname``)."""
        return self.k8s_hostname or self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "role": self.role,
            "k8s_hostname": self.k8s_hostname,
            "hostname": self.hostname,
            "cpu_share": self.cpu_share,
            "uplink_mbit": self.uplink_mbit,
            "delay_ms": self.delay_ms,
            "vars": dict(self.vars),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Node:
        return cls(
            name=data["name"],
            role=data["role"],
            k8s_hostname=data.get("k8s_hostname"),
            cpu_share=float(data.get("cpu_share", DEFAULT_CPU_SHARE)),
            uplink_mbit=float(data.get("uplink_mbit", DEFAULT_UPLINK_MBIT)),
            delay_ms=float(data.get("delay_ms", 0.0)),
            vars=dict(data.get("vars") or {}),
            key=data.get("key") or "",
        )


@dataclass(frozen=True)
class Inventory:
    """The validated inventory: home first, then the workers in inventory order."""

    nodes: tuple[Node, ...]
    target: str = "local"
    app: str | None = None
    deployment: str = DEFAULT_DEPLOYMENT
    links: dict[str, dict[str, float]] = field(default_factory=dict)  # explicit overrides
    vars: dict[str, Any] = field(default_factory=dict)  # other shared jupiter_* variables

    @property
    def home(self) -> Node:
        for n in self.nodes:
            if n.role == "home":
                return n
        raise LookupError("inventory has no home node")

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def namespace(self) -> str:
        """Kubernetes namespace: ``jupiter_namespace`` when set, else the deployment name."""
        return str(self.vars.get("jupiter_namespace") or self.deployment)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def link_mbit(self, src: str, dst: str) -> float:
        """Rate of the directed link src -> dst: ``jupiter_links`` else the smaller uplink."""
        explicit = self.links.get(src, {}).get(dst)
        if explicit is not None:
            return float(explicit)
        return min(self.node(src).uplink_mbit, self.node(dst).uplink_mbit)

    def link_matrix(self) -> dict[str, dict[str, float]]:
        """``link_mbit`` for every ordered pair of distinct nodes."""
        return {a: {b: self.link_mbit(a, b) for b in self.names if b != a} for a in self.names}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "app": self.app,
            "deployment": self.deployment,
            "namespace": self.namespace,
            "home": self.home.name,
            "workers": [n.name for n in self.workers],
            "nodes": [n.to_dict() for n in self.nodes],
            "links": {s: dict(d) for s, d in self.links.items()},
            "link_mbit": self.link_matrix(),
            "vars": dict(self.vars),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Inventory:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"inventory: expected schema {SCHEMA!r}, got {data.get('schema')!r}")
        return cls(
            nodes=tuple(Node.from_dict(n) for n in data["nodes"]),
            target=data.get("target", "local"),
            app=data.get("app"),
            deployment=data.get("deployment", DEFAULT_DEPLOYMENT),
            links={
                s: {d: float(v) for d, v in m.items()} for s, m in (data.get("links") or {}).items()
            },
            vars=dict(data.get("vars") or {}),
        )


# ---- building from Ansible's view ---------------------------------------------------------


def _plain(value: Any) -> Any:
    """Deep copy into plain dict/list/str/int/float/bool/None (Ansible wraps its values)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _number(value: Any) -> float | None:
    """A real number from an int/float or a numeric string; None otherwise (bools too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _host_vars(hostvars: Mapping[str, Any], host: str) -> dict[str, Any]:
    """The variables of ``host`` this module cares about (k8s_hostname and jupiter_*)."""
    hv = hostvars[host] if host in hostvars else {}  # noqa: SIM401 (HostVars has no .get)
    out: dict[str, Any] = {}
    for key in list(hv.keys()):
        k = str(key)
        if k == "k8s_hostname" or k.startswith("jupiter_"):
            out[k] = _plain(hv[key])
    return out


def inventory_from_hostvars(
    groups: Mapping[str, Any],
    hostvars: Mapping[str, Any],
    *,
    cores: int | None = None,
    source: str = "inventory",
) -> Inventory:
    """Build and validate the :class:`Inventory` from Ansible's ``groups`` and ``hostvars``.

    ``cores`` bounds ``jupiter_cpu_share`` on the local target (default: this machine's CPU
    count, which is what the local target emulates on). ``source`` names the inventory in
    messages. Raises :class:`InvalidInput` with every problem, naming host and variable.
    """
    inv, _ = check_inventory(groups, hostvars, cores=cores, source=source)
    return inv


def check_inventory(
    groups: Mapping[str, Any],
    hostvars: Mapping[str, Any],
    *,
    cores: int | None = None,
    source: str = "inventory",
) -> tuple[Inventory, list[Problem]]:
    """Like :func:`inventory_from_hostvars` but also returns the warnings."""
    cores = cores or os.cpu_count() or 1
    problems: list[Problem] = []

    def err(msg: str, host: str | None = None, var: str | None = None) -> None:
        where = f"host {host!r}: " if host else ""
        problems.append(Problem(source, where + msg, field=var))

    def warn(msg: str, host: str | None = None, var: str | None = None) -> None:
        where = f"host {host!r}: " if host else ""
        problems.append(Problem(source, where + msg, field=var, severity="warning"))

    def members(group: str) -> list[str]:
        value = groups.get(group) if isinstance(groups, Mapping) else None
        if value is None:
            return []
        return [str(h) for h in value]

    home_hosts = members("home")
    worker_hosts = members("workers")
    if not home_hosts:
        err("no host in group 'home'; put exactly one host (the home node) in group home")
    elif len(home_hosts) > 1:
        err(
            f"group 'home' has {len(home_hosts)} hosts ({', '.join(home_hosts)}); "
            "it must have exactly one"
        )
    if not worker_hosts:
        err("no host in group 'workers'; put at least one worker node in group workers")
    for h in home_hosts:
        if h in worker_hosts:
            err("is in both groups home and workers; a node is either home or a worker", h)
    for extra in members("all"):
        if extra not in home_hosts and extra not in worker_hosts and extra != "localhost":
            warn("is in neither group home nor group workers; it is ignored", extra)

    ordered: list[tuple[str, Role]] = []
    seen: set[str] = set()
    for h in home_hosts[:1]:
        ordered.append((h, "home"))
        seen.add(h)
    for h in worker_hosts:
        if h in seen:
            continue
        if h in home_hosts:
            continue
        ordered.append((h, "worker"))
        seen.add(h)

    all_vars = {h: _host_vars(hostvars, h) for h, _ in ordered}

    # shared variables: the same on every host (they belong in group_vars/all)
    shared: dict[str, Any] = {}
    for var in (*SHARED_VARS, *CHECKED_SHARED_VARS):
        values = {h: v[var] for h, v in all_vars.items() if var in v}
        if not values:
            continue
        distinct = {repr(v) for v in values.values()}
        if len(distinct) > 1:
            listing = ", ".join(f"{h}={values[h]!r}" for h in values)
            err(
                f"{var} differs between hosts ({listing}); set it once in group_vars/all",
                var=var,
            )
        shared[var] = next(iter(values.values()))
        if len(values) < len(all_vars) and len(distinct) == 1:
            missing = [h for h in all_vars if h not in values]
            err(
                f"{var} is set on some hosts only (missing on {', '.join(missing)}); "
                "set it once in group_vars/all",
                var=var,
            )

    # other jupiter_* variables: set alike on every host (group_vars/all) -> Inventory.vars,
    # else per host -> Node.vars
    known = (*HOST_VARS, *SHARED_VARS, *CHECKED_SHARED_VARS)
    unknown = sorted({k for v in all_vars.values() for k in v if k not in known})
    for k in unknown:
        values = [v[k] for v in all_vars.values() if k in v]
        if len(values) == len(all_vars) and len({repr(x) for x in values}) == 1:
            shared[k] = values[0]
    for k in unknown:
        close = difflib.get_close_matches(k, known, n=1, cutoff=0.85)
        if close:
            hosts = [h for h, v in all_vars.items() if k in v]
            warn(
                f"unknown variable {k} (did you mean {close[0]}?) on "
                + ("every host" if k in shared else ", ".join(hosts)),
                var=k,
            )
    namespace = shared.get("jupiter_namespace")
    if namespace not in (None, "") and (
        not isinstance(namespace, str) or not is_dns_label(namespace)
    ):
        err(
            f"jupiter_namespace {namespace!r} must be a DNS label (lower-case letters, digits "
            "and '-'), or empty for the deployment name",
            var="jupiter_namespace",
        )

    if "jupiter_tcp_congestion" in shared:
        problem = tcp_congestion_problem(shared["jupiter_tcp_congestion"])
        if problem:
            err(f"jupiter_tcp_congestion {problem}", var="jupiter_tcp_congestion")

    target = shared.get("jupiter_target", "local")
    if target not in TARGETS:
        err(
            f"jupiter_target must be one of {', '.join(TARGETS)}, got {target!r}",
            var="jupiter_target",
        )
    app = shared.get("jupiter_app")
    if app is not None and (not isinstance(app, str) or not _APP_NAME.match(app)):
        err(
            f"jupiter_app must be the name of a folder under task_specific_files/, got {app!r}",
            var="jupiter_app",
        )
    deployment = shared.get("jupiter_deployment", DEFAULT_DEPLOYMENT)
    if not isinstance(deployment, str) or not is_dns_label(deployment):
        err(
            f"jupiter_deployment {deployment!r} must be a DNS label: lower-case letters, "
            "digits and '-', starting and ending with a letter or digit, at most 63 characters",
            var="jupiter_deployment",
        )
    elif len(deployment) > DEPLOYMENT_SOFT_MAX:
        warn(
            f"jupiter_deployment {deployment!r} is longer than {DEPLOYMENT_SOFT_MAX} "
            "characters; Kubernetes names '<deployment>-circe-<task>' may be truncated",
            var="jupiter_deployment",
        )

    nodes: list[Node] = []
    used_keys: set[str] = set()
    hostnames: dict[str, str] = {}
    for h, role in ordered:
        hv = all_vars[h]
        k8s = hv.get("k8s_hostname")
        valid = isinstance(k8s, str) and len(k8s) <= 253 and _DNS_SUBDOMAIN.match(k8s)
        if k8s is not None and not valid:
            err(
                f"k8s_hostname {k8s!r} is not a valid Kubernetes node name (lower-case "
                "DNS name, e.g. worker-1 or node1.example.org)",
                h,
                "k8s_hostname",
            )
            k8s = None
        hostname = k8s or h
        if hostname in hostnames:
            warn(
                f"runs on the same Kubernetes node {hostname!r} as host {hostnames[hostname]!r}",
                h,
                "k8s_hostname",
            )
        hostnames.setdefault(hostname, h)

        share = DEFAULT_CPU_SHARE
        if "jupiter_cpu_share" in hv:
            raw = hv["jupiter_cpu_share"]
            num = _number(raw)
            # the local target emulates every node on this machine: at most its cores
            limit = cores if target == "local" else float("inf")
            if num is None or not (0 < num <= limit):
                bound = f"0 < x <= {cores} (this machine's cores)" if target == "local" else "x > 0"
                err(
                    f"jupiter_cpu_share must be a number of cores with {bound}, got {raw!r}",
                    h,
                    "jupiter_cpu_share",
                )
            else:
                share = num
        uplink = DEFAULT_UPLINK_MBIT
        if "jupiter_uplink_mbit" in hv:
            raw = hv["jupiter_uplink_mbit"]
            num = _number(raw)
            if num is None or num <= 0:
                err(
                    f"jupiter_uplink_mbit must be a number of Mbit/s greater than 0, got {raw!r}",
                    h,
                    "jupiter_uplink_mbit",
                )
            else:
                uplink = num
        delay = 0.0
        if "jupiter_delay_ms" in hv:
            raw = hv["jupiter_delay_ms"]
            num = _number(raw)
            if num is None or not 0 <= num <= MAX_DELAY_MS:
                err(
                    f"jupiter_delay_ms must be a one-way delay in milliseconds with "
                    f"0 <= x <= {MAX_DELAY_MS:g}, got {raw!r}",
                    h,
                    "jupiter_delay_ms",
                )
            else:
                delay = num
        key = safe_key(h)
        if key in used_keys:
            i = 2
            while f"{key}-{i}" in used_keys:
                i += 1
            key = f"{key}-{i}"
        used_keys.add(key)
        if not is_dns_label(key):
            err(f"cannot derive a DNS name from host name {h!r}; rename the host", h)
        other = {k: v for k, v in hv.items() if k not in known and k not in shared}
        nodes.append(
            Node(
                name=h,
                role=role,
                k8s_hostname=k8s,
                cpu_share=share,
                uplink_mbit=uplink,
                delay_ms=delay,
                vars=other,
                key=key,
            )
        )

    links = _links(shared.get("jupiter_links"), [n for n, _ in ordered], err)
    if any(p.severity == "error" for p in problems):
        raise InvalidInput(problems, what=f"inventory {source}")
    extra_shared = {k: v for k, v in shared.items() if k not in SHARED_VARS}
    inv = Inventory(
        nodes=tuple(nodes),
        target=target,
        app=app,
        deployment=deployment,
        links=links,
        vars=extra_shared,
    )
    return inv, [p for p in problems if p.severity == "warning"]


def _links(raw: Any, names: list[str], err: Any) -> dict[str, dict[str, float]]:
    if raw is None:
        return {}
    var = "jupiter_links"
    if not isinstance(raw, Mapping):
        err(f"jupiter_links must be a mapping {{src: {{dst: mbit}}}}, got {raw!r}", var=var)
        return {}
    out: dict[str, dict[str, float]] = {}
    for src, row in raw.items():
        if src not in names:
            err(
                f"jupiter_links names unknown node {src!r}{_suggest(src, names)}; "
                f"known nodes: {', '.join(names)}",
                var=f"{var}.{src}",
            )
            continue
        if not isinstance(row, Mapping):
            err(
                f"jupiter_links.{src} must be a mapping {{dst: mbit}}, got {row!r}",
                var=f"{var}.{src}",
            )
            continue
        for dst, mbit in row.items():
            fld = f"{var}.{src}.{dst}"
            if dst not in names:
                err(
                    f"jupiter_links.{src} names unknown node {dst!r}{_suggest(dst, names)}; "
                    f"known nodes: {', '.join(names)}",
                    var=fld,
                )
                continue
            if dst == src:
                err(f"jupiter_links.{src}.{dst}: a node has no link to itself", var=fld)
                continue
            num = _number(mbit)
            if num is None or num <= 0:
                err(
                    f"jupiter_links.{src}.{dst} must be a number of Mbit/s greater than 0, "
                    f"got {mbit!r}",
                    var=fld,
                )
                continue
            out.setdefault(src, {})[dst] = num
    return out


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_placement(
    app: Mapping[str, Any], inventory: Mapping[str, Any], scheduler: str | None = None
) -> list[Problem]:
    """Warnings about where the app's tasks may run; raises InvalidInput on errors.

    ``app`` is ``App.to_dict()``, ``inventory`` ``Inventory.to_dict()``. Every task ``pin``
    must name an inventory node. Static mapping nodes must too: an error when
    ``scheduler`` is ``static`` (the mapping is used), else a warning.
    """
    nodes = [n["name"] for n in inventory.get("nodes", [])]
    file = str(app.get("root", "app"))
    if app.get("source"):
        file = f"{file}/{app['source']}"
    problems: list[Problem] = []
    listing = ", ".join(nodes)
    for t in app.get("tasks", []):
        pin = t.get("pin")
        if pin is not None and pin not in nodes:
            problems.append(
                Problem(
                    file,
                    f"task {t['name']!r} is pinned to {pin!r}, which is not an inventory node"
                    f"{_suggest(str(pin), nodes)}; nodes: {listing}",
                    field="pin",
                )
            )
    static = scheduler == "static"
    for task, node in (app.get("static_mapping") or {}).items():
        if node not in nodes:
            problems.append(
                Problem(
                    file,
                    f"the static mapping puts task {task!r} on {node!r}, which is not an "
                    f"inventory node{_suggest(str(node), nodes)}; nodes: {listing}",
                    field="static_mapping",
                    severity="error" if static else "warning",
                )
            )
    if any(p.severity == "error" for p in problems):
        raise InvalidInput(problems, what="placement of the app on the inventory")
    return problems


def import_nodes(text: str, source: str = "nodes.txt") -> tuple[str, list[Problem]]:
    """Convert Jupiter's nodes.txt to inventory YAML; see :mod:`jupiter.app.nodes`."""
    from jupiter.app.nodes import import_nodes as _import

    return _import(text, source)


__all__ = [
    "SCHEMA",
    "TARGETS",
    "Inventory",
    "Node",
    "check_inventory",
    "check_placement",
    "import_nodes",
    "inventory_from_hostvars",
]
