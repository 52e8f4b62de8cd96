"""core.telephony.cdr.wholesale_cost: a call at the tenant's wholesale table, with
the retail matching and billed-seconds rules and never free minutes."""

from __future__ import annotations

import pytest

from aaad.core.telephony.cdr import FinishedCall, NumberRules, wholesale_cost
from aaad.core.telephony.rate_table import RateTable, parse_rates_csv
from aaad.core.telephony.rating import INBOUND, OUTBOUND

TABLE = RateTable("wh", list(parse_rates_csv([
    "prefix,description,price,connection_fee,increment,band",
    "4930,Berlin,0.06,0.01,60/60,",
    "4930,Berlin offpeak,0.03,0,1/1,offpeak",
    "44,UK,0.09,0,30/6,"])))
RULES = NumberRules(emergency_numbers=("112",))


def call(dialled: str, duration_s: int, direction: str = OUTBOUND) -> FinishedCall:
    return FinishedCall("k", 1, "bob", 0, duration_s, dialled, "4940", direction)


@pytest.mark.parametrize(("dialled", "duration_s", "band", "direction", "expected"), [
    ("4930123", 61, "peak", OUTBOUND, 100 + 1200),      # 120 s at 0.06, fee 0.01
    ("4930123", 60, "peak", OUTBOUND, 100 + 600),
    ("4930123", 61, "offpeak", OUTBOUND, 305),          # 61 s at 0.03: 0.0305
    ("4420", 31, "peak", OUTBOUND, 540),                # 30/6: 36 s at 0.09
    ("4930123", 0, "peak", OUTBOUND, 0),                # nothing billed, no fee
    ("3312", 61, "peak", OUTBOUND, None),               # no rate: not rated wholesale
    ("4930123", 61, "peak", INBOUND, 0),                # inbound calls cost nothing
    ("112", 61, "peak", OUTBOUND, 0),                   # nor do emergency calls
])
def test_wholesale_cost(dialled: str, duration_s: int, band: str, direction: str,
                        expected: int | None) -> None:
    assert wholesale_cost(call(dialled, duration_s, direction), TABLE, band, RULES) == expected
