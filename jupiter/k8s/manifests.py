"""Rendered Kubernetes manifests: normalize, compare, summarize. Pure functions.

Used to decide whether a Helm release must be upgraded (rendered now vs deployed
revision) and to show what a ``--check`` run would change.

Objects annotated ``jupiter.io/diff-ignore-data: "true"`` (the token Secret, the DRUPE
profile ConfigMap) carry data that comes from the cluster (``lookup``) or is random; their
``data``/``stringData`` values are never compared. Secret values are never shown.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

IGNORE_DATA = "jupiter.io/diff-ignore-data"
HOOK = "helm.sh/hook"
MAX_PATHS = 8  # changed paths listed per object in a summary


def object_key(obj: dict[str, Any], namespace: str | None = None) -> str:
    """``Kind/name`` (``Kind/namespace/name`` when a namespace is set or given)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or namespace
    name = meta.get("name", "?")
    return f"{obj.get('kind', '?')}/{ns}/{name}" if ns else f"{obj.get('kind', '?')}/{name}"


def _mask(obj: dict[str, Any]) -> dict[str, Any]:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    ignore = str(annotations.get(IGNORE_DATA, "")).lower() == "true"
    secret = obj.get("kind") == "Secret"
    if not (ignore or secret):
        return obj
    out = copy.deepcopy(obj)
    for section in ("data", "stringData"):
        values = out.get(section)
        if not isinstance(values, dict):
            continue
        for k, v in values.items():
            if ignore:
                values[k] = "(not compared)"
            else:  # a Secret: compare by digest, never show
                values[k] = "sha256:" + hashlib.sha256(str(v).encode()).hexdigest()[:16]
    return out


def normalize(docs: Iterable[dict[str, Any] | None],
              namespace: str | None = None) -> dict[str, dict[str, Any]]:
    """{key: object} of the non-empty documents, with ignored/secret data masked."""
    out: dict[str, dict[str, Any]] = {}
    for doc in docs:
        if not doc or not isinstance(doc, dict) or "kind" not in doc:
            continue
        # JSON round trip: the same value parsed from YAML or JSON compares equal.
        out[object_key(doc, namespace)] = _mask(json.loads(json.dumps(doc, default=str)))
    return out


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where ``old`` and ``new`` differ (lists compared by index)."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in old or k not in new:
                paths.append(p)
            else:
                paths.extend(changed_paths(old[k], new[k], p))
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        paths = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            paths.extend(changed_paths(a, b, f"{prefix}[{i}]"))
        return paths
    return [] if old == new else [prefix or "(whole object)"]


@dataclass
class ManifestDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def summary(self) -> list[str]:
        lines = [f"+ {k}" for k in self.added]
        for k, paths in self.changed.items():
            shown = ", ".join(paths[:MAX_PATHS])
            more = f" (+{len(paths) - MAX_PATHS} more)" if len(paths) > MAX_PATHS else ""
            lines.append(f"~ {k}: {shown}{more}")
        lines.extend(f"- {k}" for k in self.removed)
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


def diff(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> ManifestDiff:
    """Compare two :func:`normalize` results."""
    d = ManifestDiff()
    d.added = sorted(set(new) - set(old))
    d.removed = sorted(set(old) - set(new))
    for k in sorted(set(old) & set(new)):
        paths = changed_paths(old[k], new[k])
        if paths:
            d.changed[k] = paths
    return d


def to_yaml(objects: dict[str, dict[str, Any]]) -> str:
    """All objects as one YAML stream, sorted by key (for Ansible's --diff)."""
    return "".join("---\n" + yaml.safe_dump(objects[k], sort_keys=True) for k in sorted(objects))


def placement(obj: dict[str, Any]) -> str | None:
    """The kubernetes.io/hostname a workload is pinned to, if any."""
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    host = (spec.get("nodeSelector") or {}).get("kubernetes.io/hostname")
    if host:
        return str(host)
    terms = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
                 "nodeSelectorTerms") or []
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == "kubernetes.io/hostname" and expr.get("operator") == "In":
                return ",".join(str(v) for v in expr.get("values") or [])
    return None


def inventory(objects: dict[str, dict[str, Any]]) -> list[str]:
    """One line per object: ``Kind name`` (+ ``-> hostname`` for pinned workloads, + hook)."""
    lines = []
    for key in sorted(objects):
        obj = objects[key]
        meta = obj.get("metadata") or {}
        line = f"{obj.get('kind')} {meta.get('name')}"
        host = placement(obj)
        if host:
            line += f" -> {host}"
        hook = (meta.get("annotations") or {}).get(HOOK)
        if hook:
            line += f" (hook: {hook})"
        lines.append(line)
    return lines
