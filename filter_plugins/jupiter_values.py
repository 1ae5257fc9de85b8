"""Filter ``jupiter_values``: the deployment values for both targets (thin over jupiter.values)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from jupiter.errors import JupiterError
from jupiter.values import build_values, local_endpoints, local_programs


def jupiter_values(
    inventory: dict[str, Any],
    app: dict[str, Any],
    mapping: dict[str, Any] | None = None,
    target: str = "local",
    state_dir: str = "",
    token_file: str = "",
    addresses: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        return build_values(inventory, app, mapping or None, target=target, state_dir=state_dir,
                            token_file=token_file, addresses=addresses, options=options)
    except (JupiterError, KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"jupiter_values: {exc}") from exc


def jupiter_local_programs(values: dict[str, Any], component: str, jupiter_bin: str,
                           config_path: str) -> list[dict[str, Any]]:
    try:
        return local_programs(values, component, jupiter_bin, config_path)
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"jupiter_local_programs: {exc}") from exc


def jupiter_local_endpoints(values: dict[str, Any]) -> dict[str, Any]:
    try:
        return local_endpoints(values)
    except KeyError as exc:
        raise AnsibleFilterError(f"jupiter_local_endpoints: missing {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"jupiter_values": jupiter_values, "jupiter_local_programs": jupiter_local_programs,
                "jupiter_local_endpoints": jupiter_local_endpoints}
