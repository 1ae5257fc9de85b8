"""The deployment report: mapping table, DAG picture coloured by node, predicted vs measured.

Pure rendering from the contracts (App, Mapping, CIRCE home status); the CLI command
``jupiter report`` and the ``report`` role feed it what the deployment stored.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import statistics
from pathlib import Path
from typing import Any

from jupiter.app.model import HOME
from jupiter.wave.cost import CFS_PERIOD_S

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
)


def depths(app: dict[str, Any]) -> dict[str, int]:
    """Longest-path depth of every task from an ingress (home sink one level below all)."""
    children = {t["name"]: t["children"] for t in app["tasks"]}
    depth = {name: 0 for name in children}
    order = _topo(app)
    for name in order:
        for c in children[name]:
            if c in depth:
                depth[c] = max(depth[c], depth[name] + 1)
    return depth


def _topo(app: dict[str, Any]) -> list[str]:
    names = [t["name"] for t in app["tasks"]]
    indeg = dict.fromkeys(names, 0)
    for t in app["tasks"]:
        for c in t["children"]:
            if c in indeg:
                indeg[c] += 1
    ready = [n for n in names if indeg[n] == 0]
    order = []
    kids = {t["name"]: t["children"] for t in app["tasks"]}
    while ready:
        n = ready.pop(0)
        order.append(n)
        for c in kids[n]:
            if c in indeg:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
    return order


def render_svg(app: dict[str, Any], mapping: dict[str, str], home_node: str) -> str:
    """The DAG as an SVG picture: one column per depth, boxes coloured by node, a legend."""
    depth = depths(app)
    max_depth = max(depth.values(), default=0)
    columns: dict[int, list[str]] = {}
    for name in _topo(app):
        columns.setdefault(depth[name], []).append(name)
    nodes = sorted({*mapping.values(), home_node})
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(nodes)}
    box_w, box_h, gap_x, gap_y, margin = 150, 34, 60, 18, 20
    rows = max((len(v) for v in columns.values()), default=1)
    width = margin * 2 + (max_depth + 2) * (box_w + gap_x)
    height = margin * 2 + rows * (box_h + gap_y) + 30 + 20 * len(nodes)
    pos: dict[str, tuple[float, float]] = {}
    for d, names in columns.items():
        offset = (rows - len(names)) * (box_h + gap_y) / 2
        for i, name in enumerate(names):
            pos[name] = (margin + d * (box_w + gap_x), margin + offset + i * (box_h + gap_y))
    pos[HOME] = (margin + (max_depth + 1) * (box_w + gap_x),
                 margin + (rows - 1) * (box_h + gap_y) / 2)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="8" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    for t in app["tasks"]:
        x1, y1 = pos[t["name"]]
        for c in t["children"]:
            x2, y2 = pos[c]
            out.append(
                f'<line x1="{x1 + box_w}" y1="{y1 + box_h / 2}" x2="{x2}" y2="{y2 + box_h / 2}" '
                'stroke="#555" marker-end="url(#a)"/>'
            )
    labels = [(t["name"], mapping.get(t["name"], "?")) for t in app["tasks"]]
    labels.append((HOME, home_node))
    for name, node in labels:
        x, y = pos[name]
        fill = colour.get(node, "#cccccc")
        out.append(f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" '
                   f'fill="{fill}" stroke="#333"/>')
        out.append(f'<text x="{x + box_w / 2}" y="{y + 14}" text-anchor="middle" fill="white">'
                   f"{html.escape(name)}</text>")
        out.append(f'<text x="{x + box_w / 2}" y="{y + 28}" text-anchor="middle" fill="white" '
                   f'font-size="10">@{html.escape(node)}</text>')
    ly = margin + rows * (box_h + gap_y) + 10
    for i, n in enumerate(nodes):
        out.append(f'<rect x="{margin}" y="{ly + 20 * i}" width="14" height="14" '
                   f'fill="{colour[n]}"/>')
        out.append(f'<text x="{margin + 20}" y="{ly + 20 * i + 12}">{html.escape(n)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


# ---- the deployment report ------------------------------------------------------------------
def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def split_lone(done: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(items that ran alone first, the stream), by submission order.

    An item that completed before the next one was submitted ran alone, and so did the last
    item when every item before it ran alone. The report role sends ``report_single_items``
    items one at a time (the first warms every process up), then the rest as a stream.
    """
    items = sorted((r for r in done if r.get("submitted") and r.get("completed")),
                   key=lambda r: r["submitted"])
    lone = []
    while items and (len(items) == 1 or items[0]["completed"] <= items[1]["submitted"]):
        lone.append(items.pop(0))
    return lone, items


def single_item_latencies(lone: list[dict[str, Any]]) -> list[float]:
    """Latencies of the items that ran alone, in submission order, without the warm-up.

    The first lone item warms every process up and is left out, unless it is the only one.
    """
    latencies = [float(r["latency"]) for r in lone if r.get("latency") is not None]
    return latencies[1:] if len(latencies) > 1 else latencies


def _fed_until(stream: list[dict[str, Any]]) -> float:
    """The end of the span a stream's figures are measured over: its last submission, when
    at least half the stream's items completed by then (a windowed stream), else no end (a
    folder submitted at once: every completion counts)."""
    if not stream:
        return math.inf
    last_fed = max(r["submitted"] for r in stream)
    while_fed = sum(1 for r in stream if r["completed"] <= last_fed)
    return last_fed if while_fed >= max(2, len(stream) / 2) else math.inf


def stream_throughput(done: list[dict[str, Any]]) -> float | None:
    """Items per second in steady state: the completion rate of the stream.

    The rate is (k - 1) / (last - first completion) over the stream's completions while it
    was still being fed: from the first completion up to the last submission. A windowed
    stream (``jupiter submit --window``) keeps the pipeline full until then, and the drain
    that follows is left out (with the upstream tasks done, the last ones have the machine
    to themselves and run faster than a sustained stream would). When fewer than half the
    stream's items complete in that span (a folder submitted at once), the rate is over all
    of them, which still leaves out the pipeline's fill time. Items that ran alone are not
    part of the stream."""
    return _stream_rate(split_lone(done)[1])


def _stream_rate(stream: list[dict[str, Any]]) -> float | None:
    """:func:`stream_throughput` of the stream's items (``split_lone``'s second part)."""
    until = _fed_until(stream)
    finished = sorted(r["completed"] for r in stream if r["completed"] <= until)
    if len(finished) < 2 or finished[-1] <= finished[0]:
        return None
    return (len(finished) - 1) / (finished[-1] - finished[0])


def task_cpu_per_item(runtime: list[dict[str, Any]], stream: list[dict[str, Any]]
                      ) -> dict[str, float]:
    """Each task's CPU seconds per item in the stream, from its runtime rows (pure).

    A task process reports with each item it finishes the CPU seconds it has used so far
    (``process_cpu_s``, every thread: receiving, spooling, the task code, pushing). Over
    the stream's items it finished while the stream was fed (the span of
    :func:`stream_throughput`), in finish order, the CPU from its first to its last finish
    is the work of one item per finish after the first. A value below every earlier one
    (the process restarted and counts from 0 again) starts a new span."""
    ids = {r["item"] for r in stream}
    until = _fed_until(stream)
    points: dict[str, list[tuple[float, float]]] = {}
    for row in runtime:
        if (row.get("item") in ids and row.get("status", "ok") == "ok"
                and row.get("process_cpu_s") is not None and row.get("finish") is not None
                and row["finish"] <= until):
            points.setdefault(row["task"], []).append((row["finish"],
                                                       float(row["process_cpu_s"])))
    out: dict[str, float] = {}
    for task, seen in points.items():
        spans: list[list[float]] = []  # each from its lowest value, the first
        for _, value in sorted(seen):
            if not spans or value < spans[-1][0]:  # the first finish, or a restarted process
                spans.append([value])
            else:
                spans[-1].append(value)
        items = sum(len(span) - 1 for span in spans)
        if items:
            out[task] = sum(max(span) - span[0] for span in spans) / items
    return out


def build_report(
    app: dict[str, Any],
    mapping: dict[str, Any],
    items: list[dict[str, Any]],
    runtime: list[dict[str, Any]],
    *,
    started_at: float | None,
    profile: dict[str, Any] | None = None,
    only_items: set[str] | None = None,
) -> dict[str, Any]:
    """Predicted vs measured figures from the Mapping contract and CIRCE's tables (pure).

    ``only_items``: the ids the report covers (the items this run fed); home's tables also
    hold whatever else its state folder saw (earlier runs, items fed by hand). With
    ``started_at``, items first submitted before it are left out: an earlier deploy ran
    them (perhaps on another mapping) and home acknowledged this run's repeats of them
    without running them again; ``items_earlier`` counts them."""
    if only_items is not None:
        items = [r for r in items if r.get("item") in only_items]
    latest: dict[str, dict[str, Any]] = {}
    for row in items:  # the items table is appended to; the last row of an item wins
        latest[row["item"]] = row
    earlier = {i for i, r in latest.items()
               if started_at and (r.get("submitted") or started_at) < started_at}
    latest = {i: r for i, r in latest.items() if i not in earlier}
    if only_items is not None or earlier:
        runtime = [r for r in runtime if r.get("item") in latest]
    done = [r for r in latest.values() if r.get("status") == "completed"]
    failed = [r for r in latest.values() if r.get("status") == "failed"]
    completed_at = sorted(r["completed"] for r in done if r.get("completed"))
    lone, stream = split_lone(done)
    single = single_item_latencies(lone)
    lat = sorted(r["latency"] for r in stream if r.get("latency") is not None)
    predicted = mapping.get("predicted") or {}
    per_task: dict[str, list[float]] = {}
    for row in runtime:
        if row.get("duration") is not None and row.get("status", "ok") == "ok":
            per_task.setdefault(row["task"], []).append(float(row["duration"]))
    exec_profile = (profile or {}).get("exec") or {}
    cpu_measured = task_cpu_per_item(runtime, stream)
    cpu_predicted = predicted.get("task_cpu_s") or {}
    task_rows = []
    for t in app["tasks"]:
        node = mapping["mapping"].get(t["name"])
        durations = sorted(per_task.get(t["name"], []))
        task_rows.append({
            "task": t["name"], "node": node,
            "predicted_s": (exec_profile.get(t["name"], {}).get(node) or {}).get("seconds"),
            "measured_p50_s": durations[len(durations) // 2] if durations else None,
            "runs": len(durations),
            "predicted_cpu_per_item_s": cpu_predicted.get(t["name"]),
            "cpu_per_item_s": cpu_measured.get(t["name"]),
        })
    return {
        "schema": "jupiter.report/v1",
        "app": app["name"],
        "algorithm": mapping.get("algorithm"),
        "items_submitted": len(latest),
        "items_earlier": len(earlier),
        "items_completed": len(done),
        "items_failed": len(failed),
        "failures": [{"item": r["item"], "error": r.get("error")} for r in failed],
        "predicted": {
            "latency_s": predicted.get("latency_s"),
            "period_s": predicted.get("period_s"),
            "throughput_per_s": predicted.get("throughput_per_s"),
            "bottleneck": predicted.get("bottleneck"),
            "over_quota": predicted.get("over_quota") or {},
        },
        "measured": {
            "single_item_latency_s": statistics.median(single) if single else None,
            "single_item_latencies_s": single,
            "single_item_runs": len(single),
            "stream_items": len(stream),
            "latency_p50_s": lat[len(lat) // 2] if lat else None,
            "latency_mean_s": sum(lat) / len(lat) if lat else None,
            "latency_max_s": lat[-1] if lat else None,
            "throughput_per_s": _stream_rate(stream),
        },
        "first_result_s": completed_at[0] - started_at if completed_at and started_at else None,
        "last_result_s": completed_at[-1] - started_at if completed_at and started_at else None,
        "tasks": task_rows,
    }


def render_text(report: dict[str, Any], where: dict[str, str]) -> str:
    p, m = report["predicted"], report["measured"]
    lines = [
        f"app {report['app']} mapped with {report['algorithm']}: "
        f"{report['items_completed']}/{report['items_submitted']} items completed, "
        f"{report['items_failed']} failed",
        "",
        table(["task", "node", "predicted s", "measured p50 s", "runs",
               "pred CPU/item s", "measured"],
              [[r["task"], r["node"], r["predicted_s"], r["measured_p50_s"], r["runs"],
                r.get("predicted_cpu_per_item_s"), r.get("cpu_per_item_s")]
               for r in report["tasks"]]),
        "run time: the task code's, as DRUPE profiled it and over every run here; CPU/item:",
        "the task process's CPU seconds per item in the stream, as WAVE predicted it and used",
        "",
        table(["", "predicted", "measured"], [
            [f"single-item latency, warm, median of {m['single_item_runs']} (s)",
             p["latency_s"], m["single_item_latency_s"]],
            [f"latency p50 over the stream of {m['stream_items']} items (s)", None,
             m["latency_p50_s"]],
            ["throughput (items/s)", p["throughput_per_s"], m["throughput_per_s"]],
            ["period (s/item)", p["period_s"],
             1 / m["throughput_per_s"] if m["throughput_per_s"] else None],
        ]),
        f"bottleneck (predicted): {p['bottleneck']}",
    ]
    for node, over in sorted((p.get("over_quota") or {}).items()):
        period_ms = CFS_PERIOD_S * 1e3
        lines.append(f"{node}: one item's tasks need {over['item_cpu_s'] * 1e3:.1f} ms of CPU "
                     f"there, past the {over['cap_s'] * 1e3:.1f} ms of its CPU quota per "
                     f"{period_ms:g} ms period this mapping may plan on (wave_item_quota_share): "
                     f"a lone item may wait for the next period, up to {period_ms:g} ms more "
                     "than predicted")
    if report.get("items_earlier"):
        lines.append(f"{report['items_earlier']} item(s) fed were done by an earlier run, before "
                     "this deploy: home acknowledged them without running them again, and they "
                     "are left out here. To measure them again on this mapping, run "
                     "teardown.yml -e jupiter_purge=true (it deletes the results) and deploy "
                     "again, or feed new files.")
    if report.get("first_result_s") is not None:
        lines.append(f"first result {report['first_result_s']:.1f} s and last result "
                     f"{report['last_result_s']:.1f} s after deploy.yml started")
    for f in report["failures"][:10]:
        lines.append(f"FAILED item {f['item']}: {f['error']}")
    lines.append("")
    lines += [f"{k}: {v}" for k, v in where.items()]
    return "\n".join(lines)


def write_report(state_dir: Path, app: dict[str, Any], started_at: float | None,
                 input_dir: Path | None = None) -> str:
    """Build the report from what the deployment stored; write report.json + mapping.svg.

    ``input_dir``: the folder that was fed; the report covers its items only."""
    only = None
    if input_dir is not None:
        from jupiter.circe.submit import collect_files

        only = {item for item, _ in collect_files([input_dir])}
    mapping = json.loads((state_dir / "mapping.json").read_text(encoding="utf-8"))
    profile_path = state_dir / "profile.json"
    profile = json.loads(profile_path.read_text(encoding="utf-8")) if profile_path.is_file() \
        else None
    report = build_report(app, mapping, _jsonl(state_dir / "circe" / "items.jsonl"),
                          _jsonl(state_dir / "circe" / "runtime.jsonl"),
                          started_at=started_at, profile=profile, only_items=only)
    picture = state_dir / "mapping.svg"
    picture.write_text(render_svg(app, mapping["mapping"], mapping.get("home", "home")),
                       encoding="utf-8")
    where = {
        "picture (DAG coloured by node)": str(picture),
        "results": str(state_dir / "results"),
        "runtime table": str(state_dir / "circe" / "runtime.csv"),
        "logs": str(state_dir / "logs"),
        "profile": str(profile_path),
    }
    report["picture"] = str(picture)
    report["where"] = where
    tmp = state_dir / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    tmp.replace(state_dir / "report.json")
    return render_text(report, where)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="print the deployment report (mapping, predicted vs "
                       "measured), write report.json and the DAG picture")
    p.add_argument("--state-dir", required=True, help="the deployment's state folder")
    p.add_argument("--app-dir", required=True, help="the app folder")
    p.add_argument("--started-at", type=float, help="unix time deploy.yml started")
    p.add_argument("--input-dir", help="the folder of inputs that was fed: report on its items "
                   "only (home's tables keep every item its state folder saw)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from jupiter.app.loader import load_app

    app = load_app(args.app_dir).to_dict()
    print(write_report(Path(args.state_dir), app, args.started_at,
                       Path(args.input_dir) if args.input_dir else None))
    return 0
