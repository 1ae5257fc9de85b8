"""``schedule`` and ``predict``: the WAVE library entry points (pure functions).

``schedule(app, profile, nodes, algorithm=..., **options) -> Mapping``

Algorithms: ``heft``, ``peft``, ``stream``, ``wave_greedy``, ``random``, ``spread``,
``static`` (see docs/scheduling.md). Options (all optional):

===================== ====================================================================
``home``              the home node (default ``"home"``): inputs come from it, results go
                      to it; added to the candidate nodes when missing. ``None``: ignore
                      home (no input/result transfers).
``use_home``          let tasks run on home too (default false: workers only, as Jupiter)
``input_bytes``       bytes of one input item sent by home to each ingress task (number
                      or ``{task: bytes}``; default: the ``input_bytes`` DRUPE's execution
                      profiler fed each ingress task, else 0: one request's latency)
``comm_model``        ``linear`` (latency + bytes/bandwidth, default) or ``quadratic``
                      (DRUPE's ``quad_ms_kbit``)
``default_seconds``   compute seconds at reference speed of a task never profiled (1.0)
``default_output_bytes`` output of a task never profiled (0)
``task_overhead_s``   the dispatcher's CPU seconds per task run at reference speed (0)
``request_overhead_s`` the dispatcher's CPU seconds per request a run receives or sends (0)
``byte_overhead_s``   the dispatcher's CPU seconds per byte a run receives or sends (0)
``cold_per_colocated_task`` share of a task's idle-over-warm CPU it pays in a stream per
                      other task on its node, at most all of it (0)
``crowding_per_colocated_task`` share of its CPU per item a task pays more in a stream per
                      other task on its node (0)
``item_quota_share``  share of a quota-limited node's CPU quota of one CFS period that one
                      item's runs there may take (``heft``, ``peft``, ``stream``; 1.0)
``seed``              ``random``: the seed (default 0)
``distinct``          ``random``/``wave_greedy``: prefer the least used nodes (default true)
``weights``           ``wave_greedy``: ``[w_net, w_cpu, w_mem]`` (default ``[1, 1, 1]``)
``mapping``           ``static``: ``{task: node}`` (default: the app's static mapping)
``latency_slack``     ``stream``: allowed latency above HEFT's, as a fraction (0.10)
``max_moves``/``tries``/``budget`` ``stream``: search limits
``created_at``        the mapping's timestamp (default: the profile's ``generated_at``, so
                      the same inputs give the same mapping, byte for byte)
===================== ====================================================================
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np

from jupiter.app.model import HOME, App
from jupiter.errors import InvalidInput, Problem
from jupiter.profile import Profile
from jupiter.wave import policies
from jupiter.wave.cost import CostModel, build_cost_model
from jupiter.wave.heft import heft
from jupiter.wave.mapping import Mapping
from jupiter.wave.peft import peft
from jupiter.wave.simulate import Prediction, evaluate
from jupiter.wave.stream import stream

ALGORITHMS = ("heft", "peft", "stream", "wave_greedy", "random", "spread", "static")
DEFAULT_ALGORITHM = "heft"
STREAM_DEFAULT = "stream"

_NUMBER = (int, float)


def _is_number(v: Any) -> bool:
    return isinstance(v, _NUMBER) and not isinstance(v, bool) and bool(np.isfinite(v))


def _nonneg(v: Any) -> bool:
    return _is_number(v) and v >= 0


def _input_bytes_ok(v: Any) -> bool:
    if isinstance(v, MappingABC):
        return all(isinstance(k, str) and _nonneg(x) for k, x in v.items())
    return _nonneg(v)


OPTION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "home": (lambda v: v is None or isinstance(v, str), "a node name or null"),
    "use_home": (lambda v: isinstance(v, bool), "true or false"),
    "input_bytes": (_input_bytes_ok, "a number of bytes >= 0, or {task: bytes}"),
    "comm_model": (lambda v: v in ("linear", "quadratic"), "'linear' or 'quadratic'"),
    "default_seconds": (_nonneg, "a number >= 0"),
    "default_output_bytes": (_nonneg, "a number >= 0"),
    "task_overhead_s": (_nonneg, "seconds >= 0 of dispatcher CPU per task run"),
    "request_overhead_s": (_nonneg, "seconds >= 0 of dispatcher CPU per request"),
    "byte_overhead_s": (_nonneg, "seconds >= 0 of dispatcher CPU per byte in or out"),
    "cold_per_colocated_task": (_nonneg, "a share >= 0 (e.g. 0.1) per other task on the node"),
    "crowding_per_colocated_task": (_nonneg,
                                    "a share >= 0 (e.g. 0.02) per other task on the node"),
    "item_quota_share": (lambda v: _is_number(v) and v > 0,
                         "a share > 0 of a node's CPU quota per CFS period, e.g. 0.8"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "distinct": (lambda v: isinstance(v, bool), "true or false"),
    "weights": (lambda v: isinstance(v, list | tuple) and len(v) == 3
                and all(_nonneg(x) for x in v), "three numbers >= 0 [net, cpu, mem]"),
    "mapping": (lambda v: isinstance(v, MappingABC), "an object {task: node}"),
    "latency_slack": (_nonneg, "a fraction >= 0, e.g. 0.1"),
    "max_moves": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                  "an integer >= 0"),
    "tries": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
              "an integer >= 1"),
    "budget": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
               "an integer >= 0 (simulated task runs)"),
    "created_at": (_nonneg, "unix seconds"),
}
_COST_OPTIONS = ("home", "use_home", "input_bytes", "comm_model", "default_seconds",
                 "default_output_bytes", "task_overhead_s", "request_overhead_s",
                 "byte_overhead_s", "cold_per_colocated_task", "crowding_per_colocated_task",
                 "item_quota_share")


def check_options(algorithm: str, options: MappingABC[str, Any], *,
                  source: str = "options") -> dict[str, Any]:
    """Validate the algorithm name and every option; raises naming each bad one."""
    problems: list[Problem] = []
    if algorithm not in ALGORITHMS:
        problems.append(Problem(source, f"unknown algorithm {algorithm!r}; choose one of "
                                f"{', '.join(ALGORITHMS)}", field="algorithm"))
    for name, value in options.items():
        check = OPTION_CHECKS.get(name)
        if check is None:
            problems.append(Problem(source, f"unknown option; known options: "
                                    f"{', '.join(sorted(OPTION_CHECKS))}", field=name))
        elif not check[0](value):
            problems.append(Problem(source, f"must be {check[1]}, got {value!r}", field=name))
    if problems:
        raise InvalidInput(problems, "schedule options")
    return dict(options)


def node_names(nodes: Iterable[Any] | None, *, source: str = "options") -> list[str] | None:
    """Node names from a list of names or of inventory node objects (``{"name": ...}``)."""
    if nodes is None:
        return None
    names: list[str] = []
    for i, n in enumerate(nodes):
        if isinstance(n, str):
            names.append(n)
        elif isinstance(n, MappingABC) and isinstance(n.get("name"), str):
            names.append(n["name"])
        else:
            raise InvalidInput([Problem(source, f"node #{i} must be a name or an object with "
                                        f"'name', got {n!r}", field="nodes")], "node list")
    return names


def parse_profile(data: Any, *, source: str = "profile") -> Profile:
    """``Profile.from_dict`` with its ``ValueError`` turned into a Problem naming the field."""
    try:
        return Profile.from_dict(data)
    except (ValueError, TypeError, AttributeError) as exc:
        text = str(exc)
        match = re.search(r"field '([^']+)'", text)
        message = re.sub(r"^profile: (field '[^']+': )?", "", text)
        raise InvalidInput([Problem(source, message, field=match.group(1) if match else None)],
                           "profile") from exc


def cost_model_for(app: App, profile: Profile, nodes: Iterable[str] | None,
                   options: MappingABC[str, Any]) -> CostModel:
    kwargs = {k: options[k] for k in _COST_OPTIONS if k in options}
    kwargs.setdefault("home", HOME)
    if nodes is not None:
        names = list(nodes)
    else:  # every profiled node DRUPE still hears from (home always)
        home = kwargs["home"]
        names = [n for n, p in profile.nodes.items() if not p.stale or n == home]
    return build_cost_model(app, profile, names, **kwargs)


def run_algorithm(cm: CostModel, algorithm: str, options: MappingABC[str, Any],
                  app: App | None = None) -> np.ndarray:
    """Node index per vertex of ``cm`` chosen by ``algorithm``."""
    if algorithm == "heft":
        return heft(cm).assign
    if algorithm == "peft":
        return peft(cm).assign
    if algorithm == "stream":
        kw = {k: options[k] for k in ("latency_slack", "max_moves", "tries", "budget")
              if k in options}
        return stream(cm, **kw)
    if algorithm == "wave_greedy":
        return policies.wave_greedy(cm, distinct=options.get("distinct", True),
                                    weights=tuple(options.get("weights", (1.0, 1.0, 1.0))))
    if algorithm == "random":
        return policies.random_policy(cm, seed=options.get("seed", 0),
                                      distinct=options.get("distinct", True))
    if algorithm == "spread":
        return policies.spread(cm)
    if algorithm == "static":
        given = options.get("mapping")
        source = "options"
        if not given and app is not None and app.static_mapping:
            given, source = app.static_mapping, app.source or "app"
        if not given:
            raise InvalidInput([Problem("options", "algorithm 'static' needs a mapping: give "
                                        "option 'mapping' {task: node} or static mapping "
                                        "lines in the app", field="mapping")], "mapping")
        return policies.static(cm, given, source=source)
    raise InvalidInput([Problem("options", f"unknown algorithm {algorithm!r}",
                                field="algorithm")], "schedule options")


def _json_safe(options: MappingABC[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if k == "created_at":
            continue
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, MappingABC):
            v = dict(v)
        out[k] = v
    return out


def schedule(app: App, profile: Profile, nodes: Iterable[str] | None = None, *,
             algorithm: str = DEFAULT_ALGORITHM, **options: Any) -> Mapping:
    """Map every task of ``app`` to one of ``nodes`` (default: every profiled node that is
    not marked ``stale``)."""
    opts = check_options(algorithm, options)
    cm = cost_model_for(app, profile, nodes, opts)
    assign = run_algorithm(cm, algorithm, opts, app)
    return _to_mapping(cm, assign, algorithm, opts, profile)


def _to_mapping(cm: CostModel, assign: np.ndarray, algorithm: str,
                options: MappingABC[str, Any], profile: Profile) -> Mapping:
    pred = evaluate(cm, assign)
    created = options.get("created_at") or profile.generated_at or time.time()
    return Mapping(
        algorithm=algorithm,
        mapping={t: cm.nodes[int(assign[i])] for i, t in enumerate(cm.tasks)},
        predicted=pred.to_dict(),
        home=cm.nodes[cm.home] if cm.home is not None else None,
        nodes=list(cm.nodes),
        options=_json_safe(options),
        created_at=float(created),
    )


def predict(app: App, profile: Profile, mapping: Mapping | MappingABC[str, str],
            home_node: str | None = HOME, **options: Any) -> Prediction:
    """Latency, period, throughput and bottleneck of a given ``{task: node}`` mapping."""
    given = mapping.mapping if isinstance(mapping, Mapping) else dict(mapping)
    opts = check_options("static", {k: v for k, v in options.items() if k != "home"})
    opts["home"] = home_node
    opts["use_home"] = True
    nodes = list(dict.fromkeys(v for v in given.values() if isinstance(v, str)))
    cm = cost_model_for(app, profile, nodes, opts)
    return evaluate(cm, policies.static(cm, given, source="mapping"))


# ---- dict adapters (filter plugins, service) ---------------------------------------------
def schedule_dicts(app: MappingABC[str, Any], profile: Any, nodes: Iterable[Any] | None,
                   algorithm: str = STREAM_DEFAULT, **options: Any) -> dict[str, Any]:
    """``schedule`` over the JSON contracts: App dict, Profile dict -> Mapping dict."""
    app_obj = parse_app(app)
    prof = parse_profile(profile)
    return schedule(app_obj, prof, node_names(nodes), algorithm=algorithm,
                    **options).to_dict()


def predict_dicts(app: MappingABC[str, Any], profile: Any, mapping: MappingABC[str, Any],
                  home_node: str | None = HOME, **options: Any) -> dict[str, Any]:
    """``predict`` over the JSON contracts; ``mapping`` is a Mapping dict or ``{task: node}``."""
    app_obj = parse_app(app)
    prof = parse_profile(profile)
    if "schema" in mapping:
        m = Mapping.from_dict(dict(mapping))
        given: MappingABC[str, str] = m.mapping
        if m.home is not None and home_node == HOME:
            home_node = m.home
    else:
        given = mapping
    return predict(app_obj, prof, given, home_node, **options).to_dict()


def parse_app(data: Any, *, source: str = "app") -> App:
    if isinstance(data, App):
        return data
    try:
        return App.from_dict(dict(data))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput([Problem(source, f"not a jupiter.app/v1 object: {exc}")],
                           "app") from exc
