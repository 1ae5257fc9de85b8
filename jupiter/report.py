"""The deployment report: mapping table, DAG picture coloured by node, predicted vs measured.

Pure rendering from the contracts (App, Mapping, CIRCE home status); the CLI command
``jupiter report`` and the ``report`` role feed it what the deployment stored.
"""

from __future__ import annotations

import html
from typing import Any

from jupiter.app.model import HOME

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
