"""The local testbed: every inventory node emulated on this machine.

Two modes (``mode=`` argument, else ``$JUPITER_LOCAL_MODE`` = ``auto|netns|loopback``,
default ``auto``):

``netns`` (root with iproute2; what ``auto`` picks when possible)
    node ``i`` lives in network namespace ``jn-<deployment>-<i>``; its ``eth0`` (the peer
    of host-side veth ``jv-<tag>-<i>``) holds ``<subnet>.(i+2)/24`` and is a port of bridge
    ``jb-<deployment>`` in the root namespace, which holds ``<subnet>.1``. Each directed
    link ``s -> d`` given in the spec is shaped by htb on ``s``'s ``eth0`` (see
    :mod:`jupiter.local.shaping`); traffic to the host address is not shaped. Nodes with a
    ``delay_ms`` delay their links: the testbed's delay process (:mod:`jupiter.local.delay`,
    run under supervisord as group ``testbed``) holds the packets arriving at each node
    from each peer for ``delay_ms(peer) + delay_ms(node)``. Each namespace keeps
    TCP windows open across idle periods (``net.ipv4.tcp_slow_start_after_idle = 0``), as
    long-lived connections over a WAN are usually tuned, and uses the spec's TCP
    congestion control (``net.ipv4.tcp_congestion_control``, ``reno`` by default; see
    :mod:`jupiter.local.spec`).
``loopback`` (no root, no iproute2, or requested)
    node ``i`` is ``127.0.1.(i+2)`` on the host's loopback; nothing is shaped or delayed and
    the state says ``shaped: false`` with the reason.

In both modes each node with a ``cpu_share`` gets a cgroup v1 ``cpu`` quota where that
controller is writable (:mod:`jupiter.local.cgroups`); elsewhere ``cgroups: false`` and
a reason are recorded and the testbed works without CPU limits.

``apply`` compares the kernel's actual state with the wanted one and changes only what
differs, so a second run reports ``changed=False``; ``destroy`` finds everything of a
deployment by its names even without the state file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from typing import Any

from jupiter.errors import JupiterError
from jupiter.local import cgroups, delay, iproute, names, shaping
from jupiter.local.spec import TestbedSpec
from jupiter.local.state import default_state_dir, locked, read_json, write_json

SCHEMA = "jupiter.testbed/v1"
MODE_ENV = "JUPITER_LOCAL_MODE"
STATE_FILE = "testbed.json"
MODES = ("auto", "netns", "loopback")
SLOW_START_AFTER_IDLE = "/proc/sys/net/ipv4/tcp_slow_start_after_idle"
TCP_CONGESTION = "/proc/sys/net/ipv4/tcp_congestion_control"
# the algorithms a namespace other than the host's may choose (set by the host, read only here)
TCP_ALLOWED_CONGESTION = "/proc/sys/net/ipv4/tcp_allowed_congestion_control"


class TestbedError(JupiterError):
    __test__ = False


# ---------------------------------------------------------------- mode and addresses


def resolve_mode(mode: str | None = None) -> tuple[str, str | None]:
    """("netns", None) or ("loopback", why) for the requested mode (see module doc)."""
    source = "mode argument" if mode else f"${MODE_ENV}"
    requested = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    if requested not in MODES:
        raise TestbedError(f"{source}={requested!r}: use one of {', '.join(MODES)}")
    if requested == "loopback":
        return "loopback", f"loopback mode requested ({source}); links are not shaped"
    problem = _netns_unavailable()
    if problem is None:
        return "netns", None
    if requested == "netns":
        raise TestbedError(f"netns mode requested ({source}) but {problem}")
    return "loopback", f"{problem}; nodes use 127.0.1.x loopback addresses, links not shaped"


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "not running as root (network namespaces and tc need root)"
    return iproute.missing_tools()


def node_addresses(spec: TestbedSpec, mode: str | None = None) -> dict[str, str]:
    """{node: address} of the spec in the given (or resolved) mode."""
    kind = mode if mode in ("netns", "loopback") else resolve_mode(mode)[0]
    if kind == "netns":
        return {n.name: names.netns_address(spec.subnet, i) for i, n in enumerate(spec.nodes)}
    return {n.name: names.loopback_address(i) for i, n in enumerate(spec.nodes)}


def layout(spec: TestbedSpec, mode: str, reason: str | None) -> dict[str, Any]:
    """What the testbed of ``spec`` looks like in ``mode`` (the state file's content)."""
    dep = spec.deployment
    cg_reason = cgroups.unavailable()
    addresses = node_addresses(spec, mode)
    net = ipaddress.IPv4Network(spec.subnet)
    nodes = []
    for i, n in enumerate(spec.nodes):
        nodes.append(
            {
                "name": n.name,
                "index": i,
                "address": addresses[n.name],
                "netns": names.netns_name(dep, i) if mode == "netns" else None,
                "veth": names.veth_name(dep, i) if mode == "netns" else None,
                "cgroup": names.cgroup_dir(dep, n.name) if cg_reason is None else None,
                "cpu_share": n.cpu_share,
                "cpu_quota_us": cgroups.quota_us(n.cpu_share) if cg_reason is None else None,
                "uplink_mbit": n.uplink_mbit,
                "delay_ms": n.delay_ms,
            }
        )
    links = [
        {
            "src": s,
            "dst": d,
            "mbit": mbit,
            "shaped": mode == "netns" and mbit is not None,
            "classid": names.classid(spec.index(d)) if mode == "netns" and mbit else None,
            "delay_ms": spec.link_delay_ms(s, d),
        }
        for s in spec.node_names
        for d in spec.node_names
        if s != d and ((mbit := spec.link_mbit(s, d)) is not None or spec.link_delay_ms(s, d))
    ]
    return {
        "schema": SCHEMA,
        "deployment": dep,
        "mode": mode,
        "shaped": mode == "netns",
        "reason": reason,
        "subnet": spec.subnet if mode == "netns" else "127.0.1.0/24",
        "prefixlen": net.prefixlen,
        "host_address": names.host_address(spec.subnet) if mode == "netns" else None,
        "bridge": names.bridge_name(dep) if mode == "netns" else None,
        "nodes": nodes,
        "links": links,
        "cgroups": cg_reason is None,
        "cgroups_reason": cg_reason,
        "tcp_congestion": (spec.tcp_congestion or None) if mode == "netns" else None,
        "latency_emulated": mode == "netns" and spec.has_delays,
        "latency_reason": (
            f"{mode} mode: link delays (delay_ms) are not emulated"
            if spec.has_delays and mode != "netns" else None
        ),
        "spec": spec.to_dict(),
    }


# ---------------------------------------------------------------- apply


def apply(
    spec: TestbedSpec,
    state_dir: str | None = None,
    *,
    mode: str | None = None,
    dry_run: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """Make the kernel match ``spec``; return (changed, state).

    ``state["changes"]`` lists what was (or, with ``dry_run``, would be) changed.
    """
    state_dir = state_dir or default_state_dir(spec.deployment)
    kind, reason = resolve_mode(mode)
    want = layout(spec, kind, reason)
    if want["latency_emulated"]:
        delay.iptables()  # fails before anything changes when the delays cannot be applied
    if want["tcp_congestion"]:
        check_tcp_congestion(want["tcp_congestion"])  # likewise
    guard = contextlib.nullcontext() if dry_run else locked(state_dir, "testbed")
    with guard:
        changes: list[str] = []
        if kind == "netns":
            changes += _reconcile_netns(spec, want, dry_run)
        elif _netns_unavailable() is None:
            changes += _remove_netns(spec.deployment, dry_run, keep=0)
        changes += _reconcile_cgroups(spec, want, dry_run)
        path = os.path.join(state_dir, STATE_FILE)
        if read_json(path) != want:
            changes.append(f"write {path}")
            if not dry_run:
                write_json(path, want)
    return bool(changes), {**want, "changes": changes, "state_file": path}


def _reconcile_netns(spec: TestbedSpec, want: dict[str, Any], dry_run: bool) -> list[str]:
    dep = spec.deployment
    bridge = want["bridge"]
    host_cidr = f"{want['host_address']}/{want['prefixlen']}"
    changes: list[str] = []

    def do(what: str, fn, *args, **kwargs) -> None:
        changes.append(what)
        if not dry_run:
            fn(*args, **kwargs)

    links = {link["ifname"]: link for link in iproute.ip_json("-d", "link", "show")}
    _check_subnet_free(spec.subnet, bridge)
    # bridge with the host address
    if bridge not in links:
        do(f"create bridge {bridge}", iproute.ip, "link", "add", bridge, "type", "bridge")
        do(f"set {bridge} up", iproute.ip, "link", "set", bridge, "up")
        do(f"address {host_cidr} on {bridge}", _set_addresses, bridge, host_cidr, None)
    else:
        if "UP" not in links[bridge].get("flags", []):
            do(f"set {bridge} up", iproute.ip, "link", "set", bridge, "up")
        if _ipv4_cidrs(iproute.ip_json("addr", "show", "dev", bridge)) != {host_cidr}:
            do(f"address {host_cidr} on {bridge}", _set_addresses, bridge, host_cidr, None)

    existing_ns = set(iproute.netns_list())
    for node in want["nodes"]:
        ns, veth = node["netns"], node["veth"]
        cidr = f"{node['address']}/{want['prefixlen']}"
        if ns not in existing_ns:
            do(f"create netns {ns}", iproute.ip, "netns", "add", ns)
        ns_links = (
            {link["ifname"]: link for link in iproute.ip_json("-d", "link", "show", netns=ns)}
            if ns in existing_ns or not dry_run
            else {}
        )
        eth = ns_links.get(names.NODE_IFACE)
        host = links.get(veth)
        paired = (
            host is not None
            and eth is not None
            and eth.get("link_index") == host.get("ifindex")
            and host.get("link_index") == eth.get("ifindex")
        )
        if not paired:
            if host is not None:
                do(f"delete stale {veth}", iproute.ip, "link", "del", veth)
            if eth is not None:
                do(f"delete stale eth0 in {ns}", iproute.ip, "link", "del", "eth0", netns=ns)
            do(
                f"create veth {veth} <-> {ns}:eth0",
                iproute.ip,
                *f"link add {veth} type veth peer name {names.NODE_IFACE} netns {ns}".split(),
            )
            host = eth = None
            if not dry_run:
                host = iproute.ip_json("-d", "link", "show", "dev", veth)[0]
                eth = iproute.ip_json("-d", "link", "show", "dev", "eth0", netns=ns)[0]
        # host side: port of the bridge, up
        if host is None or host.get("master") != bridge or "UP" not in host.get("flags", []):
            do(
                f"attach {veth} to {bridge}",
                iproute.ip,
                "link",
                "set",
                veth,
                "master",
                bridge,
                "up",
            )
        # namespace side: lo up, eth0 up without GSO, one address
        lo = ns_links.get("lo")
        if lo is None or "UP" not in lo.get("flags", []):
            do(f"set lo up in {ns}", iproute.ip, "link", "set", "lo", "up", netns=ns)
        if (
            eth is None
            or "UP" not in eth.get("flags", [])
            or eth.get("gso_max_segs") != 1
            or eth.get("gso_max_size") != 1500
        ):
            no_gso = ["link", "set", "eth0", "up", "gso_max_segs", "1", "gso_max_size", "1500"]
            do(f"set eth0 up (no GSO) in {ns}", iproute.ip, *no_gso, netns=ns)
        have = (
            _ipv4_cidrs(iproute.ip_json("addr", "show", "dev", "eth0", netns=ns))
            if eth is not None
            else set()
        )
        if have != {cidr}:
            do(f"address {cidr} in {ns}", _set_addresses, "eth0", cidr, ns)
        # shaping
        classes = [
            shaping.LinkClass(
                names.classid(spec.index(d)),
                names.netns_address(spec.subnet, spec.index(d)),
                shaping.mbit_to_kbit(mbit),
            )
            for s, d, mbit in spec.shaped_links()
            if s == node["name"]
        ]
        seen = _observe_shaping(ns) if eth is not None else shaping.desired([])
        if seen != shaping.desired(classes):
            do(f"shape {node['name']}: {len(classes)} link(s)", _shape, ns, classes)
        exists = ns in existing_ns or not dry_run
        if not exists or _sysctl(ns, SLOW_START_AFTER_IDLE) != "0":
            do(f"keep TCP windows open after idle in {ns}", _set_sysctl, ns,
               SLOW_START_AFTER_IDLE, "0")
        congestion = want["tcp_congestion"]
        if congestion and (not exists or _sysctl(ns, TCP_CONGESTION) != congestion):
            do(f"TCP congestion control {congestion} in {ns}", _set_sysctl, ns,
               TCP_CONGESTION, congestion)
    changes += _remove_netns(dep, dry_run, keep=len(want["nodes"]), links=links)
    return changes


def check_tcp_congestion(name: str) -> None:
    """Fail unless a namespace may use the TCP congestion control ``name``."""
    try:
        with open(TCP_ALLOWED_CONGESTION, encoding="ascii") as fh:
            allowed = fh.read().split()
    except OSError as exc:
        raise TestbedError(f"cannot read {TCP_ALLOWED_CONGESTION} ({exc}): set the testbed's "
                           "tcp_congestion to \"\" to keep the host's default") from exc
    if name not in allowed:
        raise TestbedError(
            f"testbed tcp_congestion {name!r}: a network namespace may only use a TCP "
            f"congestion control the host allows (net.ipv4.tcp_allowed_congestion_control: "
            f"{' '.join(allowed) or 'none'}); set jupiter_tcp_congestion to one of them, or to "
            "\"\" to keep the host's default")


def _check_subnet_free(subnet: str, bridge: str) -> None:
    net = ipaddress.IPv4Network(subnet)
    for entry in iproute.ip_json("-4", "addr", "show"):
        if entry.get("ifname") == bridge:
            continue
        for a in entry.get("addr_info", []):
            other = ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)
            if other.overlaps(net):
                raise TestbedError(
                    f"subnet {subnet} overlaps {a['local']}/{a['prefixlen']} on "
                    f"{entry['ifname']}: choose another testbed subnet (e.g. 10.78.0.0/24)"
                )


def _ipv4_cidrs(entries: list[dict[str, Any]]) -> set[str]:
    return {
        f"{a['local']}/{a['prefixlen']}"
        for e in entries
        for a in e.get("addr_info", [])
        if a.get("family") == "inet"
    }


def _set_addresses(dev: str, cidr: str, netns: str | None) -> None:
    iproute.ip("-4", "addr", "flush", "dev", dev, netns=netns)
    iproute.ip("addr", "add", cidr, "dev", dev, netns=netns)


def _sysctl(ns: str, path: str) -> str:
    return iproute.run(["ip", "netns", "exec", ns, "cat", path]).stdout.strip()


def _set_sysctl(ns: str, path: str, value: str) -> None:
    # /proc/sys/net is the namespace's own under `ip netns exec`
    iproute.run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > {path}"])


def _observe_shaping(ns: str) -> dict[str, Any]:
    return shaping.observed(
        iproute.tc_json("qdisc", "show", "dev", "eth0", netns=ns),
        iproute.tc("class", "show", "dev", "eth0", netns=ns),
        iproute.tc_json("filter", "show", "dev", "eth0", netns=ns),
    )


def _shape(ns: str, classes: list[shaping.LinkClass]) -> None:
    iproute.tc("qdisc", "del", "dev", "eth0", "root", netns=ns, check=False)
    iproute.tc_batch(shaping.tc_lines("eth0", classes), netns=ns)


def _netns_pids(ns: str) -> list[int]:
    out = iproute.ip("netns", "pids", ns, check=False)
    return [int(p) for p in out.split()]


def _kill_netns_processes(ns: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while pids := _netns_pids(ns):
        if time.monotonic() > deadline:
            raise TestbedError(f"processes {pids} in {ns} did not exit after SIGKILL")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _remove_netns(
    dep: str, dry_run: bool, *, keep: int, links: dict[str, Any] | None = None
) -> list[str]:
    """Delete namespaces/veths of ``dep`` with index >= keep (and the bridge if keep=0)."""
    changes: list[str] = []
    for ns in iproute.netns_list():
        idx = names.netns_index(dep, ns)
        if idx is not None and idx >= keep:
            changes.append(f"delete netns {ns}")
            if not dry_run:
                _kill_netns_processes(ns)
                iproute.ip("netns", "del", ns)
    if links is None:
        links = {link["ifname"]: link for link in iproute.ip_json("link", "show")}
    doomed = [
        name for name in links if (idx := names.veth_index(dep, name)) is not None and idx >= keep
    ]
    if keep == 0 and names.bridge_name(dep) in links:
        doomed.append(names.bridge_name(dep))
    for name in doomed:
        changes.append(f"delete link {name}")
        if not dry_run:
            iproute.ip("link", "del", name, check=False)
    if doomed and not dry_run:
        _wait_links_gone(doomed)
    return changes


def _wait_links_gone(doomed: list[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while left := iproute.link_names() & set(doomed):
        if time.monotonic() > deadline:
            raise TestbedError(f"links {sorted(left)} still exist {timeout:.0f}s after delete")
        time.sleep(0.02)


def _reconcile_cgroups(spec: TestbedSpec, want: dict[str, Any], dry_run: bool) -> list[str]:
    changes: list[str] = []
    base = names.cgroup_dir(spec.deployment)
    if not want["cgroups"]:
        return changes
    wanted = set()
    for node in want["nodes"]:
        wanted.add(node["name"])
        if cgroups.ensure(node["cgroup"], node["cpu_share"], dry_run=dry_run):
            changes.append(f"cpu quota {node['cpu_quota_us']}us for {node['name']}")
    if os.path.isdir(base):
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            if entry in wanted or not os.path.isdir(path):
                continue
            if cgroups.remove(path, dry_run=dry_run):
                changes.append(f"remove cgroup {path}")
    return changes


# ---------------------------------------------------------------- destroy / status


def destroy(deployment: str, state_dir: str | None = None, *, dry_run: bool = False) -> bool:
    """Remove every namespace, veth, bridge, cgroup and the state file of ``deployment``.

    Names are discovered from the deployment name, so this works without the state file.
    Processes still running inside the namespaces or cgroups are killed (SIGKILL).
    """
    state_dir = state_dir or default_state_dir(deployment)
    path = os.path.join(state_dir, STATE_FILE)
    changes: list[str] = []
    with locked(state_dir, "testbed"):
        if _netns_unavailable() is None:
            changes += _remove_netns(deployment, dry_run, keep=0)
        base = names.cgroup_dir(deployment)
        if os.path.isdir(base):
            changes.append(f"remove cgroup {base}")
            if not dry_run:
                cgroups.remove(base)
                cgroups.remove_parent_if_empty()
        if os.path.exists(path):
            changes.append(f"remove {path}")
            if not dry_run:
                os.unlink(path)
    return bool(changes)


def load_state(deployment: str, state_dir: str | None = None) -> dict[str, Any] | None:
    state_dir = state_dir or default_state_dir(deployment)
    return read_json(os.path.join(state_dir, STATE_FILE))


def status(deployment: str, state_dir: str | None = None) -> dict[str, Any]:
    """The recorded testbed plus what the kernel shows now (``present``, ``drift``)."""
    state_dir = state_dir or default_state_dir(deployment)
    recorded = load_state(deployment, state_dir)
    out: dict[str, Any] = {
        "deployment": deployment,
        "state_file": os.path.join(state_dir, STATE_FILE),
        "present": False,
    }
    out["namespaces"] = [
        ns for ns in iproute.netns_list() if names.netns_index(deployment, ns) is not None
    ]
    base = names.cgroup_dir(deployment)
    out["cgroup_nodes"] = (
        sorted(e for e in os.listdir(base) if os.path.isdir(os.path.join(base, e)))
        if os.path.isdir(base)
        else []
    )
    if recorded is None:
        out["reason"] = "no testbed recorded (run `jupiter testbed up` or deploy)"
        out["shaped"] = False
        return out
    out.update({k: v for k, v in recorded.items() if k != "spec"})
    out["present"] = True
    drift: list[str] = []
    if recorded.get("spec") and (recorded["mode"] == "loopback" or _netns_unavailable() is None):
        spec = TestbedSpec.from_dict(recorded["spec"], out["state_file"])
        # dry run: what apply would change (never touches the kernel or the file)
        _, planned = apply(spec, state_dir, mode=recorded["mode"], dry_run=True)
        drift = [c for c in planned["changes"] if not c.startswith("write ")]
    out["drift"] = drift
    for node in out.get("nodes", []):
        if node.get("cgroup"):
            q = cgroups.read_quota(node["cgroup"])
            node["cpu_quota_us_actual"] = q[1] if q else None
            node["pids"] = cgroups.pids(node["cgroup"])
    return out
