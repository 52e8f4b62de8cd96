"""The pure half of the accounting batch: overage charges, hour blocks and
renewals, disconnect verdicts (core/quotas/charging.py), and CDRs and the
credit check (core/telephony/cdr.py). No database: the store tests check the
same rules end to end."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aaad.core.accounting.sessions import ZERO, Totals
from aaad.core.quotas.charging import (
    BlockUse,
    OverageCharge,
    Renewal,
    Step,
    acts_in_accounting,
    disconnect_verdict,
    overage_charge,
    usage_steps,
    use_blocks,
)
from aaad.core.quotas.decide import Block
from aaad.core.quotas.plan import Plan
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.cdr import (
    FinishedCall,
    FreeMinutesLeft,
    NumberRules,
    build_cdr,
    is_emergency,
    over_credit,
    take_free,
)
from aaad.core.telephony.rate_table import Increment, Rate, RateTable

UTC = ZoneInfo("UTC")
HOUR, DAY = 3600, 86400
NOW = 1_798_761_600          # 2027-01-01 00:00 UTC
GB = 10**9


def plan(**fields: Any) -> Plan:
    return parse_plan({"name": "p", **fields})


PASSIVE = [None, plan(), plan(time_limit="150h"), plan(octets_limit="50GB", max_sessions=1)]
ACTING = [plan(time_limit="1h", over_limit="disconnect"),
          plan(octets_limit="1GB", over_limit="throttle",
               throttle_reply={"Mikrotik-Rate-Limit": "1M/1M"}),
          plan(time_limit="1h", over_limit="bill", overage_price={"per_hour": "1.20"}),
          plan(block={"hours": 10, "valid_days": 30}),
          plan(bands=[{"name": "night", "from": "22:00", "to": "07:00", "weight": 0}]),
          plan(rate_table="retail")]


def test_acts_in_accounting_is_false_only_for_plans_whose_accounting_only_counts() -> None:
    assert [acts_in_accounting(p) for p in PASSIVE] == [False] * len(PASSIVE)
    assert [acts_in_accounting(p) for p in ACTING] == [True] * len(ACTING)
    # What a passive plan skips would have done nothing, whatever the usage.
    for p in PASSIVE[1:]:
        assert p is not None
        for before, after in [(ZERO, Totals(HOUR, GB, GB)),
                              (Totals(200 * HOUR, 60 * GB, 0), Totals(300 * HOUR, 90 * GB, 0))]:
            assert overage_charge(p, before, after) is None
            assert disconnect_verdict(p, used=after, blocks=[], now=NOW, tz=UTC) is None


def test_usage_steps_walk_each_user_period_from_its_total_before_the_batch() -> None:
    by_session = {(1, 0, "b"): Totals(20, 0, 0), (1, 0, "a"): Totals(10, 0, 0),
                  (2, 0, "c"): Totals(5, 1, 1)}
    after = {(1, 0): Totals(100, 0, 0), (2, 0): Totals(5, 1, 1)}
    assert usage_steps(by_session, after) == [
        Step(1, 0, "a", Totals(70, 0, 0), Totals(80, 0, 0)),
        Step(1, 0, "b", Totals(80, 0, 0), Totals(100, 0, 0)),
        Step(2, 0, "c", ZERO, Totals(5, 1, 1)),
    ]


def test_overage_charge_names_what_was_above_the_cap() -> None:
    timed = plan(time_limit="1h", over_limit="bill", overage_price={"per_hour": "1.20"})
    assert overage_charge(timed, Totals(HOUR - 600, 0, 0), Totals(HOUR + 1200, 0, 0)) == \
        OverageCharge(4000, 1200, "seconds")          # 20 min of 1.20/h = 0.40
    assert overage_charge(timed, ZERO, Totals(HOUR, 0, 0)) is None
    data = plan(octets_limit="1GB", over_limit="bill", overage_price={"per_gb": "0.50"})
    charge = overage_charge(data, Totals(0, GB, 0), Totals(0, GB, 2 * GB))
    assert charge == OverageCharge(10000, 2 * GB, "octets")
    assert charge.description(data) == "overage on plan p (octets above the cap)"
    assert overage_charge(plan(time_limit="1h"), ZERO, Totals(2 * HOUR, 0, 0)) is None


def test_use_blocks_takes_the_oldest_first_and_renews_the_rest() -> None:
    renew = plan(time_limit="1h", block={"hours": 10, "valid_days": 30, "on_exhaust": "renew",
                                         "price": "5.00"})
    old, new = Block(1, HOUR, NOW + DAY), Block(2, 10 * HOUR, NOW + 20 * DAY)
    use = use_blocks(renew, [new, old], 3 * HOUR, NOW)
    assert use == BlockUse(taken=((2, 2 * HOUR), (1, HOUR)), renewals=(),
                           blocks=(Block(2, 8 * HOUR, NOW + 20 * DAY), Block(1, 0, NOW + DAY)),
                           uncovered_s=0)
    use = use_blocks(renew, [old], 12 * HOUR, NOW)
    assert use.taken == ((1, HOUR),)
    assert use.renewals == (Renewal(10 * HOUR, 10 * HOUR, NOW + 30 * DAY, 50000),
                            Renewal(10 * HOUR, HOUR, NOW + 30 * DAY, 50000))
    assert use.uncovered_s == 0
    cutoff = plan(time_limit="1h", block={"hours": 10, "valid_days": 30})
    use = use_blocks(cutoff, [old], 5 * HOUR, NOW)
    assert (use.renewals, use.uncovered_s) == ((), 4 * HOUR)


def test_disconnect_verdict_only_for_disconnect_plans_over_a_limit() -> None:
    cut = plan(time_limit="1h", over_limit="disconnect")
    over = disconnect_verdict(cut, used=Totals(HOUR, 0, 0), blocks=[], now=NOW, tz=UTC)
    assert over is not None and over.reason == "time_limit"
    assert disconnect_verdict(cut, used=Totals(HOUR - 1, 0, 0), blocks=[], now=NOW,
                              tz=UTC) is None
    assert disconnect_verdict(plan(time_limit="1h"), used=Totals(2 * HOUR, 0, 0), blocks=[],
                              now=NOW, tz=UTC) is None       # reject at login only
    assert disconnect_verdict(None, used=ZERO, blocks=[], now=NOW, tz=UTC) is None
    disabled_is_not_a_limit = disconnect_verdict(cut, used=ZERO, blocks=[], now=NOW, tz=UTC)
    assert disabled_is_not_a_limit is None


VOIP = plan(rate_table="std", free_minutes={"minutes": 10, "destinations": ["49"]})
TABLE = RateTable("std", [Rate("49", "Germany", 1000, 500, Increment(60, 6)),
                          Rate("1", "USA", 6000, 0, Increment(1, 1))])
RULES = NumberRules(emergency_numbers=("112", "911"))


def finished(dialled: str, seconds: int, direction: str = "out") -> FinishedCall:
    return FinishedCall("k1", 7, "alice", NOW, seconds, dialled, "4930999", direction)


def test_cdr_prices_outbound_calls_and_uses_free_minutes_first() -> None:
    cdr = build_cdr(VOIP, finished("4930123", 130), TABLE, None, UTC, RULES)
    assert (cdr["prefix"], cdr["billed_s"], cdr["cost"]) == ("49", 132, 500 + 2200)
    free = FreeMinutesLeft(NOW, 60, 0, True)
    cdr = build_cdr(VOIP, finished("4930123", 130), TABLE, free, UTC, RULES)
    assert cdr["free_s"] == 60
    left = {7: free}
    assert take_free(left, 7, cdr) == free
    assert left[7].left_s == 0
    usa = build_cdr(VOIP, finished("12125550", 10), TABLE, free, UTC, RULES)
    assert (usa["free_s"], usa["cost"]) == (0, 1000)            # free minutes are for 49…
    assert take_free({7: free}, 7, usa) is None


def test_inbound_emergency_and_unrated_calls_cost_nothing() -> None:
    for call in (finished("4930123", 60, "in"), finished("112", 60), finished("4412", 60)):
        cdr = build_cdr(VOIP, call, TABLE, None, UTC, RULES)
        assert (cdr["prefix"], cdr["cost"], cdr["billed_s"]) == (None, 0, 0)
    assert build_cdr(VOIP, finished("4930123", 60), None, None, UTC, RULES)["cost"] == 0
    assert is_emergency("112", ["112"]) and not is_emergency("", ["112"])
    assert not is_emergency("0112", ["112"])         # as dialled: no prefix rewriting


def test_over_credit_is_strictly_more_than_available() -> None:
    assert over_credit({1: 100, 2: 101, 3: 5}, {1: 100, 2: 100}) == {2: 101, 3: 5}
