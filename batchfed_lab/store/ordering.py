"""Which ready head a claim takes: the store groups the ready heads of a federation by
(submitter, priority) and lets an installed :class:`HeadOrder` choose the group; the claim
then takes that group's oldest ready head. Without an order the readiest head goes first.

The rules themselves (priority aging, fair share) live in ``batchfed_lab.accounting``; the
store only defines the shape of the question, so it stays free of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReadyGroup:
    """Ready heads of one submitter at one priority: how many, and the oldest ready time."""

    submitter: str | None
    priority: int
    ready_at: float
    count: int


class HeadOrder(Protocol):
    def choose(self, groups: Sequence[ReadyGroup], now: float, federation_id: str | None = None) -> ReadyGroup:
        """One of ``groups`` (never empty) of ``federation_id``'s ready heads: the one whose
        oldest head is claimed next."""
        ...


def group_ready(heads: Iterable[tuple[str | None, int, float]]) -> list[ReadyGroup]:
    """Group (submitter, priority, ready_at) triples of ready heads."""
    found: dict[tuple[str | None, int], list[float]] = {}
    for who, prio, at in heads:
        slot = found.setdefault((who, prio), [at, 0])
        slot[0] = min(slot[0], at)
        slot[1] += 1
    return [ReadyGroup(who, prio, at, int(n)) for (who, prio), (at, n) in found.items()]
