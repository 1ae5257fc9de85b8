"""jupiter.inventory: building and checking the inventory from Ansible's groups/hostvars."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jupiter.app.model import is_dns_label
from jupiter.errors import InvalidInput
from jupiter.inventory import (
    Inventory,
    Node,
    check_inventory,
    check_placement,
    import_nodes,
    inventory_from_hostvars,
)

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def ansible_view(inventory: Path) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """groups and hostvars of an inventory, as ``ansible-inventory --list`` computes them."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    r = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    data = json.loads(r.stdout)
    hostvars = data.pop("_meta")["hostvars"]

    def hosts(group: str) -> list[str]:
        body = data.get(group, {})
        out = list(body.get("hosts", []))
        for child in body.get("children", []):
            out += [h for h in hosts(child) if h not in out]
        return out

    groups = {g: hosts(g) for g in data}
    return groups, hostvars


def groups_of(home: list[str], workers: list[str]) -> dict[str, list[str]]:
    return {"all": sorted(set(home + workers)), "home": home, "workers": workers, "ungrouped": []}


# ---- the embedded default inventory --------------------------------------------------------------


def test_local_inventory_is_valid() -> None:
    groups, hostvars = ansible_view(REPO / "inventory" / "local")
    inv, warnings = check_inventory(groups, hostvars, cores=2, source="inventory/local")
    assert warnings == []
    assert inv.target == "local"
    assert inv.app == "network_monitoring_app"
    assert inv.deployment == "jupiter"
    assert inv.home.name == "hub"
    assert [w.name for w in inv.workers] == ["cloud1", "cloud2", "edge1", "edge2", "pi1"]
    assert inv.node("edge1").cpu_share == 0.3
    assert inv.node("pi1").uplink_mbit == 5
    assert [n.delay_ms for n in inv.nodes] == [1, 10, 15, 2, 4, 6]
    # explicit links win, else the smaller uplink
    assert inv.link_mbit("cloud1", "pi1") == 2
    assert inv.link_mbit("pi1", "cloud1") == 2
    assert inv.link_mbit("edge1", "cloud2") == 20
    assert inv.link_mbit("hub", "edge2") == 10
    assert inv.vars["jupiter_scheduler"] == "stream"
    assert inv.vars["jupiter_run_sample_input"] is True
    matrix = inv.link_matrix()
    assert set(matrix) == set(inv.names)
    assert all(src not in row for src, row in matrix.items())


def test_defaults_and_dns_keys() -> None:
    groups = groups_of(["Home_Node"], ["edge_1", "edge-1", "EDGE.1"])
    inv = inventory_from_hostvars(groups, {}, cores=2)
    assert inv.target == "local" and inv.app is None and inv.deployment == "jupiter"
    assert all(n.cpu_share == 1.0 and n.uplink_mbit == 100 and n.delay_ms == 0
               for n in inv.nodes)
    keys = [n.key for n in inv.nodes]
    assert len(set(keys)) == len(keys)
    assert all(is_dns_label(k) for k in keys)
    assert inv.node("edge-1").key == "edge-1"
    assert inv.home.hostname == "Home_Node"  # no k8s_hostname: the inventory name
    assert inv.link_mbit("edge_1", "edge-1") == 100


def test_numbers_as_strings_and_k8s_hostname() -> None:
    hv = {
        "h": {"jupiter_uplink_mbit": "25.5", "k8s_hostname": "node-a.example.org",
              "jupiter_delay_ms": "7.5"},
        "w": {"jupiter_cpu_share": "0.5", "jupiter_links": {"w": {"h": "3"}}},
    }
    hv["h"]["jupiter_links"] = hv["w"]["jupiter_links"]
    inv = inventory_from_hostvars(groups_of(["h"], ["w"]), hv, cores=2)
    assert inv.home.uplink_mbit == 25.5
    assert inv.home.delay_ms == 7.5 and inv.to_dict()["nodes"][0]["delay_ms"] == 7.5
    assert inv.home.hostname == "node-a.example.org"
    assert inv.node("w").cpu_share == 0.5
    assert inv.link_mbit("w", "h") == 3.0
    assert inv.link_mbit("h", "w") == 25.5


def test_round_trip_and_to_dict_shape() -> None:
    hv = {"h": {"jupiter_app": "diamond", "jupiter_custom": 1}, "w": {"jupiter_app": "diamond"}}
    inv = inventory_from_hostvars(groups_of(["h"], ["w"]), hv, cores=2)
    data = inv.to_dict()
    assert data["schema"] == "jupiter.inventory/v1"
    assert data["home"] == "h" and data["workers"] == ["w"]
    assert data["nodes"][0]["vars"] == {"jupiter_custom": 1}
    again = Inventory.from_dict(json.loads(json.dumps(data)))
    assert again == inv
    with pytest.raises(ValueError, match="expected schema"):
        Inventory.from_dict({**data, "schema": "nope"})


def test_node_key_is_derived_when_constructed_directly() -> None:
    n = Node("edge_1", "worker")
    assert is_dns_label(n.key) and n.key.startswith("edge-1")
    assert n.hostname == "edge_1"


def test_warnings() -> None:
    hv = {
        "h": {"jupiter_deployment": "a-very-long-deployment-name"},
        "w": {"jupiter_deployment": "a-very-long-deployment-name", "jupiter_cpu_shares": 1},
        "x": {"jupiter_deployment": "a-very-long-deployment-name"},
    }
    groups = {**groups_of(["h"], ["w"]), "all": ["h", "w", "x"]}
    _, warnings = check_inventory(groups, hv, cores=2)
    text = [str(w) for w in warnings]
    assert any("host 'x': is in neither group home nor group workers" in t for t in text)
    assert any(
        "unknown variable jupiter_cpu_shares (did you mean jupiter_cpu_share?)" in t for t in text
    )
    assert any("longer than 16 characters" in t for t in text)


def test_import_nodes_reexport() -> None:
    text, warnings = import_nodes("home a\nnode1 b\n", "nodes.txt")
    assert "k8s_hostname: b" in text and warnings == []


# ---- a corpus of bad inventories ------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    text: str
    field: str | None = None


G = groups_of(["h"], ["w1", "w2"])


def hv(**per_host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base: dict[str, dict[str, Any]] = {"h": {}, "w1": {}, "w2": {}}
    for host, values in per_host.items():
        base[host] = {**base.get(host, {}), **values}
    return base


def everywhere(**values: Any) -> dict[str, dict[str, Any]]:
    return {h: dict(values) for h in ("h", "w1", "w2")}


BAD = [
    Bad("no-home", groups_of([], ["w1"]), {}, "no host in group 'home'"),
    Bad("two-homes", groups_of(["h", "w2"], ["w1"]), {}, "group 'home' has 2 hosts (h, w2)"),
    Bad("no-workers", groups_of(["h"], []), {}, "no host in group 'workers'"),
    Bad(
        "home-and-worker",
        groups_of(["h"], ["h", "w1"]),
        {},
        "host 'h': is in both groups home and workers",
    ),
    Bad(
        "cpu-zero",
        G,
        hv(w1={"jupiter_cpu_share": 0}),
        "host 'w1': jupiter_cpu_share must be",
        "jupiter_cpu_share",
    ),
    Bad(
        "cpu-above-cores",
        G,
        hv(w2={"jupiter_cpu_share": 3}),
        "0 < x <= 2 (this machine's cores), got 3",
        "jupiter_cpu_share",
    ),
    Bad("cpu-bool", G, hv(w1={"jupiter_cpu_share": True}), "jupiter_cpu_share must be a number"),
    Bad("cpu-text", G, hv(w1={"jupiter_cpu_share": "half"}), "got 'half'"),
    Bad(
        "uplink-zero",
        G,
        hv(h={"jupiter_uplink_mbit": 0}),
        "host 'h': jupiter_uplink_mbit must be a number of Mbit/s greater than 0, got 0",
        "jupiter_uplink_mbit",
    ),
    Bad("uplink-list", G, hv(h={"jupiter_uplink_mbit": [1]}), "jupiter_uplink_mbit must be"),
    Bad(
        "delay-negative",
        G,
        hv(w1={"jupiter_delay_ms": -1}),
        "host 'w1': jupiter_delay_ms must be a one-way delay in milliseconds with "
        "0 <= x <= 5000, got -1",
        "jupiter_delay_ms",
    ),
    Bad("delay-huge", G, hv(w2={"jupiter_delay_ms": 6000}), "0 <= x <= 5000, got 6000"),
    Bad("delay-text", G, hv(h={"jupiter_delay_ms": "far"}), "jupiter_delay_ms must be"),
    Bad(
        "target",
        G,
        everywhere(jupiter_target="cloud"),
        "jupiter_target must be one of local, kubernetes, got 'cloud'",
        "jupiter_target",
    ),
    Bad(
        "deployment-not-dns",
        G,
        everywhere(jupiter_deployment="My_Deploy"),
        "jupiter_deployment 'My_Deploy' must be a DNS label",
        "jupiter_deployment",
    ),
    Bad(
        "app-with-slash",
        G,
        everywhere(jupiter_app="../etc"),
        "jupiter_app must be the name of a folder under task_specific_files/",
    ),
    Bad(
        "links-not-mapping", G, everywhere(jupiter_links=[1, 2]), "jupiter_links must be a mapping"
    ),
    Bad(
        "links-unknown-src",
        G,
        everywhere(jupiter_links={"w3": {"h": 1}}),
        "jupiter_links names unknown node 'w3'; known nodes: h, w1, w2",
        "jupiter_links.w3",
    ),
    Bad(
        "links-unknown-dst",
        G,
        everywhere(jupiter_links={"w1": {"hh": 1}}),
        "jupiter_links.w1 names unknown node 'hh' (did you mean 'h'?)",
        "jupiter_links.w1.hh",
    ),
    Bad(
        "links-self",
        G,
        everywhere(jupiter_links={"w1": {"w1": 5}}),
        "a node has no link to itself",
        "jupiter_links.w1.w1",
    ),
    Bad(
        "links-zero",
        G,
        everywhere(jupiter_links={"w1": {"h": 0}}),
        "jupiter_links.w1.h must be a number of Mbit/s greater than 0, got 0",
    ),
    Bad(
        "links-row-not-mapping",
        G,
        everywhere(jupiter_links={"w1": 5}),
        "jupiter_links.w1 must be a mapping",
    ),
    Bad(
        "shared-var-differs",
        G,
        {
            "h": {"jupiter_target": "local"},
            "w1": {"jupiter_target": "kubernetes"},
            "w2": {"jupiter_target": "local"},
        },
        "jupiter_target differs between hosts (h='local', w1='kubernetes', w2='local')",
    ),
    Bad(
        "shared-var-partial",
        G,
        hv(w1={"jupiter_app": "diamond"}),
        "jupiter_app is set on some hosts only (missing on h, w2)",
    ),
    Bad(
        "k8s-hostname",
        G,
        hv(w2={"k8s_hostname": "Worker_2"}),
        "host 'w2': k8s_hostname 'Worker_2' is not a valid Kubernetes node name",
        "k8s_hostname",
    ),
]


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_inventory(bad: Bad) -> None:
    with pytest.raises(InvalidInput) as info:
        inventory_from_hostvars(bad.groups, bad.hostvars, cores=2, source="inv/hosts.yml")
    problems = info.value.problems
    listing = "\n".join(str(p) for p in problems)
    match = [p for p in problems if bad.text in p.message]
    assert match, f"{bad.text!r} not in:\n{listing}"
    assert all(p.file == "inv/hosts.yml" for p in problems)
    if bad.field is not None:
        assert match[0].field == bad.field
    assert bad.text in str(info.value)


def test_every_inventory_problem_is_reported_at_once() -> None:
    hostvars = hv(
        h={"jupiter_uplink_mbit": -5}, w1={"jupiter_cpu_share": 0}, w2={"k8s_hostname": "UPPER"}
    )
    with pytest.raises(InvalidInput) as info:
        inventory_from_hostvars(G, hostvars, cores=2)
    fields = sorted(p.field or "" for p in info.value.problems)
    assert fields == ["jupiter_cpu_share", "jupiter_uplink_mbit", "k8s_hostname"]


def test_corpus_size() -> None:
    assert len(BAD) >= 20


def test_other_variables_go_to_inventory_or_node_and_namespace() -> None:
    hostvars = {
        "h": {"jupiter_image_tag": "1.0", "jupiter_namespace": "team-a", "jupiter_extra": 1},
        "w": {"jupiter_image_tag": "1.0", "jupiter_namespace": "team-a"},
    }
    inv = inventory_from_hostvars(groups_of(["h"], ["w"]), hostvars, cores=2)
    assert inv.vars == {"jupiter_image_tag": "1.0", "jupiter_namespace": "team-a"}
    assert inv.home.vars == {"jupiter_extra": 1}
    assert inv.node("w").vars == {}
    assert inv.namespace == "team-a" and inv.to_dict()["namespace"] == "team-a"
    plain = inventory_from_hostvars(groups_of(["h"], ["w"]), {}, cores=2)
    assert plain.namespace == "jupiter"


def test_bad_namespace() -> None:
    with pytest.raises(InvalidInput, match="jupiter_namespace 'Team_A' must be a DNS label"):
        inventory_from_hostvars(G, everywhere(jupiter_namespace="Team_A"), cores=2)


def test_tcp_congestion_is_shared_and_checked() -> None:
    inv = inventory_from_hostvars(G, everywhere(jupiter_tcp_congestion="cubic"), cores=2)
    assert inv.vars["jupiter_tcp_congestion"] == "cubic"
    with pytest.raises(InvalidInput, match="jupiter_tcp_congestion 'Cubic!' is not a TCP "
                       "congestion control name"):
        inventory_from_hostvars(G, everywhere(jupiter_tcp_congestion="Cubic!"), cores=2)


def test_check_placement() -> None:
    inv = inventory_from_hostvars(groups_of(["home"], ["edge1", "edge2"]), {}, cores=2).to_dict()
    app = {
        "root": "/apps/x",
        "source": "app.yaml",
        "tasks": [{"name": "a", "pin": "edge1"}, {"name": "b", "pin": None}],
        "static_mapping": {"a": "edge1", "b": "edge3"},
    }
    warnings = check_placement(app, inv, "heft")
    assert [w.severity for w in warnings] == ["warning"]
    assert "puts task 'b' on 'edge3', which is not an inventory node (did you mean" in (
        warnings[0].message
    )
    with pytest.raises(InvalidInput, match="puts task 'b' on 'edge3'"):
        check_placement(app, inv, "static")
    bad_pin = {**app, "tasks": [{"name": "a", "pin": "edge7"}], "static_mapping": {}}
    with pytest.raises(InvalidInput) as info:
        check_placement(bad_pin, inv)
    p = info.value.problems[0]
    assert p.file == "/apps/x/app.yaml" and p.field == "pin"
    assert "task 'a' is pinned to 'edge7', which is not an inventory node" in p.message


def test_import_nodes_first_tag_not_home_and_bom() -> None:
    text, warnings = import_nodes("\ufeffmaster k8s-a\nnode1 k8s-b\n", "nodes.txt")
    assert "        master:\n          k8s_hostname: k8s-a" in text
    assert [(w.line, "its tag is 'master'" in w.message) for w in warnings] == [(1, True)]


def test_import_nodes_quotes_what_yaml_would_misread() -> None:
    text, _ = import_nodes("home k8s-a\nyes 1e3\n", "nodes.txt")
    assert '        "yes":\n          k8s_hostname: "1e3"' in text


def test_cpu_share_bound_only_applies_to_the_local_target() -> None:
    hostvars = everywhere(jupiter_target="kubernetes")
    hostvars["w1"]["jupiter_cpu_share"] = 8
    inv = inventory_from_hostvars(G, hostvars, cores=2)
    assert inv.node("w1").cpu_share == 8
    hostvars["w2"]["jupiter_cpu_share"] = -1
    with pytest.raises(
        InvalidInput, match="jupiter_cpu_share must be a number of cores with x > 0"
    ):
        inventory_from_hostvars(G, hostvars, cores=2)
