"""The application model: a DAG of tasks, independent of the file format it came from.

Contract (``schema: jupiter.app/v1``), see DESIGN.md "Data contracts":

* every task has a ``name`` (as the user wrote it, for display), a ``key`` (a DNS-1123
  label derived from the name, unique in the app, used for Kubernetes objects, programs,
  spool folders), an entry ``script`` (path relative to the app folder), an
  ``interface`` (``legacy``: Jupiter's ``task(inputs, pathin, pathout)``; ``process``: the
  new ``process(item, inputs) -> outputs``), ``num_inputs``, ``mode`` (``broadcast`` =
  Jupiter FLAG true, ``split`` = FLAG false) and ``children`` (task names or ``home``).
* ingress tasks are the tasks without parents; ``home`` is the result sink.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA = "jupiter.app/v1"
HOME = "home"
Mode = Literal["broadcast", "split"]
Interface = Literal["legacy", "process"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_KEY_LEN = 40  # leaves room for release/component prefixes inside the 63-char limit


def is_dns_label(value: str, max_len: int = 63) -> bool:
    return len(value) <= max_len and bool(_DNS_LABEL.match(value))


def safe_key(name: str, max_len: int = MAX_KEY_LEN) -> str:
    """Derive a DNS-1123 label from ``name``: lowercase, ``_``/other chars -> ``-``.

    When the name had to be changed (or truncated), a short hash of the original is
    appended so that two different names never map to the same key.
    """
    key = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    key = re.sub(r"-{2,}", "-", key)
    if key == name and len(key) <= max_len:
        return key
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    key = key[: max_len - 7].strip("-") or "t"
    if not key[0].isalnum():
        key = "t" + key
    return f"{key}-{digest}"


@dataclass(frozen=True)
class Task:
    name: str
    key: str
    script: str
    num_inputs: int = 1
    mode: Mode = "broadcast"
    children: tuple[str, ...] = ()
    interface: Interface = "legacy"
    pin: str | None = None
    resources: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    line: int | None = None  # where the task is defined in its source file

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "script": self.script,
            "interface": self.interface,
            "num_inputs": self.num_inputs,
            "mode": self.mode,
            "children": list(self.children),
            "pin": self.pin,
            "resources": dict(self.resources),
            "args": list(self.args),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        return cls(
            name=data["name"],
            key=data.get("key") or safe_key(data["name"]),
            script=data["script"],
            interface=data.get("interface", "legacy"),
            num_inputs=int(data.get("num_inputs", 1)),
            mode=data.get("mode", "broadcast"),
            children=tuple(data.get("children", ())),
            pin=data.get("pin"),
            resources=dict(data.get("resources") or {}),
            args=tuple(data.get("args") or ()),
        )


@dataclass(frozen=True)
class App:
    """A validated application. Build it with :func:`jupiter.app.load_app`."""

    name: str
    tasks: tuple[Task, ...]
    root: str = "."  # the app folder
    source: str = ""  # the definition file (configuration.txt or app.yaml)
    format: Literal["legacy", "yaml"] = "yaml"
    static_mapping: dict[str, str] = field(default_factory=dict)  # task name -> node
    requirements: tuple[str, ...] = ()
    sample_input: str | None = None  # folder relative to root

    # ---- graph helpers -------------------------------------------------------------
    @property
    def key(self) -> str:
        return safe_key(self.name)

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def parents(self, name: str) -> list[str]:
        """Parents of ``name`` in definition order (``home`` has every sink as parent)."""
        return [t.name for t in self.tasks if name in t.children]

    @property
    def ingress(self) -> list[str]:
        with_parents = {c for t in self.tasks for c in t.children}
        return [t.name for t in self.tasks if t.name not in with_parents]

    @property
    def sinks(self) -> list[str]:
        """Tasks whose outputs go to home."""
        return [t.name for t in self.tasks if HOME in t.children]

    def edges(self) -> Iterator[tuple[str, str]]:
        """Every (parent, child) edge between tasks; edges to ``home`` included."""
        for t in self.tasks:
            for c in t.children:
                yield t.name, c

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, stable in definition order. Assumes the app is acyclic."""
        indeg = {t.name: 0 for t in self.tasks}
        for _, c in self.edges():
            if c in indeg:
                indeg[c] += 1
        order: list[str] = []
        ready = [n for n in self.names if indeg[n] == 0]
        while ready:
            n = ready.pop(0)
            order.append(n)
            for c in self.task(n).children:
                if c in indeg:
                    indeg[c] -= 1
                    if indeg[c] == 0:
                        ready.append(c)
        return order

    # ---- contract ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "key": self.key,
            "root": self.root,
            "source": self.source,
            "format": self.format,
            "tasks": [t.to_dict() for t in self.tasks],
            "ingress": self.ingress,
            "static_mapping": dict(self.static_mapping),
            "requirements": list(self.requirements),
            "sample_input": self.sample_input,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> App:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"app: expected schema {SCHEMA!r}, got {data.get('schema')!r}")
        return cls(
            name=data["name"],
            tasks=tuple(Task.from_dict(t) for t in data["tasks"]),
            root=data.get("root", "."),
            source=data.get("source", ""),
            format=data.get("format", "yaml"),
            static_mapping=dict(data.get("static_mapping") or {}),
            requirements=tuple(data.get("requirements") or ()),
            sample_input=data.get("sample_input"),
        )
