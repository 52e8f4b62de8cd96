"""Billing periods and the exact split of a usage interval across them (DESIGN §3).

A period is monthly (from a billing day 1-28), weekly (from Monday), daily, or
``none`` (one lifetime period). Boundaries are local midnights in the
configured time zone, so a DST day is 23 or 25 hours long. Times in this
module are integer POSIX seconds: usage intervals are whole seconds on the
wire (Event-Timestamp, Acct-Session-Time), and integers keep the split exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "PeriodSpec",
    "parse_period_spec",
    "period_bounds",
    "period_label",
    "period_for_label",
    "split_interval",
    "allocate",
    "local_midnight",
    "local_instant",
    "LIFETIME_START",
]

KINDS = ("monthly", "weekly", "daily", "none")
LIFETIME_START = 0  # the one period of kind "none" starts at the epoch


@dataclass(frozen=True, slots=True)
class PeriodSpec:
    """How usage is bucketed: ``kind`` and, for monthly, the ``billing_day``."""

    kind: str
    billing_day: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"period must be one of {', '.join(KINDS)}")
        if not 1 <= self.billing_day <= 28:
            raise ValueError("billing_day must be 1-28")


def parse_period_spec(kind: str, billing_day: int = 1) -> PeriodSpec:
    """Build a :class:`PeriodSpec`; raises ValueError on a bad kind or day."""
    return PeriodSpec(kind, billing_day if kind == "monthly" else 1)


def local_midnight(d: date, tz: ZoneInfo) -> int:
    """The instant local date ``d`` begins in ``tz``: every period boundary.

    Billing code outside this module uses it too, so that fee cycles and
    usage periods begin at the same instant on DST days.
    """
    # fold=0 picks the first of two possible instants; a midnight that does
    # not exist (a DST gap at 00:00) resolves to the offset before the gap.
    return int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


def local_instant(text: str, tz: ZoneInfo) -> int:
    """``YYYY-MM-DD`` (local midnight), ``YYYY-MM-DDTHH:MM`` or
    ``YYYY-MM-DDTHH:MM:SS`` in ``tz`` → POSIX seconds.

    Raises:
        ValueError: another form, or an offset given.
    """
    try:
        local = datetime.fromisoformat(text) if len(text) in (10, 16, 19) else None
    except ValueError:
        local = None
    if local is None or local.tzinfo is not None:
        raise ValueError(f"must be YYYY-MM-DD, YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS, "
                         f"got {text!r}")
    return int(local.replace(tzinfo=tz).timestamp())


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, d.day)  # day ≤ 28, always valid


@functools.lru_cache(maxsize=4096)
def _bounds_for_local_date(spec: PeriodSpec, tz: ZoneInfo, local: date) -> tuple[int, int | None]:
    if spec.kind == "none":
        return LIFETIME_START, None
    if spec.kind == "daily":
        start = local
        end = local + timedelta(days=1)
    elif spec.kind == "weekly":
        start = local - timedelta(days=local.weekday())
        end = start + timedelta(days=7)
    else:
        start = local.replace(day=spec.billing_day)
        if local.day < spec.billing_day:
            start = _add_months(start, -1)
        end = _add_months(start, 1)
    return local_midnight(start, tz), local_midnight(end, tz)


def period_bounds(spec: PeriodSpec, tz: ZoneInfo, at: int) -> tuple[int, int | None]:
    """The period containing POSIX second ``at``: ``(start, end)``, end exclusive.

    ``end`` is None for the lifetime period.
    """
    if spec.kind == "none":
        return LIFETIME_START, None
    last = _LAST_BOUNDS.get((spec, tz))
    if last is not None and last[0] <= at < last[1]:
        return last
    local = datetime.fromtimestamp(at, tz).date()
    bounds = _bounds_for_local_date(spec, tz, local)
    # A local date near a DST gap can map to a boundary just after `at`.
    if at < bounds[0]:
        bounds = _bounds_for_local_date(spec, tz, local - timedelta(days=1))
    elif bounds[1] is not None and at >= bounds[1]:
        bounds = _bounds_for_local_date(spec, tz, local + timedelta(days=1))
    start, end = bounds
    if end is not None:
        _LAST_BOUNDS[(spec, tz)] = (start, end)
    return start, end


# The period period_bounds found last, per spec and zone: nearly every record
# of a batch falls in the current period, whose bounds are then a lookup.
_LAST_BOUNDS: dict[tuple[PeriodSpec, ZoneInfo], tuple[int, int]] = {}


def period_label(spec: PeriodSpec, tz: ZoneInfo, start: int) -> str:
    """A human name for the period starting at ``start``.

    Monthly: ``2026-11`` (the month the period starts in); weekly and daily:
    the local start date ``2026-11-23``; lifetime: ``lifetime``.
    """
    if spec.kind == "none":
        return "lifetime"
    local = datetime.fromtimestamp(start, tz).date()
    return local.strftime("%Y-%m") if spec.kind == "monthly" else local.isoformat()


def period_for_label(spec: PeriodSpec, tz: ZoneInfo, label: str) -> tuple[int, int | None]:
    """Inverse of :func:`period_label`: ``"2026-11"`` → that period's bounds.

    Raises:
        ValueError: the label does not fit the period kind.
    """
    if spec.kind == "none":
        return LIFETIME_START, None
    try:
        if spec.kind == "monthly":
            d = datetime.strptime(label, "%Y-%m").date().replace(day=spec.billing_day)
        else:
            d = date.fromisoformat(label)
    except ValueError:
        want = "YYYY-MM" if spec.kind == "monthly" else "YYYY-MM-DD"
        raise ValueError(f"period must look like {want}, got {label!r}") from None
    return _bounds_for_local_date(spec, tz, d)


def split_interval(spec: PeriodSpec, tz: ZoneInfo, t0: int, t1: int) -> list[tuple[int, int]]:
    """Cut ``[t0, t1]`` at period boundaries.

    Returns ``(period_start, seconds_in_that_period)`` pairs in time order. A
    zero-length interval gives one pair with 0 seconds, in the period of t1.
    """
    if t1 <= t0:
        return [(period_bounds(spec, tz, t1)[0], 0)]
    parts: list[tuple[int, int]] = []
    cursor = t0
    while cursor < t1:
        start, end = period_bounds(spec, tz, cursor)
        stop = t1 if end is None else min(end, t1)
        parts.append((start, stop - cursor))
        cursor = stop
    return parts


def allocate(total: int, weights: list[int]) -> list[int]:
    """Share the integer ``total`` in proportion to ``weights``, exactly.

    Largest-remainder rounding: the parts always sum to ``total``, and each
    part is within 1 of its exact share. All-zero weights give everything to
    the last part (the most recent piece of the interval).
    """
    n = len(weights)
    weight_sum = sum(weights)
    if n == 0:
        return []
    if weight_sum == 0:
        return [0] * (n - 1) + [total]
    floors = [total * w // weight_sum for w in weights]
    rest = total - sum(floors)
    by_remainder = sorted(range(n), key=lambda i: (-(total * weights[i] % weight_sum), i))
    for i in by_remainder[:rest]:
        floors[i] += 1
    return floors


def utc(ts: int) -> datetime:
    """POSIX seconds → aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)
