"""``jupiter schedule`` and ``jupiter wave serve``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from jupiter.errors import InvalidInput, Problem

_ALGORITHMS = ("heft", "peft", "stream", "wave_greedy", "random", "spread", "static")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schedule", help="map an app's tasks to nodes from a DRUPE profile (WAVE)",
        description="Map every task of APP_DIR to a node and predict latency and throughput.")
    p.add_argument("app", metavar="APP_DIR",
                   help="app folder (configuration.txt or app.yaml), or an app JSON file")
    p.add_argument("--profile", required=True, metavar="PROFILE.json",
                   help="a DRUPE profile (schema jupiter.profile/v1)")
    p.add_argument("--algorithm", default="heft", choices=_ALGORITHMS)
    p.add_argument("--nodes", metavar="a,b,c",
                   help="candidate nodes (default: every node of the profile)")
    p.add_argument("--home", default="home", metavar="NODE",
                   help="home node: sends inputs, receives results (default: home)")
    p.add_argument("--use-home", action="store_true", help="let tasks run on home too")
    p.add_argument("--input-bytes", type=float, metavar="N",
                   help="bytes of one input item (default: mean size of sample_input files)")
    p.add_argument("--comm-model", choices=("linear", "quadratic"), default=None)
    p.add_argument("--seed", type=int, help="seed of --algorithm random")
    p.add_argument("--latency-slack", type=float, metavar="F",
                   help="stream: allowed latency over HEFT's, fraction (default 0.1)")
    p.add_argument("--mapping", metavar="FILE",
                   help="static: JSON {task: node} (default: the app's static mapping)")
    p.add_argument("--json", action="store_true", help="print the mapping contract as JSON")
    p.set_defaults(func=cmd_schedule)

    w = sub.add_parser("wave", help="the WAVE service")
    wsub = w.add_subparsers(dest="wave_command", metavar="COMMAND")
    s = wsub.add_parser("serve", help="serve (and recompute) the mapping over HTTP")
    s.add_argument("--config", required=True, metavar="FILE", help="wave.json (build_config)")
    s.add_argument("--listen", metavar="HOST:PORT", help="default: the config's listen")
    s.add_argument("--state-dir", metavar="DIR", help="override the config's state_dir")
    s.set_defaults(func=cmd_serve)
    w.set_defaults(func=lambda _args: (w.print_help(), 2)[1])


def _read_json(path: str, what: str) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput([Problem(str(p), f"cannot read {what}: {exc.strerror or exc}")],
                           what) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(str(p), f"not JSON: {exc.msg} (column {exc.colno})",
                                    line=exc.lineno)], what) from exc


def _load_app(path: str) -> Any:
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        from jupiter.wave.api import parse_app

        return parse_app(_read_json(path, "app"), source=str(p))
    if not p.exists():
        raise InvalidInput([Problem(str(p), "no such app folder")], "app")
    from jupiter.app.loader import load_app

    return load_app(p)


def _sample_input_bytes(app: Any) -> float:
    if not app.sample_input:
        return 0.0
    folder = Path(app.root) / app.sample_input
    sizes = [f.stat().st_size for f in sorted(folder.glob("*"))
             if f.is_file() and not f.name.startswith(".")] if folder.is_dir() else []
    return float(sum(sizes) / len(sizes)) if sizes else 0.0


def _rename(exc: InvalidInput, names: dict[str, str]) -> InvalidInput:
    problems = [dataclasses.replace(p, file=names.get(p.file, p.file))
                for p in exc.problems + exc.warnings]
    return InvalidInput(problems, exc.what)


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.4g} {unit}"


def render(mapping: Any, app: Any) -> str:
    """A readable table of the mapping and its predictions."""
    width = max([len("task"), *(len(t) for t in mapping.mapping)])
    lines = [f"app {app.name}: {len(mapping.mapping)} tasks, algorithm {mapping.algorithm}, "
             f"home {mapping.home}", "", f"{'task'.ljust(width)}  node", "-" * (width + 12)]
    lines += [f"{t.ljust(width)}  {n}" for t, n in mapping.mapping.items()]
    used = sorted(set(mapping.mapping.values()))
    p = mapping.predicted
    lines += [
        "",
        f"nodes used   {len(used)} of {len(mapping.nodes)}: {', '.join(used)}",
        f"latency      {_fmt(p['latency_s'])}  (one item, home -> results at home)",
        f"period       {_fmt(p['period_s'])}  (busiest node or link per item)",
        f"throughput   {_fmt(p['throughput_per_s'], 'items/s')}",
        f"bottleneck   {p['bottleneck']}",
    ]
    return "\n".join(lines)


def cmd_schedule(args: argparse.Namespace) -> int:
    from jupiter.wave.api import parse_profile, schedule

    app = _load_app(args.app)
    profile = parse_profile(_read_json(args.profile, "profile"), source=args.profile)
    options: dict[str, Any] = {"home": args.home, "use_home": args.use_home}
    options["input_bytes"] = (args.input_bytes if args.input_bytes is not None
                              else _sample_input_bytes(app))
    if args.comm_model:
        options["comm_model"] = args.comm_model
    if args.seed is not None:
        options["seed"] = args.seed
    if args.latency_slack is not None:
        options["latency_slack"] = args.latency_slack
    if args.mapping:
        options["mapping"] = _read_json(args.mapping, "mapping")
    nodes = [n.strip() for n in args.nodes.split(",") if n.strip()] if args.nodes else None
    try:
        mapping = schedule(app, profile, nodes, algorithm=args.algorithm, **options)
    except InvalidInput as exc:
        names = {"profile": args.profile, "options": "command line"}
        if args.mapping:
            names["options"] = args.mapping
        raise _rename(exc, names) from exc
    if args.json:
        json.dump(mapping.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(mapping, app))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from jupiter.wave.config import load_config
    from jupiter.wave.service import serve

    config = load_config(args.config)
    if args.state_dir:
        config["state_dir"] = args.state_dir
    return serve(config, args.listen)
