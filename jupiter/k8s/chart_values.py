"""Helm values of one chart from the deployment values (jupiter.values.build_values).

The roles build the same dictionary in YAML (roles/<component>/tasks/kubernetes.yml):
the chart gets the values' ``deployment``, ``home``, ``nodes`` and its own component
section unchanged, plus the Kubernetes settings (image, token, overrides). Endpoints are
never computed here or in the charts: they are in ``values[component]["config"]``.
"""

from __future__ import annotations

import copy
from typing import Any

COMPONENTS = ("drupe", "wave", "circe")
TOKEN_OWNER = "drupe"  # the release that creates the shared token Secret


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base`` (dicts recursively, the rest replaced)."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def chart_values(values: dict[str, Any], component: str, *, image: dict[str, Any],
                 token_secret: str = "", overrides: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """Values for chart ``component`` (drupe | wave | circe)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r} (one of {', '.join(COMPONENTS)})")
    if component not in values:
        raise ValueError(f"the deployment values have no {component!r} section yet "
                         "(circe and wave need the mapping)")
    base = {
        "deployment": values["deployment"],
        "home": values["home"],
        "nodes": values["nodes"],
        component: values[component],
        "image": image,
        "token": {"create": component == TOKEN_OWNER, "secretName": token_secret, "value": ""},
    }
    return deep_merge(base, overrides or {})
