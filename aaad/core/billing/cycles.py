"""Plan fee cycles: 1, 3, 6 or 12 months from the billing day, billed in advance (DESIGN §7).

A user's fee is charged at the start of each cycle. Cycle starts are the
local midnight of the user's billing day (1-28, as in
:class:`~aaad.core.accounting.periods.PeriodSpec`) in the configured zone, so
they fall on the same instants as the monthly usage periods, DST days
included (:func:`~aaad.core.accounting.periods.local_midnight`).

The cycles of one assignment are anchored at the first cycle start on or
after the assignment instant ``assigned_at`` (:func:`first_cycle_start`).
Cycle ``k`` (0, 1, 2, …) starts ``k × cycle_months`` months after the anchor.
The stretch from ``assigned_at`` to the anchor, when it is not empty, is a
partial first cycle with index -1, charged pro-rata by its seconds over
:attr:`Cycle.seconds` of a full cycle (the arithmetic is not in this module).

Instants are integer POSIX seconds; a cycle is ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import local_midnight

__all__ = [
    "Cycle",
    "CYCLE_MONTHS",
    "PARTIAL",
    "MAX_MONTHS_PER_CALL",
    "first_cycle_start",
    "cycle_at",
    "cycles_started",
    "catch_up_limit",
    "next_renewal",
    "cycle_ref",
    "cycle_before_anchor_s",
]

CYCLE_MONTHS = (1, 3, 6, 12)
PARTIAL = -1  # Cycle.index of the stretch from the assignment to the anchor
# One call of cycles_started (and schedule.occurrences) covers at most this
# many months: a clock that jumped decades ahead yields a bounded list, and a
# real catch-up after long downtime continues from the last start it got.
MAX_MONTHS_PER_CALL = 120


@dataclass(frozen=True, slots=True)
class Cycle:
    """One fee cycle, ``[start, end)`` in POSIX seconds.

    Attributes:
        index: 0 for the cycle that starts at the anchor, ``k`` for the one
            ``k`` cycles later, :data:`PARTIAL` (-1) for the partial first
            stretch from the assignment to the anchor.
        start: The first second of the cycle (for the partial stretch, the
            assignment instant).
        end: The first second after the cycle: the next cycle's start.
    """

    index: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.index < PARTIAL:
            raise ValueError(f"cycle index must be >= {PARTIAL}, got {self.index}")
        if self.end <= self.start:
            raise ValueError(f"a cycle must end after it starts: [{self.start}, {self.end})")

    @property
    def seconds(self) -> int:
        """The length of the cycle: what pro-rata divides by (23/25-hour days included)."""
        return self.end - self.start

    @property
    def is_partial(self) -> bool:
        """True for the stretch from the assignment to the first full cycle."""
        return self.index == PARTIAL


def first_cycle_start(assigned_at: int, billing_day: int, tz: ZoneInfo) -> int:
    """The anchor: the first cycle start on or after ``assigned_at``.

    It is the local midnight of ``billing_day`` in the local month of
    ``assigned_at`` if that is not before ``assigned_at``, else the one in the
    next month.

    Raises:
        ValueError: ``billing_day`` is not 1-28.
    """
    return _Cycles.of(assigned_at, billing_day, 1, tz).anchor


def cycle_before_anchor_s(assigned_at: int, billing_day: int, cycle_months: int,
                          tz: ZoneInfo) -> int:
    """The length of the whole cycle that would end at the anchor: what the
    partial first stretch pays its share of (prorata.first_partial)."""
    cycles = _Cycles.of(assigned_at, billing_day, cycle_months, tz)
    return cycles.anchor - cycles.start(-1)


def cycle_at(assigned_at: int, billing_day: int, cycle_months: int, tz: ZoneInfo,
             at: int) -> Cycle:
    """The cycle that contains ``at``: the partial one if ``at`` is before the anchor.

    Raises:
        ValueError: ``at`` is before ``assigned_at`` (there is no cycle yet),
            or a bad ``billing_day`` or ``cycle_months``.
    """
    cycles = _Cycles.of(assigned_at, billing_day, cycle_months, tz)
    if at < assigned_at:
        raise ValueError(f"no cycle at {at}: the plan was assigned at {assigned_at}")
    if at < cycles.anchor:
        return Cycle(PARTIAL, assigned_at, cycles.anchor)
    return cycles.cycle(cycles.index_at(at))


def cycles_started(assigned_at: int, billing_day: int, cycle_months: int, tz: ZoneInfo,
                   *, after: int | None, upto: int) -> list[Cycle]:
    """The cycles whose start is in ``(after, upto]``, in order: what a catch-up must bill.

    The partial first stretch counts as starting at ``assigned_at``. Because
    the interval is half-open, billing ``(a, b]`` and then ``(b, c]`` gives
    the same cycles as ``(a, c]``, each once.

    At most :func:`catch_up_limit` cycles (:data:`MAX_MONTHS_PER_CALL` months
    of them) are returned, the earliest first. A list that long may have been
    cut short: call again with ``after=result[-1].start`` for the rest.

    Args:
        assigned_at: When the plan was assigned.
        billing_day: The user's billing day, 1-28.
        cycle_months: 1, 3, 6 or 12.
        tz: The zone of the billing day's midnight.
        after: The start of the last cycle already billed (exclusive), or
            None to start from the assignment.
        upto: The latest start to include: usually now.

    Raises:
        ValueError: a bad ``billing_day`` or ``cycle_months``.
    """
    cycles = _Cycles.of(assigned_at, billing_day, cycle_months, tz)
    limit = catch_up_limit(cycle_months)
    found: list[Cycle] = []
    if (assigned_at < cycles.anchor and (after is None or after < assigned_at)
            and assigned_at <= upto):
        found.append(Cycle(PARTIAL, assigned_at, cycles.anchor))
    k = 0 if after is None or after < cycles.anchor else cycles.index_at(after) + 1
    start = cycles.start(k)
    while len(found) < limit and start <= upto:
        end = cycles.start(k + 1)
        found.append(Cycle(k, start, end))
        k, start = k + 1, end
    return found


def next_renewal(assigned_at: int, billing_day: int, cycle_months: int, tz: ZoneInfo,
                 at: int) -> int:
    """The first full cycle start after ``at`` (strictly): when the fee is next due.

    Before the anchor (before the assignment too) it is the anchor.

    Raises:
        ValueError: a bad ``billing_day`` or ``cycle_months``.
    """
    cycles = _Cycles.of(assigned_at, billing_day, cycle_months, tz)
    if at < cycles.anchor:
        return cycles.anchor
    return cycles.start(cycles.index_at(at) + 1)


def cycle_ref(user_id: int, plan: str, cycle: Cycle) -> str:
    """The ledger reference of one cycle's fee: ``fee:<user id>:<plan>:<cycle start>``.

    Unique per user, plan and cycle, the partial stretch included (it starts
    at the assignment, before the anchor), so a replayed or concurrent
    catch-up charges each cycle once (DESIGN §7).
    """
    return f"fee:{user_id}:{plan}:{cycle.start}"


def catch_up_limit(cycle_months: int) -> int:
    """How many cycles one :func:`cycles_started` call returns at most.

    Raises:
        ValueError: ``cycle_months`` is not 1, 3, 6 or 12.
    """
    _check_cycle_months(cycle_months)
    return MAX_MONTHS_PER_CALL // cycle_months


# --- internals -----------------------------------------------------------------

def _check_cycle_months(cycle_months: int) -> None:
    if cycle_months not in CYCLE_MONTHS:
        raise ValueError(f"cycle_months must be one of 1, 3, 6, 12, got {cycle_months!r}")


def _month_number(d: date) -> int:
    """Months since year 0: month arithmetic without carrying years by hand."""
    return d.year * 12 + d.month - 1


def _local_date(at: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(at, tz).date()


@dataclass(frozen=True, slots=True)
class _Cycles:
    """The cycles of one assignment, by index."""

    billing_day: int
    cycle_months: int
    tz: ZoneInfo
    anchor_month: int  # _month_number of the anchor's local date
    anchor: int

    @classmethod
    def of(cls, assigned_at: int, billing_day: int, cycle_months: int,
           tz: ZoneInfo) -> _Cycles:
        if not 1 <= billing_day <= 28:
            raise ValueError(f"billing_day must be 1-28, got {billing_day!r}")
        _check_cycle_months(cycle_months)
        month = _month_number(_local_date(assigned_at, tz))
        anchor = _midnight(month, billing_day, tz)
        if anchor < assigned_at:
            month += 1
            anchor = _midnight(month, billing_day, tz)
        return cls(billing_day, cycle_months, tz, month, anchor)

    def start(self, k: int) -> int:
        return _midnight(self.anchor_month + k * self.cycle_months, self.billing_day, self.tz)

    def cycle(self, k: int) -> Cycle:
        return Cycle(k, self.start(k), self.start(k + 1))

    def index_at(self, at: int) -> int:
        """The index of the full cycle containing ``at`` (at >= anchor)."""
        k = max(0, (_month_number(_local_date(at, self.tz)) - self.anchor_month)
                // self.cycle_months)
        # The local month is a first guess: before the billing day, or on a
        # day whose midnight a DST change moved, the cycle is a neighbour.
        while k > 0 and self.start(k) > at:
            k -= 1
        while self.start(k + 1) <= at:
            k += 1
        return k


def _midnight(month_number: int, billing_day: int, tz: ZoneInfo) -> int:
    year, month0 = divmod(month_number, 12)
    return local_midnight(date(year, month0 + 1, billing_day), tz)
