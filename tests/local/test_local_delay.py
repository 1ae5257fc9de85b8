"""Link delays of the local testbed: the plan, the netlink messages, and the real delay process.

The pure tests run anywhere; the ``root`` ones start the real delay process under supervisord in
real namespaces (CI runs as root; a missing facility fails them, see conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from local_helpers import PYTHON, Testbeds, leftovers, popen, wait_for

from jupiter.errors import InvalidInput
from jupiter.local import delay, names, supervisor, testbed
from jupiter.local.spec import TestbedSpec

HERE = Path(__file__).resolve().parent
NODES = [
    {"name": "home", "delay_ms": 1},
    {"name": "far", "delay_ms": 12},
    {"name": "near"},
]


def _layout(nodes: list[dict[str, Any]], mode: str = "netns") -> dict[str, Any]:
    spec = TestbedSpec.from_dict({"deployment": "d", "nodes": nodes})
    return testbed.layout(spec, mode, None)


# ---------------------------------------------------------------- pure


def test_link_delay_is_the_sum_of_both_ends() -> None:
    spec = TestbedSpec.from_dict({"deployment": "d", "nodes": NODES})
    assert spec.link_delay_ms("home", "far") == spec.link_delay_ms("far", "home") == 13
    assert spec.link_delay_ms("near", "far") == 12
    assert spec.link_delay_ms("far", "far") == 0
    assert spec.has_delays
    assert not TestbedSpec.from_dict({"deployment": "d", "nodes": [{"name": "a"}]}).has_delays


def test_bad_delays_are_named() -> None:
    with pytest.raises(InvalidInput) as err:
        TestbedSpec.from_dict({"deployment": "d", "nodes": [
            {"name": "a", "delay_ms": -1}, {"name": "b", "delay_ms": "soon"},
            {"name": "c", "delay_ms": 10_000}]})
    text = str(err.value)
    assert "nodes[0].delay_ms" in text and "nodes[1].delay_ms" in text
    assert "nodes[2].delay_ms" in text and "0..5000" in text


def test_plan_and_program_carry_every_peer_delay() -> None:
    state = _layout(NODES)
    assert state["latency_emulated"] and state["latency_reason"] is None
    far = delay.plan(state, "far")
    assert [(p.node, p.queue, p.delay_s) for p in far] == [("home", 0, 0.013), ("near", 2, 0.012)]
    assert [p.address for p in far] == [state["nodes"][0]["address"], state["nodes"][2]["address"]]
    (program,) = delay.programs(state)  # one process serves every namespace
    assert program["name"] == "delay" and program["node"] == "home"
    assert program["cgroup"] is False  # the network's work, not the node's
    listen = f"{state['nodes'][0]['address']}:{delay.DELAY_PORT}"
    assert program["ready_url"] == f"http://{listen}/ready"
    command = program["command"]
    assert command[command.index("--listen") + 1] == listen
    lines = delay.parse_plan(command[command.index("--plan") + 1])
    assert [line.node for line in lines] == ["home", "far", "near"]
    for line, node in zip(lines, state["nodes"], strict=True):
        assert line.netns == node["netns"]
        assert list(line.peers) == delay.plan(state, node["name"])
    # links record their delay; no delay at all means no program
    link = next(x for x in state["links"] if (x["src"], x["dst"]) == ("near", "far"))
    assert link["delay_ms"] == 12 and link["mbit"] is None and link["shaped"] is False
    assert delay.programs(_layout([{"name": "a"}, {"name": "b"}])) == []


def test_loopback_mode_says_delays_are_not_emulated() -> None:
    state = _layout(NODES, mode="loopback")
    assert state["latency_emulated"] is False
    assert "not emulated" in state["latency_reason"]
    assert delay.programs(state) == []


@pytest.mark.parametrize("peer", [["a", "10.0.0.1", 1], ["a", "not-an-ip", 1, 5],
                                  ["a", "10.0.0.1", "x", 5], ["a", "10.0.0.1", 1, 0],
                                  ["a", "10.0.0.1", 70000, 5], "a,10.0.0.1,1,5"])
def test_bad_peers_are_refused(peer: Any) -> None:
    with pytest.raises(delay.DelayError, match="peer"):
        delay.parse_peer(peer)


@pytest.mark.parametrize("plan", ["{", "[]", '{"lines": []}', '{"lines": [{"node": "a"}]}',
                                  '{"lines": [{"node": "a", "peers": []}]}'])
def test_bad_plans_are_refused(plan: str) -> None:
    with pytest.raises(delay.DelayError, match="--plan"):
        delay.parse_plan(plan)


def test_netlink_messages_round_trip() -> None:
    """Packet notices as the kernel sends them are read back; verdicts say what they mean."""

    def notice(queue: int, packet_id: int, stamp: tuple[int, int] | None = None) -> bytes:
        hdr = delay._attr(delay.NFQA_PACKET_HDR, struct.pack("!IHB", packet_id, 0x0800, 0))
        other = delay._attr(9, b"\x00" * 6)  # other attributes are skipped
        attrs = [hdr, other]
        if stamp is not None:
            attrs.append(delay._attr(delay.NFQA_TIMESTAMP, struct.pack("!QQ", *stamp)))
        return delay.message(delay.NFQNL_MSG_PACKET, queue, attrs)

    ack = struct.pack("=IHHII", 36, delay.NLMSG_ERROR, 0, 7, 0) + struct.pack("=i", -1) + b"\0" * 16
    data = notice(3, 41, (1_800_000_000, 250_000)) + notice(0, 2**32 - 1) + ack
    packets, acks = delay.parse(data)
    assert packets == [(3, 41, 1_800_000_000.25), (0, 2**32 - 1, None)] and acks == [(7, 1)]
    verdict = delay.accept_through(5, 99)
    length, kind, _flags, _, _ = struct.unpack_from("=IHHII", verdict)
    assert length == len(verdict) and kind == (3 << 8) | delay.NFQNL_MSG_VERDICT_BATCH
    assert struct.unpack_from("!BBH", verdict, 16) == (0, 0, 5)
    assert struct.unpack_from("!II", verdict, 24) == (delay.NF_ACCEPT, 99)
    bind = delay.bind_message(1, seq=9)
    assert struct.unpack_from("=IHHII", bind)[2:4] == (delay.NLM_F_REQUEST | delay.NLM_F_ACK, 9)
    # a truncated buffer yields what is complete, never garbage
    assert delay.parse(notice(1, 5)[:-3]) == ([], [])


# ---------------------------------------------------------------- the real delay process


def _up(testbeds: Testbeds, spec: TestbedSpec) -> tuple[Path, dict[str, Any]]:
    state_dir = testbeds.state_dir(spec)
    spec_file = state_dir.parent / f"{spec.deployment}.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    proc = subprocess.run(
        [PYTHON, "-m", "jupiter.cli", "testbed", "up", "--spec", str(spec_file),
         "--state-dir", str(state_dir), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return state_dir, json.loads(proc.stdout)


def _round_trip(state: dict[str, Any], src: str | None, dst: str, port: int) -> dict[str, float]:
    """Round trips over TCP from node ``src`` (None: the host) to node ``dst``."""
    nodes = {n["name"]: n for n in state["nodes"]}
    dst_ip = nodes[dst]["address"]
    server = ["ip", "netns", "exec", nodes[dst]["netns"], PYTHON, str(HERE / "local_netperf.py"),
              "echo", dst_ip, str(port)]
    with popen(server, stdout=subprocess.PIPE) as echo:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "listening"
        client = [PYTHON, str(HERE / "local_netperf.py"), "rtt", dst_ip, str(port), "15"]
        if src is not None:
            client = ["ip", "netns", "exec", nodes[src]["netns"], *client]
        out = subprocess.run(client, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


def _chain(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, delay.iptables(), "-w", "-t", "mangle",
                           "-S"], capture_output=True, text=True, check=True).stdout


@pytest.mark.root
@pytest.mark.usefixtures("netns_required")
def test_links_are_delayed_by_both_ends_and_nothing_else(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    state_dir, state = _up(testbeds, spec)
    assert state["latency_emulated"] is True
    # the hard guarantee: no packet arrives before its link's delay (both ways: 2 x 13 ms)
    far = _round_trip(state, "home", "far", 5301)
    assert far["min_s"] >= 0.026
    assert far["min_s"] < 0.026 + 0.02, far  # held for the delay, not much longer
    near = _round_trip(state, "near", "home", 5302)
    assert 0.002 <= near["min_s"] < 0.002 + 0.02, near
    # the host's own traffic (readiness probes) is not delayed: far's queues would add 26 ms
    assert _round_trip(state, None, "far", 5303)["min_s"] < 0.013
    url = f"http://{state['nodes'][0]['address']}:{delay.DELAY_PORT}/status"
    with urllib.request.urlopen(url, timeout=5) as resp:
        status = json.load(resp)
    far = status["nodes"]["far"]
    assert status["ready"] and status["kernel_stamps"] and far["home"]["delay_ms"] == 13
    assert far["home"]["released"] > 0 and far["near"]["delay_ms"] == 12
    # the testbed's state and report say so
    st = testbed.status(spec.deployment, str(state_dir))
    assert st["latency_emulated"] and not st["drift"]
    # a second `up` changes nothing
    _, again = _up(testbeds, spec)
    assert again["changes"] == []


@pytest.mark.root
@pytest.mark.usefixtures("netns_required")
def test_a_killed_delay_process_comes_back_and_a_new_delay_takes_effect(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    state_dir, state = _up(testbeds, spec)
    far_ns = state["nodes"][1]["netns"]
    assert delay.CHAIN in _chain(far_ns)

    def pid() -> int | None:
        info = supervisor.status(str(state_dir))
        return next((p["pid"] for p in info["programs"] if p["name"] == "testbed-delay"
                     and p["state"] == "RUNNING"), None)

    first = wait_for(pid, 15, "the delay process")
    os.kill(first, signal.SIGKILL)  # no clean-up: its chain stays, its queues lose a reader
    second = wait_for(lambda: (p := pid()) and p != first and p, 30, "a restarted delay process")
    ready = f"http://{state['nodes'][0]['address']}:{delay.DELAY_PORT}/ready"
    wait_for(lambda: supervisor.probe(ready)[0], 15, "the restarted process to be ready")
    assert second != first
    assert _round_trip(state, "home", "far", 5306)["min_s"] >= 0.026
    # a changed delay restarts the process with the new plan
    slower = TestbedSpec.from_dict({**spec.to_dict(), "nodes": [
        {"name": "home", "delay_ms": 1}, {"name": "far", "delay_ms": 30}, {"name": "near"}]})
    _, state = _up(testbeds, slower)
    assert _round_trip(state, "home", "far", 5304)["min_s"] >= 0.062
    # stopping the process (teardown stops supervisord first) removes its rules
    supervisor.remove_group(str(state_dir), "testbed")
    assert delay.CHAIN not in _chain(far_ns)
    assert _round_trip(state, "home", "far", 5305)["min_s"] < 0.062


@pytest.mark.root
@pytest.mark.usefixtures("netns_required")
def test_testbed_down_removes_the_delay_process(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    state_dir, _ = _up(testbeds, spec)
    down = subprocess.run([PYTHON, "-m", "jupiter.cli", "testbed", "down", "--deployment",
                           spec.deployment, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stderr
    assert leftovers(spec.deployment) == []
    programs = supervisor.status(str(state_dir)).get("programs", [])
    assert not [p for p in programs if p["name"].startswith("testbed-")]
    assert names.netns_name(spec.deployment, 0) not in os.listdir("/run/netns")
