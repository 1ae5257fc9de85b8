"""Thin wrappers around the iproute2 commands (``ip``, ``tc``).

We drive the real command-line tools rather than netlink bindings: their behaviour is
stable across kernel and library versions, errors come with readable messages, and an
operator can replay every command by hand (``JUPITER_LOCAL_TRACE=1`` prints them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from jupiter.errors import JupiterError

NETNS_DIR = "/run/netns"


class CommandFailed(JupiterError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"`{' '.join(argv)}` failed (exit {returncode}): {self.stderr}")


def run(
    argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    if os.environ.get("JUPITER_LOCAL_TRACE"):
        print("+ " + " ".join(argv), file=sys.stderr)
        if stdin:
            print("\n".join("  | " + line for line in stdin.splitlines()), file=sys.stderr)
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    return run(argv, check=check).stdout


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    out = run(["ip", "-j", *(["-n", netns] if netns else []), *args]).stdout.strip()
    return json.loads(out) if out else []


def tc(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = ["tc", *(["-n", netns] if netns else []), *args]
    return run(argv, check=check).stdout


def tc_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    out = run(["tc", "-j", *(["-n", netns] if netns else []), *args]).stdout.strip()
    return json.loads(out) if out else []


def tc_batch(lines: Sequence[str], netns: str | None = None) -> None:
    if lines:
        run(["tc", *(["-n", netns] if netns else []), "-batch", "-"], stdin="\n".join(lines) + "\n")


def netns_list() -> list[str]:
    """Names of the named network namespaces (``ip netns list``), without a subprocess."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def link_names() -> set[str]:
    return {link["ifname"] for link in ip_json("link", "show")}


def missing_tools() -> str | None:
    """Why namespaces cannot be used here, or None when ``ip`` and ``tc`` are usable."""
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"iproute2 '{tool}' not found on PATH"
    return None
