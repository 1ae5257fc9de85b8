"""The ``values.schema.json`` of the three charts, generated from one definition.

Run ``python -m jupiter.k8s.schemas --write`` after editing; tests/charts check that the
files in ``charts/*/values.schema.json`` are what this module generates.

Top-level keys are strict (``additionalProperties: false``) and so are the Kubernetes
settings a user writes by hand (image, token, probes, ...); the sections that
``jupiter.values.build_values`` produces require their known keys but accept new ones, so
the values contract can grow without breaking deployed charts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

CHARTS = ("drupe", "wave", "circe")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Kubernetes' own quantity pattern (apimachinery resource.Quantity in the OpenAPI spec).
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")


def _strict(properties: dict[str, Any], required: list[str] | None = None,
            description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False,
                           "properties": properties}
    if required:
        out["required"] = required
    if description:
        out["description"] = description
    return out


def _open(properties: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if description:
        out["description"] = description
    return out


def _str(description: str = "", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", **extra}
    if description:
        out["description"] = description
    return out


def _int(minimum: int, maximum: int | None = None, description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        out["maximum"] = maximum
    if description:
        out["description"] = description
    return out


def _definitions() -> dict[str, Any]:
    quantity = {"type": ["string", "number"], "pattern": QUANTITY}
    resource_list = {"type": "object", "additionalProperties": False,
                     "properties": {k: {"$ref": "#/definitions/quantity"}
                                    for k in RESOURCE_NAMES}}
    probe = _strict({"periodSeconds": _int(1), "timeoutSeconds": _int(1),
                     "failureThreshold": _int(1)},
                    ["periodSeconds", "timeoutSeconds", "failureThreshold"])
    return {
        "quantity": quantity,
        "port": _int(1024, 65535, "TCP port (>= 1024: the pods run without capabilities)"),
        "resources": _strict(
            {"requests": {"$ref": "#/definitions/resourceList"},
             "limits": {"$ref": "#/definitions/resourceList"}},
            description="Kubernetes ResourceRequirements (requests/limits)."),
        "resourceList": resource_list,
        "resourceOverride": {
            "description": "Per-task resources: Kubernetes-shaped {requests, limits} merged "
                           "over the defaults, or flat {cpu, memory} (request = limit).",
            "anyOf": [
                {"$ref": "#/definitions/resources"},
                {"$ref": "#/definitions/resourceList"},
            ],
        },
        "probe": probe,
        "node": _open(
            {"name": _str("Inventory name of the node.", minLength=1),
             "key": _str("DNS-safe key of the node (object names).", pattern=DNS_LABEL,
                         maxLength=40),
             "role": {"enum": ["home", "worker"]},
             "hostname": _str("The node's kubernetes.io/hostname (a Kubernetes node name).",
                              pattern=DNS_SUBDOMAIN, maxLength=253),
             "address": {"type": ["string", "null"]}},
            ["name", "role", "hostname"]),
        "homeRef": _open({"node": _str(minLength=1), "port": {"$ref": "#/definitions/port"}},
                         ["node", "port"]),
    }


def _common() -> dict[str, Any]:
    return {
        "deployment": _str("Deployment name: objects are <deployment>-<component>-<suffix>.",
                           pattern=DNS_1035, maxLength=16),
        "home": _str("Inventory name of the home node.", minLength=1),
        "nodes": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/node"},
                  "description": "Inventory nodes (jupiter.values.build_values 'nodes')."},
        "image": _strict(
            {"repository": _str(minLength=1), "tag": _str(pattern=r"^[\w][\w.-]{0,127}$|^$"),
             "digest": _str(pattern=r"^(sha256:[a-f0-9]{64})?$"),
             "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}},
            ["repository", "tag", "pullPolicy"]),
        "imagePullSecrets": {"type": "array", "items": _str(pattern=DNS_LABEL)},
        "token": _strict(
            {"create": {"type": "boolean",
                        "description": "This release owns (creates) the token Secret."},
             "secretName": _str("Secret name; empty = <deployment>-token.",
                                pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)?$"),
             "value": _str("Explicit token; empty = keep the existing Secret's or generate.")},
            ["create"]),
        "listenHost": _str(minLength=1),
        "probes": _strict({k: {"$ref": "#/definitions/probe"}
                           for k in ("startup", "liveness", "readiness")},
                          ["startup", "liveness", "readiness"]),
        "state": _strict(
            {"persistent": {"type": "boolean"},
             "sizeLimit": {"$ref": "#/definitions/quantity"},
             "size": {"$ref": "#/definitions/quantity"},
             "storageClassName": {"type": "string"}},
            ["persistent", "sizeLimit"]),
        "tmpSizeLimit": {"$ref": "#/definitions/quantity"},
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "priorityClassName": {"type": "string"},
        "terminationGracePeriodSeconds": _int(0),
        "networkPolicy": _strict({"enabled": {"type": "boolean"},
                                  "extraFrom": {"type": "array", "items": {"type": "object"}}},
                                 ["enabled"]),
        "tests": _strict({"enabled": {"type": "boolean"}}, ["enabled"]),
    }


def _exec_profiler() -> dict[str, Any]:
    """drupe chart: the execution profiler Jobs (templates/exec-jobs.yaml)."""
    return _strict(
        {"enabled": {"type": "boolean",
                     "description": "One execution profiler Job per profiled node."},
         "nodes": {"type": "array", "items": _str(minLength=1), "uniqueItems": True,
                   "description": "Inventory names of the nodes to profile; empty = all."},
         "appDir": _str("The app folder inside the image.", pattern=r"^/"),
         "input": _str("Sample file in the image, absolute or relative to appDir; "
                       "empty = the app's first sample."),
         "repeat": _int(1, 100, "Runs per task, back to back and after an idle pause "
                                "each; the medians are kept."),
         "idleSeconds": {"type": "number", "minimum": 0, "maximum": 60,
                         "description": "Idle before each round of runs after idle "
                                        "(0: back-to-back runs only)."},
         "onlyMissing": {"type": "boolean",
                         "description": "Skip nodes whose tasks home's profile holds."},
         "pollSeconds": _int(1, 300, "Poll interval while waiting for DRUPE home."),
         "backoffLimit": _int(0, 10, "Retries of a failed profiler pod."),
         "activeDeadlineSeconds": _int(1, description="Seconds a Job may run in all."),
         "ttlSecondsAfterFinished": _int(0, description="Finished Jobs are deleted after "
                                                        "this many seconds.")},
        ["enabled"])


def _component(chart: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(properties, resources schema) specific to one chart."""
    config = {"type": "object", "description": f"jupiter.{chart}.config.build_config output."}
    res = {"$ref": "#/definitions/resources"}
    if chart == "drupe":
        section = _open({"home": {"$ref": "#/definitions/homeRef"},
                         "agent_port": {"$ref": "#/definitions/port"}, "config": config},
                        ["home", "agent_port", "config"], "values.drupe of build_values.")
        return ({"drupe": section, "execProfiler": _exec_profiler()},
                _strict({"home": res, "agent": res, "exec": res}, ["home", "agent"]))
    if chart == "wave":
        section = _open({"node": _str(minLength=1), "port": {"$ref": "#/definitions/port"},
                         "config": config}, ["node", "port", "config"],
                        "values.wave of build_values.")
        return {"wave": section}, _strict({"home": res}, ["home"])
    if chart == "circe":
        task = _open(
            {"key": _str(pattern=DNS_LABEL, maxLength=40), "name": _str(minLength=1),
             "node": _str(minLength=1),
             "hostname": _str(pattern=DNS_SUBDOMAIN, maxLength=253),
             "port": {"$ref": "#/definitions/port"},
             "resources": {"$ref": "#/definitions/resourceOverride"}},
            ["key", "name", "node", "hostname", "port"])
        section = _open({"home": {"$ref": "#/definitions/homeRef"},
                         "tasks": {"type": "array", "items": task}, "config": config},
                        ["home", "tasks", "config"], "values.circe of build_values.")
        return {"circe": section}, _strict({"home": res, "task": res}, ["home", "task"])
    raise ValueError(f"unknown chart {chart!r}")


def schema(chart: str) -> dict[str, Any]:
    """The values.schema.json of ``chart`` (drupe | wave | circe)."""
    props = _common()
    extra, resources = _component(chart)
    props.update(extra)
    props["resources"] = resources
    required = ["deployment", "home", "nodes", "image", "token", chart]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Values of the Jupiter {chart} chart",
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": props,
        "definitions": _definitions(),
    }


def render(chart: str) -> str:
    return json.dumps(schema(chart), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charts-dir", default=str(Path(__file__).resolve().parents[2] / "charts"))
    parser.add_argument("--write", action="store_true", help="write the files (else: check)")
    args = parser.parse_args(argv)
    stale = []
    for chart in CHARTS:
        path = Path(args.charts_dir) / chart / "values.schema.json"
        text = render(chart)
        if args.write:
            path.write_text(text, encoding="utf-8")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    for path in stale:
        print(f"stale: {path} (run python -m jupiter.k8s.schemas --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
