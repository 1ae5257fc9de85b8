"""The Ansible filters jupiter_app and jupiter_nodes, called as Ansible calls them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from ansible.errors import AnsibleFilterError
from app_helpers import APPS, CHAIN, REPO, legacy_app


def _plugin() -> ModuleType:
    path = REPO / "filter_plugins" / "jupiter_app.py"
    spec = importlib.util.spec_from_file_location("jupiter_app_filter_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLUGIN = _plugin()
FILTERS = PLUGIN.FilterModule().filters()


def test_filters_are_registered() -> None:
    assert set(FILTERS) == {"jupiter_app", "jupiter_nodes", "jupiter_placement"}


def test_jupiter_app_returns_plain_json_data() -> None:
    data = FILTERS["jupiter_app"](str(APPS / "network_monitoring_app"))
    assert data["schema"] == "jupiter.app/v1"
    assert data["warnings"] == []
    assert len(data["tasks"]) == 14
    assert json.loads(json.dumps(data)) == data  # plain types only


def test_jupiter_app_failure_lists_every_problem(tmp_path: Path) -> None:
    root = legacy_app(
        tmp_path / "bad",
        "3\na 1 true b\nb 1 nope c\nc 1 true home\n",
        scripts={"scripts/c.py": None},
    )
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["jupiter_app"](str(root))
    text = str(info.value)
    assert "invalid app" in text and "(2 problem(s))" in text
    assert f"{root}/configuration.txt:3 [FLAG]" in text
    assert f"{root}/configuration.txt:4 [script]" in text


def test_jupiter_app_warnings_are_passed_on(tmp_path: Path) -> None:
    root = legacy_app(tmp_path / "w", CHAIN + "a node1\n")
    data = FILTERS["jupiter_app"](str(root))
    assert len(data["warnings"]) == 1 and "static mapping covers 1 of 3" in data["warnings"][0]


def test_jupiter_app_rejects_non_path() -> None:
    with pytest.raises(AnsibleFilterError, match="expects an app folder path"):
        FILTERS["jupiter_app"](None)


GROUPS = {"all": ["home", "w1", "w2"], "home": ["home"], "workers": ["w1", "w2"], "ungrouped": []}
HOSTVARS = {
    "home": {"jupiter_app": "diamond", "jupiter_uplink_mbit": 50, "ansible_host": "x"},
    "w1": {"jupiter_app": "diamond", "jupiter_cpu_share": 0.5},
    "w2": {"jupiter_app": "diamond", "jupiter_uplink_mbit": 10},
}


def test_jupiter_nodes_returns_plain_data() -> None:
    data = FILTERS["jupiter_nodes"](GROUPS, HOSTVARS, ["inventory/x"])
    assert data["schema"] == "jupiter.inventory/v1"
    assert data["home"] == "home" and data["workers"] == ["w1", "w2"]
    assert data["app"] == "diamond" and data["target"] == "local"
    assert data["link_mbit"]["home"]["w2"] == 10
    assert data["link_mbit"]["home"]["w1"] == 50
    assert json.loads(json.dumps(data)) == data


def test_jupiter_nodes_failure_names_source_host_and_variable() -> None:
    bad = {**HOSTVARS, "w1": {"jupiter_app": "diamond", "jupiter_cpu_share": "lots"}}
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["jupiter_nodes"](GROUPS, bad, ["inventory/x"])
    assert "inventory/x [jupiter_cpu_share]: host 'w1': jupiter_cpu_share must be a number" in str(
        info.value
    )


def test_jupiter_nodes_rejects_non_mapping() -> None:
    with pytest.raises(AnsibleFilterError, match="expects the 'groups' mapping"):
        FILTERS["jupiter_nodes"](["home"], HOSTVARS)


def test_jupiter_placement() -> None:
    inv = FILTERS["jupiter_nodes"](GROUPS, HOSTVARS)
    app = FILTERS["jupiter_app"](str(APPS / "diamond"))
    assert FILTERS["jupiter_placement"](app, inv, "heft") == []
    pinned = {**app, "tasks": [{**app["tasks"][0], "pin": "w9"}, *app["tasks"][1:]]}
    with pytest.raises(AnsibleFilterError, match="pinned to 'w9', which is not an inventory"):
        FILTERS["jupiter_placement"](pinned, inv)
    with pytest.raises(AnsibleFilterError, match="expects the app and inventory models"):
        FILTERS["jupiter_placement"]("x", inv)
