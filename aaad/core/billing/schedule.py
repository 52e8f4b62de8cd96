"""Scheduled custom charges: when a "set and forget" charge falls due (DESIGN §7).

A scheduled charge (an amount and a description on one user) recurs
``once``, ``monthly``, ``quarterly`` or ``yearly`` from a local start date,
optionally until a local date (inclusive). Each occurrence is billed at the
local midnight of its date in the configured zone.

Month-end rule: occurrence ``n`` falls ``n`` steps after the *start date*,
on the start's day of the month, or on the last day of a month too short for
it. It is anchored on the start, never on the previous occurrence, so a
charge from January 31 is due on February 28 (29 in a leap year), then March
31, April 30, May 31; a yearly one from February 29 is due on February 28 in
the other years and on the 29th again in leap years.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import local_midnight
from aaad.core.billing.cycles import MAX_MONTHS_PER_CALL

__all__ = [
    "Recurrence",
    "EVERY",
    "occurrences",
    "occurrence_limit",
    "next_occurrence",
    "occurrence_date",
    "occurrence_ref",
]

# Months between occurrences; 0: there is only one.
_STEP_MONTHS = {"once": 0, "monthly": 1, "quarterly": 3, "yearly": 12}
EVERY = tuple(_STEP_MONTHS)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """When a scheduled charge falls due.

    Attributes:
        every: ``once``, ``monthly``, ``quarterly`` or ``yearly``.
        start: The local date of the first occurrence.
        until: The last local date an occurrence may fall on (inclusive), or
            None for no end.

    Raises:
        ValueError: an unknown ``every``, a datetime where a date belongs, or
            ``until`` before ``start``.
    """

    every: str
    start: date
    until: date | None = None

    def __post_init__(self) -> None:
        if self.every not in _STEP_MONTHS:
            raise ValueError(f"every must be one of {', '.join(EVERY)}, got {self.every!r}")
        # A datetime is a date subclass; its time of day would be silently
        # dropped, and billing is at local midnight by definition.
        if isinstance(self.start, datetime) or not isinstance(self.start, date):
            raise ValueError(f"start must be a date, got {self.start!r}")
        if self.until is not None:
            if isinstance(self.until, datetime) or not isinstance(self.until, date):
                raise ValueError(f"until must be a date, got {self.until!r}")
            if self.until < self.start:
                raise ValueError(f"until ({self.until}) is before start ({self.start})")


def occurrence_date(rec: Recurrence, n: int) -> date | None:
    """The local date of occurrence ``n`` (0 is the start), or None if there is none.

    None when ``n`` is past ``until``, or ``n > 0`` for ``once``.

    Raises:
        ValueError: ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"occurrence number must be >= 0, got {n}")
    step = _STEP_MONTHS[rec.every]
    if n > 0 and step == 0:
        return None
    year, month0 = divmod(rec.start.year * 12 + rec.start.month - 1 + n * step, 12)
    if year > 9999:  # past date.max: as good as past any until
        return None
    last = calendar.monthrange(year, month0 + 1)[1]
    d = date(year, month0 + 1, min(rec.start.day, last))
    return None if rec.until is not None and d > rec.until else d


def occurrences(rec: Recurrence, tz: ZoneInfo, *, after: int | None, upto: int) -> list[int]:
    """The instants of the occurrences in ``(after, upto]``, in order: what to bill now.

    Billing ``(a, b]`` and then ``(b, c]`` gives the same occurrences as
    ``(a, c]``, each once. At most :func:`occurrence_limit` instants
    (:data:`~aaad.core.billing.cycles.MAX_MONTHS_PER_CALL` months of them)
    are returned, the earliest first; a list that long may have been cut
    short: call again with ``after=result[-1]`` for the rest.

    Args:
        rec: The recurrence.
        tz: The zone of the local dates.
        after: The last occurrence already billed (exclusive), or None for
            from the start.
        upto: The latest instant to include: usually now.
    """
    limit = occurrence_limit(rec)
    found: list[int] = []
    n = _first_after(rec, tz, after)
    while len(found) < limit and (d := occurrence_date(rec, n)) is not None:
        at = local_midnight(d, tz)
        if at > upto:
            break
        found.append(at)
        n += 1
    return found


def next_occurrence(rec: Recurrence, tz: ZoneInfo, at: int) -> int | None:
    """The first occurrence strictly after ``at``, or None when there is no more."""
    d = occurrence_date(rec, _first_after(rec, tz, at))
    return None if d is None else local_midnight(d, tz)


def occurrence_ref(schedule_id: int, at: int) -> str:
    """The ledger reference of one occurrence: ``sched:<schedule id>:<instant>``.

    One per schedule and due instant, so a replayed or concurrent catch-up
    charges each occurrence once (DESIGN §7).
    """
    return f"sched:{schedule_id}:{at}"


def occurrence_limit(rec: Recurrence) -> int:
    """How many instants one :func:`occurrences` call returns at most."""
    step = _STEP_MONTHS[rec.every]
    return 1 if step == 0 else MAX_MONTHS_PER_CALL // step


def _first_after(rec: Recurrence, tz: ZoneInfo, after: int | None) -> int:
    """The number of the first occurrence whose instant is after ``after``."""
    if after is None:
        return 0
    step = _STEP_MONTHS[rec.every]
    n = 0
    if step:
        local = datetime.fromtimestamp(after, tz).date()
        months = (local.year - rec.start.year) * 12 + local.month - rec.start.month
        # One step short of the local month of `after` is never after it,
        # whatever the day of the month and DST do; walk forward from there.
        n = max(0, months // step - 1)
    while (d := occurrence_date(rec, n)) is not None and local_midnight(d, tz) <= after:
        n += 1
    return n
