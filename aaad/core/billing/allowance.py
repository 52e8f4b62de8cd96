"""Free credit per renewal: granted, spent first, then reset or carried (DESIGN §7).

A plan's ``free_credit`` is money granted to the user at each renewal: each
fee cycle start when the plan has a fee, else each start of the plan's period
(:func:`renewals`). The first grant is at the assignment; a partial first
stretch gets its share by seconds, as the fee does (prorata.first_partial).

The rule, for one user:

* ``left`` is the free credit still in the balance. A grant adds to it.
* Free credit is spent first: every debit (a negative ledger line that is not
  an expiry, a grant or the reversal of a top-up) takes from ``left`` before
  the user's own money, down to 0 (:func:`spend`). So at a renewal ``left`` is
  ``max(0, F − spent)``, ``F`` being what the previous renewal left (grant plus
  what it carried) and ``spent`` the debits since.
* At a renewal (:func:`renew`) with ``allowance: reset`` all of ``left``
  expires; with ``carry`` at most ``cap`` is kept and the rest expires. Then
  the renewal's grant is added. An expiry is a negative ledger line of its own.
* A plan change or revocation ends the grants (:func:`end`): what is left of
  the old plan's free credit expires at the change.

A reversal is not spending: it takes back a top-up, money that was never free,
so it leaves ``left`` alone (and a later expiry still takes the free part).
Each grant and expiry has a unique ledger ref (:func:`grant_ref`,
:func:`expiry_ref`, :func:`end_ref`), so a catch-up, a retry or a second node
grants and expires each renewal once.

Money is an integer count of 1/10,000 of the currency unit; instants are
integer POSIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import period_bounds
from aaad.core.billing.cycles import (
    catch_up_limit,
    cycle_before_anchor_s,
    cycles_started,
    next_renewal,
)
from aaad.core.billing.prorata import prorate
from aaad.core.quotas.plan import FreeCredit, Plan

__all__ = [
    "GRANT",
    "EXPIRY",
    "MAX_RENEWALS_PER_CALL",
    "Renewal",
    "Outcome",
    "spends",
    "spend",
    "renew",
    "end",
    "renewals",
    "grant_ref",
    "expiry_ref",
    "end_ref",
]

GRANT = "free"              # the ledger kind of a grant
EXPIRY = "free-expiry"      # the ledger kind of an expiry (at a renewal or at the end)
REVERSAL = "reversal"       # the ledger kind of a top-up taken back
# A catch-up of period renewals returns at most this many per call (a daily
# plan after a long downtime goes on in the next call, as fee cycles do).
MAX_RENEWALS_PER_CALL = 120


def spends(kind: str, amount: int) -> bool:
    """Whether a ledger line of ``kind`` and ``amount`` spends free credit first:
    a debit that is not an expiry, a grant or a reversal."""
    return amount < 0 and kind not in (GRANT, EXPIRY, REVERSAL)


def spend(left: int, kind: str, amount: int) -> int:
    """The free credit left after one ledger line (store/ledger.post does the
    same in its balance update, so that it is atomic with it)."""
    if kind in (GRANT, EXPIRY) or spends(kind, amount):
        return max(0, left + amount)
    return left


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a renewal does: ``expired`` (≥ 0) leaves the balance, ``kept`` stays
    as free credit, ``granted`` is added."""

    expired: int
    kept: int
    granted: int

    @property
    def left(self) -> int:
        """The free credit after the renewal."""
        return self.kept + self.granted


def renew(left: int, terms: FreeCredit | None, granted: int) -> Outcome:
    """The renewal of free credit ``left``: reset or carry up to the cap, then ``granted``.

    ``terms`` is ``None`` when the plan no longer grants free credit: all that
    is left expires (``granted`` must then be 0).
    """
    left = max(0, left)
    kept = min(left, terms.cap_money) if terms is not None and terms.carry else 0
    return Outcome(left - kept, kept, granted)


def end(left: int) -> Outcome:
    """The end of a plan's grants (a plan change, a revocation): all of it expires."""
    return renew(left, None, 0)


@dataclass(frozen=True, slots=True)
class Renewal:
    """One renewal instant ``at`` and the share of a whole grant it gives:
    ``part_s / whole_s`` (1 but for a partial first stretch)."""

    at: int
    part_s: int
    whole_s: int

    def grant(self, terms: FreeCredit) -> int:
        """The money granted: the whole amount, or the stretch's share (rounded once)."""
        if self.part_s == self.whole_s:
            return terms.amount_money
        return prorate(terms.amount_money, self.part_s, self.whole_s)


def renewals(plan: Plan, since: int, tz: ZoneInfo, *, after: int,
             upto: int) -> tuple[list[Renewal], int | None]:
    """The renewals of a plan assigned at ``since`` in ``(after, upto]``, in order,
    and the next instant to look again.

    The renewals are the fee's cycle starts (the partial stretch counting as
    starting at ``since``, as in cycles.cycles_started) or, without a fee, the
    plan's period starts (``since`` itself when it falls inside a period, with
    the rest of that period as its share). A plan with neither has none, and
    the next instant is ``None``. When a call returns its limit of renewals,
    the next instant is the following one, already past: call again.
    """
    fee = plan.fee
    if fee is not None:
        started = cycles_started(since, fee.billing_day, fee.cycle_months, tz,
                                 after=after, upto=upto)
        found = []
        for c in started:
            whole = (cycle_before_anchor_s(since, fee.billing_day, fee.cycle_months, tz)
                     if c.is_partial else c.seconds)
            found.append(Renewal(c.start, c.seconds, whole))
        if len(started) >= catch_up_limit(fee.cycle_months):
            return found, started[-1].end
        return found, next_renewal(since, fee.billing_day, fee.cycle_months, tz, upto)
    if plan.period.kind == "none":
        return [], None
    out: list[Renewal] = []
    first, first_end = period_bounds(plan.period, tz, since)
    assert first_end is not None
    if after < since <= upto:
        out.append(Renewal(since, first_end - since, first_end - first))
    x = max(after, since) + 1
    start, end_ = period_bounds(plan.period, tz, x)
    if start != x:
        assert end_ is not None
        start = end_
    while start <= upto and len(out) < MAX_RENEWALS_PER_CALL:
        end_ = period_bounds(plan.period, tz, start)[1]
        assert end_ is not None
        out.append(Renewal(start, end_ - start, end_ - start))
        start = end_
    return out, start


def grant_ref(user_id: int, plan: str, at: int) -> str:
    """``free:<user id>:<plan>:<renewal>``: one grant per user, plan and renewal."""
    return f"free:{user_id}:{plan}:{at}"


def expiry_ref(user_id: int, plan: str, at: int) -> str:
    """``free-expiry:<user id>:<plan>:<renewal>``: what expired at that renewal."""
    return f"free-expiry:{user_id}:{plan}:{at}"


def end_ref(user_id: int, plan: str, at: int) -> str:
    """``free-end:<user id>:<plan>:<instant>``: what expired when the grants ended.

    Not ``free-expiry:``: a change at the very instant of a renewal expires
    what that renewal granted, which needs a line of its own.
    """
    return f"free-end:{user_id}:{plan}:{at}"
