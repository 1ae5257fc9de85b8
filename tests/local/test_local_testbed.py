"""The netns testbed against the real kernel (root; fails loudly without netns/tc/cgroups)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from local_helpers import PYTHON, Testbeds, exec_on, leftovers, popen, wait_for

from jupiter.local import cgroups, iproute, names, testbed
from jupiter.local.testbed import TestbedError

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("netns_required")]

HERE = Path(__file__).resolve().parent
THREE = [
    {"name": "home", "cpu_share": 1.0},
    {"name": "edge1", "cpu_share": 0.5},
    {"name": "edge2", "cpu_share": 0.25},
]
LINKS = {"home": {"edge1": 20, "edge2": 5}, "edge1": {"home": 20}, "edge2": {"edge1": 2}}


def test_create_check_idempotent_destroy(testbeds: Testbeds) -> None:
    spec = testbeds.spec(THREE, LINKS)
    dep = spec.deployment
    state_dir = testbeds.state_dir(spec)

    # check mode: reports the work, touches nothing
    changed, planned = testbed.apply(spec, str(state_dir), dry_run=True)
    assert changed and any("create netns" in c for c in planned["changes"])
    assert leftovers(dep) == [] and not (state_dir / "testbed.json").exists()

    _, changed, state = testbeds.apply(spec)
    assert changed and state["mode"] == "netns" and state["shaped"] is True
    assert state["reason"] is None
    ns = [names.netns_name(dep, i) for i in range(3)]
    assert set(ns) <= set(iproute.netns_list())
    bridge = iproute.ip_json("addr", "show", "dev", names.bridge_name(dep))[0]
    host = names.host_address(spec.subnet)
    assert [a["local"] for a in bridge["addr_info"] if a["family"] == "inet"] == [host]
    for i, n in enumerate(state["nodes"]):
        eth = iproute.ip_json("addr", "show", "dev", "eth0", netns=ns[i])[0]
        assert [a["local"] for a in eth["addr_info"] if a["family"] == "inet"] == [n["address"]]
        assert n["address"] == names.netns_address(spec.subnet, i)
        host_veth = iproute.ip_json("link", "show", "dev", names.veth_name(dep, i))[0]
        assert host_veth["master"] == names.bridge_name(dep)
    # cgroup quotas read back from the kernel
    for node, share in (("home", 1.0), ("edge1", 0.5), ("edge2", 0.25)):
        assert cgroups.read_quota(names.cgroup_dir(dep, node)) == (100_000, int(share * 100_000))
    # shaped classes read back from the kernel
    classes = iproute.tc("class", "show", "dev", "eth0", netns=ns[0])
    assert "rate 20Mbit ceil 20Mbit" in classes and "rate 5Mbit ceil 5Mbit" in classes
    assert "rate 2Mbit" in iproute.tc("class", "show", "dev", "eth0", netns=ns[2])
    assert iproute.tc("class", "show", "dev", "eth0", netns=ns[1]).count("class htb") == 1

    # idempotence: the second run changes nothing, the state file is the same
    before = (state_dir / "testbed.json").read_text()
    _, changed, state2 = testbeds.apply(spec)
    assert changed is False and state2["changes"] == []
    assert (state_dir / "testbed.json").read_text() == before
    st = testbed.status(dep, str(state_dir))
    assert st["present"] and st["drift"] == []
    assert [n["cpu_quota_us_actual"] for n in st["nodes"]] == [100_000, 50_000, 25_000]

    # destroy: nothing left, a second destroy has nothing to do
    assert testbed.destroy(dep, str(state_dir)) is True
    assert leftovers(dep) == []
    assert not (state_dir / "testbed.json").exists()
    assert testbed.destroy(dep, str(state_dir)) is False


def test_drift_is_repaired_and_node_removal_cleans_up(testbeds: Testbeds) -> None:
    spec = testbeds.spec(THREE, LINKS)
    dep = spec.deployment
    state_dir, _, _ = testbeds.apply(spec)
    ns0 = names.netns_name(dep, 0)
    # break things behind the testbed's back
    iproute.tc("qdisc", "del", "dev", "eth0", "root", netns=ns0)
    iproute.ip("link", "del", names.veth_name(dep, 2))
    with open(f"{names.cgroup_dir(dep, 'edge1')}/cpu.cfs_quota_us", "w") as fh:
        fh.write("1000")
    drift = testbed.status(dep, str(state_dir))["drift"]
    assert any("shape home" in d for d in drift) and any("veth" in d for d in drift)
    _, changed, state = testbeds.apply(spec)
    assert changed
    assert any("cpu quota 50000us for edge1" in c for c in state["changes"])
    _, changed, _ = testbeds.apply(spec)
    assert changed is False
    # a smaller spec removes the extra node's namespace, veth and cgroup
    smaller = testbeds.spec(THREE[:2], {"home": {"edge1": 10}}, deployment=dep)
    smaller = type(smaller)(dep, smaller.nodes, smaller.links, spec.subnet)
    _, changed, state = testbeds.apply(smaller)
    assert changed
    assert names.netns_name(dep, 2) not in iproute.netns_list()
    assert names.veth_name(dep, 2) not in iproute.link_names()
    assert not os.path.exists(names.cgroup_dir(dep, "edge2"))
    assert "rate 10Mbit" in iproute.tc("class", "show", "dev", "eth0", netns=ns0)


def test_namespaces_use_the_spec_tcp_settings_and_drift_is_repaired(testbeds: Testbeds) -> None:
    spec = testbeds.spec(THREE[:2], {"home": {"edge1": 20}})
    dep = spec.deployment
    assert spec.tcp_congestion == "reno"  # the default
    state_dir, _, state = testbeds.apply(spec)
    assert state["tcp_congestion"] == "reno"
    ns = [names.netns_name(dep, i) for i in range(2)]
    for n in ns:  # read back from each namespace's own /proc/sys/net
        assert testbed._sysctl(n, testbed.TCP_CONGESTION) == "reno"
        assert testbed._sysctl(n, testbed.SLOW_START_AFTER_IDLE) == "0"
    with open(testbed.TCP_ALLOWED_CONGESTION) as fh:
        allowed = fh.read().split()
    others = [a for a in allowed if a != "reno"]
    assert others, f"this test needs a second allowed TCP congestion control, got {allowed}"
    # change both behind the testbed's back: status names the drift, apply repairs it
    testbed._set_sysctl(ns[1], testbed.TCP_CONGESTION, others[0])
    testbed._set_sysctl(ns[0], testbed.SLOW_START_AFTER_IDLE, "1")
    drift = testbed.status(dep, str(state_dir))["drift"]
    assert f"TCP congestion control reno in {ns[1]}" in drift
    assert f"keep TCP windows open after idle in {ns[0]}" in drift
    _, changed, _ = testbeds.apply(spec)
    assert changed and testbed._sysctl(ns[1], testbed.TCP_CONGESTION) == "reno"
    assert testbed._sysctl(ns[0], testbed.SLOW_START_AFTER_IDLE) == "0"
    assert testbed.status(dep, str(state_dir))["drift"] == []
    # "" leaves each namespace's algorithm as it is
    keep = type(spec)(dep, spec.nodes, spec.links, spec.subnet, "")
    testbed._set_sysctl(ns[1], testbed.TCP_CONGESTION, others[0])
    _, _, state = testbeds.apply(keep)
    assert state["tcp_congestion"] is None
    assert testbed._sysctl(ns[1], testbed.TCP_CONGESTION) == others[0]


def test_a_tcp_congestion_the_host_does_not_allow_fails_before_any_change(
    testbeds: Testbeds,
) -> None:
    spec = testbeds.spec(THREE[:2], {"home": {"edge1": 20}})
    spec = type(spec)(spec.deployment, spec.nodes, spec.links, spec.subnet, "jupiterfake")
    with pytest.raises(TestbedError, match=r"tcp_congestion 'jupiterfake': a network namespace "
                       r"may only use a TCP congestion control the host allows \(net\.ipv4\."
                       r"tcp_allowed_congestion_control: .*reno.*\); set jupiter_tcp_congestion"):
        testbeds.apply(spec)
    assert leftovers(spec.deployment) == []
    assert not (testbeds.state_dir(spec) / "testbed.json").exists()


def test_destroy_without_state_file_finds_everything_by_name(testbeds: Testbeds) -> None:
    spec = testbeds.spec(THREE, LINKS, deployment="t" + os.urandom(8).hex())  # hashed names
    assert len(spec.deployment) > 15
    state_dir, _, _ = testbeds.apply(spec)
    assert len(leftovers(spec.deployment)) == 3 + 3 + 1 + 1  # netns, veths, bridge, cgroup
    (state_dir / "testbed.json").unlink()
    # a process left running in a namespace does not keep it alive
    with popen(
        ["ip", "netns", "exec", names.netns_name(spec.deployment, 1), "sleep", "300"]
    ) as proc:
        wait_for(lambda: testbed._netns_pids(names.netns_name(spec.deployment, 1)), 10, "sleep")
        assert testbed.destroy(spec.deployment, str(state_dir)) is True
        assert proc.wait(timeout=10) != 0
    assert leftovers(spec.deployment) == []


def test_exec_joins_the_node_namespace_and_cgroup(testbeds: Testbeds) -> None:
    spec = testbeds.spec(THREE, LINKS)
    dep = spec.deployment
    state_dir, _, state = testbeds.apply(spec)
    probe = (
        "import json, os, socket\n"
        "cg = [l.split(':', 2)[2] for l in open('/proc/self/cgroup').read().splitlines()"
        " if l.split(':')[1] == 'cpu']\n"
        "print(json.dumps({'pid': os.getpid(), 'cgroup': cg[0],"
        " 'netns': os.stat('/proc/self/ns/net').st_ino,"
        " 'node': os.environ['JUPITER_NODE'], 'addr': os.environ['JUPITER_NODE_ADDRESS'],"
        " 'ifaces': sorted(n for _, n in socket.if_nameindex())}))\n"
    )
    proc = exec_on(state_dir, dep, "edge1", [PYTHON, "-c", probe])
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["cgroup"] == f"/jupiter/{dep}/edge1"
    assert seen["netns"] == os.stat(f"/run/netns/{names.netns_name(dep, 1)}").st_ino
    assert seen["ifaces"] == ["eth0", "lo"]
    # Python's ignored SIGPIPE is not passed on to the program (checked with a non-Python one)
    sigign = exec_on(state_dir, dep, "edge1", ["grep", "SigIgn", "/proc/self/status"]).stdout
    assert int(sigign.split()[1], 16) & (1 << (signal.SIGPIPE - 1)) == 0
    assert seen["node"] == "edge1" and seen["addr"] == state["nodes"][1]["address"]
    # a TCP service on one node is reachable from another node and from the host
    port = 7009
    server = [PYTHON, "-m", "http.server", "--bind", state["nodes"][0]["address"], str(port)]
    cmd = [PYTHON, "-m", "jupiter.local.execnode", "--deployment", dep, "--node", "home",
           "--state-dir", str(state_dir), "--", *server]  # fmt: skip
    with popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        url = f"http://{state['nodes'][0]['address']}:{port}/"
        fetch = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=2).status)"

        def reachable() -> bool:
            out = exec_on(state_dir, dep, "edge2", [PYTHON, "-c", fetch])
            return out.returncode == 0 and out.stdout.strip() == "200"

        wait_for(reachable, 15, f"{url} from edge2")
    # errors name what is wrong
    bad = exec_on(state_dir, dep, "nope", ["true"])
    assert bad.returncode == 1 and "node 'nope' is not in the testbed" in bad.stderr
    missing = exec_on(state_dir, dep, "edge1", ["/no/such/program"])
    assert missing.returncode == 127 and "/no/such/program" in missing.stderr


@pytest.mark.parametrize("mbit", [5, 20, 80])
def test_measured_throughput_matches_the_shaped_rate(testbeds: Testbeds, mbit: int) -> None:
    """Goodput measured at the receiver, converted to the on-the-wire rate htb enforces."""
    spec = testbeds.spec(
        [{"name": "src"}, {"name": "dst"}],
        {"src": {"dst": mbit}, "dst": {"src": 100}},
    )
    dep = spec.deployment
    state_dir, _, state = testbeds.apply(spec)
    dst_ip = state["nodes"][1]["address"]
    recv = ["ip", "netns", "exec", names.netns_name(dep, 1), PYTHON,
            str(HERE / "local_netperf.py"), "recv", dst_ip, "5201", "1.5", "0.3"]  # fmt: skip
    with popen(recv, stdout=subprocess.PIPE) as receiver:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "listening"
        sender = exec_on(
            state_dir, dep, "src", [PYTHON, str(HERE / "local_netperf.py"), "send", dst_ip, "5201"]
        )
        assert sender.returncode == 0, sender.stderr
        result = json.loads(receiver.stdout.readline())
    wire_bps = result["goodput_bps"] * (result["mss"] + 66) / result["mss"]
    print(
        f"\nshaped {mbit} Mbit/s: goodput {result['goodput_bps'] / 1e6:.2f} Mbit/s, "
        f"on the wire {wire_bps / 1e6:.2f} Mbit/s (mss {result['mss']}, "
        f"window {result['window_s']:.2f}s)"
    )
    assert abs(wire_bps - mbit * 1e6) <= 0.10 * mbit * 1e6


def test_loopback_mode_forced_by_environment(
    testbeds: Testbeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPITER_LOCAL_MODE", "loopback")
    spec = testbeds.spec(THREE, LINKS)
    state_dir, changed, state = testbeds.apply(spec)
    assert changed and state["mode"] == "loopback" and state["shaped"] is False
    assert "JUPITER_LOCAL_MODE" in state["reason"]
    assert [n["address"] for n in state["nodes"]] == ["127.0.1.2", "127.0.1.3", "127.0.1.4"]
    assert all(not link["shaped"] for link in state["links"])
    assert not [x for x in leftovers(spec.deployment) if not x.startswith("cgroup")]
    _, changed, _ = testbeds.apply(spec)
    assert changed is False
    # exec still works: same network as the host, the node's own address is bindable
    probe = (
        "import os, socket; s = socket.socket(); s.bind((os.environ['JUPITER_NODE_ADDRESS'], 0))"
    )
    proc = exec_on(state_dir, spec.deployment, "edge1", [PYTHON, "-c", probe])
    assert proc.returncode == 0, proc.stderr
    assert testbed.destroy(spec.deployment, str(state_dir)) is True
    assert leftovers(spec.deployment) == []


def test_bad_mode_and_overlapping_subnet_are_refused(
    testbeds: Testbeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPITER_LOCAL_MODE", "turbo")
    spec = testbeds.spec(THREE[:1])
    with pytest.raises(TestbedError, match=r"JUPITER_LOCAL_MODE.*turbo"):
        testbeds.apply(spec)
    monkeypatch.delenv("JUPITER_LOCAL_MODE")
    testbeds.apply(spec)
    other = testbeds.spec(THREE[:1])
    other = type(other)(other.deployment, other.nodes, other.links, spec.subnet)
    with pytest.raises(TestbedError, match=f"overlaps .* on {names.bridge_name(spec.deployment)}"):
        testbeds.apply(other)
    assert leftovers(other.deployment) == []


def test_without_root_auto_mode_falls_back_to_loopback(
    testbeds: Testbeds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The non-root path (the interpreter here lives under 0700 /root, so no real user)."""
    monkeypatch.delenv("JUPITER_LOCAL_MODE", raising=False)
    monkeypatch.setattr(testbed.os, "geteuid", lambda: 1000)
    assert testbed.resolve_mode()[0] == "loopback"
    with pytest.raises(TestbedError, match=r"netns mode requested .* not running as root"):
        testbed.resolve_mode("netns")
    spec = testbeds.spec(THREE, LINKS)
    _, changed, state = testbeds.apply(spec)
    assert changed and state["mode"] == "loopback" and state["shaped"] is False
    assert "not running as root" in state["reason"]
    assert not [x for x in leftovers(spec.deployment) if not x.startswith("cgroup")]
    assert cgroups.unavailable("/nonexistent") is not None
