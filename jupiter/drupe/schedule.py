"""The probe schedule: a round-robin tournament of disjoint pairs (pure).

Concurrent probes distort each other: two transfers leaving one node share its uplink, two
arriving share its downlink, and every transfer costs CPU on both ends. Home therefore hands
out probe *slots* phase by phase, where in one phase

* every node takes part in at most one slot (as sender or receiver), and
* a slot measures one direction only (the other direction's data would compete with this
  direction's ACKs in the same queue).

:func:`round_robin` is the circle method: ``n - 1`` rounds (``n`` when ``n`` is odd) of
disjoint unordered pairs covering every pair exactly once. :func:`directed_phases` splits each
round into ``a -> b`` and then ``b -> a``, so a full cycle measures every ordered pair once in
``2(n - 1)`` phases (``2n`` for odd ``n``), with up to ``n // 2`` slots running in each.
"""

from __future__ import annotations

from collections.abc import Sequence

Pair = tuple[str, str]


def round_robin(nodes: Sequence[str]) -> list[list[Pair]]:
    """Rounds of disjoint unordered pairs; every pair of distinct nodes appears exactly once."""
    players: list[str | None] = list(dict.fromkeys(nodes))
    if len(players) < 2:
        return []
    if len(players) % 2:
        players.append(None)  # a bye
    n = len(players)
    rounds: list[list[Pair]] = []
    for _ in range(n - 1):
        pairs: list[Pair] = []
        for i in range(n // 2):
            a, b = players[i], players[n - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b))
        rounds.append(pairs)
        players = [players[0], players[-1], *players[1:-1]]
    return rounds


def directed_phases(nodes: Sequence[str], max_parallel: int = 0) -> list[list[Pair]]:
    """Phases of directed slots (src, dst): each ordered pair once, nodes disjoint per phase.

    ``max_parallel`` > 0 splits phases so that at most that many slots run at once.
    """
    phases: list[list[Pair]] = []
    for pairs in round_robin(nodes):
        for phase in ([(a, b) for a, b in pairs], [(b, a) for a, b in pairs]):
            if max_parallel > 0:
                phases.extend(phase[i:i + max_parallel]
                              for i in range(0, len(phase), max_parallel))
            elif phase:
                phases.append(phase)
    return phases
