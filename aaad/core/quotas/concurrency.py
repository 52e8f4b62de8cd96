"""Which open sessions a new login replaces (DESIGN §4, concurrent sessions).

A plan with ``max_sessions`` and ``on_max_sessions: replace-oldest`` lets a
login that would go over the limit in: the oldest open sessions make room
for it. That is the usual cure for a session whose Stop was lost (a phone
that left the Wi-Fi, a NAS that rebooted without Accounting-On): with
``max_sessions: 1`` it would keep its user out until the stale sweeper
closes it. :func:`decide <aaad.core.quotas.decide.decide>` says how many to
replace from the open count it was given; :func:`sessions_to_replace` picks
them from the sessions the store found open under the user's row lock, so
two logins at once, on one node or two, close each session once and leave
``max_sessions - 1`` open for the login being accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["OpenSession", "sessions_to_replace"]


@dataclass(frozen=True, slots=True)
class OpenSession:
    """An open session of the user: its key and when it started (POSIX seconds)."""

    key: str
    started_at: int


def sessions_to_replace(open_sessions: Sequence[OpenSession], max_sessions: int) -> list[str]:
    """The keys of the oldest sessions to close so that a new login fits in
    ``max_sessions``: all but the newest ``max_sessions - 1``.

    Oldest is the earliest ``started_at``; ties by key, so every node picks
    the same ones.

    Raises:
        ValueError: ``max_sessions`` below 1.
    """
    if max_sessions < 1:
        raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
    ordered = sorted(open_sessions, key=lambda s: (s.started_at, s.key))
    excess = len(ordered) - (max_sessions - 1)
    return [s.key for s in ordered[:max(0, excess)]]
