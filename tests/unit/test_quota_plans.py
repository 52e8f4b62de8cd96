"""Tests of aaad/core/quotas/plan.py: parsing plans, round trips, and errors that name their key."""

from __future__ import annotations

import copy
import json
from datetime import date
from fractions import Fraction
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.quotas.plan import (
    PEAK,
    Band,
    BlockSpec,
    Fee,
    OveragePrice,
    Plan,
    PlanError,
    format_limit_octets,
    format_limit_s,
    format_money,
    parse_money,
    plan_to_dict,
)
from aaad.core.quotas.plan_parse import parse_plan, parse_plans

EXAMPLE = """
plans:
  - name: home-150h
    period: monthly
    billing_day: 1
    time_limit: 150h
    octets_limit: 50GB
    octets_direction: total
    max_sessions: 1
    over_limit: reject
    overage_price: {per_hour: "1.20", per_gb: "0.50"}
    bands:
      - {name: offpeak, days: [mon, tue, wed, thu, fri], from: "22:00", to: "07:00", weight: 0}
      - {name: weekend, days: [sat, sun], from: "00:00", to: "24:00", weight: 0.5}
    block: {hours: 100, valid_days: 365, on_exhaust: cutoff, price: "49.00"}
  - name: metered
    period: weekly
    octets_limit: 10GB
    octets_direction: in
    over_limit: bill
    overage_price: {per_gb: "0.0125"}
"""

EXAMPLE_PLANS = [
    Plan(
        name="home-150h",
        period=PeriodSpec("monthly", 1),
        time_limit_s=150 * 3600,
        octets_limit=50 * 10**9,
        octets_direction="total",
        max_sessions=1,
        over_limit="reject",
        overage_price=OveragePrice(per_hour_money=12_000, per_gb_money=5_000),
        bands=(
            Band("offpeak", (0, 1, 2, 3, 4), 22 * 60, 7 * 60, Fraction(0)),
            Band("weekend", (5, 6), 0, 1440, Fraction(1, 2)),
        ),
        block=BlockSpec(hours=100, valid_days=365, on_exhaust="cutoff", price_money=490_000),
    ),
    Plan(name="metered", period=PeriodSpec("weekly"), octets_limit=10 * 10**9,
         octets_direction="in", over_limit="bill",
         overage_price=OveragePrice(per_gb_money=125)),
]


def test_example_parses_to_exact_values() -> None:
    assert parse_plans(yaml.safe_load(EXAMPLE)) == EXAMPLE_PLANS


def test_example_round_trips_through_yaml_and_json() -> None:
    dicts = [plan_to_dict(p) for p in EXAMPLE_PLANS]
    assert parse_plans({"plans": dicts}) == EXAMPLE_PLANS
    assert parse_plans(yaml.safe_load(yaml.safe_dump({"plans": dicts}))) == EXAMPLE_PLANS
    assert parse_plans(json.loads(json.dumps(dicts))) == EXAMPLE_PLANS


def test_plan_to_dict_writes_human_units() -> None:
    d = plan_to_dict(EXAMPLE_PLANS[0])
    assert d["time_limit"] == "150h"
    assert d["octets_limit"] == "50GB"
    assert d["overage_price"] == {"per_hour": "1.20", "per_gb": "0.50"}
    assert d["bands"][0] == {"name": "offpeak", "days": ["mon", "tue", "wed", "thu", "fri"],
                             "from": "22:00", "to": "07:00", "weight": 0}
    assert d["bands"][1]["weight"] == "0.5"
    assert d["block"] == {"hours": 100, "valid_days": 365, "on_exhaust": "cutoff",
                          "price": "49.00"}
    assert "billing_day" not in plan_to_dict(EXAMPLE_PLANS[1])   # weekly has none


def test_defaults() -> None:
    [plan] = parse_plans({"plans": [{"name": "free"}], "clients": []})
    assert plan == Plan(name="free")
    assert (plan.period, plan.octets_direction, plan.over_limit) == (
        PeriodSpec("monthly", 1), "total", "reject")
    assert (plan.time_limit_s, plan.octets_limit, plan.max_sessions, plan.block) == (
        None, None, None, None)


@pytest.mark.parametrize(("data", "expected"), [
    (None, []),
    ({}, []),
    ({"plans": None}, []),
    ([], []),
])
def test_no_plans(data: Any, expected: list[Plan]) -> None:
    assert parse_plans(data) == expected


@pytest.mark.parametrize(("raw", "weight"), [
    (0, Fraction(0)),
    (1, Fraction(1)),
    (0.5, Fraction(1, 2)),
    (0.1, Fraction(1, 10)),          # the decimal written, not the binary float
    ("0.25", Fraction(1, 4)),
    ("1/3", Fraction(1, 3)),
    ("0.333", Fraction(333, 1000)),
])
def test_weights_are_exact(raw: object, weight: Fraction) -> None:
    band = {"name": "b", "from": "00:00", "to": "06:00", "weight": raw}
    plan = parse_plan({"name": "p", "bands": [band]})
    assert plan.bands[0].weight == weight
    assert type(plan.bands[0].weight) is Fraction
    assert parse_plan(plan_to_dict(plan)) == plan


@pytest.mark.parametrize(("band", "days", "start", "end", "dates"), [
    # no days: every day
    ({"from": "22:00", "to": "07:00"}, (0, 1, 2, 3, 4, 5, 6), 1320, 420, ()),
    # to 00:00 is the coming midnight, the same as 24:00
    ({"from": "18:00", "to": "00:00", "days": ["Sat", "sunday"]}, (5, 6), 1080, 1440, ()),
    ({"from": "00:00", "to": "00:00", "days": ["sun"]}, (6,), 0, 1440, ()),
    # holidays: dates alone, given as strings or as YAML dates; duplicates fold
    ({"from": "00:00", "to": "24:00", "dates": ["2026-12-25", date(2026, 12, 26), "2026-12-25"]},
     (), 0, 1440, (date(2026, 12, 25), date(2026, 12, 26))),
    ({"from": "00:00", "to": "24:00", "days": ["sun", "sat", "sun"], "dates": ["2026-12-25"]},
     (5, 6), 0, 1440, (date(2026, 12, 25),)),
])
def test_band_shapes(band: dict[str, Any], days: tuple[int, ...], start: int, end: int,
                     dates: tuple[date, ...]) -> None:
    plan = parse_plan({"name": "p", "bands": [{"name": "b", "weight": 0, **band}]})
    b = plan.bands[0]
    assert (b.days, b.start_min, b.end_min, b.dates) == (days, start, end, dates)
    assert parse_plan(plan_to_dict(plan)) == plan
    assert plan.weight("b") == 0 and plan.weight(PEAK) == 1


def test_period_fields() -> None:
    assert parse_plan({"name": "p", "period": "monthly", "billing_day": 28}).period == \
        PeriodSpec("monthly", 28)
    # billing_day only means something for monthly; elsewhere it is checked, then dropped
    weekly = parse_plan({"name": "p", "period": "weekly", "billing_day": 15})
    assert weekly.period == PeriodSpec("weekly", 1)
    assert parse_plan({"name": "p", "period": "none"}).period == PeriodSpec("none")


@pytest.mark.parametrize(("text", "money"), [
    ("1.20", 12_000), ("0.50", 5_000), ("49", 490_000), ("0.0001", 1), ("0", 0),
    (" 2.5 ", 25_000), (3, 30_000), ("123456789.1234", 1_234_567_891_234),
])
def test_parse_money(text: object, money: int) -> None:
    assert parse_money(text) == money


@pytest.mark.parametrize("bad", [1.2, True, "-1", "1.23456", "1,20", "", "€1", None, -1, "1e3"])
def test_parse_money_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_money(bad)


@pytest.mark.parametrize(("text", "money"), [
    ("-1.20", -12_000), (" -0.0001 ", -1), ("2.5", 25_000), ("-0", 0), (-3, -30_000),
])
def test_parse_signed_money(text: object, money: int) -> None:
    assert parse_money(text, signed=True) == money


@pytest.mark.parametrize("bad", ["--1", "- 1", "+1", "-", "-1.23456", "1-", -1.5, None])
def test_parse_signed_money_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_money(bad, signed=True)


@pytest.mark.parametrize(("money", "text"), [
    (12_000, "1.20"), (490_000, "49.00"), (1, "0.0001"), (12_345, "1.2345"), (10, "0.0010"),
    (0, "0.00"),
])
def test_format_money(money: int, text: str) -> None:
    assert format_money(money) == text
    assert parse_money(text) == money


@pytest.mark.parametrize(("seconds", "text"), [
    (540_000, "150h"), (3600, "1h"), (5400, "90m"), (61, "61s"), (0, "0s"), (86400, "24h"),
])
def test_format_limit_s(seconds: int, text: str) -> None:
    assert format_limit_s(seconds) == text


@pytest.mark.parametrize(("octets", "text"), [
    (50 * 10**9, "50GB"), (1_500_000_000, "1.5GB"), (1_234_567, "1.234567MB"), (999, "999B"),
    (10**12, "1TB"), (1000, "1kB"), (0, "0B"), (2**30, "1.073741824GB"),
])
def test_format_limit_octets(octets: int, text: str) -> None:
    assert format_limit_octets(octets) == text


# --- errors name their key path --------------------------------------------------

BASE: dict[str, Any] = {
    "name": "home",
    "time_limit": "150h",
    "octets_limit": "50GB",
    "bands": [
        {"name": "offpeak", "days": ["mon"], "from": "22:00", "to": "07:00", "weight": 0},
        {"name": "weekend", "days": ["sat", "sun"], "from": "00:00", "to": "24:00",
         "weight": "0.5"},
    ],
    "block": {"hours": 100, "valid_days": 365},
}
BILL: dict[str, Any] = {"name": "bill", "time_limit": "10h", "octets_limit": "1GB",
                        "over_limit": "bill",
                        "overage_price": {"per_hour": "1.00", "per_gb": "0.50"}}


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with value ``...`` delete) ``a.b[1].c`` in ``doc``."""
    keys: list[Any] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    target: Any = doc
    for k in keys[:-1]:
        target = target[k]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


ERRORS = [
    # (base, key to change, new value or ... to delete, message)
    (BASE, "name", ..., "plans[1].name: is required"),
    (BASE, "name", "", "plans[1].name: is required"),
    (BASE, "name", 7, "plans[1].name: must be a non-empty string of at most 64 characters"),
    (BASE, "name", "first", "plans[1].name: duplicate plan name 'first'"),
    (BASE, "tiem_limit", "1h", "plans[1].tiem_limit: unknown key"),
    (BASE, "period", "yearly", "plans[1].period: must be one of monthly, weekly, daily, none"),
    (BASE, "billing_day", 29, "plans[1].billing_day: must be a whole number 1-28"),
    (BASE, "billing_day", 0, "plans[1].billing_day: must be a whole number 1-28"),
    (BASE, "billing_day", "1", "plans[1].billing_day: must be a whole number 1-28"),
    (BASE, "time_limit", "150 hours", "plans[1].time_limit: expected a duration such as "
                                      "'90s', '15m' or '150h', got '150 hours'"),
    (BASE, "time_limit", "1.5s", "plans[1].time_limit: '1.5s' is not a whole number of seconds"),
    (BASE, "octets_limit", "50 gigs", "plans[1].octets_limit: expected a size such as "
                                      "'500MB' or '1.5GB', got '50 gigs'"),
    (BASE, "octets_direction", "both", "plans[1].octets_direction: must be one of in, out, total"),
    (BASE, "max_sessions", 0, "plans[1].max_sessions: must be a whole number ≥ 1"),
    (BASE, "max_sessions", True, "plans[1].max_sessions: must be a whole number ≥ 1"),
    (BASE, "on_max_sessions", "replace", "plans[1].on_max_sessions: must be one of reject, "
                                         "replace-oldest"),
    (BASE, "over_limit", "slow", "plans[1].over_limit: must be one of reject, disconnect, "
                                 "bill, throttle"),
    (BASE, "bands", {"name": "x"}, "plans[1].bands: must be a list"),
    (BASE, "bands[1]", "weekend", "plans[1].bands[1]: must be a mapping"),
    (BASE, "bands[1].colour", "red", "plans[1].bands[1].colour: unknown key"),
    (BASE, "bands[1].name", ..., "plans[1].bands[1].name: is required"),
    (BASE, "bands[1].name", "offpeak", "plans[1].bands[1].name: duplicate band name 'offpeak'"),
    (BASE, "bands[1].name", "peak", "plans[1].bands[1].name: 'peak' is reserved for usage "
                                    "outside every band"),
    (BASE, "bands[1].from", ..., "plans[1].bands[1].from: is required"),
    (BASE, "bands[1].from", "7:00", "plans[1].bands[1].from: expected HH:MM"),
    (BASE, "bands[1].from", "24:00", "plans[1].bands[1].from: expected HH:MM"),
    (BASE, "bands[1].from", "12:60", "plans[1].bands[1].from: expected HH:MM"),
    (BASE, "bands[1].from", 1320, 'plans[1].bands[1].from: expected HH:MM (quote it: "22:00")'),
    (BASE, "bands[1].to", "24:01", "plans[1].bands[1].to: expected HH:MM"),
    (BASE, "bands[1].to", ..., "plans[1].bands[1].to: is required"),
    (BASE, "bands[0].to", "22:00", "plans[1].bands[0].to: must differ from from "
                                   "(use 00:00-24:00 for a whole day)"),
    (BASE, "bands[1].days", [], "plans[1].bands[1].days: must be a non-empty list of mon, tue, "
                                "wed, thu, fri, sat, sun"),
    (BASE, "bands[1].days", "sat", "plans[1].bands[1].days: must be a non-empty list of mon, "
                                   "tue, wed, thu, fri, sat, sun"),
    (BASE, "bands[1].days[1]", "sunday!", "plans[1].bands[1].days[1]: expected one of mon, tue, "
                                          "wed, thu, fri, sat, sun"),
    (BASE, "bands[1].days[0]", 6, "plans[1].bands[1].days[0]: expected one of mon, tue, wed, "
                                  "thu, fri, sat, sun"),
    (BASE, "bands[1].dates", "2026-12-25", "plans[1].bands[1].dates: must be a list of dates "
                                           "(YYYY-MM-DD)"),
    (BASE, "bands[1].dates", ["2026-12-25", "25.12.2026"],
     "plans[1].bands[1].dates[1]: expected a date YYYY-MM-DD"),
    (BASE, "bands[1].dates", ["2026-02-30"], "plans[1].bands[1].dates[0]: expected a date "
                                             "YYYY-MM-DD"),
    (BASE, "bands[1].weight", ..., "plans[1].bands[1].weight: is required"),
    (BASE, "bands[1].weight", 1.5, "plans[1].bands[1].weight: must be between 0 and 1 "
                                   "(peak time counts 1)"),
    (BASE, "bands[1].weight", -0.5, "plans[1].bands[1].weight: must be between 0 and 1 "
                                    "(peak time counts 1)"),
    (BASE, "bands[1].weight", "half", "plans[1].bands[1].weight: expected a number 0-1 such as "
                                      "0.5 or \"1/3\", got 'half'"),
    (BASE, "bands[1].weight", "1/0", "plans[1].bands[1].weight: expected a number 0-1 such as "
                                     "0.5 or \"1/3\", got '1/0'"),
    (BASE, "bands[1].weight", True, "plans[1].bands[1].weight: expected a number 0-1, got True"),
    (BASE, "block", 100, "plans[1].block: must be a mapping"),
    (BASE, "block.size", 1, "plans[1].block.size: unknown key"),
    (BASE, "block.hours", ..., "plans[1].block.hours: is required"),
    (BASE, "block.hours", 0, "plans[1].block.hours: must be a whole number ≥ 1"),
    (BASE, "block.valid_days", ..., "plans[1].block.valid_days: is required"),
    (BASE, "block.valid_days", "1y", "plans[1].block.valid_days: must be a whole number ≥ 1"),
    (BASE, "block.on_exhaust", "stop", "plans[1].block.on_exhaust: must be one of cutoff, renew"),
    (BASE, "block.on_exhaust", "renew", "plans[1].block.price: is required when on_exhaust is "
                                        "renew"),
    (BASE, "block.price", 49.0, 'plans[1].block.price: expected a quoted decimal amount such as '
                                '"1.20", got 49.0'),
    (BASE, "over_limit", "bill", "plans[1].block: cannot be combined with over_limit: bill (the "
                                 "block's on_exhaust decides what happens past the cap)"),
    (BILL, "overage_price", ..., "plans[1].overage_price: is required when over_limit is bill"),
    (BILL, "overage_price", [], "plans[1].overage_price: must be a mapping"),
    (BILL, "overage_price", {}, "plans[1].overage_price: needs per_hour or per_gb"),
    (BILL, "overage_price.per_minute", "1", "plans[1].overage_price.per_minute: unknown key"),
    (BILL, "overage_price.per_hour", ..., "plans[1].overage_price.per_hour: is required when "
                                          "over_limit is bill and time_limit is set"),
    (BILL, "overage_price.per_gb", ..., "plans[1].overage_price.per_gb: is required when "
                                        "over_limit is bill and octets_limit is set"),
    (BILL, "overage_price.per_hour", "1.20001", 'plans[1].overage_price.per_hour: expected a '
                                                'decimal amount such as "1.20", got \'1.20001\''),
    (BILL, "overage_price.per_gb", "-1", 'plans[1].overage_price.per_gb: expected a decimal '
                                         'amount such as "1.20", got \'-1\''),
    (BASE, "fee", "-29.90", 'plans[1].fee: expected a decimal amount such as "1.20", got '
                            '\'-29.90\''),
    (BASE | {"fee": "29.90"}, "cycle_months", 2, "plans[1].cycle_months: must be 1, 3, 6 or 12"),
    (BASE | {"fee": "29.90"}, "cycle_months", True,
     "plans[1].cycle_months: must be 1, 3, 6 or 12"),
    (BASE, "cycle_months", 3, "plans[1].cycle_months: needs fee (the price per cycle; 0 is "
                              "allowed)"),
    (BASE, "setup_fee", "10", "plans[1].setup_fee: needs fee (the price per cycle; 0 is "
                              "allowed)"),
]


@pytest.mark.parametrize(("base", "key", "value", "message"), ERRORS,
                         ids=[f"{e[1]}={e[2]!r}" for e in ERRORS])
def test_errors_name_their_key_path(base: dict[str, Any], key: str, value: Any,
                                    message: str) -> None:
    doc = copy.deepcopy(base)
    _set(doc, key, value)
    data = {"plans": [{"name": "first"}, doc]}
    with pytest.raises(PlanError) as e:
        parse_plans(data)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)
    assert f"{e.value.path}: {e.value.message}" == message


def test_fee_keys() -> None:
    plan = parse_plan({"name": "fiber", "period": "weekly", "billing_day": 15, "fee": "29.90",
                       "cycle_months": 3, "setup_fee": "49"})
    assert plan.fee == Fee(299000, 3, 15, 490000)
    assert plan.period == PeriodSpec("weekly", 1)          # usage still counts weekly
    d = plan_to_dict(plan)
    assert (d["fee"], d["cycle_months"], d["setup_fee"], d["billing_day"]) == \
        ("29.90", 3, "49.00", 15)
    assert parse_plan({"name": "free", "fee": "0"}).fee == Fee(0, 1, 1, 0)
    assert parse_plan({"name": "none"}).fee is None
    assert "fee" not in plan_to_dict(parse_plan({"name": "none"}))


def test_bases_are_valid() -> None:
    assert len(parse_plans([{"name": "first"}, BASE, BILL | {"name": "bill2"}])) == 3


@pytest.mark.parametrize(("data", "message"), [
    ({"plans": {"name": "x"}}, "plans: must be a list"),
    ({"plans": ["x"]}, "plans[0]: must be a mapping"),
])
def test_top_level_errors(data: Any, message: str) -> None:
    with pytest.raises(PlanError, match=f"^{message}$".replace("[", r"\[").replace("]", r"\]")):
        parse_plans(data)


def test_unquoted_time_from_yaml_gets_a_hint() -> None:
    doc = yaml.safe_load("plans:\n  - name: p\n    bands:\n"
                         "      - {name: night, from: 22:00, to: '07:00', weight: 0}\n")
    with pytest.raises(PlanError, match=r'plans\[0\]\.bands\[0\]\.from: expected HH:MM '
                                        r'\(quote it: "22:00"\)'):
        parse_plans(doc)


# --- round trip of any plan parse_plan can produce --------------------------------

_weights = st.one_of(
    st.fractions(min_value=0, max_value=1, max_denominator=1000),
    st.sampled_from([Fraction(0), Fraction(1), Fraction(1, 2), Fraction(1, 3)]),
)
_bands = st.builds(
    Band,
    name=st.text("abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=12).filter(
        lambda n: n != PEAK),
    days=st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s))),
    start_min=st.integers(0, 1439),
    end_min=st.integers(1, 1440),
    weight=_weights,
    dates=st.sets(st.dates(date(2020, 1, 1), date(2040, 12, 31)), max_size=3).map(
        lambda s: tuple(sorted(s))),
).filter(lambda b: b.start_min != b.end_min)
_money = st.integers(0, 10**12)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    kind = draw(st.sampled_from(["monthly", "weekly", "daily", "none"]))
    over = draw(st.sampled_from(["reject", "disconnect", "bill"]))
    time_limit = draw(st.none() | st.integers(0, 10**7))
    octets_limit = draw(st.none() | st.integers(0, 10**15))
    price = None
    if over == "bill" or draw(st.booleans()):
        hour = draw(_money) if time_limit is not None or draw(st.booleans()) else None
        gb = draw(_money) if octets_limit is not None or hour is None else None
        price = OveragePrice(hour, gb)
    block = None
    if over != "bill" and draw(st.booleans()):
        on_exhaust = draw(st.sampled_from(["cutoff", "renew"]))
        block = BlockSpec(draw(st.integers(1, 10**4)), draw(st.integers(1, 3650)), on_exhaust,
                          draw(_money) if on_exhaust == "renew" else draw(st.none() | _money))
    bands = draw(st.lists(_bands, max_size=4, unique_by=lambda b: b.name))
    billing_day = draw(st.integers(1, 28))
    max_sessions = draw(st.none() | st.integers(1, 100))
    fee = None
    if draw(st.booleans()):
        fee = Fee(draw(_money), draw(st.sampled_from([1, 3, 6, 12])), billing_day,
                  draw(st.just(0) | _money))
    return Plan(
        name=draw(st.text(min_size=1, max_size=64).filter(lambda n: n.strip() != "")),
        period=PeriodSpec(kind, billing_day if kind == "monthly" else 1), fee=fee,
        time_limit_s=time_limit, octets_limit=octets_limit,
        octets_direction=draw(st.sampled_from(["in", "out", "total"])),
        max_sessions=max_sessions, over_limit=over,
        on_max_sessions=("reject" if max_sessions is None
                         else draw(st.sampled_from(["reject", "replace-oldest"]))),
        overage_price=price, bands=tuple(bands), block=block,
    )


@given(plans())
def test_round_trip(plan: Plan) -> None:
    d = plan_to_dict(plan)
    assert parse_plan(d) == plan
    assert parse_plan(json.loads(json.dumps(d))) == plan       # the plans.definition column
    assert parse_plan(yaml.safe_load(yaml.safe_dump(d))) == plan


def test_on_max_sessions_needs_max_sessions_and_defaults_to_reject() -> None:
    assert parse_plan({"name": "p", "max_sessions": 1}).on_max_sessions == "reject"
    p = parse_plan({"name": "p", "max_sessions": 1, "on_max_sessions": "replace-oldest"})
    assert p.on_max_sessions == "replace-oldest"
    assert plan_to_dict(p)["on_max_sessions"] == "replace-oldest"
    # the default is left out of the stored definition: existing plans read back unchanged
    assert "on_max_sessions" not in plan_to_dict(parse_plan({"name": "p", "max_sessions": 1}))
    with pytest.raises(PlanError) as e:
        parse_plan({"name": "p", "on_max_sessions": "replace-oldest"}, "plans[0]")
    assert str(e.value) == ("plans[0].on_max_sessions: needs max_sessions (it says what "
                            "happens when a login would go over it)")
