"""Helpers of the local-target tests: unique deployments, testbeds that always go away.

The testbed tests need root with iproute2 (network namespaces, veth, bridge, htb) and the
cgroup v1 ``cpu`` controller. CI runs as root, so a missing facility FAILS these tests
loudly instead of skipping them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.local import names, supervisor, testbed
from jupiter.local.spec import TestbedSpec

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def require_netns() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    problems += [f"'{t}' (iproute2) not on PATH" for t in ("ip", "tc") if not shutil.which(t)]
    if not os.path.exists(f"{names.CGROUP_ROOT}/cpu.cfs_quota_us"):
        problems.append(f"cgroup v1 cpu controller not mounted at {names.CGROUP_ROOT}")
    if problems:
        pytest.fail(
            "the local testbed tests need root, iproute2 and cgroup v1 cpu (CI has them): "
            + "; ".join(problems),
            pytrace=False,
        )


def unique_deployment() -> str:
    return "t" + secrets.token_hex(4)


def free_subnet() -> str:
    """A random 10.78.X.0/24 that no interface uses (parallel runs must not collide)."""
    used = []
    if shutil.which("ip"):
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout
        for entry in json.loads(out or "[]"):
            for a in entry.get("addr_info", []):
                used.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.78.{random.randrange(256)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return str(net)
    raise RuntimeError("no free 10.78.X.0/24 subnet")


def leftovers(deployment: str) -> list[str]:
    """Everything of ``deployment`` still present in the kernel."""
    found = (
        [f"netns {ns}" for ns in os.listdir("/run/netns")] if os.path.isdir("/run/netns") else []
    )
    found = [f for f in found if names.netns_index(deployment, f.split()[1]) is not None]
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    for link in json.loads(out or "[]"):
        name = link["ifname"]
        if name == names.bridge_name(deployment) or names.veth_index(deployment, name) is not None:
            found.append(f"link {name}")
    if os.path.exists(names.cgroup_dir(deployment)):
        found.append(f"cgroup {names.cgroup_dir(deployment)}")
    return found


class Testbeds:
    """Creates testbeds and removes them (supervisord too) even when a test fails."""

    __test__ = False

    def __init__(self, base: Path) -> None:
        self.base = base
        self.created: list[tuple[str, Path]] = []

    def spec(
        self,
        nodes: list[dict[str, Any]],
        links: Any = None,
        deployment: str | None = None,
    ) -> TestbedSpec:
        dep = deployment or unique_deployment()
        return TestbedSpec.from_dict(
            {"deployment": dep, "subnet": free_subnet(), "nodes": nodes, "links": links or {}}
        )

    def state_dir(self, spec: TestbedSpec) -> Path:
        path = self.base / spec.deployment
        if (spec.deployment, path) not in self.created:
            self.created.append((spec.deployment, path))
        return path

    def apply(
        self, spec: TestbedSpec, mode: str | None = None
    ) -> tuple[Path, bool, dict[str, Any]]:
        state_dir = self.state_dir(spec)
        changed, state = testbed.apply(spec, str(state_dir), mode=mode)
        return state_dir, changed, state

    def cleanup(self) -> None:
        errors = []
        for dep, state_dir in reversed(self.created):
            for step in (
                lambda: supervisor.shutdown(str(state_dir)),  # noqa: B023
                lambda: testbed.destroy(dep, str(state_dir)),  # noqa: B023
            ):
                try:
                    step()
                except Exception as exc:  # keep cleaning the rest
                    errors.append(f"{dep}: {exc}")
        if errors:
            raise RuntimeError("cleanup failed: " + "; ".join(errors))


def exec_on(
    state_dir: Path, deployment: str, node: str, argv: list[str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run argv on a node through the real `jupiter local exec` CLI."""
    cmd = [
        PYTHON, "-m", "jupiter.cli", "local", "exec",
        "--deployment", deployment, "--node", node, "--state-dir", str(state_dir), "--", *argv,
    ]  # fmt: skip
    kwargs.setdefault("timeout", 30)
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


@contextlib.contextmanager
def popen(argv: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(argv, text=True, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
