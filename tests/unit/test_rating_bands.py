"""Calls cut at band boundaries (core.telephony.rating.rate_parts, cdr.build_cdr),
per-second prices, inbound rate tables and unrated calls.

Issue 16: a 1,200 s mobile call 19:50–20:10 cost 3.80 (all at the peak rate
it started in) where splitting at 20:00 gives 3.40.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aaad.core.quotas.bands import split_by_band
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.cdr import (
    FinishedCall,
    FreeMinutesLeft,
    NumberRules,
    build_cdr,
    call_pieces,
    wholesale_cost,
)
from aaad.core.telephony.rate_table import (
    Increment,
    Rate,
    RateTable,
    affordable_seconds,
    cost,
    parse_rates_csv,
)
from aaad.core.telephony.rating import (
    AHEAD_S,
    CallAccept,
    affordable_split,
    authorise_call,
    format_bands,
    rate_call,
    rate_parts,
)

BERLIN = ZoneInfo("Europe/Berlin")
RULES = NumberRules(emergency_numbers=("112",))
BANDED = parse_plan({
    "name": "banded", "rate_table": "std", "inbound_rate_table": "inbound",
    "free_minutes": {"minutes": 5, "destinations": ["4917"]},
    "bands": [{"name": "offpeak", "from": "20:00", "to": "08:00", "weight": 1},
              {"name": "weekend", "days": ["sat", "sun"], "from": "00:00", "to": "24:00",
               "weight": 1}]})
STD = RateTable("std", [
    Rate("4917", "Germany mobile", 1900, 0, Increment(60, 60)),
    Rate("4917", "Germany mobile offpeak", 1500, 0, Increment(60, 60), band="offpeak"),
    Rate("4917", "Germany mobile weekend", 1000, 0, Increment(60, 60), band="weekend"),
    Rate("4930", "Berlin", 1000, 500, Increment(60, 6)),
    Rate("4930", "Berlin offpeak", 3, 0, Increment(60, 6), band="offpeak", unit="s"),
    Rate("1", "USA", 200, 0, Increment(1, 1), band="offpeak"),
])
INBOUND = RateTable("inbound", [Rate("4915", "from German mobiles", 100, 0, Increment(1, 1)),
                                Rate("49", "from Germany", 0, 0, Increment(1, 1))])


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=BERLIN).timestamp())


def call(at: int, seconds: int, dialled: str = "491701234", direction: str = "out",
         caller: str = "4915112345") -> FinishedCall:
    return FinishedCall("k1", 7, "alice", at, seconds, dialled, caller, direction)


def cdr_of(f: FinishedCall, free: FreeMinutesLeft | None = None) -> dict[str, object]:
    return build_cdr(BANDED, f, STD, free, BERLIN, RULES, inbound_table=INBOUND)


def test_the_issue_call_is_split_at_20_00() -> None:
    """1,200 s 19:50–20:10 on a Wednesday: 600 s peak at 0.19 + 600 s offpeak at 0.15."""
    cdr = cdr_of(call(berlin(2026, 12, 2, 19, 50), 1200))
    assert (cdr["cost"], cdr["billed_s"], cdr["band"], cdr["bands"], cdr["unrated"]) == \
        (34000, 1200, "peak", "peak:600,offpeak:600", None)
    assert cdr["price"] == 1900 and cdr["prefix"] == "4917"


def test_increments_apply_per_call_and_round_up_in_the_last_band() -> None:
    """60/60: 19:59:30 + 61 s is 120 billed s, not 60 + 60 + rounding per part."""
    cdr = cdr_of(call(berlin(2026, 12, 2, 19, 59, 30), 61))
    assert (cdr["billed_s"], cdr["bands"]) == (120, "peak:30,offpeak:90")
    assert cdr["cost"] == (2 * (30 * 1900 + 90 * 1500) + 60) // 120


def test_free_seconds_cover_the_call_from_its_start() -> None:
    free = FreeMinutesLeft(berlin(2026, 12, 1), 300, 0, True)
    cdr = cdr_of(call(berlin(2026, 12, 2, 19, 50), 1200), free)
    assert (cdr["free_s"], cdr["bands"]) == (300, "peak:600,offpeak:600")
    assert cdr["cost"] == (300 * 1900 + 600 * 1500) // 60


def test_per_second_prices_and_mixed_units() -> None:
    """Berlin: 0.10/min + 0.05 fee in peak, 0.0003/s off-peak (opening fee only)."""
    cdr = cdr_of(call(berlin(2026, 12, 2, 19, 59), 120, "49301234"))
    assert cdr["bands"] == "peak:60,offpeak:60"
    assert cdr["cost"] == 500 + 1000 + 60 * 3 and cdr["unit"] == "min"
    night = cdr_of(call(berlin(2026, 12, 2, 21, 0), 61, "49301234"))
    assert (night["billed_s"], night["cost"], night["unit"]) == (66, 66 * 3, "s")
    assert cost(STD.match("4930", "offpeak"), 66) == 198       # type: ignore[arg-type]
    assert affordable_seconds(STD.match("4930", "offpeak"), 198) == 66  # type: ignore[arg-type]
    assert affordable_seconds(STD.match("4930", "offpeak"), 197) == 60  # type: ignore[arg-type]


def test_a_band_without_a_rate_is_priced_at_the_opening_rate() -> None:
    """The USA has only an off-peak rate: a call starting at 08:00 has no rate
    (the band it started in has none); one starting off-peak at 07:59 keeps
    its rate into the peak."""
    assert cdr_of(call(berlin(2026, 12, 2, 8), 120, "12125550"))["unrated"] == "no_rate"
    early = cdr_of(call(berlin(2026, 12, 2, 7, 59), 120, "12125550"))
    assert (early["unrated"], early["cost"], early["bands"]) == (None, 400, "offpeak:60,peak:60")


def test_dst_night_is_cut_at_the_local_boundary() -> None:
    """On 2026-10-25 Berlin repeats 02:00-03:00: a call 07:30-08:30 local is still
    cut at 08:00 local (CET), each side 1,800 s."""
    cdr = cdr_of(call(berlin(2026, 10, 26, 7, 30), 3600))      # Monday after the change
    assert cdr["bands"] == "offpeak:1800,peak:1800"
    spring = cdr_of(call(berlin(2026, 3, 30, 19, 30), 3600))   # Monday after spring forward
    assert spring["bands"] == "peak:1800,offpeak:1800"


def test_inbound_calls_use_their_own_table_by_the_callers_number() -> None:
    cdr = cdr_of(call(berlin(2026, 12, 2, 10), 90, "4930555", "in", "4915112345"))
    assert (cdr["direction"], cdr["prefix"], cdr["cost"], cdr["rate_table"]) == \
        ("in", "4915", 150, "inbound")
    landline = cdr_of(call(berlin(2026, 12, 2, 10), 90, "4930555", "in", "4940111"))
    assert (landline["cost"], landline["unrated"], landline["prefix"]) == (0, None, "49")
    anonymous = cdr_of(call(berlin(2026, 12, 2, 10), 90, "4930555", "in", "anonymous"))
    assert anonymous["unrated"] == "no_caller"
    no_table = build_cdr(BANDED, call(berlin(2026, 12, 2, 10), 90, direction="in"), STD, None,
                         BERLIN, RULES)
    assert (no_table["unrated"], no_table["cost"]) == ("no_rate_table", 0)
    plain = parse_plan({"name": "p", "rate_table": "std"})
    not_rated = build_cdr(plain, call(berlin(2026, 12, 2, 10), 90, direction="in"), STD,
                          None, BERLIN, RULES)
    assert (not_rated["unrated"], not_rated["bands"]) == ("inbound", "peak:90")


@pytest.mark.parametrize("dialled,table,reason", [
    ("", STD, "no_destination"), ("sip:alice@example.com", STD, "no_destination"),
    ("4420", STD, "no_rate"), ("491701234", None, "no_rate_table"), ("112", STD, "emergency"),
])
def test_unrated_calls_say_why(dialled: str, table: RateTable | None, reason: str) -> None:
    cdr = build_cdr(BANDED, call(berlin(2026, 12, 2, 10), 60, dialled), table, None, BERLIN,
                    RULES)
    assert (cdr["unrated"], cdr["cost"], cdr["prefix"]) == (reason, 0, None)


def test_rates_csv_unit_column_is_optional() -> None:
    old = list(parse_rates_csv(["prefix,description,price,connection_fee,increment",
                                "49,DE,0.10,0,60/6"]))
    assert old[0].unit == "min"
    new = list(parse_rates_csv(["prefix,description,price,connection_fee,increment,unit,band",
                                "49,DE,0.0015,0,1/1,s,", "49,DE,0.05,0,60/6,min,offpeak"]))
    assert [(r.unit, r.band, r.price) for r in new] == [("s", "", 15), ("min", "offpeak", 500)]
    with pytest.raises(ValueError, match="line 2: unit must be min"):
        list(parse_rates_csv(["prefix,description,price,connection_fee,increment,unit",
                              "49,DE,0.10,0,60/6,hour"]))


def test_wholesale_is_split_too() -> None:
    f = call(berlin(2026, 12, 2, 19, 50), 1200)
    assert wholesale_cost(f, STD, call_pieces(BANDED, f, BERLIN), RULES) == 34000
    assert wholesale_cost(f, STD, "peak", RULES) == 38000


# -- properties ----------------------------------------------------------------------

rates = st.builds(Rate, st.just("49"), st.just(""), st.integers(0, 50_000),
                  st.integers(0, 1000), st.builds(Increment, st.integers(1, 90),
                                                  st.integers(1, 90)),
                  st.just(""), st.sampled_from(["min", "s"]))
instants = st.integers(berlin(2026, 1, 1), berlin(2027, 1, 1))


def old_rate_call(rate: Rate, duration_s: int, free_left_s: int) -> tuple[int, int, int]:
    """Rating as it was before calls were split: one rate for the whole call."""
    billed = rate.increment.billed(duration_s)
    free = min(free_left_s, billed)
    chargeable = billed - free
    per_min = rate.price * 60 if rate.unit == "s" else rate.price
    money = 0 if chargeable <= 0 else rate.connection_fee + (2 * per_min * chargeable + 60) // 120
    return billed, free, money


@settings(max_examples=300)
@given(instants, st.integers(0, 3 * 86400), st.sampled_from(["491701234", "49301234"]))
def test_parts_add_up_to_the_billed_seconds(at: int, seconds: int, dialled: str) -> None:
    cdr = cdr_of(call(at, seconds, dialled))
    total = sum(int(x.rsplit(":", 1)[1]) for x in str(cdr["bands"]).split(","))
    assert total == cdr["billed_s"]
    assert next(p for p, _ in call_pieces(BANDED, call(at, seconds), BERLIN)) == cdr["band"]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["peak", "offpeak", "weekend"]), rates,
                          st.integers(0, 4000)), min_size=1, max_size=6),
       st.integers(0, 5000), st.data())
def test_splitting_is_invariant_to_where_a_part_is_cut(
        pieces: list[tuple[str, Rate, int]], free_s: int, data: st.DataObject) -> None:
    """Cutting any part in two (same band, same rate) changes nothing."""
    base = [(band, s, rate) for band, rate, s in pieces]
    i = data.draw(st.integers(0, len(base) - 1))
    band, s, rate = base[i]
    cut = data.draw(st.integers(0, s))
    finer = [*base[:i], (band, cut, rate), (band, s - cut, rate), *base[i + 1:]]
    a, b = rate_parts(base, free_s), rate_parts(finer, free_s)
    assert (a.cost, a.billed_s, a.free_s) == (b.cost, b.billed_s, b.free_s)
    assert format_bands([(p.band, p.billed_s) for p in a.parts]) == \
        format_bands([(p.band, p.billed_s) for p in b.parts])
    assert sum(p.billed_s for p in a.parts) == a.billed_s
    assert sum(p.free_s for p in a.parts) == a.free_s


@settings(max_examples=300)
@given(rates, st.integers(0, 100_000), st.integers(0, 10_000))
def test_a_call_in_one_band_costs_what_it_did_before(rate: Rate, seconds: int,
                                                    free_s: int) -> None:
    rated = rate_call(rate, seconds, free_s)
    assert (rated.billed_s, rated.free_s, rated.cost) == old_rate_call(rate, seconds, free_s)
    assert rated.cost == cost(rate, rated.billed_s, rated.free_s)


@settings(max_examples=200)
@given(st.integers(berlin(2026, 12, 2, 8), berlin(2026, 12, 2, 19)), st.integers(0, 3600))
def test_a_call_wholly_in_peak_costs_the_peak_rate(at: int, seconds: int) -> None:
    cdr = cdr_of(call(at, seconds))
    assert cdr["bands"] == f"peak:{cdr['billed_s']}"
    assert (cdr["billed_s"], cdr["free_s"], cdr["cost"]) == \
        old_rate_call(STD.match("4917", "peak"), seconds, 0)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(rates, st.integers(0, 100_000), st.integers(0, 2000))
def test_affordable_seconds_is_exact_for_both_units(rate: Rate, money: int, free_s: int) -> None:
    s = affordable_seconds(rate, money, free_s)
    if s is None:
        return
    assert s == 0 or cost(rate, s, free_s) <= money
    nxt = rate.increment.billed(s + 1)
    assert cost(rate, nxt, free_s) > money or nxt <= s


# -- authorisation across bands -------------------------------------------------------

def ahead_of(at: int) -> list[tuple[str, int]]:
    return split_by_band(at, at + AHEAD_S, BANDED.bands, BERLIN)


def test_session_timeout_prices_the_bands_ahead() -> None:
    """3.40 at 19:50 buys the issue's 1,200 s call (600 s peak + 600 s off-peak),
    where the peak rate alone would allow 1,020 s."""
    at = berlin(2026, 12, 2, 19, 50)
    args = {"number": "491701234", "direction": "out", "emergency": False, "table": STD,
            "band": "peak", "money": 34000, "free_left_s": 0, "open_in": 0, "open_out": 0}
    split = authorise_call(BANDED, **args, ahead=ahead_of(at))  # type: ignore[arg-type]
    flat = authorise_call(BANDED, **args)  # type: ignore[arg-type]
    assert isinstance(split, CallAccept) and isinstance(flat, CallAccept)
    assert (split.session_timeout_s, flat.session_timeout_s) == (1200, 1020)
    rated = cdr_of(call(at, 1200))
    assert rated["cost"] == 34000
    # one second of money less: one increment less
    short = authorise_call(BANDED, **{**args, "money": 33999}, ahead=ahead_of(at))  # type: ignore[arg-type]
    assert isinstance(short, CallAccept) and short.session_timeout_s == 1140


@settings(max_examples=200)
@given(instants, st.integers(0, 200_000), st.integers(0, 600),
       st.sampled_from(["491701234", "49301234"]))
def test_affordable_split_is_the_longest_call_the_money_pays(at: int, money: int, free_s: int,
                                                             number: str) -> None:
    opening = STD.match(number, ahead_of(at)[0][0])
    assert opening is not None
    pieces = [(b, s, STD.match(number, b) or opening) for b, s in ahead_of(at)]
    got = affordable_split(pieces, money, free_s)
    assert got is not None
    f = call(at, got, number)
    free = FreeMinutesLeft(0, free_s, 0, True)
    plan = parse_plan({"name": "p", "rate_table": "std", "period": "none",
                       "free_minutes": {"minutes": "10h", "destinations": [number[:4]]},
                       "bands": [{"name": "offpeak", "from": "20:00", "to": "08:00",
                                  "weight": 1},
                                 {"name": "weekend", "days": ["sat", "sun"], "from": "00:00",
                                  "to": "24:00", "weight": 1}]})
    cost_at = build_cdr(plan, f, STD, free, BERLIN, RULES)
    if got:
        assert cost_at["cost"] <= money and cost_at["billed_s"] == got
    longer = build_cdr(plan, call(at, got + 1, number), STD, free, BERLIN, RULES)
    assert longer["cost"] > money
