"""Fair share between users (pure), after Slurm's classic fair-share factor.

* **Usage** is what a user's placements were charged (estimated core-hours), decaying with a
  half-life: a charge of ``c`` made ``t`` seconds ago counts ``c x 2^(-t / half_life)``.
* **Shares** come from federation.yaml: per user, or per group (split equally among its
  members); anyone not named has the default share (1), so by default all are equal.
* The **fair-share factor** of a user is ``F = 2^(-U / S)``, with ``U`` the user's fraction of
  all decayed usage and ``S`` their fraction of the shares: 1 for an unserved user, 0.5 for one
  served exactly their share, towards 0 for one served beyond it.

When several users have ready work, the claim goes to the user with the highest factor (ties:
the oldest head); within that user, priorities with aging decide (:mod:`.priority`). Under
contention, placements therefore follow the shares.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..store.ordering import ReadyGroup
from .priority import Aging, rank

UNKNOWN_USER = "(unknown)"  # actions from before submitters were recorded


@dataclass(frozen=True)
class Shares:
    """``users``: user → share; ``groups``: group → (share, members), split equally."""

    users: Mapping[str, float] = field(default_factory=dict)
    groups: Mapping[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    default: float = 1.0

    def of(self, user: str) -> float:
        if user in self.users:
            return float(self.users[user])
        for share, members in self.groups.values():
            if user in members:
                return float(share) / len(members)
        return self.default

    def group_of(self, user: str) -> str | None:
        return next((g for g, (_, members) in self.groups.items() if user in members), None)


def decayed(value: float, elapsed: float, half_life: float) -> float:
    return value * 0.5 ** (max(0.0, elapsed) / half_life)


class UsageLedger:
    """Decayed usage per user (thread-safe: the proxy's workers charge it concurrently)."""

    def __init__(self, half_life: float, usage: Mapping[str, tuple[float, float]] | None = None):
        if not half_life > 0:
            raise ValueError("half_life must be > 0")
        self.half_life = half_life
        self._lock = threading.Lock()
        self._usage: dict[str, tuple[float, float]] = dict(usage or {})  # user → (value, as of)

    def charge(self, user: str, amount: float, *, at: float) -> None:
        with self._lock:
            value, since = self._usage.get(user, (0.0, at))
            self._usage[user] = (decayed(value, at - since, self.half_life) + amount, at)

    def usage(self, user: str, at: float) -> float:
        with self._lock:
            value, since = self._usage.get(user, (0.0, at))
        return decayed(value, at - since, self.half_life)

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._usage)

    def snapshot(self, at: float) -> dict[str, float]:
        """Every user's decayed usage at ``at``."""
        return {u: self.usage(u, at) for u in self.users()}


class Usage(Protocol):
    """Decayed usage per user (a :class:`UsageLedger`, or one federation's usage)."""

    def usage(self, user: str, at: float) -> float: ...

    def users(self) -> list[str]: ...


class UsagePerFederation(Protocol):
    def of(self, federation_id: str) -> Usage: ...


def fair_share_factor(usage_fraction: float, share_fraction: float) -> float:
    """Slurm's ``F = 2^(-U/S)``; a zero share with usage gives 0."""
    if share_fraction <= 0:
        return 1.0 if usage_fraction <= 0 else 0.0
    return float(2.0 ** (-usage_fraction / share_fraction))


def factors(users: Iterable[str], ledger: Usage, shares: Shares, now: float) -> dict[str, float]:
    """The fair-share factor of each of ``users``, normalised over them and everyone with usage."""
    everyone = sorted(set(users) | set(ledger.users()))
    usage = {u: ledger.usage(u, now) for u in everyone}
    total_usage = sum(usage.values())
    total_shares = sum(shares.of(u) for u in everyone) or 1.0
    return {
        u: fair_share_factor(usage[u] / total_usage if total_usage > 0 else 0.0, shares.of(u) / total_shares) for u in everyone
    }


class FairShareOrder:
    """A claim order (:class:`~batchfed_lab.store.ordering.HeadOrder`): fair share picks the
    user, priority with aging picks the head among theirs. With ``per_federation``, the usage
    that counts is the claiming federation's (else ``ledger``'s)."""

    def __init__(
        self,
        shares: Shares,
        ledger: Usage,
        aging: Aging,
        *,
        enabled: bool = True,
        per_federation: UsagePerFederation | None = None,
    ):
        self.shares, self.ledger, self.aging, self.enabled = shares, ledger, aging, enabled
        self.per_federation = per_federation

    def choose(self, groups: Sequence[ReadyGroup], now: float, federation_id: str | None = None) -> ReadyGroup:
        best = min(groups, key=lambda g: rank(g, self.aging))
        users = {g.submitter or UNKNOWN_USER for g in groups}
        if not self.enabled or len(users) == 1:
            return best
        # the least served for their share: lowest usage/share (the same order as the highest
        # factor, without its underflow for users far beyond their share)
        ledger = self.ledger if self.per_federation is None or federation_id is None else self.per_federation.of(federation_id)
        load = {u: ledger.usage(u, now) / max(self.shares.of(u), 1e-12) for u in users}
        first = {u: min(rank(g, self.aging) for g in groups if (g.submitter or UNKNOWN_USER) == u) for u in users}
        who = min(users, key=lambda u: (_rounded(load[u]), first[u]))
        return min((g for g in groups if (g.submitter or UNKNOWN_USER) == who), key=lambda g: rank(g, self.aging))


def _rounded(x: float) -> float:
    """Usage equal but for float noise counts as equal (then the oldest head decides)."""
    return 0.0 if x == 0 else round(x, 9 - math.floor(math.log10(abs(x))))
