"""Tests of aaad/core/billing/account.py: prepaid and postpaid balances, dues, suspension."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.billing.account import (
    Account,
    ChargeOutcome,
    Promise,
    TopupOutcome,
    available,
    charge,
    grant_promise,
    settle,
    state,
    topup,
)
from aaad.core.billing.prorata import plan_change

DAY = 86_400
NOW = 1_780_272_000              # 2026-06-01 00:00 UTC
FEE = 299_000                    # 29.90
LATER = NOW + 3 * DAY


def prepaid(balance: int, **kw: object) -> Account:
    return Account("prepaid", balance, **kw)  # type: ignore[arg-type]


SUSPENDED = prepaid(100_000, due=FEE, suspended_at=NOW - DAY)


# -- available ---------------------------------------------------------------------------

@pytest.mark.parametrize(("acct", "now", "expected"), [
    (prepaid(100_000), NOW, 100_000),
    (prepaid(-50_000, credit_limit=80_000), NOW, 30_000),
    (prepaid(0, promise=Promise(FEE, LATER)), NOW, FEE),
    (prepaid(0, promise=Promise(FEE, LATER)), LATER - 1, FEE),
    (prepaid(0, promise=Promise(FEE, LATER)), LATER, 0),          # expired at its second
    (prepaid(10, credit_limit=20, promise=Promise(30, LATER)), NOW, 60),
    (SUSPENDED, NOW, 100_000 - FEE),                               # dues come first
    (Account("postpaid", -500_000), NOW, -500_000),
])
def test_available(acct: Account, now: int, expected: int) -> None:
    assert available(acct, now) == expected


# -- charge ------------------------------------------------------------------------------

@pytest.mark.parametrize(("acct", "amount", "now", "expected"), [
    # fits: debited whole
    (prepaid(300_000), FEE, NOW, ChargeOutcome(prepaid(1_000), FEE, 0, False)),
    (prepaid(FEE), FEE, NOW, ChargeOutcome(prepaid(0), FEE, 0, False)),
    (prepaid(0, credit_limit=FEE), FEE, NOW,
     ChargeOutcome(prepaid(-FEE, credit_limit=FEE), FEE, 0, False)),
    (prepaid(0, promise=Promise(FEE, LATER)), FEE, NOW,
     ChargeOutcome(prepaid(-FEE, promise=Promise(FEE, LATER)), FEE, 0, False)),
    # does not fit: due whole (no partial debit), suspended now
    (prepaid(100_000), FEE, NOW,
     ChargeOutcome(prepaid(100_000, due=FEE, suspended_at=NOW), 0, FEE, True)),
    (prepaid(FEE - 1), FEE, NOW,
     ChargeOutcome(prepaid(FEE - 1, due=FEE, suspended_at=NOW), 0, FEE, True)),
    # the promise has expired: it no longer counts, and is dropped
    (prepaid(0, promise=Promise(FEE, LATER)), FEE, LATER,
     ChargeOutcome(prepaid(0, due=FEE, suspended_at=LATER), 0, FEE, True)),
    # already suspended: more due, suspended since the first
    (SUSPENDED, 1, NOW,
     ChargeOutcome(prepaid(100_000, due=FEE + 1, suspended_at=NOW - DAY), 0, 1, False)),
    # with something due, nothing is debited past it even if it would fit
    (prepaid(10**9, due=5, suspended_at=NOW), 1, NOW,
     ChargeOutcome(prepaid(10**9, due=6, suspended_at=NOW), 0, 1, False)),
    # a zero charge changes nothing, even below zero
    (prepaid(-5), 0, NOW, ChargeOutcome(prepaid(-5), 0, 0, False)),
    # postpaid: left for the export, never suspended
    (Account("postpaid", 0), FEE, NOW, ChargeOutcome(Account("postpaid", 0), 0, 0, False)),
    (Account("postpaid", -10**9), FEE, NOW,
     ChargeOutcome(Account("postpaid", -10**9), 0, 0, False)),
])
def test_charge(acct: Account, amount: int, now: int, expected: ChargeOutcome) -> None:
    assert charge(acct, amount, now) == expected


def test_charge_refuses_a_credit() -> None:
    with pytest.raises(ValueError, match="topup"):
        charge(prepaid(0), -1, NOW)


# -- top-up, promise, settle -------------------------------------------------------------

@pytest.mark.parametrize(("acct", "amount", "expected"), [
    # covers all that is due: settled at once, resumed
    (SUSPENDED, 199_000, TopupOutcome(prepaid(0), FEE, True)),
    (SUSPENDED, 500_000, TopupOutcome(prepaid(301_000), FEE, True)),
    (prepaid(0, credit_limit=100_000, due=FEE, suspended_at=NOW), 199_000,
     TopupOutcome(prepaid(-100_000, credit_limit=100_000), FEE, True)),
    # one unit short: nothing settled, still suspended
    (SUSPENDED, 198_999, TopupOutcome(prepaid(298_999, due=FEE, suspended_at=NOW - DAY), 0,
                                      False)),
    # no dues: just credited
    (prepaid(-10), 10, TopupOutcome(prepaid(0), 0, False)),
    (prepaid(5), 0, TopupOutcome(prepaid(5), 0, False)),
    # a top-up pays the promise first
    (prepaid(-100_000, promise=Promise(100_000, LATER)), 100_000,
     TopupOutcome(prepaid(0), 0, False)),
    (prepaid(-100_000, promise=Promise(100_000, LATER)), 30_000,
     TopupOutcome(prepaid(-70_000, promise=Promise(70_000, LATER)), 0, False)),
    # so with dues it counts once, not twice: 20 paid of 30 promised covers 30, not 50
    (prepaid(0, promise=Promise(300_000, LATER), due=500_000, suspended_at=NOW), 200_000,
     TopupOutcome(prepaid(200_000, promise=Promise(100_000, LATER), due=500_000,
                          suspended_at=NOW), 0, False)),
    (prepaid(0, promise=Promise(300_000, LATER), due=300_000, suspended_at=NOW), 200_000,
     TopupOutcome(prepaid(-100_000, promise=Promise(100_000, LATER)), 300_000, True)),
    # postpaid: a payment, nothing to settle
    (Account("postpaid", -FEE), FEE, TopupOutcome(Account("postpaid", 0), 0, False)),
])
def test_topup(acct: Account, amount: int, expected: TopupOutcome) -> None:
    assert topup(acct, amount, NOW) == expected


def test_topup_after_a_promise_expired() -> None:
    acct = prepaid(-100_000, promise=Promise(100_000, LATER))
    assert topup(acct, 100_000, LATER) == TopupOutcome(prepaid(0), 0, False)


def test_topup_refuses_a_debit() -> None:
    with pytest.raises(ValueError, match="charge"):
        topup(prepaid(0), -1, NOW)


def test_a_promise_resumes_then_expires() -> None:
    fee = charge(prepaid(0), FEE, NOW)
    assert fee.suspend
    granted = grant_promise(fee.account, FEE, LATER, NOW + 60)
    assert granted == TopupOutcome(prepaid(-FEE, promise=Promise(FEE, LATER)), FEE, True)
    assert available(granted.account, LATER - 1) == 0
    # at expiry the user is not suspended by itself…
    assert state(granted.account, LATER, grace_s=DAY, revoke_after_s=None) == "active"
    assert available(granted.account, LATER) == -FEE
    # …the next charge that does not fit is what suspends
    call = charge(granted.account, 1, LATER)
    assert call == ChargeOutcome(prepaid(-FEE, due=1, suspended_at=LATER), 0, 1, True)


def test_a_promise_too_small_settles_nothing() -> None:
    got = grant_promise(SUSPENDED, FEE - 100_001, LATER, NOW)
    assert got == TopupOutcome(
        prepaid(100_000, promise=Promise(FEE - 100_001, LATER), due=FEE, suspended_at=NOW - DAY),
        0, False)


@pytest.mark.parametrize(("amount", "expires_at"), [(0, LATER), (-1, LATER), (1, NOW)])
def test_grant_promise_refuses(amount: int, expires_at: int) -> None:
    with pytest.raises(ValueError):
        grant_promise(prepaid(0), amount, expires_at, NOW)


def test_settle_after_a_higher_credit_limit() -> None:
    raised = Account("prepaid", 100_000, credit_limit=FEE, due=FEE, suspended_at=NOW)
    assert settle(raised, NOW) == TopupOutcome(prepaid(100_000 - FEE, credit_limit=FEE), FEE, True)
    assert settle(prepaid(7), NOW) == TopupOutcome(prepaid(7), 0, False)


# -- state -------------------------------------------------------------------------------

@pytest.mark.parametrize(("acct", "now", "grace", "revoke", "expected"), [
    (prepaid(0), NOW, DAY, 30 * DAY, "active"),
    (prepaid(-10**9), NOW, DAY, 30 * DAY, "active"),            # nothing due
    (Account("postpaid", -10**9), NOW, 0, 0, "active"),
    (prepaid(0, due=1, suspended_at=NOW), NOW, DAY, 30 * DAY, "grace"),
    (prepaid(0, due=1, suspended_at=NOW), NOW + DAY - 1, DAY, 30 * DAY, "grace"),
    (prepaid(0, due=1, suspended_at=NOW), NOW + DAY, DAY, 30 * DAY, "suspended"),
    (prepaid(0, due=1, suspended_at=NOW), NOW + 30 * DAY - 1, DAY, 30 * DAY, "suspended"),
    (prepaid(0, due=1, suspended_at=NOW), NOW + 30 * DAY, DAY, 30 * DAY, "revoked"),
    (prepaid(0, due=1, suspended_at=NOW), NOW + 10**6 * DAY, DAY, None, "suspended"),
    (prepaid(0, due=1, suspended_at=NOW), NOW, 0, None, "suspended"),       # no grace
    (prepaid(0, due=1, suspended_at=NOW), NOW, 0, 0, "revoked"),
    (prepaid(0, due=1, suspended_at=NOW), NOW - 5, DAY, None, "grace"),     # clock skew
    (prepaid(0, due=1, suspended_at=NOW), NOW + DAY, DAY, DAY, "revoked"),
])
def test_state(acct: Account, now: int, grace: int, revoke: int | None, expected: str) -> None:
    assert state(acct, now, grace_s=grace, revoke_after_s=revoke) == expected


@pytest.mark.parametrize(("grace", "revoke"), [(-1, None), (DAY, DAY - 1)])
def test_state_refuses(grace: int, revoke: int | None) -> None:
    with pytest.raises(ValueError):
        state(prepaid(0), NOW, grace_s=grace, revoke_after_s=revoke)


@pytest.mark.parametrize("kwargs", [
    {"billing": "credit", "balance": 0},
    {"billing": "prepaid", "balance": 0, "credit_limit": -1},
    {"billing": "prepaid", "balance": 0, "due": -1},
    {"billing": "prepaid", "balance": 0, "due": 1},                 # due but not suspended
    {"billing": "prepaid", "balance": 0, "suspended_at": NOW},      # suspended, nothing due
    {"billing": "postpaid", "balance": 0, "due": 1, "suspended_at": NOW},
    {"billing": "postpaid", "balance": 0, "suspended_at": NOW},
])
def test_account_refuses(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Account(**kwargs)  # type: ignore[arg-type]


def test_promise_refuses_a_negative_amount() -> None:
    with pytest.raises(ValueError):
        Promise(-1, LATER)


# -- a ledger model: random event sequences ----------------------------------------------

@dataclass
class Ledger:
    """A tiny in-memory ledger in front of the pure account, as the store will be.

    A reference is applied at most once; charges are posted (debited),
    recorded due, or left for the postpaid export, and dues are posted when a
    top-up settles them.
    """

    acct: Account
    now: int = NOW
    posted: dict[str, int] = field(default_factory=dict)      # ref → signed balance movement
    due: dict[str, int] = field(default_factory=dict)         # ref → amount owed, in order
    exported: dict[str, int] = field(default_factory=dict)    # postpaid charges
    promises: set[str] = field(default_factory=set)
    settled: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.initial = self.acct.balance

    def seen(self, ref: str) -> bool:
        return ref in self.posted or ref in self.due or ref in self.exported

    def charge(self, ref: str, amount: int) -> None:
        if self.seen(ref):
            return
        before = self.acct
        out = charge(self.acct, amount, self.now)
        self.acct = out.account
        if before.billing == "postpaid":
            assert (out.debited, out.due_added, out.suspend) == (0, 0, False)
            self.exported[ref] = amount
            return
        assert (out.debited, out.due_added) in ((amount, 0), (0, amount))   # never partial
        assert out.suspend == (before.suspended_at is None and out.due_added > 0)
        if out.due_added:
            self.due[ref] = amount
        else:
            self.posted[ref] = -amount                        # 0 for a zero charge
            assert not amount or available(self.acct, self.now) >= 0   # a debit fitted

    def credit(self, ref: str, amount: int) -> None:
        if not self.seen(ref):
            self.posted[ref] = amount
            self.apply_settle(topup(self.acct, amount, self.now))

    def promise(self, ref: str, amount: int, lasts_s: int) -> None:
        if ref not in self.promises:
            self.promises.add(ref)
            self.apply_settle(grant_promise(self.acct, amount, self.now + lasts_s, self.now))

    def apply_settle(self, out: TopupOutcome) -> None:
        self.acct = out.account
        if out.settled:
            assert out.resume
            assert out.settled == sum(self.due.values())      # all of them, at once
            for ref, amount in self.due.items():
                assert ref not in self.posted
                self.posted[ref] = -amount
                self.settled.append(ref)
            self.due.clear()
        else:
            assert not out.resume

    def check(self) -> None:
        acct = self.acct
        assert sum(self.posted.values()) == acct.balance - self.initial
        assert sum(self.due.values()) == acct.due
        assert (acct.suspended_at is not None) == (acct.billing == "prepaid" and acct.due > 0)
        assert len(self.settled) == len(set(self.settled))    # dues settled exactly once
        refs = [*self.posted, *self.due, *self.exported]
        assert len(refs) == len(set(refs))                    # each ref charged once
        if acct.billing == "postpaid":
            assert acct.balance - self.initial == sum(a for r, a in self.posted.items()
                                                      if r.startswith(("topup:", "credit:")))


amount = st.integers(0, 600_000)
cycle = st.integers(0, 3)
events = st.one_of(
    st.tuples(st.just("fee"), cycle),
    st.tuples(st.just("topup"), st.integers(0, 5), st.integers(0, 1_000_000)),
    st.tuples(st.just("call"), st.integers(0, 5), amount),
    st.tuples(st.just("change"), cycle, st.integers(0, 30 * DAY - 1), st.sampled_from([0, FEE])),
    st.tuples(st.just("promise"), st.integers(0, 2), st.integers(1, 400_000),
              st.integers(1, 5 * DAY)),
    st.tuples(st.just("wait"), st.integers(0, 10 * DAY)),
)
# Mostly prepaid: that is where dues, suspension and settling happen.
accounts = st.builds(Account, st.sampled_from(["prepaid", "prepaid", "prepaid", "postpaid"]),
                     st.integers(-200_000, 600_000), st.integers(0, 300_000))


def run(ledger: Ledger, event: tuple[object, ...]) -> None:
    match event:
        case ("fee", int(i)):
            ledger.charge(f"fee:1:home:{NOW + i * 30 * DAY}", FEE)
        case ("topup", int(n), int(money)):
            ledger.credit(f"topup:{n}", money)
        case ("call", int(n), int(money)):
            ledger.charge(f"call:{n}", money)
        case ("change", int(i), int(offset), int(old)):
            start = NOW + i * 30 * DAY
            change = plan_change(old, FEE - old, start, start + 30 * DAY, start + offset)
            ledger.credit(f"credit:change:{i}", -change.credit)
            ledger.charge(f"change:{i}", change.charge)
        case ("promise", int(n), int(money), int(lasts)):
            ledger.promise(f"promise:{n}", money, lasts)
        case ("wait", int(s)):
            ledger.now += s


@given(accounts, st.lists(events, max_size=40))
def test_ledger_model(acct: Account, sequence: list[tuple[object, ...]]) -> None:
    ledger = Ledger(acct)
    for event in sequence:
        run(ledger, event)
        ledger.check()
    # A replay of every reference (downtime catch-up, a second node) changes nothing.
    after = (ledger.acct, dict(ledger.posted), dict(ledger.due))
    for event in sequence:
        if event[0] != "wait":
            run(ledger, event)
    assert (ledger.acct, ledger.posted, ledger.due) == after
