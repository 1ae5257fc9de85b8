"""``jupiter status``: one view of a local deployment, robust to missing pieces.

Gathers the testbed (nodes, addresses, shaped links, cgroups), supervisord's programs
(state, pid, uptime), ``mapping.json`` (task -> node) and, when ``endpoints.json`` names
them, the ``/status`` of the CIRCE and DRUPE homes (with the deployment's bearer token).

``endpoints.json`` (written by the deploy roles into the state folder)::

    {"schema": "jupiter.endpoints/v1",
     "token_file": "/abs/path/token",          # default <state_dir>/token
     "circe": {"home": "http://10.77.0.2:7800"},
     "drupe": {"home": "http://10.77.0.2:7700"},
     "wave": {"home": "http://10.77.0.2:7710"}}
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from jupiter.local import supervisor, testbed
from jupiter.local.state import read_json

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_status(base_url: str, token: str | None, timeout: float = 3.0) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/status"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            data = json.loads(resp.read().decode("utf-8"))
            return {"url": url, "ok": True, "status": data}
    except urllib.error.HTTPError as exc:
        return {"url": url, "ok": False, "error": f"HTTP {exc.code}"}
    except (OSError, ValueError) as exc:
        return {"url": url, "ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _token(state_dir: str, endpoints: dict[str, Any]) -> str | None:
    path = endpoints.get("token_file") or os.path.join(state_dir, "token")
    try:
        with open(path) as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _mapping(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    inner = data.get("mapping")
    source = inner if isinstance(inner, dict) else data
    return {k: v for k, v in source.items() if isinstance(k, str) and isinstance(v, str)}


def gather(deployment: str, state_dir: str) -> dict[str, Any]:
    report: dict[str, Any] = {"deployment": deployment, "state_dir": state_dir}
    try:
        report["testbed"] = testbed.status(deployment, state_dir)
    except Exception as exc:  # a report must not die on one broken part
        report["testbed"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        report["supervisor"] = supervisor.status(state_dir)
    except Exception as exc:
        report["supervisor"] = {"error": f"{type(exc).__name__}: {exc}"}
    mapping_doc = read_json(os.path.join(state_dir, "mapping.json"))
    report["mapping"] = _mapping(mapping_doc)
    if isinstance(mapping_doc, dict):
        report["mapping_algorithm"] = mapping_doc.get("algorithm")
        report["mapping_predicted"] = mapping_doc.get("predicted")
    endpoints = read_json(os.path.join(state_dir, "endpoints.json")) or {}
    token = _token(state_dir, endpoints) if endpoints else None
    services: dict[str, Any] = {}
    for component in ("drupe", "circe"):
        entry = endpoints.get(component)
        url = entry.get("home") if isinstance(entry, dict) else entry
        if isinstance(url, str) and url:
            services[component] = fetch_status(url, token)
    report["services"] = services
    return report


def _progress(status: Any, prefix: str = "") -> list[str]:
    """'done/total'-style lines from a component's /status JSON."""
    lines: list[str] = []
    if not isinstance(status, dict):
        return lines
    if "done" in status and "total" in status:
        lines.append(f"{prefix or 'progress'}: {status['done']}/{status['total']}")
    for key, value in status.items():
        if isinstance(value, dict):
            lines += _progress(value, f"{prefix}.{key}" if prefix else key)
        elif (
            not prefix
            and isinstance(value, str | int | float | bool)
            and key
            not in (
                "done",
                "total",
            )
        ):
            lines.append(f"{key}: {value}")
    return lines


def format_text(report: dict[str, Any]) -> str:
    out: list[str] = [f"deployment {report['deployment']}  (state {report['state_dir']})"]
    out += format_testbed(report.get("testbed", {}))
    out += _format_rest(report)
    return "\n".join(out)


def format_testbed(tb: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if "error" in tb:
        out.append(f"testbed: error: {tb['error']}")
    elif not tb.get("present"):
        out.append(f"testbed: none ({tb.get('reason', 'not created')})")
    else:
        shaped = "shaped" if tb.get("shaped") else f"NOT shaped: {tb.get('reason')}"
        cg = "cgroups on" if tb.get("cgroups") else f"no cgroups: {tb.get('cgroups_reason')}"
        delayed = ("; links delayed" if tb.get("latency_emulated")
                   else f"; NOT delayed: {tb['latency_reason']}" if tb.get("latency_reason")
                   else "")
        out.append(f"testbed: mode {tb.get('mode')}, {shaped}; {cg}{delayed}")
        if tb.get("bridge"):
            out.append(f"  bridge {tb['bridge']} host {tb.get('host_address')} {tb.get('subnet')}")
        for n in tb.get("nodes", []):
            share = n.get("cpu_share")
            quota = n.get("cpu_quota_us_actual", n.get("cpu_quota_us"))
            cpu = f"cpu {share} core (quota {quota}us)" if share else "cpu unlimited"
            where = n.get("netns") or "loopback"
            out.append(f"  {n['name']:<12} {n['address']:<15} {where:<20} {cpu}")
        links = tb.get("links", [])
        if links:
            out.append(f"  links ({len(links)}):")
            for link in links:
                rate = f"{link['mbit']:g} Mbit/s" if link.get("mbit") else "not shaped"
                lag = f", {link['delay_ms']:g} ms" if link.get("delay_ms") else ""
                out.append(f"    {link['src']} -> {link['dst']}: {rate}{lag}")
        if tb.get("drift"):
            out.append("  DRIFT (re-apply the testbed to fix): " + "; ".join(tb["drift"]))
    return out


def _format_rest(report: dict[str, Any]) -> list[str]:
    out: list[str] = []
    sup = report.get("supervisor", {})
    if "error" in sup:
        out.append(f"programs: error: {sup['error']}")
    elif not sup.get("running"):
        out.append("programs: supervisord not running")
    else:
        out.append(f"programs (supervisord pid {sup.get('pid')}):")
        for p in sup.get("programs", []):
            up = f"up {p['uptime_s']:.0f}s" if p.get("uptime_s") is not None else p["description"]
            out.append(
                f"  {p['name']:<28} {p['state']:<9} pid {p['pid'] or '-':<7} "
                f"node {p.get('node') or '?':<10} {up}"
            )
    mapping = report.get("mapping") or {}
    if mapping:
        algo = report.get("mapping_algorithm")
        out.append(f"mapping ({len(mapping)} tasks{', ' + algo if algo else ''}):")
        for task, node in sorted(mapping.items()):
            out.append(f"  {task} -> {node}")
    for component, svc in (report.get("services") or {}).items():
        if svc.get("ok"):
            out.append(f"{component} {svc['url']}:")
            out += ["  " + line for line in _progress(svc["status"])[:30]]
        else:
            out.append(f"{component} {svc['url']}: unreachable ({svc.get('error')})")
    return out
