"""Tests of aaad/core/billing/account.py: prepaid and postpaid balances, dues, suspension."""

from __future__ import annotations

import pytest

from aaad.core.billing.account import (
    Account,
    Promise,
    TopupOutcome,
    available,
    settle,
    state,
)

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


# -- settle ------------------------------------------------------------------------------

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
