"""jupiter.values: one computation of every component's values, for both targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupiter.app import load_app
from jupiter.errors import InvalidInput
from jupiter.inventory import inventory_from_hostvars
from jupiter.profile import ExecProfile, LinkProfile, NodeProfile, Profile
from jupiter.values import build_values, local_programs
from jupiter.wave import schedule

ROOT = Path(__file__).resolve().parents[2]
NODES = ["hub", "w1", "w2", "w3"]


def _inventory(deployment: str = "demo") -> dict[str, Any]:
    groups = {"home": ["hub"], "workers": NODES[1:], "all": NODES}
    hostvars = {n: {"jupiter_deployment": deployment, "jupiter_target": "local",
                    "jupiter_app": "diamond"} for n in NODES}
    hostvars["w3"]["k8s_hostname"] = "rpi-03.example"
    return inventory_from_hostvars(groups, hostvars).to_dict()


def _profile(app: dict[str, Any]) -> dict[str, Any]:
    p = Profile(complete=True, generated_at=1.0)
    for i, n in enumerate(NODES):
        p.nodes[n] = NodeProfile(cpu_count=1, speed=1.0 + i / 4)
    for s in NODES:
        for d in NODES:
            if s != d:
                p.links.setdefault(s, {})[d] = LinkProfile(latency_s=0.001, bandwidth_bps=2e7)
    for t in app["tasks"]:
        p.exec[t["name"]] = {n: ExecProfile(seconds=0.01, output_bytes=1000) for n in NODES}
    return p.to_dict()


@pytest.fixture(params=["network_monitoring_app", "diamond"])
def app(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_app(ROOT / "task_specific_files" / request.param).to_dict()


def _mapping(app: dict[str, Any]) -> dict[str, Any]:
    return schedule(load_app(app["root"]), Profile.from_dict(_profile(app)), NODES,
                    algorithm="heft", home="hub").to_dict()


def test_local_values_use_node_addresses_and_distinct_ports(app: dict[str, Any]) -> None:
    addresses = {n: f"10.9.0.{i + 2}" for i, n in enumerate(NODES)}
    mapping = _mapping(app)
    v = build_values(_inventory(), app, mapping, target="local", state_dir="/s",
                     token_file="/s/token", addresses=addresses)
    assert v["home"] == "hub" and v["target"] == "local"
    assert {n["name"]: n["address"] for n in v["nodes"]} == addresses
    tasks = v["circe"]["tasks"]
    assert [t["name"] for t in tasks] == [t["name"] for t in app["tasks"]]
    assert {t["name"]: t["node"] for t in tasks} == mapping["mapping"]
    ports = [t["port"] for t in tasks] + [v["circe"]["home"]["port"], v["wave"]["port"],
                                          v["drupe"]["home"]["port"], v["drupe"]["agent_port"]]
    assert len(ports) == len(set(ports))
    progs = local_programs(v, "circe_tasks", "/venv/bin/jupiter", "/s/circe.json")
    for prog, task in zip(progs, tasks, strict=True):
        listen = f"{addresses[task['node']]}:{task['port']}"
        assert prog["node"] == task["node"]
        assert prog["command"][-2:] == ["--listen", listen]
        assert prog["ready_url"] == f"http://{listen}/ready"
    drupe = local_programs(v, "drupe", "/venv/bin/jupiter", "/s/drupe.json")
    assert sorted(p["node"] for p in drupe) == sorted([*NODES, "hub"])


def test_kubernetes_values_use_service_names_and_hostnames(app: dict[str, Any]) -> None:
    v = build_values(_inventory(), app, _mapping(app), target="kubernetes", state_dir="/s",
                     token_file="/s/token")
    assert all("address" not in n for n in v["nodes"])
    assert {n["name"]: n["hostname"] for n in v["nodes"]}["w3"] == "rpi-03.example"
    assert v["token_file"] == "/var/run/jupiter/token"
    for t in v["circe"]["tasks"]:
        assert t["hostname"] == ("rpi-03.example" if t["node"] == "w3" else t["node"])
    assert v["namespace"] == "demo"


def test_values_before_wave_hold_drupe_only(app: dict[str, Any]) -> None:
    v = build_values(_inventory(), app, None, target="kubernetes", state_dir="/s",
                     token_file="/s/token")
    assert "drupe" in v and "circe" not in v and "wave" not in v


def test_bad_values_name_every_problem(app: dict[str, Any]) -> None:
    mapping = _mapping(app)
    first = app["tasks"][0]["name"]
    mapping["mapping"] = {**mapping["mapping"], first: "nowhere"}
    del mapping["mapping"][app["tasks"][1]["name"]]
    with pytest.raises(InvalidInput) as err:
        build_values(_inventory("this-name-is-far-too-long"), app, mapping, target="local",
                     state_dir="/s", token_file="/s/token", addresses={"hub": "10.0.0.2"})
    text = str(err.value)
    assert "jupiter_deployment 'this-name-is-far-too-long'" in text
    assert f"task {first!r} is mapped to unknown node 'nowhere'" in text
    assert f"task {app['tasks'][1]['name']!r} is not mapped" in text
    assert "no testbed address for node(s) w1, w2, w3" in text


def test_local_endpoints_name_each_home(app: dict[str, Any]) -> None:
    from jupiter.values import local_endpoints

    addresses = {n: f"10.9.0.{i + 2}" for i, n in enumerate(NODES)}
    v = build_values(_inventory(), app, _mapping(app), target="local", state_dir="/s",
                     token_file="/s/token", addresses=addresses)
    assert local_endpoints(v) == {
        "schema": "jupiter.endpoints/v1", "token_file": "/s/token",
        "drupe": {"home": "http://10.9.0.2:7700"}, "circe": {"home": "http://10.9.0.2:7800"},
        "wave": {"home": "http://10.9.0.2:7710"}}
