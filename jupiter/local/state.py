"""The local state folder: default location, atomic JSON files, a per-folder lock.

Layout of ``<state_dir>`` (default ``.jupiter/<deployment>`` under the current directory,
or ``$JUPITER_STATE_DIR``)::

    testbed.json          what the testbed looks like (names, addresses, links, cgroups)
    supervisor/           0700: supervisord.conf, conf.d/<group>.conf, socket, pid, log
    logs/<group>-<name>.log   one log per program
    mapping.json, endpoints.json, ...   written by other parts (read by `jupiter status`)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any


def default_state_dir(deployment: str) -> str:
    env = os.environ.get("JUPITER_STATE_DIR")
    if env:
        return os.path.abspath(env)
    return os.path.abspath(os.path.join(".jupiter", deployment))


def write_text(path: str, text: str, mode: int = 0o644) -> bool:
    """Atomically replace ``path`` with ``text``; False (nothing written) if equal."""
    try:
        with open(path) as fh:
            if fh.read() == text:
                return False
    except FileNotFoundError:
        pass
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def write_json(path: str, data: Any) -> bool:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def locked(state_dir: str, name: str) -> Iterator[None]:
    """Serialise changes of one kind (``testbed``, ``supervisor``) to one state folder."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, f".{name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
