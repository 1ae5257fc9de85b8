"""Helpers of the chart tests: deployment values from the real builders, helm template."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from jupiter.app.loader import load_app
from jupiter.app.model import App, Task, safe_key
from jupiter.inventory import Inventory, Node
from jupiter.k8s.chart_values import chart_values
from jupiter.k8s.preview import nominal_profile
from jupiter.values import build_values
from jupiter.wave.api import schedule_dicts

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
HELM = REPO / ".tools" / "bin" / "helm"
APPS = REPO / "task_specific_files"
COMPONENTS = ("drupe", "wave", "circe")
MIN_MINOR = (1, 29)
# kubernetes-validate re-reads its (large) schema files on every call; the same files are
# read through a cache here (same validation, once-per-file parsing).
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)
IMAGE = {"repository": "registry.example.org/jupiter/jupiter-app-test", "tag": "0.1.0",
         "digest": "", "pullPolicy": "IfNotPresent"}


def kube_versions() -> list[str]:
    """Every Kubernetes minor kubernetes-validate ships, from 1.29 up."""
    out = []
    for v in dict.fromkeys(kv_utils.all_versions()):
        major, minor = (int(x) for x in v.split(".")[:2])
        if (major, minor) >= MIN_MINOR:
            out.append(f"{major}.{minor}")
    return out


def inventory(n_workers: int = 3, deployment: str = "jupiter") -> dict[str, Any]:
    """Home + workers; names need keys (edge_1) and hostnames differ from names."""
    nodes = [Node("home", "home", k8s_hostname="control-1")]
    for i in range(n_workers):
        name = f"edge_{i}" if i % 2 else f"cloud{i}"
        nodes.append(Node(name, "worker", k8s_hostname=f"node-{i}.example.org"))
    return Inventory(nodes=tuple(nodes), target="kubernetes", deployment=deployment).to_dict()


def generated_app(n: int = 100, width: int = 10) -> dict[str, Any]:
    """A layered DAG of ``n`` tasks (names with '_' so keys carry a hash), fan-in to one sink."""
    layers = [list(range(i, min(i + width, n))) for i in range(0, n, width)]
    names = {i: f"stage_{li}_task_{i}" for li, layer in enumerate(layers) for i in layer}
    tasks = []
    for li, layer in enumerate(layers):
        for i in layer:
            if li + 1 < len(layers):
                nxt = layers[li + 1]
                children: tuple[str, ...] = (names[nxt[(i - layer[0]) % len(nxt)]],)
            else:
                children = ("home",)
            tasks.append(Task(name=names[i], key=safe_key(names[i]),
                              script=f"scripts/t{i}.py", children=children,
                              resources={"cpu": "50m", "memory": "96Mi"} if i % 7 == 0 else {}))
    # every non-first-layer task has as many inputs as parents
    parents: dict[str, int] = {}
    for t in tasks:
        for c in t.children:
            parents[c] = parents.get(c, 0) + 1
    tasks = [Task(**{**t.__dict__, "num_inputs": max(1, parents.get(t.name, 1))}) for t in tasks]
    return App(name="generated", tasks=tuple(tasks), root=str(REPO / "generated")).to_dict()


def deployment_values(app: str | dict[str, Any], n_workers: int = 3,
                      deployment: str = "jupiter", algorithm: str = "spread") -> dict[str, Any]:
    """jupiter.values.build_values for the kubernetes target, mapping from WAVE (nominal)."""
    inv = inventory(n_workers, deployment)
    app_dict = load_app(APPS / app).to_dict() if isinstance(app, str) else app
    workers = [n["name"] for n in inv["nodes"] if n["role"] == "worker"]
    mapping = schedule_dicts(app_dict, nominal_profile(inv), workers, algorithm)
    return build_values(inv, app_dict, mapping, target="kubernetes", state_dir="/unused",
                        token_file="/unused/token")


def values_for(values: dict[str, Any], component: str, **overrides: Any) -> dict[str, Any]:
    return chart_values(values, component, image=IMAGE, overrides=overrides)


def helm(*args: str, stdin: str | None = None, check: bool = True,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], input=stdin, capture_output=True, text=True,
                          check=check, env=env, timeout=120)


def template(component: str, values: dict[str, Any], *, release: str | None = None,
             namespace: str = "jupiter", extra: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``helm template`` of chart ``component`` (hooks included) -> objects."""
    release = release or f"{values['deployment']}-{component}"
    out = helm("template", release, str(CHARTS / component), "--namespace", namespace,
               "--values", "-", *extra, stdin=json.dumps(values), env=env)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def template_error(component: str, values: dict[str, Any]) -> str:
    out = helm("template", f"{values['deployment']}-{component}", str(CHARTS / component),
               "--namespace", values.get("namespace", "jupiter"), "--values", "-",
               stdin=json.dumps(values), check=False)
    assert out.returncode != 0, "helm template unexpectedly succeeded"
    return out.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def validate_all(objects: list[dict[str, Any]], versions: list[str]) -> list[str]:
    """kubernetes-validate --strict of every object for every version: error lines."""
    errors = []
    for version in versions:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path)
                errors.append(f"{version} {obj['kind']}/{obj['metadata']['name']} "
                              f"{path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{version} {obj['kind']}/{obj['metadata']['name']}: "
                              f"{exc.message}")
    return errors


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
