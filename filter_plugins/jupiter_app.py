"""Ansible filters: thin adapters from Ansible data to the ``jupiter`` package.

* ``app_dir | jupiter_app`` -> the validated app as a plain dict (schema jupiter.app/v1),
  plus ``warnings`` (list of strings). Invalid apps fail with every problem listed.
* ``groups | jupiter_nodes(hostvars[, source])`` -> the validated inventory as a plain dict
  (schema jupiter.inventory/v1), plus ``warnings``.
* ``app_model | jupiter_placement(inventory_model[, scheduler])`` -> warnings (strings);
  fails when a pin (or, with the static scheduler, the static mapping) names no node.

No logic lives here: see jupiter.app.loader and jupiter.inventory.
"""

from __future__ import annotations

import sys
from typing import Any

from ansible.errors import AnsibleFilterError


def _import_jupiter() -> Any:
    try:
        import jupiter.app.loader
        import jupiter.errors
        import jupiter.inventory
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise AnsibleFilterError(
            f"the jupiter package cannot be imported by {sys.executable} ({exc}); run "
            "`make setup` and use .venv/bin/ansible-playbook"
        ) from exc
    return jupiter


def jupiter_app(app_dir: Any) -> dict[str, Any]:
    """Load and validate the app in folder ``app_dir``."""
    jupiter = _import_jupiter()
    if not isinstance(app_dir, str) or not app_dir:
        raise AnsibleFilterError(f"jupiter_app expects an app folder path, got {app_dir!r}")
    try:
        app, warnings = jupiter.app.loader.inspect_app(str(app_dir))
    except jupiter.errors.InvalidInput as exc:
        raise AnsibleFilterError(str(exc)) from None
    data = app.to_dict()
    data["warnings"] = [str(w) for w in warnings]
    return data


def jupiter_nodes(groups: Any, hostvars: Any, source: Any = "inventory") -> dict[str, Any]:
    """Validate the inventory given Ansible's ``groups`` and ``hostvars``."""
    jupiter = _import_jupiter()
    if not hasattr(groups, "get"):
        raise AnsibleFilterError(f"jupiter_nodes expects the 'groups' mapping, got {groups!r}")
    if isinstance(source, list | tuple):
        source = ",".join(str(s) for s in source)
    try:
        inv, warnings = jupiter.inventory.check_inventory(groups, hostvars, source=str(source))
    except jupiter.errors.InvalidInput as exc:
        raise AnsibleFilterError(str(exc)) from None
    data = inv.to_dict()
    data["warnings"] = [str(w) for w in warnings]
    return data


def jupiter_placement(app: Any, inventory: Any, scheduler: Any = None) -> list[str]:
    """Check the app's pins and static mapping against the inventory; return warnings."""
    jupiter = _import_jupiter()
    if not hasattr(app, "get") or not hasattr(inventory, "get"):
        raise AnsibleFilterError(
            "jupiter_placement expects the app and inventory models (jupiter_app_model, "
            "jupiter_inventory_model)"
        )
    try:
        warnings = jupiter.inventory.check_placement(
            app, inventory, None if scheduler is None else str(scheduler)
        )
    except jupiter.errors.InvalidInput as exc:
        raise AnsibleFilterError(str(exc)) from None
    return [str(w) for w in warnings]


class FilterModule:
    """jupiter_app, jupiter_nodes, jupiter_placement."""

    def filters(self) -> dict[str, Any]:
        return {
            "jupiter_app": jupiter_app,
            "jupiter_nodes": jupiter_nodes,
            "jupiter_placement": jupiter_placement,
        }
