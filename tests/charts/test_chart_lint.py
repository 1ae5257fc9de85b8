"""Static checks of the charts: helm lint --strict, schemas, shared helpers, bad values."""

from __future__ import annotations

import copy

import pytest
from charts_helpers import (
    CHARTS,
    COMPONENTS,
    deployment_values,
    helm,
    template,
    template_error,
    values_for,
)

from jupiter.k8s import schemas

CI_VALUES = sorted(CHARTS.glob("*/ci/*-values.yaml"))


@pytest.mark.parametrize("chart", COMPONENTS)
def test_helm_lint_strict_with_defaults(chart: str) -> None:
    out = helm("lint", "--strict", str(CHARTS / chart), check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_helm_lint_strict_with_ci_values(values) -> None:
    chart = values.parents[1]
    out = helm("lint", "--strict", str(chart), "--values", str(values), check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_chart_has_ci_values() -> None:
    assert {p.parts[-3] for p in CI_VALUES} == set(COMPONENTS)


def test_schema_files_are_generated_from_jupiter_k8s_schemas() -> None:
    assert schemas.main(["--charts-dir", str(CHARTS)]) == 0, \
        "run: python -m jupiter.k8s.schemas --write"


def test_schemas_are_strict_at_the_top() -> None:
    for chart in COMPONENTS:
        s = schemas.schema(chart)
        assert s["additionalProperties"] is False
        assert chart in s["required"]


def test_shared_helpers_are_identical_in_the_three_charts() -> None:
    texts = {c: (CHARTS / c / "templates" / "_helpers.tpl").read_text() for c in COMPONENTS}
    assert texts["drupe"] == texts["wave"] == texts["circe"]


@pytest.fixture(scope="module")
def diamond() -> dict:
    return deployment_values("diamond")


def test_unknown_top_level_value_is_rejected(diamond: dict) -> None:
    vals = values_for(diamond, "wave")
    vals["replicas"] = 2
    err = template_error("wave", vals)
    assert "replicas" in err and "additional" in err.lower()


def test_bad_hostname_is_rejected_by_the_schema(diamond: dict) -> None:
    vals = values_for(diamond, "circe")
    vals["circe"]["tasks"][0]["hostname"] = "Edge_1"
    err = template_error("circe", vals)
    assert "/circe/tasks/0/hostname" in err


def test_too_long_deployment_is_rejected(diamond: dict) -> None:
    vals = values_for(diamond, "drupe")
    vals["deployment"] = "a-deployment-name-too-long"
    err = template_error("drupe", vals)
    assert "/deployment" in err


def test_port_below_1024_is_rejected(diamond: dict) -> None:
    vals = values_for(diamond, "wave")
    vals["wave"]["port"] = 80
    err = template_error("wave", vals)
    assert "/wave/port" in err


def test_object_name_over_63_chars_fails_naming_it(diamond: dict) -> None:
    vals = values_for(diamond, "drupe")
    vals["deployment"] = "sixteen-chars-ab"
    for i, node in enumerate(vals["nodes"]):
        node["key"] = f"n{i}"
    vals["nodes"][1]["key"] = "k" * 40  # agent-<40> after a 16-char deployment: 69 chars
    err = template_error("drupe", vals)
    assert "is not a DNS-1035 label of at most 63 characters" in err
    assert "sixteen-chars-ab-drupe-agent-" + "k" * 40 in err


def test_unknown_home_node_fails_naming_it(diamond: dict) -> None:
    vals = values_for(diamond, "wave")
    vals["wave"]["node"] = "nowhere"
    err = template_error("wave", vals)
    assert 'node "nowhere" is not in values.nodes' in err


def test_agent_without_key_or_service_endpoint_fails(diamond: dict) -> None:
    vals = values_for(diamond, "drupe")
    vals = copy.deepcopy(vals)
    vals["drupe"]["config"]["endpoints"]["agents"]["cloud0"] = "http://10.0.0.1:7701"
    for node in vals["nodes"]:
        node.pop("key", None)
    err = template_error("drupe", vals)
    assert 'node "cloud0" has no key' in err


def test_unparsable_resource_quantity_fails(diamond: dict) -> None:
    vals = values_for(diamond, "circe")
    vals["circe"]["tasks"][0]["resources"] = {"cpu": "lots"}
    err = template_error("circe", vals)
    assert "cpu" in err


def test_drupe_must_publish_into_the_charts_configmap(diamond: dict) -> None:
    vals = values_for(diamond, "drupe")
    vals["drupe"]["config"]["publish"] = {"kind": "configmap", "name": "elsewhere",
                                          "namespace": "jupiter"}
    err = template_error("drupe", vals)
    assert "only lets DRUPE home write that one" in err
    assert "/jupiter-drupe-profile (key profile.json)" in err


def test_publish_into_the_charts_configmap_renders(diamond: dict) -> None:
    vals = values_for(diamond, "drupe")
    vals["drupe"]["config"]["publish"] = {"kind": "configmap", "name": "jupiter-drupe-profile",
                                          "namespace": "jupiter", "key": "profile.json"}
    assert template("drupe", vals)


def test_deployment_values_make_drupe_publish_into_the_configmap(diamond: dict) -> None:
    assert diamond["drupe"]["config"]["publish"] == {
        "kind": "configmap", "name": "jupiter-drupe-profile", "namespace": diamond["namespace"],
        "key": "profile.json"}


def test_exec_profiler_on_an_unknown_node_fails_naming_it(diamond: dict) -> None:
    vals = values_for(diamond, "drupe", execProfiler={"enabled": True, "nodes": ["nowhere"]})
    err = template_error("drupe", vals)
    assert 'values.execProfiler.nodes: "nowhere" is not in values.nodes (known: home, ' in err


def test_exec_profiler_values_are_strict(diamond: dict) -> None:
    vals = values_for(diamond, "drupe", execProfiler={"enabled": True, "parallel": 2})
    err = template_error("drupe", vals)
    assert "parallel" in err and "additional" in err.lower()
    vals = values_for(diamond, "drupe", execProfiler={"enabled": True, "appDir": "app"})
    assert "/execProfiler/appDir" in template_error("drupe", vals)
    vals = values_for(diamond, "drupe", execProfiler={"enabled": True, "repeat": 0})
    assert "/execProfiler/repeat" in template_error("drupe", vals)
