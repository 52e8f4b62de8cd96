"""Free allowances per renewal (core/billing/allowance.py and the plan keys):
free credit spent first, reset or carried up to the cap at each renewal,
granted once per renewal whatever the order of a catch-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aaad.core.billing.allowance import (
    EXPIRY,
    GRANT,
    MAX_RENEWALS_PER_CALL,
    Outcome,
    Renewal,
    end,
    renew,
    renewals,
    spend,
    spends,
)
from aaad.core.quotas.plan import FreeCredit, FreeMinutes, PlanError, plan_to_dict
from aaad.core.quotas.plan_parse import parse_plan

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


def plan(**kw: Any) -> Any:
    return parse_plan({"name": "p", **kw})


# --- the plan keys ---------------------------------------------------------------

def test_free_credit_is_money_with_reset_by_default() -> None:
    p = plan(fee="29.90", free_credit="5.00")
    assert p.free_credit == FreeCredit(50000, carry=False, cap_money=0)


def test_carry_keeps_one_grant_unless_a_cap_is_given() -> None:
    assert plan(fee="1", free_credit="5", allowance="carry").free_credit == \
        FreeCredit(50000, True, 50000)
    assert plan(fee="1", free_credit="5", allowance="carry",
                free_credit_cap="12.50").free_credit == FreeCredit(50000, True, 125000)


def test_allowance_is_the_new_spelling_of_rollover() -> None:
    calls = {"rate_table": "t"}
    new = plan(**calls, allowance="carry", free_minutes={"minutes": 60, "rollover_cap": 90})
    old = plan(**calls, free_minutes={"minutes": 60, "rollover": True, "rollover_cap": 90})
    assert new.free_minutes == old.free_minutes == FreeMinutes(3600, (), True, 5400)
    both = plan(**calls, allowance="carry",
                free_minutes={"minutes": 60, "rollover": True, "rollover_cap": 90})
    assert both == old
    reset = plan(**calls, allowance="reset", free_minutes={"minutes": 60, "rollover": False})
    assert reset.free_minutes == FreeMinutes(3600)
    # rollover alone still says it for the free minutes only; free credit resets
    mixed = plan(**calls, fee="1", free_credit="2",
                 free_minutes={"minutes": 60, "rollover": True})
    assert (mixed.free_minutes is not None and mixed.free_minutes.rollover,
            mixed.free_credit is not None and mixed.free_credit.carry) == (True, False)


@pytest.mark.parametrize("definition,message", [
    ({"rate_table": "t", "allowance": "carry", "free_minutes": {"minutes": 5, "rollover": False}},
     "plans[0].free_minutes.rollover: is false but the plan's allowance is carry"),
    ({"rate_table": "t", "allowance": "reset", "free_minutes": {"minutes": 5, "rollover": True}},
     "plans[0].free_minutes.rollover: is true but the plan's allowance is reset"),
    ({"allowance": "keep", "fee": "1", "free_credit": "1"},
     "plans[0].allowance: must be one of reset, carry"),
    ({"allowance": "carry"}, "plans[0].allowance: needs free_minutes or free_credit"),
    ({"free_credit": "1", "period": "none"}, "plans[0].free_credit: needs fee or a period"),
    ({"free_credit": "0"}, "plans[0].free_credit: must be more than 0"),
    ({"free_credit": 1.5}, "plans[0].free_credit: expected a quoted decimal amount"),
    ({"free_credit": "-1"}, "plans[0].free_credit: expected a decimal amount"),
    ({"free_credit": "1", "free_credit_cap": "2"},
     "plans[0].free_credit_cap: needs allowance: carry"),
    ({"free_credit_cap": "2"}, "plans[0].free_credit_cap: needs free_credit"),
    ({"free_credit": "1", "allowance": "carry", "free_credit_cap": "x"},
     "plans[0].free_credit_cap: expected a decimal amount"),
])
def test_bad_allowance_keys_name_their_path(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plan({"name": "p", **definition}, "plans[0]")
    assert str(e.value).startswith(message)


@pytest.mark.parametrize("definition", [
    {"fee": "1", "free_credit": "5"},
    {"free_credit": "5", "period": "weekly", "allowance": "carry", "free_credit_cap": "7"},
    {"rate_table": "t", "free_minutes": {"minutes": 5, "rollover": True}, "free_credit": "1"},
    {"rate_table": "t", "allowance": "carry", "free_minutes": {"minutes": 5},
     "free_credit": "1"},
])
def test_plans_with_allowances_read_back_equal(definition: dict[str, Any]) -> None:
    p = plan(**definition)
    assert parse_plan(plan_to_dict(p)) == p


def test_a_plan_without_free_credit_reads_back_without_the_new_keys() -> None:
    d = plan_to_dict(plan(rate_table="t", free_minutes={"minutes": 5, "rollover": True}))
    assert not {"allowance", "free_credit", "free_credit_cap"} & set(d)


# --- the rule ---------------------------------------------------------------------

@pytest.mark.parametrize("kind,amount,spent", [
    ("call", -100, True), ("charge", -1, True), ("topup", 100, False),
    ("charge", 100, False),           # a credit paid out
    ("reversal", -100, False),        # a top-up taken back: never free money
    (GRANT, 100, False), (EXPIRY, -100, False),
])
def test_what_spends_free_credit(kind: str, amount: int, spent: bool) -> None:
    assert spends(kind, amount) is spent


@pytest.mark.parametrize("left,kind,amount,after", [
    (500, "call", -200, 300), (500, "call", -800, 0), (0, "call", -5, 0),
    (500, "topup", 1000, 500), (500, "reversal", -1000, 500),
    (500, GRANT, 300, 800), (500, EXPIRY, -500, 0),
])
def test_spend(left: int, kind: str, amount: int, after: int) -> None:
    assert spend(left, kind, amount) == after


RESET = FreeCredit(50000)
CARRY = FreeCredit(50000, True, 70000)


@pytest.mark.parametrize("left,terms,granted,outcome", [
    (30000, RESET, 50000, Outcome(30000, 0, 50000)),
    (0, RESET, 50000, Outcome(0, 0, 50000)),
    (30000, CARRY, 50000, Outcome(0, 30000, 50000)),
    (90000, CARRY, 50000, Outcome(20000, 70000, 50000)),   # above the cap expires
    (-5, CARRY, 50000, Outcome(0, 0, 50000)),
    (30000, None, 0, Outcome(30000, 0, 0)),                 # the plan grants none any more
])
def test_renew(left: int, terms: FreeCredit | None, granted: int, outcome: Outcome) -> None:
    assert renew(left, terms, granted) == outcome
    assert outcome.left == outcome.kept + outcome.granted


def test_the_end_of_a_plan_expires_all_that_is_left() -> None:
    assert end(12345) == Outcome(12345, 0, 0)


# --- when ---------------------------------------------------------------------------

def test_fee_cycles_are_the_renewals_with_the_partial_stretch_first() -> None:
    p = plan(fee="10", free_credit="31")
    joined = at(2027, 1, 15, 12)
    found, following = renewals(p, joined, BERLIN, after=joined - 1, upto=at(2027, 3, 1))
    assert [r.at for r in found] == [joined, at(2027, 2, 1), at(2027, 3, 1)]
    assert found[0] == Renewal(joined, at(2027, 2, 1) - joined, 31 * DAY)
    assert found[0].grant(p.free_credit) == 165000          # 16.5 of January's 31 days
    assert found[1].grant(p.free_credit) == 310000
    assert following == at(2027, 4, 1)
    again, _ = renewals(p, joined, BERLIN, after=at(2027, 3, 1), upto=at(2027, 3, 31))
    assert again == []


def test_quarterly_cycles_renew_every_three_months() -> None:
    p = plan(fee="10", free_credit="1", cycle_months=3, billing_day=10)
    found, following = renewals(p, at(2027, 1, 10), BERLIN, after=at(2027, 1, 10) - 1,
                                upto=at(2027, 8, 1))
    assert [r.at for r in found] == [at(2027, 1, 10), at(2027, 4, 10), at(2027, 7, 10)]
    assert all(r.part_s == r.whole_s for r in found)
    assert following == at(2027, 10, 10)


def test_without_a_fee_the_periods_are_the_renewals() -> None:
    p = plan(free_credit="7", period="weekly")
    joined = at(2027, 1, 6, 12)                 # a Wednesday noon: 4.5 of 7 days
    found, following = renewals(p, joined, BERLIN, after=joined - 1, upto=at(2027, 1, 18))
    assert [r.at for r in found] == [joined, at(2027, 1, 11), at(2027, 1, 18)]
    assert found[0].grant(p.free_credit) == 45000
    assert following == at(2027, 1, 25)


def test_a_plan_edited_to_grant_starts_at_the_next_renewal() -> None:
    p = plan(fee="1", free_credit="5")
    edit = at(2027, 3, 5)
    found, following = renewals(p, at(2027, 1, 1), BERLIN, after=edit - 1, upto=edit)
    assert (found, following) == ([], at(2027, 4, 1))


def test_a_long_catch_up_goes_on_in_bounded_calls() -> None:
    p = plan(free_credit="1", period="daily")
    since, now = at(2027, 1, 1), at(2027, 12, 31)
    found, following = renewals(p, since, BERLIN, after=since - 1, upto=now)
    assert len(found) == MAX_RENEWALS_PER_CALL and following <= now
    done = [r.at for r in found]
    while following is not None and following <= now:
        more, following = renewals(p, since, BERLIN, after=following - 1, upto=now)
        done += [r.at for r in more]
    assert len(done) == len(set(done)) == 365           # 2027: each day once


def test_dst_days_are_renewals_of_their_own_length() -> None:
    p = plan(free_credit="1", period="daily")
    found, _ = renewals(p, at(2027, 3, 28), BERLIN, after=at(2027, 3, 28) - 1,
                        upto=at(2027, 3, 28))
    assert found == [Renewal(at(2027, 3, 28), 23 * 3600, 23 * 3600)]


# --- properties -----------------------------------------------------------------------

class Model:
    """One user's free credit driven by the core rule, as store/jobs/free_credit.py
    does it: the ledger is a dict of ref → (kind, amount), posted once."""

    def __init__(self, p: Any, since: int) -> None:
        self.plan, self.since, self.pointer = p, since, since
        self.left = 0
        self.lines: dict[str, tuple[str, int]] = {}
        self.spent = 0                      # what debits took from the free credit

    def post(self, ref: str, kind: str, amount: int) -> None:
        if ref in self.lines:
            return
        self.lines[ref] = (kind, amount)
        after = spend(self.left, kind, amount)
        if spends(kind, amount):
            self.spent += self.left - after
        self.left = after

    def catch_up(self, now: int) -> None:
        terms = self.plan.free_credit
        while self.pointer is not None and self.pointer <= now:
            due, self.pointer = renewals(self.plan, self.since, BERLIN,
                                         after=self.pointer - 1, upto=now)
            for r in due:
                o = renew(self.left, terms, r.grant(terms))
                if o.expired:
                    self.post(f"free-expiry:{r.at}", EXPIRY, -o.expired)
                if o.granted:
                    self.post(f"free:{r.at}", GRANT, o.granted)
                if terms.carry:
                    assert self.left <= terms.cap_money + o.granted
                else:
                    assert self.left == o.granted

    def total(self, kind: str) -> int:
        return sum(a for k, a in self.lines.values() if k == kind)


PLANS = [{"fee": "10", "free_credit": "5"},
         {"fee": "10", "free_credit": "5", "allowance": "carry", "free_credit_cap": "8"},
         {"free_credit": "2", "period": "weekly", "allowance": "carry"},
         {"free_credit": "1", "period": "daily", "billing_day": 3}]
START = at(2027, 1, 1)
SPAN = 200 * DAY

events = st.lists(st.tuples(st.integers(0, SPAN),
                            st.sampled_from(["call", "charge", "topup", "reversal", "run"]),
                            st.integers(1, 200000)), max_size=40)


@settings(max_examples=150)
@given(which=st.integers(0, len(PLANS) - 1), joined=st.integers(0, 40 * DAY), history=events)
def test_never_more_free_credit_than_granted_and_each_renewal_once(
        which: int, joined: int, history: list[tuple[int, str, int]]) -> None:
    p = plan(**PLANS[which])
    since = START + joined
    m = Model(p, since)
    for i, (t, kind, amount) in enumerate(sorted(history)):
        now = since + t
        if kind == "run":
            m.catch_up(now)
        else:
            m.post(f"{kind}:{i}", kind, -amount if kind in ("call", "charge", "reversal")
                   else amount)
        granted, expired = m.total(GRANT), -m.total(EXPIRY)
        # never more free credit than granted: what was granted is exactly what
        # is left, what expired and what debits took; debits took no more than
        # they spent, and an expiry never takes money that was not free
        assert m.left >= 0 and expired >= 0
        assert granted == m.left + expired + m.spent
        debits = -sum(a for k, a in m.lines.values() if spends(k, a))
        assert m.spent <= debits
    end_ = since + SPAN
    m.catch_up(end_)
    # each renewal up to the end granted once, by the same amount as one catch-up
    one = Model(p, since)
    one.catch_up(end_)
    grants = {r: a for r, (k, a) in m.lines.items() if k == GRANT}
    assert grants == {r: a for r, (k, a) in one.lines.items() if k == GRANT}
    assert len(grants) == len({r.split(":")[1] for r in grants})


@settings(max_examples=100)
@given(which=st.integers(0, len(PLANS) - 1),
       runs=st.lists(st.integers(0, SPAN), max_size=12))
def test_without_spending_any_split_of_a_catch_up_posts_the_same_lines(
        which: int, runs: list[int]) -> None:
    p = plan(**PLANS[which])
    split = Model(p, START)
    for t in sorted(runs):
        split.catch_up(START + t)
    split.catch_up(START + SPAN)
    split.catch_up(START + SPAN)                    # a second node, a retry: nothing
    once = Model(p, START)
    once.catch_up(START + SPAN)
    assert split.lines == once.lines and split.left == once.left
