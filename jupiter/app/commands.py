"""``jupiter validate`` and ``jupiter import-nodes``.

* ``jupiter validate APP_DIR [--json]``: load and check an app; exit 0 with a one-screen
  summary (tasks, edges, ingress, sinks, format, warnings), or exit 1 listing every problem
  as ``file:line [field]: message``.
* ``jupiter import-nodes nodes.txt [-o inventory/mycluster/hosts.yml] [--force]``: convert
  Jupiter's node list into an inventory for the kubernetes target (stdout without ``-o``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jupiter.app.loader import inspect_app
from jupiter.app.model import HOME, App
from jupiter.app.nodes import import_nodes
from jupiter.app.validate import decode_text
from jupiter.errors import InvalidInput, Problem

MAX_TASK_LINES = 20


def register(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="check an app folder (app.yaml or Jupiter's configuration.txt)",
        description="Load and validate an app; print a summary, or every problem with file:line.",
    )
    p.add_argument(
        "app_dir", metavar="APP_DIR", help="the app folder, e.g. task_specific_files/diamond"
    )
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "import-nodes",
        help="convert Jupiter's nodes.txt into an inventory (jupiter_target: kubernetes)",
        description="Read '<tag> <k8s-hostname> [user password]' lines (first line: home) "
        "and write an Ansible inventory; passwords are ignored and never written.",
    )
    p.add_argument("nodes_txt", metavar="NODES_TXT", help="Jupiter's nodes.txt")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the inventory here (e.g. inventory/mycluster/hosts.yml); default stdout",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_import_nodes)


# ---- validate -------------------------------------------------------------------------------


def summary(app: App) -> dict[str, Any]:
    edges = list(app.edges())
    sample_files = 0
    if app.sample_input:
        folder = Path(app.root) / app.sample_input
        if folder.is_dir():
            sample_files = sum(
                1 for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")
            )
    return {
        "name": app.name,
        "format": app.format,
        "source": app.source,
        "tasks": len(app.tasks),
        "edges": len(edges),
        "edges_to_home": sum(1 for _, c in edges if c == HOME),
        "ingress": app.ingress,
        "sinks": app.sinks,
        "static_mapping": len(app.static_mapping),
        "requirements": list(app.requirements),
        "sample_input": app.sample_input,
        "sample_files": sample_files,
    }


def _format_summary(app: App, warnings: list[Problem]) -> str:
    s = summary(app)
    fmt = "Jupiter legacy" if app.format == "legacy" else "YAML"
    lines = [
        f"app {app.name}: valid ({fmt} format, {app.source})",
        f"  tasks:   {s['tasks']}",
        f"  edges:   {s['edges']} ({s['edges_to_home']} to home)",
        f"  ingress: {', '.join(s['ingress'])}",
        f"  sinks:   {', '.join(s['sinks'])} -> home",
    ]
    if app.static_mapping:
        lines.append(f"  static mapping: {s['static_mapping']} task(s)")
    lines.append("  requirements: " + (", ".join(app.requirements) if app.requirements else "none"))
    if app.sample_input:
        lines.append(f"  sample input: {app.sample_input}/ ({s['sample_files']} files)")
    else:
        lines.append("  sample input: none")
    lines.append("  tasks in topological order (inputs, mode -> children):")
    order = app.topological_order()
    width = max(len(n) for n in order)
    for name in order[:MAX_TASK_LINES]:
        t = app.task(name)
        extra = []
        if t.key != t.name:
            extra.append(f"key {t.key}")
        if t.interface != "legacy":
            extra.append(t.interface)
        if t.pin:
            extra.append(f"pin {t.pin}")
        tail = f"  [{', '.join(extra)}]" if extra else ""
        lines.append(
            f"    {name:<{width}}  {t.num_inputs} {t.mode:<9} -> {', '.join(t.children)}{tail}"
        )
    if len(order) > MAX_TASK_LINES:
        lines.append(f"    ... and {len(order) - MAX_TASK_LINES} more")
    lines.append(f"  warnings: {len(warnings)}")
    lines.extend(f"    {w}" for w in warnings)
    return "\n".join(lines)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        app, warnings = inspect_app(args.app_dir)
    except InvalidInput as exc:
        if args.json:
            print(
                json.dumps(
                    {
                        "valid": False,
                        "problems": [p.to_dict() for p in exc.problems],
                        "warnings": [p.to_dict() for p in exc.warnings],
                    },
                    indent=2,
                )
            )
        else:
            print(f"app {args.app_dir}: INVALID, {len(exc.problems)} problem(s)")
            for p in exc.problems:
                print(f"  {p}")
            if exc.warnings:
                print(f"  warnings: {len(exc.warnings)}")
                for w in exc.warnings:
                    print(f"    {w}")
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "valid": True,
                    "summary": summary(app),
                    "app": app.to_dict(),
                    "problems": [],
                    "warnings": [w.to_dict() for w in warnings],
                },
                indent=2,
            )
        )
    else:
        print(_format_summary(app, warnings))
    return 0


# ---- import-nodes ----------------------------------------------------------------------------


def cmd_import_nodes(args: argparse.Namespace) -> int:
    src = Path(args.nodes_txt)
    if not src.is_file():
        print(f"error: {src}: file not found", file=sys.stderr)
        return 1
    problems: list[Problem] = []
    text = decode_text(src.read_bytes(), str(src), problems)
    if text is None:
        raise InvalidInput(problems, what=f"node list {src}")
    try:
        inventory, warnings = import_nodes(text, str(src))
    except InvalidInput as exc:
        print(f"{src}: INVALID, {len(exc.problems)} problem(s)", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        for w in exc.warnings:
            print(f"  {w}", file=sys.stderr)
        return 1
    for w in warnings:
        print(f"{w}", file=sys.stderr)
    if not args.output or args.output == "-":
        sys.stdout.write(inventory)
        return 0
    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"error: {out} exists; use --force to overwrite it", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(inventory, encoding="utf-8")
    hosts = inventory.count("k8s_hostname:")
    print(
        f"wrote {out} (1 home, {hosts - 1} worker(s), jupiter_target: kubernetes)", file=sys.stderr
    )
    return 0
