"""The pure telephony core: increments, prices, affordability, prefixes, limits, free minutes."""

from __future__ import annotations

import pytest

from aaad.core.quotas.decide import Reject
from aaad.core.quotas.plan import FreeMinutes, PlanError
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.rate_table import (
    Increment,
    NumberPlan,
    Rate,
    RateError,
    RateTable,
    affordable_seconds,
    cost,
    parse_increment,
    parse_rates_csv,
)
from aaad.core.telephony.rating import (
    CallAccept,
    authorise_call,
    call_limit,
    carried_in,
    free_left,
    rate_call,
)


def rate(price: str = "0.10", fee: str = "0", inc: str = "60/6", prefix: str = "49",
         band: str = "") -> Rate:
    from aaad.core.quotas.plan import parse_money
    return Rate(prefix, "test", parse_money(price), parse_money(fee), parse_increment(inc), band)


@pytest.mark.parametrize("text,first,nxt", [("60/6", 60, 6), ("1/1", 1, 1), ("60", 60, 60),
                                            ("30/30", 30, 30), (" 1/60 ", 1, 60)])
def test_parse_increment(text: str, first: int, nxt: int) -> None:
    assert parse_increment(text) == Increment(first, nxt)


@pytest.mark.parametrize("text", ["0/6", "60/0", "a/6", "60/", "", "-1/1", "60/6/6"])
def test_parse_increment_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_increment(text)


@pytest.mark.parametrize("inc,duration,billed", [
    ("60/6", 0, 0), ("60/6", 1, 60), ("60/6", 60, 60), ("60/6", 61, 66), ("60/6", 66, 66),
    ("60/6", 67, 72), ("1/1", 37, 37), ("30/30", 31, 60), ("60/60", 121, 180),
    ("1/60", 1, 1), ("1/60", 2, 61)])
def test_billed_seconds(inc: str, duration: int, billed: int) -> None:
    assert parse_increment(inc).billed(duration) == billed


def test_cost_rounds_half_up_to_a_ten_thousandth() -> None:
    # 0.0999/min × 1 s = 0.001665 → 0.0017 (16.65 → 17 ten-thousandths)
    assert cost(rate("0.0999", inc="1/1"), 1) == 17
    # 0.06/min per second is exactly 0.001/s
    assert cost(rate("0.06", inc="1/1"), 37) == 370
    # 0.10/min for 61 s billed 66 s = 0.11, plus a 0.05 fee
    assert cost(rate("0.10", "0.05"), 66) == 1600
    assert cost(rate("0.10", "0.05"), 0) == 0           # unanswered: no fee
    assert cost(rate("0.10", "0.05"), 66, free_s=66) == 0   # free covers all: no fee
    assert cost(rate("0.10", "0.05"), 66, free_s=60) == 500 + 100


@pytest.mark.parametrize("price,fee,inc,money,free,expected", [
    ("0.10", "0", "60/6", "1.00", 0, 600),        # 10 minutes exactly
    ("0.10", "0.05", "60/6", "1.00", 0, 570),     # fee first: 0.95 buys 570 s
    ("0.10", "0", "60/6", "0.09", 0, 0),          # cannot pay the first minute
    ("0.10", "0", "60/6", "0.10", 0, 60),
    ("0.10", "0", "60/6", "0.11", 0, 66),
    ("0.10", "0", "60/6", "0.1099", 0, 60),       # 65.94 s affordable → 60 billed
    ("0.07", "0", "1/1", "1.00", 0, 857),         # 857.14… s
    ("0.07", "0.02", "30/30", "1.00", 0, 840),    # 0.98 → 840 s (28 × 30)
    ("0.10", "0.05", "60/6", "0", 120, 120),      # free minutes only: no fee
    ("0.10", "0.05", "60/6", "1.00", 120, 690),   # 120 free + 570 paid
    ("0.10", "0", "60/60", "0.25", 30, 180),      # 30 free + 150 paid = 180 → 180
    ("0", "0", "1/1", "0", 0, None),              # free rate: unlimited
    ("0", "0.10", "1/1", "0.05", 0, 0),           # free rate but the fee is unaffordable
])
def test_affordable_seconds(price: str, fee: str, inc: str, money: str, free: int,
                            expected: int | None) -> None:
    from aaad.core.quotas.plan import parse_money
    r = rate(price, fee, inc)
    m = parse_money(money)
    got = affordable_seconds(r, m, free)
    assert got == expected
    if got:       # the affordable call costs at most the money, one increment more costs more
        assert cost(r, r.increment.billed(got), free) <= m
        assert cost(r, r.increment.billed(got + 1), free) > m


def test_affordable_is_exact_over_a_grid() -> None:
    for inc in ("1/1", "60/6", "30/6", "60/60"):
        for fee in ("0", "0.05"):
            r = rate("0.0833", fee, inc)
            for money in range(0, 3000, 7):
                for free in (0, 45, 90):
                    t = affordable_seconds(r, money, free)
                    assert t is not None
                    if t:
                        assert cost(r, r.increment.billed(t), free) <= money
                    nxt = r.increment.billed(t + 1)
                    assert cost(r, nxt, free) > money


def test_longest_prefix_match_and_bands() -> None:
    table = RateTable("std", [rate("0.10", prefix="49"), rate("0.20", prefix="4917"),
                              rate("0.05", prefix="4917", band="offpeak"),
                              rate("0.30", prefix="1", band="peak")])
    assert table.match("4930123").price == 1000
    assert table.match("4917012345").price == 2000
    assert table.match("4917012345", "offpeak").price == 500
    assert table.match("4917012345", "peak").price == 2000
    assert table.match("1212555", "peak").price == 3000
    # only a peak row for "1": no rate off-peak
    assert table.match("1212555", "offpeak") is None
    assert table.match("44") is None
    assert table.match("") is None
    assert len(table) == 4


@pytest.mark.parametrize("raw,expected", [
    ("+49 30 1234-56", "4930123456"), ("sip:+4930123@gw.example.net;user=phone", "4930123"),
    ("004930123", "4930123"), ("tel:030123", "030123"), ("112", "112"), ("abc", ""),
    ("", ""), ("sips:*100#@pbx", "*100#")])
def test_normalise_number(raw: str, expected: str) -> None:
    assert NumberPlan().normalise(raw) == expected


def test_normalise_national_numbers() -> None:
    de = NumberPlan(international_prefix="00", national_prefix="0", country_code="49")
    assert de.normalise("030 1234") == "49301234"
    assert de.normalise("0044 20 1234") == "44201234"
    assert de.normalise("+1 212") == "1212"


def test_parse_rates_csv() -> None:
    rates = list(parse_rates_csv([
        "prefix,description,price,connection_fee,increment,band",
        "49,Germany,0.10,0.05,60/6,",
        "4917,Germany mobile,0.2,0,1/1,offpeak",
        "",
    ]))
    assert rates == [Rate("49", "Germany", 1000, 500, Increment(60, 6)),
                     Rate("4917", "Germany mobile", 2000, 0, Increment(1, 1), "offpeak")]


@pytest.mark.parametrize("lines,line,fragment", [
    ([], 1, "empty"),
    (["prefix,description,price"], 1, "missing connection_fee"),
    (["prefix,description,price,connection_fee,increment,colour"], 1, "unknown column"),
    (["prefix,description,price,connection_fee,increment", "49,DE,0.10,0,60/6",
      "4x,DE,0.10,0,60/6"], 3, "prefix"),
    (["prefix,description,price,connection_fee,increment", "49,DE,1.5e2,0,60/6"], 2, "price"),
    (["prefix,description,price,connection_fee,increment", "49,DE,0.10,-1,60/6"], 2,
     "connection_fee"),
    (["prefix,description,price,connection_fee,increment", "49,DE,0.10,0,60/0"], 2, "increment"),
    (["prefix,description,price,connection_fee,increment", "49,DE,0.10,0,60/6",
      "49,DE again,0.10,0,60/6"], 3, "twice"),
    (["prefix,description,price,connection_fee,increment", "49,DE,0.10,0"], 2, "columns"),
])
def test_parse_rates_csv_names_the_bad_line(lines: list[str], line: int, fragment: str) -> None:
    with pytest.raises(RateError) as e:
        list(parse_rates_csv(lines))
    assert e.value.line == line
    assert fragment in e.value.message


VOIP = parse_plan({"name": "voip", "rate_table": "std", "max_calls": 3,
                   "max_outbound_calls": 2, "max_inbound_calls": 2,
                   "free_minutes": {"minutes": 10, "destinations": ["49"], "rollover": True,
                                    "rollover_cap": 5}})
TABLE = RateTable("std", [rate("0.10", "0.05", "60/6", "49"), rate("0.60", "0", "1/1", "1")])


def call(**kw: object) -> object:
    args: dict[str, object] = {"number": "4930123", "direction": "out", "emergency": False,
                                   "table": TABLE, "band": "peak", "money": 10000, "free_left_s": 0,
                                   "open_in": 0, "open_out": 0}
    args.update(kw)
    return authorise_call(VOIP, **args)  # type: ignore[arg-type]


def test_authorise_call() -> None:
    assert call() == CallAccept(570, None, rate=TABLE.match("49"), money=10000, free_s=0)
    assert call(free_left_s=600).session_timeout_s == 600 + 570
    # free minutes are for "49…" only
    assert call(number="1212555", free_left_s=600).session_timeout_s == 100   # 0.60/min
    assert call(money=0).reason == "credit_exhausted"
    assert call(money=-500).reason == "credit_exhausted"
    assert call(money=0, free_left_s=60).session_timeout_s == 60
    assert call(number="44123").reason == "no_rate"
    assert call(number="").reason == "no_destination"
    assert call(table=None).reason == "no_rate"


def test_concurrent_call_limits_and_emergency() -> None:
    third = call(open_out=2)
    assert isinstance(third, Reject) and third.reason == "max_calls"
    assert "outbound" in third.message
    assert call(open_out=1, open_in=2).reason == "max_calls"          # total 3
    assert isinstance(call(direction="in", open_out=2), CallAccept)   # inbound 0 of 2
    assert call(direction="in", open_in=2).reason == "max_calls"
    sos = call(number="112", emergency=True, open_out=2, money=0, table=None)
    assert sos == CallAccept(None, None)
    assert call_limit(VOIP, "out", 0, 1) is None


def test_inbound_calls_are_not_rated() -> None:
    assert call(direction="in", money=0, number="") == CallAccept(None, None)


def test_rate_call() -> None:
    r = TABLE.match("4930")
    assert r is not None
    rated = rate_call(r, 61, free_left_s=0)
    assert (rated.billed_s, rated.free_s, rated.cost) == (66, 0, 1600)
    rated = rate_call(r, 61, free_left_s=30)
    assert (rated.billed_s, rated.free_s, rated.cost) == (66, 30, 500 + 600)
    assert rate_call(r, 0, 100).cost == 0


def test_free_minutes_and_rollover() -> None:
    fm = VOIP.free_minutes
    assert fm is not None and fm.seconds == 600 and fm.rollover_cap_s == 300
    assert free_left(fm, 100, 0) == 500
    assert free_left(fm, 700, 0) == 0
    assert carried_in(fm, (100, 0), True) == 300       # 500 unused, capped at 300
    assert carried_in(fm, (500, 0), True) == 100
    assert carried_in(fm, (700, 200), True) == 100
    assert carried_in(fm, None, True) == 300           # a period with no free call at all
    assert carried_in(fm, None, False) == 0            # the user did not exist then
    no_roll = FreeMinutes(600)
    assert carried_in(no_roll, (0, 0), True) == 0
    assert fm.covers("4930") and not fm.covers("4430")
    assert FreeMinutes(60).covers("anything")


@pytest.mark.parametrize("plan,path", [
    ({"name": "x", "free_minutes": {"minutes": 10}}, "plan.free_minutes"),
    ({"name": "x", "rate_table": "t", "free_minutes": {}}, "plan.free_minutes.minutes"),
    ({"name": "x", "rate_table": "t", "free_minutes": {"minutes": 10, "destinations": [49]}},
     "plan.free_minutes.destinations[0]"),
    ({"name": "x", "rate_table": "t", "free_minutes": {"minutes": 10, "rollover": "yes"}},
     "plan.free_minutes.rollover"),
    ({"name": "x", "rate_table": "t", "max_calls": -1}, "plan.max_calls"),
    ({"name": "x", "rate_table": ""}, "plan.rate_table"),
])
def test_plan_telephony_errors(plan: dict[str, object], path: str) -> None:
    with pytest.raises(PlanError) as e:
        parse_plan(plan)
    assert e.value.path == path
