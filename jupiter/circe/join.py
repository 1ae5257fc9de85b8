"""Per-item joins and output routing: pure functions and plain data, no I/O.

A task with parents P1..Pk runs once per item when, for that item, every parent edge is
*closed*. A parent declares with each delivery how many files it sends this child for the
item (``files``); an edge closes when that many distinct files have arrived, or when the
parent sends an edge marker (no file: the task produced nothing for this child, or failed
upstream, ``error`` set). Ingress tasks have the single parent ``home``. Items interleave
freely: state is keyed by item id, so nothing of one item ever joins another.

Routing of a run's outputs (:func:`route_outputs`): ``broadcast`` sends every output to every
child; ``split`` sends the i-th output, in sorted name order, to the i-th child (Jupiter's
FLAG false). A child without an output gets an edge marker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class JoinError(ValueError):
    """A delivery that contradicts the app (unknown parent, inconsistent file count)."""


class RoutingError(ValueError):
    """Outputs that cannot be routed (split mode with more outputs than children)."""


@dataclass
class Edge:
    expected: int | None = None  # files announced by the parent (None: nothing heard yet)
    names: set[str] = field(default_factory=set)
    error: str | None = None

    @property
    def closed(self) -> bool:
        return self.expected is not None and len(self.names) >= self.expected


@dataclass
class Join:
    """The inputs of one item at one task."""

    item: str
    parents: tuple[str, ...]
    edges: dict[str, Edge] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in self.parents:
            self.edges.setdefault(p, Edge())

    def add(self, parent: str, name: str | None, files: int, error: str | None = None) -> bool:
        """Record one delivery; True if it was new. ``name`` None is an edge marker."""
        edge = self.edges.get(parent)
        if edge is None:
            raise JoinError(
                f"item {self.item!r}: {parent!r} is not a parent of this task "
                f"(parents: {', '.join(self.parents)})"
            )
        if name is None:
            if edge.names:
                raise JoinError(f"item {self.item!r}: edge marker from {parent!r} after files")
            new = edge.expected is None or edge.error != error
            edge.expected, edge.error = 0, error
            return new
        if edge.expected is not None and edge.expected != files:
            raise JoinError(
                f"item {self.item!r}: {parent!r} announced {edge.expected} file(s) before and "
                f"{files} now"
            )
        edge.expected = files
        if name in edge.names:
            return False
        edge.names.add(name)
        return True

    @property
    def complete(self) -> bool:
        return all(e.closed for e in self.edges.values())

    @property
    def error(self) -> str | None:
        """The first upstream failure among the edges (in parent order), if any."""
        for p in self.parents:
            if self.edges[p].error:
                return self.edges[p].error
        return None

    def inputs(self) -> list[tuple[str, str]]:
        """(parent, file name) of every input: parents in definition order, names sorted."""
        return [(p, n) for p in self.parents for n in sorted(self.edges[p].names)]

    def missing(self) -> list[str]:
        """Parents whose edge is still open (for status and logs)."""
        return [p for p in self.parents if not self.edges[p].closed]


class Joiner:
    """The open joins of one task; :meth:`offer` returns the join it completes, if any."""

    def __init__(self, parents: Sequence[str]) -> None:
        if not parents:
            raise ValueError("a task has at least one parent (home for ingress tasks)")
        self.parents = tuple(parents)
        self.open: dict[str, Join] = {}

    def offer(self, item: str, parent: str, name: str | None, files: int,
              error: str | None = None) -> Join | None:
        join = self.open.get(item)
        if join is None:
            join = Join(item, self.parents)
        join.add(parent, name, files, error)  # raises before the join is registered
        self.open.setdefault(item, join)
        if join.complete:
            del self.open[item]
            return join
        return None

    def pending(self) -> int:
        return len(self.open)


def input_names(inputs: Iterable[tuple[str, str]]) -> list[str]:
    """File names in join order; raises when two parents sent the same name."""
    names: list[str] = []
    seen: dict[str, str] = {}
    for parent, name in inputs:
        if name in seen:
            raise JoinError(
                f"parents {seen[name]!r} and {parent!r} both sent a file named {name!r}; "
                "legacy tasks read inputs by name, so names must differ"
            )
        seen[name] = parent
        names.append(name)
    return names


def route_outputs(names: Iterable[str], children: Sequence[str], mode: str
                  ) -> dict[str, list[str]]:
    """Which output files go to which child (``home`` included), per Jupiter's FLAG rule."""
    ordered = sorted(names)
    if mode == "broadcast":
        return {c: list(ordered) for c in children}
    if mode != "split":
        raise RoutingError(f"unknown mode {mode!r} (broadcast | split)")
    if len(ordered) > len(children):
        raise RoutingError(
            f"split mode: {len(ordered)} outputs ({', '.join(ordered)}) for {len(children)} "
            f"children ({', '.join(children)}); a split task writes at most one file per child"
        )
    routes = {c: [] for c in children}
    for child, name in zip(children, ordered, strict=False):
        routes[child].append(name)
    return routes
