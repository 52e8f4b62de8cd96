"""Plans: the limits a user's usage is held to, parsed from the YAML ``plans:`` list (DESIGN §4).

A plan sets, in any combination, a time cap and an octet cap per period, a
concurrent-session limit, peak/off-peak bands that weight how usage counts
against the caps, and prepaid hour blocks. Everything is exact: durations and
sizes are integers (seconds, octets), band weights are :class:`~fractions.Fraction`,
money is an integer in 1/10,000 of the currency unit. :func:`plan_to_dict` gives
back a JSON- and YAML-safe dict that :func:`~aaad.core.quotas.plan_parse.parse_plans`
reads to an equal plan (plan_parse.py checks a definition and builds these values).

Errors are :class:`PlanError` (a ``ValueError``) whose ``path`` names the bad key,
``plans[0].bands[1].from: expected HH:MM``, so the config loader can turn them into
``ConfigError(e.path, e.message)`` without guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeAlias

from aaad.core.accounting.periods import PeriodSpec

__all__ = [
    "Plan",
    "Band",
    "BlockSpec",
    "OveragePrice",
    "FreeMinutes",
    "FreeCredit",
    "Fee",
    "PlanError",
    "plan_to_dict",
    "parse_money",
    "format_money",
    "format_limit_s",
    "format_limit_octets",
    "PEAK",
    "DAYS",
    "MONEY_SCALE",
    "OCTETS_PER_GB",
    "ReplyAttrs",
    "ReplyValue",
    "reply_to_dict",
]

PEAK = "peak"               # the name of usage outside every band; its weight is 1
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")   # index = date.weekday()
MONEY_SCALE = 10_000        # money is an integer count of 1/10,000 of the currency unit
OCTETS_PER_GB = 10**9       # per_gb is priced per SI gigabyte, as units.parse_octets reads "GB"
PERIODS = ("monthly", "weekly", "daily", "none")
DIRECTIONS = ("in", "out", "total")
OVER_LIMIT = ("reject", "disconnect", "bill", "throttle")
ON_MAX_SESSIONS = ("reject", "replace-oldest")
ON_EXHAUST = ("cutoff", "renew")
CYCLE_MONTHS = (1, 3, 6, 12)
ALLOWANCE = ("reset", "carry")  # what is left of a free allowance at a renewal

ReplyValue: TypeAlias = "str | int"
ReplyAttrs: TypeAlias = "tuple[tuple[str, ReplyValue], ...]"
"""Reply attributes by dictionary name, in name order (see core.quotas.reply)."""

_MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,4})?$")


class PlanError(ValueError):
    """A bad plan definition, located by the key path (``plans[0].bands[1].from``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class Band:
    """A time-of-day range on some days, with the weight its usage counts at.

    The band starts on each listed weekday (and each listed date, e.g. holidays)
    at local ``start_min`` minutes past midnight and ends at ``end_min``. When
    ``end_min <= start_min`` it ends the next morning: ``22:00-07:00`` on
    ``fri`` is Friday 22:00 to Saturday 07:00. ``end_min`` is 1-1440 (24:00).
    """

    name: str
    days: tuple[int, ...]       # sorted weekday numbers, 0 = Monday
    start_min: int              # 0-1439
    end_min: int                # 1-1440
    weight: Fraction            # 0 = free, 1 = counts in full
    dates: tuple[date, ...] = ()

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    def starts_on(self, d: date) -> bool:
        """Whether an occurrence of the band starts on local date ``d``."""
        return d.weekday() in self.days or d in self.dates


@dataclass(frozen=True, slots=True)
class OveragePrice:
    """Prices for usage above a cap when ``over_limit`` is ``bill``, in 1/10,000 units."""

    per_hour_money: int | None = None
    per_gb_money: int | None = None


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """Prepaid hour blocks: ``hours`` usable within ``valid_days`` of purchase."""

    hours: int
    valid_days: int
    on_exhaust: str = "cutoff"      # cutoff | renew
    price_money: int | None = None

    @property
    def seconds(self) -> int:
        return self.hours * 3600

    @property
    def valid_s(self) -> int:
        # Validity is counted in elapsed days of 86,400 s from the purchase
        # instant, not local calendar days: a block bought at 10:00 expires at
        # 10:00 UTC-equivalent, whatever DST did in between.
        return self.valid_days * 86400


@dataclass(frozen=True, slots=True)
class FreeMinutes:
    """Free call seconds per plan period, for destinations matching ``destinations``
    (number prefixes; empty = every destination), used before credit. With
    ``rollover`` what is left at the end of a period carries into the next one,
    at most ``rollover_cap_s``."""

    seconds: int
    destinations: tuple[str, ...] = ()
    rollover: bool = False
    rollover_cap_s: int = 0

    def covers(self, number: str) -> bool:
        return not self.destinations or number.startswith(self.destinations)


@dataclass(frozen=True, slots=True)
class FreeCredit:
    """Free credit granted at each renewal (each fee cycle start; without a fee,
    each plan period start), spent before the user's own money. With ``carry``
    what is left at a renewal is kept, at most ``cap_money``; the rest, and
    all of it with ``reset``, expires (core/billing/allowance.py)."""

    amount_money: int
    carry: bool = False
    cap_money: int = 0


@dataclass(frozen=True, slots=True)
class Fee:
    """What a plan costs: ``amount_money`` per cycle of ``cycle_months`` months,
    billed in advance at local midnight of ``billing_day``, and a one-off
    ``setup_money`` when the plan is assigned to a user (DESIGN §7)."""

    amount_money: int
    cycle_months: int = 1
    billing_day: int = 1
    setup_money: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan. ``None`` limits are unlimited; see DESIGN §4 for the semantics."""

    name: str
    period: PeriodSpec = field(default_factory=lambda: PeriodSpec("monthly"))
    time_limit_s: int | None = None
    octets_limit: int | None = None
    octets_direction: str = "total"     # in (from the user) | out (to the user) | total
    max_sessions: int | None = None
    # At max_sessions: refuse the new login, or close the oldest open session
    # (and send it a Disconnect-Request) to make room for it.
    on_max_sessions: str = "reject"     # reject | replace-oldest
    over_limit: str = "reject"          # reject | disconnect | bill | throttle
    overage_price: OveragePrice | None = None
    bands: tuple[Band, ...] = ()
    block: BlockSpec | None = None
    # Telephony (DESIGN §5): calls are rated from this rate table.
    rate_table: str | None = None
    # Inbound calls are rated from this table by the caller's number; None:
    # inbound calls cost nothing.
    inbound_rate_table: str | None = None
    max_calls: int | None = None
    max_inbound_calls: int | None = None
    max_outbound_calls: int | None = None
    free_minutes: FreeMinutes | None = None
    fee: Fee | None = None
    free_credit: FreeCredit | None = None
    # Reply attributes (core.quotas.reply): on every Access-Accept, and the
    # ones that replace them while the user is over a ``throttle`` cap.
    reply: ReplyAttrs = ()
    throttle_reply: ReplyAttrs = ()

    def weight(self, band: str) -> Fraction:
        """The weight of usage in the named band; ``peak`` (or an unknown name) is 1."""
        for b in self.bands:
            if b.name == band:
                return b.weight
        return Fraction(1)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as a YAML/JSON-safe dict in human units (``"150h"``, ``"50GB"``).

    ``parse_plan(plan_to_dict(p)) == p`` for every plan :func:`parse_plan` returns.
    """
    out: dict[str, Any] = {"name": plan.name, "period": plan.period.kind}
    if plan.period.kind == "monthly":
        out["billing_day"] = plan.period.billing_day
    if plan.time_limit_s is not None:
        out["time_limit"] = format_limit_s(plan.time_limit_s)
    if plan.octets_limit is not None:
        out["octets_limit"] = format_limit_octets(plan.octets_limit)
    out["octets_direction"] = plan.octets_direction
    if plan.max_sessions is not None:
        out["max_sessions"] = plan.max_sessions
    if plan.on_max_sessions != "reject":    # left out at the default: stored JSON unchanged
        out["on_max_sessions"] = plan.on_max_sessions
    out["over_limit"] = plan.over_limit
    if plan.overage_price is not None:
        price: dict[str, str] = {}
        if plan.overage_price.per_hour_money is not None:
            price["per_hour"] = format_money(plan.overage_price.per_hour_money)
        if plan.overage_price.per_gb_money is not None:
            price["per_gb"] = format_money(plan.overage_price.per_gb_money)
        out["overage_price"] = price
    if plan.bands:
        out["bands"] = [_band_to_dict(b) for b in plan.bands]
    if plan.block is not None:
        block: dict[str, Any] = {"hours": plan.block.hours, "valid_days": plan.block.valid_days,
                                 "on_exhaust": plan.block.on_exhaust}
        if plan.block.price_money is not None:
            block["price"] = format_money(plan.block.price_money)
        out["block"] = block
    if plan.rate_table is not None:
        out["rate_table"] = plan.rate_table
    if plan.inbound_rate_table is not None:
        out["inbound_rate_table"] = plan.inbound_rate_table
    for key in ("max_calls", "max_inbound_calls", "max_outbound_calls"):
        if getattr(plan, key) is not None:
            out[key] = getattr(plan, key)
    if plan.free_minutes is not None:
        fm = plan.free_minutes
        free: dict[str, Any] = {"minutes": format_limit_s(fm.seconds),
                                "destinations": list(fm.destinations),
                                "rollover": fm.rollover}
        if fm.rollover:
            free["rollover_cap"] = format_limit_s(fm.rollover_cap_s)
        out["free_minutes"] = free
    if plan.fee is not None:
        out["fee"] = format_money(plan.fee.amount_money)
        out["cycle_months"] = plan.fee.cycle_months
        if plan.fee.setup_money:
            out["setup_fee"] = format_money(plan.fee.setup_money)
        out["billing_day"] = plan.fee.billing_day
    if plan.free_credit is not None:
        fc = plan.free_credit
        out["free_credit"] = format_money(fc.amount_money)
        if fc.carry:
            # Only a carrying plan says so: free minutes that roll over under a
            # resetting free credit (rollover given alone) must still read back.
            out["allowance"] = "carry"
            out["free_credit_cap"] = format_money(fc.cap_money)
    if plan.reply:
        out["reply"] = reply_to_dict(plan.reply)
    if plan.throttle_reply:
        out["throttle_reply"] = reply_to_dict(plan.throttle_reply)
    return out


def reply_to_dict(attrs: ReplyAttrs) -> dict[str, Any]:
    """Pairs → ``{name: value}``, a repeated name → ``{name: [value, ...]}``."""
    out: dict[str, Any] = {}
    for name, value in attrs:
        prev = out.get(name)
        if prev is None:
            out[name] = value
        else:
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
    return out


def parse_money(value: object, *, signed: bool = False) -> int:
    """``"1.20"`` → 12000 (1/10,000 units). Takes a decimal string (≤ 4 places) or an int.

    Floats are refused: ``1.20`` unquoted in YAML is already a binary fraction.
    With ``signed=True`` a leading ``-`` is allowed (``"-0.50"`` → -5000).

    Raises:
        ValueError: not a (non-negative, unless ``signed``) amount with at most
            4 decimal places.
    """
    if isinstance(value, (bool, float)):
        raise ValueError(f'expected a quoted decimal amount such as "1.20", got {value!r}')
    if isinstance(value, int):
        if value < 0 and not signed:
            raise ValueError("must not be negative")
        return value * MONEY_SCALE
    text = value.strip() if isinstance(value, str) else None
    negative = signed and text is not None and text.startswith("-")
    if negative:
        text = text[1:]  # type: ignore[index]
    if text is None or not _MONEY.match(text):
        raise ValueError(f'expected a decimal amount such as "1.20", got {value!r}')
    amount = int(Decimal(text).scaleb(4))
    return -amount if negative else amount


def format_money(amount: int) -> str:
    """12000 → ``"1.20"``; 12345 → ``"1.2345"`` (2 places at least, 4 at most, exact)."""
    q = Decimal(amount).scaleb(-4)
    two = q.quantize(Decimal("0.01"))
    return f"{two:f}" if two == q else f"{q.quantize(Decimal('0.0001')):f}"


def format_limit_s(seconds: int) -> str:
    """Exact and short: 540000 → ``"150h"``, 5400 → ``"90m"``, 61 → ``"61s"``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def format_limit_octets(octets: int) -> str:
    """Exact SI: 50·10⁹ → ``"50GB"``, 1,500,000 → ``"1.5MB"``, 999 → ``"999B"``."""
    for unit, exp in (("TB", 12), ("GB", 9), ("MB", 6), ("kB", 3)):
        if octets >= 10**exp:
            return f"{Decimal(octets).scaleb(-exp).normalize():f}{unit}"
    return f"{octets}B"


def _weight_out(w: Fraction) -> int | str:
    if w.denominator == 1:
        return w.numerator
    twos = fives = 0
    d = w.denominator
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d == 1:   # a terminating decimal: write it as one, exactly
        k = max(twos, fives)
        return f"{Decimal(w.numerator * 10**k // w.denominator).scaleb(-k).normalize():f}"
    return f"{w.numerator}/{w.denominator}"


def _hhmm_out(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _band_to_dict(b: Band) -> dict[str, Any]:
    out: dict[str, Any] = {"name": b.name, "days": [DAYS[d] for d in b.days]}
    if b.dates:
        out["dates"] = [d.isoformat() for d in b.dates]
    out.update({"from": _hhmm_out(b.start_min), "to": _hhmm_out(b.end_min),
                "weight": _weight_out(b.weight)})
    return out
