"""Deployment values: computed once, handed to both targets.

On Kubernetes these are the Helm values of the ``drupe``, ``wave`` and ``circe`` charts; on
the local target the same values are written as JSON config files and rendered into
supervisord programs (see :func:`local_programs`). Nothing here knows how a target runs
things; it only decides names, ports, endpoints and each component's configuration.
"""

from __future__ import annotations

from typing import Any

from jupiter.app.model import is_dns_label
from jupiter.errors import InvalidInput, Problem

SCHEMA = "jupiter.values/v1"
DRUPE_HOME_PORT = 7700
DRUPE_AGENT_PORT = 7701
WAVE_PORT = 7710
CIRCE_HOME_PORT = 7800
CIRCE_TASK_PORT0 = 7801
K8S_TOKEN_PATH = "/var/run/jupiter/token"
K8S_STATE_DIR = "/var/lib/jupiter"
K8S_CONFIG_PATH = "/etc/jupiter/config.json"
MAX_DEPLOYMENT_LEN = 16  # "<deployment>-circe-<task key>" must stay a DNS label (<= 63)


def service_name(deployment: str, component: str, suffix: str) -> str:
    """The Kubernetes Service name rule the charts follow: ``<deployment>-<component>-<suffix>``."""
    return f"{deployment}-{component}-{suffix}"


def _endpoint(target: str, host: str, port: int) -> str:
    return f"http://{host}:{port}"


def build_values(
    inventory: dict[str, Any],
    app: dict[str, Any],
    mapping: dict[str, Any] | None,
    *,
    target: str,
    state_dir: str,
    token_file: str,
    addresses: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Values for every component.

    ``inventory``: the Inventory contract (``jupiter_nodes`` filter), ``app``: App.to_dict(),
    ``mapping``: the Mapping contract (``jupiter_schedule`` filter) or a plain
    ``{task: node}``, or None before WAVE ran (then only DRUPE's values are built);
    ``addresses``: node -> IP on the local target (from the testbed).
    """
    from jupiter.circe.config import build_config as circe_config
    from jupiter.drupe.config import build_config as drupe_config
    from jupiter.wave.config import build_config as wave_config

    options = dict(options or {})
    deployment = inventory["deployment"]
    nodes = inventory["nodes"]
    home = next(n["name"] for n in nodes if n["role"] == "home")
    task_map: dict[str, str] | None = (
        None if mapping is None else dict(mapping.get("mapping", mapping))
    )
    problems = _check(deployment, nodes, app, task_map, target, addresses)
    if problems:
        raise InvalidInput(problems, what="deployment values")

    local = target == "local"
    if local:
        assert addresses is not None
        cfg_state, cfg_token = state_dir, token_file
    else:
        cfg_state, cfg_token = K8S_STATE_DIR, K8S_TOKEN_PATH

    def host(node: str, component: str, suffix: str) -> str:
        return addresses[node] if local else service_name(deployment, component, suffix)

    node_values = [
        {
            "name": n["name"],
            "key": n["key"],
            "role": n["role"],
            "hostname": n.get("k8s_hostname") or n["name"],
            **({"address": addresses[n["name"]]} if local else {}),
        }
        for n in nodes
    ]

    namespace = inventory.get("namespace") or deployment
    # DRUPE: one agent per node, home on the home node. On Kubernetes home publishes the
    # profile into the ConfigMap the drupe chart creates (its Role allows only that name).
    drupe_options = dict(options.get("drupe") or {})
    if not local:
        drupe_options["publish"] = {"kind": "configmap", "namespace": namespace,
                                    "name": service_name(deployment, "drupe", "profile"),
                                    "key": "profile.json"}
    drupe_endpoints = {
        "home": _endpoint(target, host(home, "drupe", "home"), DRUPE_HOME_PORT),
        "agents": {
            n["name"]: _endpoint(target, host(n["name"], "drupe", f"agent-{n['key']}"),
                                 DRUPE_AGENT_PORT)
            for n in nodes
        },
    }
    drupe = {
        "home": {"node": home, "port": DRUPE_HOME_PORT},
        "agent_port": DRUPE_AGENT_PORT,
        "config": drupe_config(
            deployment=deployment,
            nodes=[n["name"] for n in nodes],
            home=home,
            endpoints=drupe_endpoints,
            token_file=cfg_token,
            state_dir=cfg_state,
            options=drupe_options,
        ),
    }

    values: dict[str, Any] = {
        "schema": SCHEMA,
        "deployment": deployment,
        "target": target,
        "namespace": namespace,
        "home": home,
        "nodes": node_values,
        "token_file": cfg_token,
        "state_dir": cfg_state,
        "drupe": drupe,
    }
    if task_map is None or mapping is None:
        return values

    # CIRCE: one endpoint per task (own port: tasks may share a node), home on the home node.
    tasks = []
    for i, t in enumerate(app["tasks"]):
        node = task_map[t["name"]]
        hostname = next(v["hostname"] for v in node_values if v["name"] == node)
        tasks.append(
            {
                "key": t["key"],
                "name": t["name"],
                "node": node,
                "hostname": hostname,
                "port": CIRCE_TASK_PORT0 + i,
                "resources": dict(t.get("resources") or {}),
            }
        )
    circe_endpoints = {
        "home": _endpoint(target, host(home, "circe", "home"), CIRCE_HOME_PORT),
        "tasks": {
            t["key"]: _endpoint(target, host(t["node"], "circe", t["key"]), t["port"])
            for t in tasks
        },
    }
    circe = {
        "home": {"node": home, "port": CIRCE_HOME_PORT},
        "tasks": tasks,
        "config": circe_config(
            app=app,
            mapping=task_map,
            endpoints=circe_endpoints,
            app_dir=app["root"] if local else "/app",
            token_file=cfg_token,
            state_dir=cfg_state,
            options=dict(options.get("circe") or {}),
        ),
    }

    wave = {
        "node": home,
        "port": WAVE_PORT,
        "config": wave_config(
            app=app,
            mapping=mapping if "mapping" in mapping else {"mapping": task_map},
            profile_url=drupe_endpoints["home"] + "/profile",
            token_file=cfg_token,
            state_dir=cfg_state,
            options=dict(options.get("wave") or {}),
        ),
    }
    values.update(wave=wave, circe=circe)
    return values


def _check(
    deployment: str,
    nodes: list[dict[str, Any]],
    app: dict[str, Any],
    task_map: dict[str, str] | None,
    target: str,
    addresses: dict[str, str] | None,
) -> list[Problem]:
    where = "deployment values"
    problems: list[Problem] = []
    if not is_dns_label(deployment, MAX_DEPLOYMENT_LEN):
        problems.append(Problem(where, f"jupiter_deployment {deployment!r} must be a DNS label of "
                                f"at most {MAX_DEPLOYMENT_LEN} characters (a-z, 0-9, '-')",
                                field="jupiter_deployment"))
    names = {n["name"] for n in nodes}
    for t in app["tasks"] if task_map is not None else ():
        node = task_map.get(t["name"])
        if node is None:
            problems.append(Problem(where, f"task {t['name']!r} is not mapped to any node",
                                    field="mapping"))
        elif node not in names:
            problems.append(Problem(where, f"task {t['name']!r} is mapped to unknown node "
                                    f"{node!r}; known nodes: {', '.join(sorted(names))}",
                                    field="mapping"))
    if target == "local":
        missing = sorted(names - set(addresses or {}))
        if missing:
            problems.append(Problem(where, f"no testbed address for node(s) {', '.join(missing)}; "
                                    "run the testbed stage first", field="addresses"))
    elif target != "kubernetes":
        problems.append(Problem(where, f"unknown jupiter_target {target!r} (local | kubernetes)",
                                field="jupiter_target"))
    return problems


def local_programs(values: dict[str, Any], component: str, jupiter_bin: str,
                   config_path: str) -> list[dict[str, Any]]:
    """supervisord program specs for one component, from the same values the charts get."""
    addr = {n["name"]: n["address"] for n in values["nodes"]}
    if component == "drupe":
        d = values["drupe"]
        progs = [
            _program(f"agent-{n['name']}", n["name"], jupiter_bin,
                     ["drupe", "agent", "--config", config_path, "--node", n["name"]],
                     addr[n["name"]], d["agent_port"])
            for n in values["nodes"]
        ]
        progs.insert(0, _program("home", d["home"]["node"], jupiter_bin,
                                 ["drupe", "home", "--config", config_path],
                                 addr[d["home"]["node"]], d["home"]["port"]))
        return progs
    if component == "wave":
        w = values["wave"]
        return [_program("wave", w["node"], jupiter_bin, ["wave", "serve", "--config", config_path],
                         addr[w["node"]], w["port"])]
    if component == "circe_tasks":
        return [
            _program(t["key"], t["node"], jupiter_bin,
                     ["circe", "task", "--config", config_path, "--task", t["key"]],
                     addr[t["node"]], t["port"])
            for t in values["circe"]["tasks"]
        ]
    if component == "circe_home":
        h = values["circe"]["home"]
        return [_program("home", h["node"], jupiter_bin, ["circe", "home", "--config", config_path],
                         addr[h["node"]], h["port"])]
    raise ValueError(f"unknown component {component!r}")


def _program(name: str, node: str, jupiter_bin: str, args: list[str], address: str,
             port: int) -> dict[str, Any]:
    listen = f"{address}:{port}"
    return {
        "name": name,
        "node": node,
        "command": [jupiter_bin, *args, "--listen", listen],
        "env": {},
        "ready_url": f"http://{listen}/ready",
        "autorestart": True,
    }


def local_endpoints(values: dict[str, Any]) -> dict[str, Any]:
    """The home URLs of a local deployment, for ``jupiter status`` (endpoints.json)."""
    addr = {n["name"]: n.get("address") for n in values["nodes"]}
    out: dict[str, Any] = {"schema": "jupiter.endpoints/v1", "token_file": values["token_file"]}
    for component in ("drupe", "circe"):
        if component in values:
            home = values[component]["home"]
            out[component] = {"home": f"http://{addr[home['node']]}:{home['port']}"}
    if "wave" in values:
        out["wave"] = {"home": f"http://{addr[values['wave']['node']]}:{values['wave']['port']}"}
    return out
