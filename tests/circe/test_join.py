"""Per-item joins and output routing (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupiter.circe.join import (
    Join,
    Joiner,
    JoinError,
    RoutingError,
    input_names,
    route_outputs,
)


def test_join_waits_for_every_parent_edge() -> None:
    j = Joiner(["simple", "astute"])
    assert j.offer("7", "astute", "7anomalies_astute0.log", 1) is None
    assert j.pending() == 1
    done = j.offer("7", "simple", "7anomalies_simple0.log", 1)
    assert done is not None and done.complete
    assert done.inputs() == [("simple", "7anomalies_simple0.log"),
                             ("astute", "7anomalies_astute0.log")]
    assert j.pending() == 0


def test_edge_with_several_files_closes_on_the_announced_count() -> None:
    j = Joiner(["a"])
    assert j.offer("x", "a", "f2", 2) is None
    assert j.offer("x", "a", "f2", 2) is None  # a repeat is not a second file
    done = j.offer("x", "a", "f1", 2)
    assert done is not None
    assert done.inputs() == [("a", "f1"), ("a", "f2")]


def test_marker_closes_an_edge_and_carries_failures() -> None:
    j = Joiner(["a", "b"])
    assert j.offer("x", "a", None, 0, "a: ValueError: boom") is None
    done = j.offer("x", "b", "out", 1)
    assert done is not None and done.error == "a: ValueError: boom"
    assert done.inputs() == [("b", "out")]


def test_contradicting_deliveries_are_refused_without_side_effects() -> None:
    j = Joiner(["a"])
    with pytest.raises(JoinError, match="not a parent"):
        j.offer("x", "zzz", "f", 1)
    assert j.pending() == 0
    j.offer("x", "a", "f1", 2)
    with pytest.raises(JoinError, match="announced 2 file"):
        j.offer("x", "a", "f2", 3)
    join = Join("y", ("a",))
    join.add("a", "f", 1)
    with pytest.raises(JoinError, match="after files"):
        join.add("a", None, 0)


def test_same_name_from_two_parents_is_an_error() -> None:
    with pytest.raises(JoinError, match="both sent a file named 'out'"):
        input_names([("a", "out"), ("b", "out")])
    assert input_names([("a", "x"), ("b", "y")]) == ["x", "y"]


def test_routing_broadcast_and_split() -> None:
    assert route_outputs(["b", "a"], ["c1", "c2"], "broadcast") == {
        "c1": ["a", "b"], "c2": ["a", "b"]}
    # split: the i-th output in sorted name order goes to the i-th child
    assert route_outputs(["1split_2", "1split_0", "1split_1"], ["ag0", "ag1", "ag2"],
                         "split") == {"ag0": ["1split_0"], "ag1": ["1split_1"],
                                      "ag2": ["1split_2"]}
    assert route_outputs(["only"], ["c1", "c2"], "split") == {"c1": ["only"], "c2": []}
    with pytest.raises(RoutingError, match="3 outputs"):
        route_outputs(["a", "b", "c"], ["c1", "c2"], "split")
    with pytest.raises(RoutingError, match="unknown mode"):
        route_outputs(["a"], ["c1"], "scatter")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_interleaving_completes_each_item_once_with_its_own_inputs(data) -> None:
    parents = ["p0", "p1", "p2"]
    items = [f"i{n}" for n in range(data.draw(st.integers(1, 8)))]
    files = {(i, p): [f"{i}-{p}-{k}" for k in range(data.draw(st.integers(0, 2)))]
             for i in items for p in parents}
    deliveries = []
    for (i, p), names in files.items():
        if names:
            deliveries += [(i, p, n, len(names)) for n in names]
            deliveries += [(i, p, names[0], len(names))]  # a repeated delivery
        else:
            deliveries.append((i, p, None, 0))
    order = data.draw(st.permutations(deliveries))
    joiner = Joiner(parents)
    completed: dict[str, Join] = {}
    for i, p, n, count in order:
        if i in completed:
            continue  # the server acknowledges repeats of finished items (spool done-set)
        done = joiner.offer(i, p, n, count)
        if done is not None:
            assert i not in completed, "an item completed twice"
            completed[i] = done
    assert set(completed) == set(items)
    assert joiner.pending() == 0
    for i, join in completed.items():
        assert join.inputs() == [(p, n) for p in parents for n in sorted(files[(i, p)])]
