"""Waiting on a component's JSON status endpoint with progress, bounded by a timeout."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupiter.errors import JupiterError


@dataclass(frozen=True)
class WaitSpec:
    url: str
    token_file: str | None = None
    until: str | None = None  # dotted key that must become truthy; else done >= total > 0
    done_key: str = "done"
    total_key: str = "total"
    missing_key: str | None = None
    label: str = "wait"
    timeout: float = 120.0
    interval: float = 0.5


def dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def fetch_status(url: str, token_file: str | None, timeout: float = 5.0) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token_file:
        token = Path(token_file).read_text(encoding="utf-8").strip()
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = json.loads(resp.read().decode("utf-8"))
    if not isinstance(body, dict):
        raise ValueError(f"{url}: expected a JSON object")
    return body


def is_done(spec: WaitSpec, status: dict[str, Any]) -> bool:
    if spec.until:
        return bool(dig(status, spec.until))
    done, total = dig(status, spec.done_key), dig(status, spec.total_key)
    return isinstance(done, int | float) and isinstance(total, int | float) and 0 < total <= done


def wait_for_status(
    spec: WaitSpec,
    progress: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[dict[str, Any], float]:
    """Poll ``spec.url`` until done; print a line whenever progress changes.

    Raises :class:`JupiterError` on timeout naming the last progress and what is missing.
    """
    start = clock()
    last_line = None
    last_status: dict[str, Any] = {}
    last_error = "no answer yet"
    while True:
        try:
            last_status = fetch_status(spec.url, spec.token_file)
            last_error = ""
        except (OSError, ValueError, urllib.error.URLError) as exc:
            last_error = str(exc)
        elapsed = clock() - start
        if last_status:
            done, total = dig(last_status, spec.done_key), dig(last_status, spec.total_key)
            line = f"[{spec.label}] {done}/{total}"
            if line != last_line:
                progress(f"{line}  ({elapsed:.1f}s)")
                last_line = line
            if is_done(spec, last_status):
                return last_status, elapsed
        if elapsed >= spec.timeout:
            missing = dig(last_status, spec.missing_key) if spec.missing_key else None
            detail = f"; missing: {missing}" if missing else ""
            err = f"; last error: {last_error}" if last_error else ""
            raise JupiterError(
                f"{spec.label}: not done after {spec.timeout:.0f}s at {spec.url} "
                f"(progress {last_line or 'none'}{detail}{err})"
            )
        time.sleep(spec.interval)  # poll interval, not synchronisation: we re-check the state
