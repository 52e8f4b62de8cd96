"""Properties of counting, from the wire to the period and band rows (hypothesis).

test_sessions.py checks the counting rule on core records. Here the packets
are real Accounting-Requests: 64-bit counters sent as 32-bit Octets plus
Gigawords (so they wrap), decoded by aaad's wire layer, then counted. For any
permutation and any duplication of a session's packets, and of several
sessions interleaved:

* the stored totals are the last packet's totals (a Stop's, or for a session
  still open, the newest Interim's);
* the deltas add up to exactly those totals, as in the ordered stream;
* split over periods in zones with DST (23- and 25-hour days, Lord Howe's
  30-minute shift) and then over peak/off-peak bands, no second or octet is
  lost or made up.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrad.packet import AcctPacket

from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.sessions import (
    ZERO,
    AcctRecord,
    Applied,
    SessionState,
    Totals,
    apply_record,
)
from aaad.core.accounting.usage import split_usage_timed
from aaad.core.quotas.bands import weighted_usage
from aaad.core.quotas.plan import Band, Plan
from aaad.radius.codec import ACCT_CODES, accounting_record, decode_request
from tests.support.radius_packets import DICT, NAS, SECRET, make_client

EXAMPLES = settings(max_examples=max(200, settings.default.max_examples),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLIENT = make_client()
GIGAWORD = 2**32
ZONES = [ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                               "America/Santiago", "UTC")]
SPECS = [PeriodSpec("daily"), PeriodSpec("weekly"), PeriodSpec("monthly", 28),
         PeriodSpec("none")]


def _utc(y: int, mo: int, d: int, h: int = 0) -> int:
    return int(datetime(y, mo, d, h, tzinfo=ZoneInfo("UTC")).timestamp())


# Start times near DST changes in several zones, and anywhere in 2026.
_start_at = st.one_of(
    st.sampled_from([_utc(2026, 3, 29, 0), _utc(2026, 10, 24, 22), _utc(2026, 3, 8, 5),
                     _utc(2026, 4, 4, 14), _utc(2026, 10, 3, 15), _utc(2026, 12, 31, 20)]).flatmap(
        lambda t: st.integers(t - 4 * 3600, t + 4 * 3600)),
    st.integers(_utc(2026, 1, 1), _utc(2027, 1, 1)),
)


# -- the wire ----------------------------------------------------------------------------

def wire_record(status: str, session: str, totals: Totals, at: int, arrival: int,
                ident: int) -> AcctRecord:
    """Encode as a NAS does (pyrad; 32-bit Octets + Gigawords), decode as aaad does."""
    p = AcctPacket(id=ident & 0xFF, secret=SECRET, dict=DICT)
    p["Acct-Status-Type"] = status
    p["User-Name"] = "alice"
    p["Acct-Session-Id"] = session
    p["NAS-IP-Address"] = "192.0.2.1"
    p["Event-Timestamp"] = at
    if status != "Start":
        p["Acct-Session-Time"] = totals.session_s
        p["Acct-Input-Octets"] = totals.in_octets % GIGAWORD
        p["Acct-Output-Octets"] = totals.out_octets % GIGAWORD
        if totals.in_octets >= GIGAWORD:
            p["Acct-Input-Gigawords"] = totals.in_octets // GIGAWORD
        if totals.out_octets >= GIGAWORD:
            p["Acct-Output-Gigawords"] = totals.out_octets // GIGAWORD
    if status == "Stop":
        p["Acct-Terminate-Cause"] = "User-Request"
    req = decode_request(p.RequestPacket(), CLIENT, NAS, allowed=ACCT_CODES, dictionary=DICT)
    rec = accounting_record(req, arrival)
    assert rec is not None
    assert rec.totals == totals and rec.at == at     # Gigawords folded back exactly
    return rec


# Steps of the octet counters: small, around one 2^32 wrap, several wraps at once.
_octet_step = st.one_of(st.integers(0, 10**7), st.integers(GIGAWORD - 10**4, GIGAWORD + 10**4),
                        st.integers(0, 5 * GIGAWORD))


@st.composite
def session_stream(draw: st.DrawFn, session: str = "s1") -> list[AcctRecord]:
    """Start, Interims with growing counters, maybe a Stop: in order, as sent."""
    at = draw(_start_at)
    k = draw(st.integers(0, 6))
    stops = draw(st.booleans())
    totals = ZERO
    out = [wire_record("Start", session, ZERO, at, at + draw(st.integers(0, 5)), 0)]
    for i in range(1, k + 2):
        step = draw(st.integers(0, 7200))
        at += step
        totals = Totals(totals.session_s + step, totals.in_octets + draw(_octet_step),
                        totals.out_octets + draw(_octet_step))
        status = "Stop" if stops and i == k + 1 else "Interim-Update"
        out.append(wire_record(status, session, totals, at, at + draw(st.integers(0, 5)), i))
    return out


def run(records: list[AcctRecord]) -> tuple[dict[str, SessionState], list[Applied]]:
    states: dict[str, SessionState] = {}
    applied = []
    for rec in records:
        a = apply_record(states.get(rec.key), rec)
        states[rec.key] = a.state
        applied.append(a)
    return states, applied


def total(parts: list[Totals]) -> Totals:
    out = ZERO
    for p in parts:
        out = out + p
    return out


@st.composite
def delivered(draw: st.DrawFn, streams: list[list[AcctRecord]]) -> list[AcctRecord]:
    """All streams' packets, each delivered once or more, in any order."""
    packets = [p for s in streams for p in s]
    extra = draw(st.lists(st.sampled_from(packets), max_size=2 * len(packets)))
    return draw(st.permutations(packets + extra))


@EXAMPLES
@given(st.data())
def test_any_order_and_duplication_counts_the_last_totals(data: st.DataObject) -> None:
    stream = data.draw(session_stream())
    final = stream[-1]
    ordered_states, ordered = run(stream)
    states, applied = run(data.draw(delivered([stream])))
    [state] = states.values()
    assert state.totals == ordered_states[final.key].totals == final.totals
    assert total([a.delta for a in applied]) == total([a.delta for a in ordered]) == final.totals
    assert state.open == (final.status.name != "STOP")
    assert state.updated_at == final.at


@EXAMPLES
@given(st.data())
def test_interleaved_sessions_count_each_one_alone(data: st.DataObject) -> None:
    streams = [data.draw(session_stream(f"s{i}")) for i in range(data.draw(st.integers(2, 3)))]
    states, applied = run(data.draw(delivered(streams)))
    assert {k: s.totals for k, s in states.items()} == {s[-1].key: s[-1].totals for s in streams}
    assert total([a.delta for a in applied]) == total([s[-1].totals for s in streams])
    per_session: dict[str, Totals] = {}
    for a in applied:
        per_session[a.state.key] = per_session.get(a.state.key, ZERO) + a.delta
    assert per_session == {s[-1].key: s[-1].totals for s in streams}


# -- periods and bands -------------------------------------------------------------------

BANDS = (Band("night", tuple(range(7)), 1 * 60 + 30, 6 * 60, Fraction(0)),
         Band("evening", (0, 1, 2, 3, 4), 18 * 60, 24 * 60, Fraction(1, 2)),
         Band("weekend", (5, 6), 0, 24 * 60, Fraction(2, 3)))
PLAN = Plan(name="p", bands=BANDS)


@EXAMPLES
@given(st.data(), st.sampled_from(ZONES), st.sampled_from(SPECS))
def test_period_and_band_split_of_every_delta_loses_nothing(
        data: st.DataObject, tz: ZoneInfo, spec: PeriodSpec) -> None:
    stream = data.draw(session_stream())
    _, applied = run(data.draw(delivered([stream])))
    by_period: dict[int, Totals] = {}
    raw_by_band = ZERO
    for a in applied:
        parts = split_usage_timed(a.delta, a.t0, a.t1, spec, tz)
        assert total([p.usage for p in parts]) == a.delta
        assert sum(p.t1 - p.t0 for p in parts) <= max(0, a.t1 - a.t0)
        for p in parts:
            start, end = period_bounds(spec, tz, max(p.t0, p.t1 - 1))
            assert start == p.period_start and start <= p.t0 and (end is None or p.t1 <= end)
            by_period[p.period_start] = by_period.get(p.period_start, ZERO) + p.usage
            s, i, o, per_band = weighted_usage(p.usage, p.t0, p.t1, PLAN, tz)
            assert total(list(per_band.values())) == p.usage
            assert s <= p.usage.session_s and i <= p.usage.in_octets and o <= p.usage.out_octets
            raw_by_band = raw_by_band + total(list(per_band.values()))
    assert total(list(by_period.values())) == raw_by_band == stream[-1].totals
