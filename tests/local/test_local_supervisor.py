"""supervisord per deployment: programs on nodes, restarts, idempotence, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import psutil
import pytest
from local_helpers import PYTHON, Testbeds, wait_for

from jupiter.local import names, supervisor

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("netns_required")]

NODES = [{"name": "home", "cpu_share": 1.0}, {"name": "edge1", "cpu_share": 0.5}]


def web(name: str, node: str, address: str, port: int, **extra: object) -> dict:
    return {
        "name": name,
        "node": node,
        "command": [PYTHON, "-m", "http.server", "--bind", address, str(port)],
        "ready_url": f"http://{address}:{port}/",
        **extra,
    }


def pids(state_dir: Path) -> dict[str, int | None]:
    return {p["name"]: p["pid"] for p in supervisor.status(str(state_dir))["programs"]}


def running_pid(state_dir: Path, name: str) -> int | None:
    for p in supervisor.status(str(state_dir))["programs"]:
        if p["name"] == name and p["state"] == "RUNNING":
            return p["pid"]
    return None


def test_programs_run_on_nodes_restart_and_stop(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    dep = spec.deployment
    state_dir, _, state = testbeds.apply(spec)
    sd = str(state_dir)
    addr = {n["name"]: n["address"] for n in state["nodes"]}
    progs = [
        web("web-home", "home", addr["home"], 8101),
        web("web-edge", "edge1", addr["edge1"], 8102),
    ]

    assert supervisor.apply_group(sd, dep, "demo", progs) is True
    took = supervisor.wait_ready(sd, "demo", progs, timeout=30)
    assert set(took) == {"demo-web-home", "demo-web-edge"}

    # private control socket, no inet server
    sup = psutil.Process(supervisor.supervisord_pid(sd))
    assert stat.S_IMODE(os.stat(state_dir / "supervisor").st_mode) == 0o700
    assert not [c for c in sup.net_connections(kind="inet") if c.status == "LISTEN"]

    # each program runs in its node's namespace and cgroup; logs where promised
    first = wait_for(lambda: len(pids(state_dir)) == 2 and pids(state_dir), 10, "two pids")
    edge_pid = first["demo-web-edge"]
    netns_ino = os.stat(f"/run/netns/{names.netns_name(dep, 1)}").st_ino
    assert os.stat(f"/proc/{edge_pid}/ns/net").st_ino == netns_ino
    with open(f"{names.cgroup_dir(dep, 'edge1')}/cgroup.procs") as fh:
        assert str(edge_pid) in fh.read().split()
    assert (state_dir / "logs" / "demo-web-edge.log").exists()
    status = {p["name"]: p for p in supervisor.status(sd)["programs"]}
    assert status["demo-web-edge"]["node"] == "edge1"

    # applying the same programs again changes nothing and restarts nothing
    assert supervisor.apply_group(sd, dep, "demo", progs) is False
    assert pids(state_dir) == first

    # kill -9: supervisord starts it again (a new pid), the service comes back
    os.kill(edge_pid, signal.SIGKILL)
    new_pid = wait_for(
        lambda: (p := running_pid(state_dir, "demo-web-edge")) not in (None, edge_pid) and p,
        30,
        "the killed program to be restarted",
    )
    assert new_pid != edge_pid
    supervisor.wait_ready(sd, "demo", progs, timeout=30)

    # changing one program restarts only that program
    changed = [progs[0], {**progs[1], "env": {"GREETING": "hello ; # %s"}}]
    home_pid = pids(state_dir)["demo-web-home"]
    assert supervisor.apply_group(sd, dep, "demo", changed) is True
    supervisor.wait_ready(sd, "demo", changed, timeout=30)
    after = wait_for(
        lambda: (p := pids(state_dir))["demo-web-edge"] not in (None, new_pid) and p, 30, "restart"
    )
    assert after["demo-web-home"] == home_pid
    with open(f"/proc/{after['demo-web-edge']}/environ", "rb") as fh:
        assert b"GREETING=hello ; # %s\0" in fh.read()

    # removing the group stops its programs; shutdown leaves no process behind
    all_pids = [sup.pid, *pids(state_dir).values()]
    assert supervisor.remove_group(sd, "demo") is True
    assert supervisor.status(sd)["programs"] == []
    assert supervisor.remove_group(sd, "demo") is False
    assert supervisor.shutdown(sd) is True
    assert not [p for p in all_pids if p and psutil.pid_exists(p)]
    assert supervisor.status(sd)["running"] is False
    assert supervisor.shutdown(sd) is False


def test_wait_ready_names_the_failing_program_with_its_log(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    dep = spec.deployment
    state_dir, _, state = testbeds.apply(spec)
    sd = str(state_dir)
    home = state["nodes"][0]["address"]
    crash = {
        "name": "crash",
        "node": "home",
        "command": [PYTHON, "-c", "import sys; print('boom: no config file'); sys.exit(3)"],
        "ready_url": f"http://{home}:8111/ready",
        "autorestart": False,
    }
    supervisor.apply_group(sd, dep, "bad", [crash])
    with pytest.raises(supervisor.ProgramNotReady) as err:
        supervisor.wait_ready(sd, "bad", [crash], timeout=30)
    text = str(err.value)
    assert "bad-crash" in text and "boom: no config file" in text and "gave up" in text
    assert err.value.programs == ["bad-crash"]

    never = {
        "name": "never",
        "node": "edge1",
        "command": [
            PYTHON,
            "-c",
            "import time; print('waiting for godot', flush=True); time.sleep(600)",
        ],
        "ready_url": f"http://{state['nodes'][1]['address']}:8112/ready",
    }
    supervisor.apply_group(sd, dep, "slow", [never])
    wait_for(
        lambda: "godot" in supervisor.tail(str(state_dir / "logs" / "slow-never.log")), 15, "log"
    )
    with pytest.raises(supervisor.ProgramNotReady) as err:
        supervisor.wait_ready(sd, "slow", [never], timeout=1)
    text = str(err.value)
    assert "not ready after 1s" in text and "slow-never" in text and "waiting for godot" in text
    assert "node edge1" in text


def test_loopback_mode_programs(testbeds: Testbeds, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPITER_LOCAL_MODE", "loopback")
    spec = testbeds.spec(NODES)
    state_dir, _, state = testbeds.apply(spec)
    assert state["shaped"] is False
    sd = str(state_dir)
    progs = [web("a", "home", "127.0.1.2", 8121), web("b", "edge1", "127.0.1.3", 8121)]
    assert supervisor.apply_group(sd, spec.deployment, "lo", progs) is True
    supervisor.wait_ready(sd, "lo", progs, timeout=30)
    assert supervisor.apply_group(sd, spec.deployment, "lo", progs) is False
    running = supervisor.status(sd)["programs"]
    assert {p["name"] for p in running} == {"lo-a", "lo-b"}
    every = [p["pid"] for p in running] + [supervisor.supervisord_pid(sd)]
    assert supervisor.shutdown(sd) is True
    assert not [p for p in every if p and psutil.pid_exists(p)]


def test_long_state_dir_uses_a_private_socket_elsewhere(testbeds: Testbeds, tmp_path: Path) -> None:
    spec = testbeds.spec(NODES[:1])
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    testbeds.created.append((spec.deployment, deep))  # cleaned up by the fixture
    from jupiter.local import testbed

    testbed.apply(spec, str(deep))
    sock = supervisor.socket_path(str(deep))
    assert len(sock) < 108 and not sock.startswith(str(deep))
    assert supervisor.ensure_supervisord(str(deep), spec.deployment) is True
    assert supervisor.ensure_supervisord(str(deep), spec.deployment) is False
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
    probe = socket.socket(socket.AF_UNIX)
    probe.connect(sock)
    probe.close()
    assert supervisor.shutdown(str(deep)) is True
    assert not os.path.exists(sock)


def test_programs_orphaned_by_a_killed_supervisord_are_reaped(testbeds: Testbeds) -> None:
    spec = testbeds.spec(NODES)
    state_dir, _, state = testbeds.apply(spec)
    sd = str(state_dir)
    progs = [web("w", "edge1", state["nodes"][1]["address"], 8131)]
    supervisor.apply_group(sd, spec.deployment, "orph", progs)
    supervisor.wait_ready(sd, "orph", progs, timeout=30)
    old = wait_for(lambda: pids(state_dir).get("orph-w"), 10, "a pid")
    sup_pid = supervisor.supervisord_pid(sd)
    assert sup_pid is not None
    os.kill(sup_pid, signal.SIGKILL)
    wait_for(lambda: not supervisor.running(sd), 10, "supervisord to die")
    assert [p.pid for p in supervisor.orphans(sd)] == [old]
    # the next apply starts a new supervisord, which first reaps the orphan (same port)
    assert supervisor.apply_group(sd, spec.deployment, "orph", progs) is True
    supervisor.wait_ready(sd, "orph", progs, timeout=30)
    assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
    new = wait_for(lambda: pids(state_dir).get("orph-w"), 10, "a pid")
    assert new != old and supervisor.orphans(sd) == []
    # shutdown without a supervisord still removes orphans
    os.kill(supervisor.supervisord_pid(sd), signal.SIGKILL)
    wait_for(lambda: not supervisor.running(sd), 10, "supervisord to die")
    assert supervisor.shutdown(sd) is True
    assert supervisor.orphans(sd) == []
