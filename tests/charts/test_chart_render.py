"""Rendered charts: schema-valid for every supported Kubernetes, and shaped as designed.

Values come from the real builders (jupiter.values.build_values with a WAVE mapping) for
both sample apps and a generated 100-task app, on an inventory whose node names need keys
and whose Kubernetes hostnames differ from the node names.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from charts_helpers import (
    COMPONENTS,
    by_kind,
    deployment_values,
    generated_app,
    kube_versions,
    pod_spec,
    template,
    validate_all,
    values_for,
)

from jupiter.values import service_name

APPS = ("diamond", "network_monitoring_app", "generated-100")
LABELS = ("name", "instance", "version", "component", "part-of", "managed-by")


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """{app: {"values": deployment values, component: [objects]}}."""
    out: dict[str, dict[str, Any]] = {}
    for app in APPS:
        if app == "generated-100":
            values = deployment_values(generated_app(100), n_workers=8)
        else:
            values = deployment_values(app)
        entry: dict[str, Any] = {"values": values}
        for component in COMPONENTS:
            entry[component] = template(component, values_for(values, component))
        out[app] = entry
    return out


def test_supported_versions_start_at_1_29() -> None:
    versions = kube_versions()
    assert versions[0] == "1.29"
    assert len(versions) >= 9  # 1.29 .. 1.37 with kubernetes-validate 1.37


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("component", COMPONENTS)
def test_manifests_validate_strictly_for_every_kubernetes_version(
        rendered: dict, app: str, component: str) -> None:
    objects = rendered[app][component]
    assert objects
    errors = validate_all(objects, kube_versions())
    assert not errors, "\n".join(errors[:20])


def test_the_validator_is_strict(rendered: dict) -> None:
    deployment = next(o for o in rendered["diamond"]["wave"] if o["kind"] == "Deployment")
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # typo
    assert validate_all([bad], ["1.29"])
    assert not validate_all([deployment], ["1.29"])


def test_100_task_app_renders_one_deployment_and_service_per_task(rendered: dict) -> None:
    values, objects = rendered["generated-100"]["values"], rendered["generated-100"]["circe"]
    tasks = values["circe"]["tasks"]
    assert len(tasks) == 100
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    assert len(deployments) == 101 and len(services) == 101  # + home


@pytest.mark.parametrize("app", APPS)
def test_each_task_is_pinned_to_its_mapped_hostname(rendered: dict, app: str) -> None:
    values, objects = rendered[app]["values"], rendered[app]["circe"]
    deployments = by_kind(objects, "Deployment")
    hostname = {n["name"]: n["hostname"] for n in values["nodes"]}
    for task in values["circe"]["tasks"]:
        dep = deployments[service_name(values["deployment"], "circe", task["key"])]
        spec = pod_spec(dep)
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": hostname[task["node"]]}
        args = spec["containers"][0]["args"]
        assert args[:4] == ["circe", "task", "--task", task["key"]]
        assert args[-2:] == ["--listen", f"0.0.0.0:{task['port']}"]
        assert dep["spec"]["template"]["metadata"]["labels"]["jupiter.io/task"] == task["key"]
    home = deployments[service_name(values["deployment"], "circe", "home")]
    assert pod_spec(home)["nodeSelector"] == {"kubernetes.io/hostname": hostname["home"]}


@pytest.mark.parametrize("app", APPS)
def test_every_endpoint_in_the_configs_is_a_service_of_the_release(rendered: dict,
                                                                   app: str) -> None:
    values = rendered[app]["values"]
    for component, section in (("drupe", "agents"), ("circe", "tasks")):
        services = by_kind(rendered[app][component], "Service")
        endpoints = values[component]["config"]["endpoints"]
        urls = [endpoints["home"], *endpoints[section].values()]
        assert len(urls) == len(services)
        for url in urls:
            parts = urlsplit(url)
            assert parts.hostname in services, f"{url}: no Service {parts.hostname}"
            assert services[parts.hostname]["spec"]["ports"][0]["port"] == parts.port
    wave = by_kind(rendered[app]["wave"], "Service")
    assert set(wave) == {service_name(values["deployment"], "wave", "home")}
    profile_host = urlsplit(values["wave"]["config"]["profile_url"]).hostname
    assert profile_host in by_kind(rendered[app]["drupe"], "Service")


@pytest.mark.parametrize("app", ("diamond", "generated-100"))
def test_one_agent_daemonset_per_node_limited_by_hostname(rendered: dict, app: str) -> None:
    values = rendered[app]["values"]
    daemonsets = by_kind(rendered[app]["drupe"], "DaemonSet")
    assert len(daemonsets) == len(values["nodes"])
    agents = values["drupe"]["config"]["endpoints"]["agents"]
    for node in values["nodes"]:
        name = urlsplit(agents[node["name"]]).hostname
        ds = daemonsets[name]
        spec = pod_spec(ds)
        terms = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname",
                                                "operator": "In",
                                                "values": [node["hostname"]]}]}]
        assert spec["containers"][0]["args"][:4] == ["drupe", "agent", "--node", node["name"]]
        assert ds["metadata"]["annotations"]["jupiter.io/expected-pods"] == "1"


def _all_objects(rendered: dict, app: str) -> list[dict]:
    return [o for c in COMPONENTS for o in rendered[app][c]]


def test_recommended_labels_on_every_object_and_pod(rendered: dict) -> None:
    for obj in _all_objects(rendered, "diamond"):
        labels = obj["metadata"]["labels"]
        for label in LABELS:
            assert f"app.kubernetes.io/{label}" in labels, (obj["kind"], obj["metadata"]["name"])
        assert labels["app.kubernetes.io/part-of"] == "jupiter"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if obj["kind"] in ("Deployment", "DaemonSet"):
            selector = obj["spec"]["selector"]["matchLabels"]
            pod_labels = obj["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= pod_labels.items()
            assert "app.kubernetes.io/version" not in selector  # selectors are immutable


POD_KINDS = ("Deployment", "DaemonSet", "Job", "Pod")


def test_security_context_of_every_pod(rendered: dict) -> None:
    pods = [o for o in _all_objects(rendered, "network_monitoring_app")
            if o["kind"] in POD_KINDS]
    assert pods and any(o["kind"] == "Job" for o in pods)
    for obj in pods:
        spec = pod_spec(obj)
        where = f"{obj['kind']} {obj['metadata']['name']}"
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, where
        assert psc["fsGroup"] == 10001 and psc["seccompProfile"]["type"] == "RuntimeDefault"
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
        assert all("hostPath" not in v for v in spec.get("volumes", [])), where
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where


def test_only_drupe_home_gets_a_service_account_token(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    home = service_name(values["deployment"], "drupe", "home")
    for obj in _all_objects(rendered, "diamond"):
        if obj["kind"] not in POD_KINDS:
            continue
        spec = pod_spec(obj)
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == home:
            assert spec["automountServiceAccountToken"] is True
            assert spec["serviceAccountName"] == home
        else:
            assert spec["automountServiceAccountToken"] is False, obj["metadata"]["name"]


def test_drupe_home_may_only_touch_its_profile_configmap(rendered: dict) -> None:
    values, objects = rendered["diamond"]["values"], rendered["diamond"]["drupe"]
    dep = values["deployment"]
    (role,) = by_kind(objects, "Role").values()
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": [f"{dep}-drupe-profile"],
                              "verbs": ["get", "update", "patch"]}]
    (binding,) = by_kind(objects, "RoleBinding").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{dep}-drupe-home",
                                    "namespace": "jupiter"}]
    profile = by_kind(objects, "ConfigMap")[f"{dep}-drupe-profile"]
    assert json.loads(profile["data"]["profile.json"])["complete"] is False


def test_probes_on_real_readiness(rendered: dict) -> None:
    for obj in _all_objects(rendered, "diamond"):
        if obj["kind"] not in ("Deployment", "DaemonSet"):
            continue
        c = pod_spec(obj)["containers"][0]
        assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["ports"] == [{"name": "http", "containerPort": int(c["args"][-1].split(":")[-1]),
                               "protocol": "TCP"}]


def test_requests_and_limits_everywhere_with_per_task_overrides(rendered: dict) -> None:
    values, objects = rendered["diamond"]["values"], rendered["diamond"]["circe"]
    for obj in _all_objects(rendered, "diamond"):
        if obj["kind"] in POD_KINDS:
            spec = pod_spec(obj)
            for c in spec.get("initContainers", []) + spec["containers"]:
                assert {"cpu", "memory"} <= c["resources"]["requests"].keys()
                assert {"cpu", "memory"} <= c["resources"]["limits"].keys()
    task = next(t for t in values["circe"]["tasks"] if t["name"] == "count_words")
    assert task["resources"] == {"cpu": "100m", "memory": "64Mi"}  # from the app's app.yaml
    dep = by_kind(objects, "Deployment")[service_name(values["deployment"], "circe", task["key"])]
    res = pod_spec(dep)["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert res["limits"] == {"cpu": "1", "memory": "512Mi"}  # defaults stay above the request


def test_flat_request_above_the_default_limit_raises_the_limit(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    vals = values_for(values, "circe")
    vals["circe"]["tasks"][0]["resources"] = {"cpu": "2500m", "memory": "2Gi"}
    vals["circe"]["tasks"][1]["resources"] = {"requests": {"cpu": "250m"},
                                              "limits": {"cpu": "500m"}}
    objects = by_kind(template("circe", vals), "Deployment")
    first = objects[service_name(values["deployment"], "circe", vals["circe"]["tasks"][0]["key"])]
    res = pod_spec(first)["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "2500m", "memory": "2Gi"}
    assert res["limits"] == {"cpu": "2500m", "memory": "2Gi"}
    second = objects[service_name(values["deployment"], "circe",
                                  vals["circe"]["tasks"][1]["key"])]
    res = pod_spec(second)["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "250m", "memory": "128Mi"},
                   "limits": {"cpu": "500m", "memory": "512Mi"}}


def test_config_token_and_state_volumes(rendered: dict) -> None:
    values, objects = rendered["diamond"]["values"], rendered["diamond"]["circe"]
    dep_name = values["deployment"]
    cm = by_kind(objects, "ConfigMap")[f"{dep_name}-circe-config"]
    assert json.loads(cm["data"]["config.json"]) == values["circe"]["config"]
    for dep in by_kind(objects, "Deployment").values():
        spec = pod_spec(dep)
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/etc/jupiter"]["readOnly"] and mounts["/var/run/jupiter"]["readOnly"]
        assert {"/var/lib/jupiter", "/tmp"} <= mounts.keys()
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["config"]["configMap"]["items"] == [{"key": "config.json",
                                                           "path": "config.json"}]
        assert volumes["token"]["secret"]["secretName"] == f"{dep_name}-token"
        assert volumes["token"]["secret"]["items"] == [{"key": "token", "path": "token"}]
        assert "emptyDir" in volumes["state"] and "emptyDir" in volumes["tmp"]
        assert spec["containers"][0]["args"][-4:-2] == ["--config", "/etc/jupiter/config.json"]
    assert values["circe"]["config"]["token_file"] == "/var/run/jupiter/token"


def test_persistent_state_makes_one_claim_per_deployment(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    vals = values_for(values, "circe", state={"persistent": True, "size": "2Gi",
                                              "storageClassName": "fast"})
    objects = template("circe", vals)
    claims, deployments = by_kind(objects, "PersistentVolumeClaim"), by_kind(objects, "Deployment")
    assert set(claims) == {f"{name}-state" for name in deployments}
    for name, dep in deployments.items():
        state = next(v for v in pod_spec(dep)["volumes"] if v["name"] == "state")
        assert state == {"name": "state", "persistentVolumeClaim": {"claimName": f"{name}-state"}}
    assert all(c["spec"]["storageClassName"] == "fast" for c in claims.values())
    assert not validate_all(objects, ["1.29", kube_versions()[-1]])


def test_token_secret_is_made_by_drupe_only(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    secrets = {c: by_kind(rendered["diamond"][c], "Secret") for c in COMPONENTS}
    assert set(secrets["drupe"]) == {f"{values['deployment']}-token"}
    assert secrets["wave"] == {} and secrets["circe"] == {}
    token = secrets["drupe"][f"{values['deployment']}-token"]
    assert token["metadata"]["annotations"]["jupiter.io/diff-ignore-data"] == "true"
    assert "helm.sh/resource-policy" not in token["metadata"]["annotations"]  # teardown deletes


def test_token_value_and_custom_secret_name(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    vals = values_for(values, "drupe", token={"create": True, "secretName": "mine",
                                              "value": "s3cret"})
    secret = by_kind(template("drupe", vals), "Secret")["mine"]
    assert secret["data"]["token"] == "czNjcmV0"  # base64("s3cret")
    vals = values_for(values, "circe", token={"create": False, "secretName": "mine"})
    for dep in by_kind(template("circe", vals), "Deployment").values():
        token = next(v for v in pod_spec(dep)["volumes"] if v["name"] == "token")
        assert token["secret"]["secretName"] == "mine"


def test_network_policy_limits_ingress_to_the_deployment(rendered: dict) -> None:
    values, objects = rendered["diamond"]["values"], rendered["diamond"]["circe"]
    (policy,) = by_kind(objects, "NetworkPolicy").values()
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "circe",
        "app.kubernetes.io/instance": f"{values['deployment']}-circe"}
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {
        "jupiter.io/deployment": values["deployment"]}}}]
    ports = sorted(p["port"] for p in rule["ports"])
    assert ports == sorted([values["circe"]["home"]["port"]]
                           + [t["port"] for t in values["circe"]["tasks"]])
    monitoring = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    vals = values_for(values, "circe", networkPolicy={"enabled": True,
                                                      "extraFrom": [monitoring]})
    (policy,) = by_kind(template("circe", vals), "NetworkPolicy").values()
    assert policy["spec"]["ingress"][0]["from"][1] == monitoring
    vals = values_for(values, "circe", networkPolicy={"enabled": False})
    assert not by_kind(template("circe", vals), "NetworkPolicy")


def test_pods_roll_when_the_config_changes(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    before = by_kind(rendered["diamond"]["wave"], "Deployment")
    vals = values_for(values, "wave")
    vals["wave"]["config"]["algorithm"] = "heft-changed"
    after = by_kind(template("wave", vals), "Deployment")
    (name,) = before
    key = "checksum/config"
    assert before[name]["spec"]["template"]["metadata"]["annotations"][key] != \
        after[name]["spec"]["template"]["metadata"]["annotations"][key]


@pytest.mark.parametrize("component", COMPONENTS)
def test_helm_test_pod_checks_every_service(rendered: dict, component: str) -> None:
    objects = rendered["diamond"][component]
    pods = by_kind(objects, "Pod")
    (test,) = pods.values()
    assert test["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = test["spec"]["containers"][0]
    assert container["command"] == ["python", "-c"]
    urls = container["args"][1:]
    services = by_kind(objects, "Service")
    assert sorted(urlsplit(u).hostname for u in urls) == sorted(services)
    assert test["spec"]["restartPolicy"] == "Never"


# ---- the execution profiler Jobs (charts/drupe/templates/exec-jobs.yaml) -----------------

EXEC_JOB = re.compile(r"^(?P<prefix>.+-drupe-exec-(?P<key>[a-z0-9-]+))-(?P<hash>[0-9a-f]{8})$")


def _exec_jobs(objects: list[dict]) -> dict[str, dict]:
    """{node key: Job} of a drupe render."""
    out = {}
    for name, obj in by_kind(objects, "Job").items():
        m = EXEC_JOB.match(name)
        assert m, f"Job {name} does not follow <deployment>-drupe-exec-<node key>-<hash>"
        out[m["key"]] = obj
    return out


@pytest.mark.parametrize("app", ("diamond", "generated-100"))
def test_one_exec_job_per_node_pinned_to_its_hostname(rendered: dict, app: str) -> None:
    values = rendered[app]["values"]
    jobs = _exec_jobs(rendered[app]["drupe"])
    assert set(jobs) == {n["key"] for n in values["nodes"]}
    for node in values["nodes"]:
        job = jobs[node["key"]]
        assert job["metadata"]["name"].startswith(
            service_name(values["deployment"], "drupe", f"exec-{node['key']}-"))
        labels = job["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "drupe-exec"
        assert job["spec"]["template"]["metadata"]["labels"]["jupiter.io/node"] == node["key"]
        assert job["metadata"]["annotations"]["jupiter.io/node-name"] == node["name"]
        spec = pod_spec(job)
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": node["hostname"]}
        assert spec["restartPolicy"] == "Never"
        assert spec["automountServiceAccountToken"] is False
        (container,) = spec["containers"]
        assert container["image"] == "registry.example.org/jupiter/jupiter-app-test:0.1.0"
        assert container["args"] == [
            "drupe", "exec", "--app", "/app", "--node", node["name"],
            "--config", "/etc/jupiter/config.json", "--post",
            "--out", f"/var/lib/jupiter/exec/{node['name']}.json", "--repeat", "3",
            "--idle", "0.5", "--only-missing"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/var/run/jupiter"]["readOnly"] and mounts["/etc/jupiter"]["readOnly"]
        assert {"/var/lib/jupiter", "/tmp"} <= mounts.keys()
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["token"]["secret"]["secretName"] == f"{values['deployment']}-token"
        assert volumes["config"]["configMap"]["name"] == f"{values['deployment']}-drupe-config"
        assert "emptyDir" in volumes["state"] and "emptyDir" in volumes["tmp"]
        (init,) = spec["initContainers"]
        assert init["command"] == ["python", "-c"]
        assert init["args"][1:] == ["/etc/jupiter/config.json", "3"]
        js = job["spec"]
        assert js["backoffLimit"] == 1 and js["activeDeadlineSeconds"] == 3600
        assert js["ttlSecondsAfterFinished"] == 3600
        assert "selector" not in js  # generated by the API server
        assert "helm.sh/hook" not in (job["metadata"].get("annotations") or {})


def test_exec_job_names_change_exactly_when_the_job_changes(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    before = set(by_kind(rendered["diamond"]["drupe"], "Job"))
    assert set(by_kind(template("drupe", values_for(values, "drupe")), "Job")) == before
    image = {**values_for(values, "drupe")["image"], "tag": "0.2.0"}
    after_image = set(by_kind(template("drupe", values_for(values, "drupe", image=image)),
                              "Job"))
    config = values_for(values, "drupe")
    config["drupe"]["config"]["min_samples"] = 12
    after_config = set(by_kind(template("drupe", config), "Job"))
    for after in (after_image, after_config):
        assert not before & after and len(after) == len(before)
        assert {EXEC_JOB.match(n)["prefix"] for n in after} == \
            {EXEC_JOB.match(n)["prefix"] for n in before}
    # the profile ConfigMap's live data is not part of any Job: no new Jobs for it
    unrelated = values_for(values, "drupe", networkPolicy={"enabled": False})
    assert set(by_kind(template("drupe", unrelated), "Job")) == before


def test_exec_profiler_options(rendered: dict) -> None:
    values = rendered["diamond"]["values"]
    vals = values_for(values, "drupe", execProfiler={
        "enabled": True, "nodes": ["edge_1"], "repeat": 5, "onlyMissing": False,
        "input": "/app/sample_input/1.txt", "backoffLimit": 0, "pollSeconds": 1,
        "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60},
        resources={"exec": {"requests": {"cpu": "250m", "memory": "256Mi"},
                            "limits": {"cpu": "1", "memory": "1Gi"}}})
    objects = template("drupe", vals)
    jobs = _exec_jobs(objects)
    edge = next(n for n in values["nodes"] if n["name"] == "edge_1")
    assert set(jobs) == {edge["key"]}
    job = jobs[edge["key"]]
    spec = pod_spec(job)
    args = spec["containers"][0]["args"]
    assert "--only-missing" not in args
    assert args[args.index("--repeat") + 1] == "5"
    assert args[-2:] == ["--input", "/app/sample_input/1.txt"]
    assert spec["initContainers"][0]["args"][-1] == "1"
    assert spec["containers"][0]["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"],
            job["spec"]["ttlSecondsAfterFinished"]) == (0, 600, 60)
    assert not validate_all(objects, ["1.29", kube_versions()[-1]])
    off = values_for(values, "drupe", execProfiler={"enabled": False})
    assert not by_kind(template("drupe", off), "Job")
