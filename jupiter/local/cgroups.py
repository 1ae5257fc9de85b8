"""CPU share of an emulated node with the cgroup v1 ``cpu`` controller.

Node ``n`` of deployment ``d`` gets ``/sys/fs/cgroup/cpu/jupiter/<d>/<n>`` with
``cpu.cfs_period_us = 100000`` and ``cpu.cfs_quota_us = share * 100000``: ``share`` is a
fraction of ONE core (0.5 = half a core, 2.0 = two full cores), whatever the host has.
No share means no quota (-1). The unified (v2) hierarchy is not used: ``cpu.max`` is not
available here and mixing both would fight over the controller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from jupiter.local import names

PERIOD_US = 100_000
MIN_QUOTA_US = 1_000  # kernel minimum


def quota_us(share: float | None) -> int:
    if share is None:
        return -1
    return max(MIN_QUOTA_US, round(share * PERIOD_US))


def unavailable(root: str = names.CGROUP_ROOT) -> str | None:
    """Why per-node CPU shares cannot be applied here, or None when they can."""
    if not os.path.exists(os.path.join(root, "cpu.cfs_quota_us")):
        return f"cgroup v1 cpu controller not mounted at {root} (CPU shares not applied)"
    parent = os.path.join(root, names.CGROUP_PARENT)
    if not os.access(parent if os.path.isdir(parent) else root, os.W_OK):
        return f"no write access to {root} (not root?): CPU shares not applied"
    return None


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def read_quota(path: str) -> tuple[int, int] | None:
    """(period_us, quota_us) of a cgroup directory, None when it does not exist."""
    try:
        return int(_read(f"{path}/cpu.cfs_period_us")), int(_read(f"{path}/cpu.cfs_quota_us"))
    except FileNotFoundError:
        return None


def pids(path: str) -> list[int]:
    try:
        return [int(p) for p in _read(f"{path}/cgroup.procs").split()]
    except FileNotFoundError:
        return []


def ensure(path: str, share: float | None, *, dry_run: bool = False) -> bool:
    """Create ``path`` with the quota of ``share``; True when anything changed."""
    want = (PERIOD_US, quota_us(share))
    if read_quota(path) == want:
        return False
    if dry_run:
        return True
    os.makedirs(path, exist_ok=True)
    # quota first: lowering the period below an existing quota's ratio can be refused
    _write(f"{path}/cpu.cfs_quota_us", "-1")
    _write(f"{path}/cpu.cfs_period_us", str(PERIOD_US))
    _write(f"{path}/cpu.cfs_quota_us", str(want[1]))
    return True


def join(path: str, pid: int | None = None) -> None:
    _write(f"{path}/cgroup.procs", str(pid or os.getpid()))


def kill_all(path: str, timeout: float = 10.0) -> int:
    """SIGKILL every process in the cgroup and wait until it is empty; returns how many."""
    killed = 0
    deadline = time.monotonic() + timeout
    while True:
        members = pids(path)
        if not members:
            return killed
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes {members} in {path} did not exit")
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.02)


def remove(path: str, *, dry_run: bool = False, timeout: float = 10.0) -> bool:
    """Remove a cgroup directory tree (children first), killing what runs in it."""
    if not os.path.isdir(path):
        return False
    if dry_run:
        return True
    for entry in sorted(os.listdir(path)):
        child = os.path.join(path, entry)
        if os.path.isdir(child):
            remove(child, timeout=timeout)
    kill_all(path, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY while the last exiting task is reaped
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def remove_parent_if_empty(root: str = names.CGROUP_ROOT) -> None:
    parent = os.path.join(root, names.CGROUP_PARENT)
    with contextlib.suppress(OSError):
        if not [e for e in os.listdir(parent) if os.path.isdir(os.path.join(parent, e))]:
            os.rmdir(parent)
