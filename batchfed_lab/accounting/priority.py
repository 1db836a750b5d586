"""Job priorities across job ids, with aging (pure).

A head's **rank** is ``ready_at - priority x seconds_per_point``; the lowest rank goes first.
That is the same as the highest *effective priority* ``priority + waited / seconds_per_point``:
every ``seconds_per_point`` of waiting is worth one priority point. So equal priorities keep the
order in which heads became ready (FIFO), a higher priority goes first, and a low priority
never starves: a head of priority ``p`` is overtaken only by heads that became ready less
than ``(1000 - p) x seconds_per_point`` after it (:func:`longest_wait`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store.ordering import ReadyGroup

MAX_PRIORITY = 1000


@dataclass(frozen=True, slots=True)
class Aging:
    """``seconds_per_point``: waiting time worth one priority point (default 3.6 s: a
    priority −1000 head outranks a fresh +1000 one after two hours)."""

    seconds_per_point: float = 3.6

    def __post_init__(self) -> None:
        if not self.seconds_per_point > 0:
            raise ValueError("seconds_per_point must be > 0")


def rank(group: ReadyGroup, aging: Aging) -> float:
    """Sort key of a ready group's oldest head: lower goes first."""
    return group.ready_at - group.priority * aging.seconds_per_point


def effective_priority(priority: int, *, waited: float, aging: Aging) -> float:
    return priority + max(0.0, waited) / aging.seconds_per_point


def longest_wait(priority: int, aging: Aging) -> float:
    """How long newer heads can overtake a head of ``priority`` (seconds)."""
    return (MAX_PRIORITY - priority) * aging.seconds_per_point
