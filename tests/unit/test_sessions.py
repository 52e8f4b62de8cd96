"""Tests of aaad/core/accounting/sessions.py: the counting rule and the session lifecycle.

The key invariant (DESIGN §2): whatever order, retransmits and failover copies
the packets of one session arrive in, the deltas add up to the Stop's totals
and the stored totals end as the Stop's totals.
"""

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aaad.core.accounting.sessions import (
    GIGAWORD,
    MAX_CLOCK_AHEAD_S,
    MAX_SPAN_S,
    ZERO,
    AcctRecord,
    Cause,
    SessionState,
    Status,
    Totals,
    apply_record,
    close_state,
    event_time,
    fold_gigawords,
    session_key,
    usage_delta,
)
from tests.support.records import acct_record

NAS = "192.0.2.1"
SID = "5A3F0001"
USER = "alice"
T = 1_790_000_000          # the session's Start, a POSIX second


def rec(status: Status, totals: Totals = ZERO, at: int = T, *, arrival: int | None = None,
        cause: str | None = None, sid: str = SID) -> AcctRecord:
    return acct_record(status, at, totals, user_name=USER, acct_session_id=sid, nas_key=NAS,
                       nas_address=NAS, arrival=arrival, terminate_cause=cause)


def start(at: int = T, **kw) -> AcctRecord:
    return rec(Status.START, ZERO, at, **kw)


def interim(totals: Totals, at: int, **kw) -> AcctRecord:
    return rec(Status.INTERIM, totals, at, **kw)


def stop(totals: Totals, at: int, cause: str | None = "User-Request", **kw) -> AcctRecord:
    return rec(Status.STOP, totals, at, cause=cause, **kw)


def run(packets, prev: SessionState | None = None):
    """Apply packets in order; return (final state, [Applied])."""
    applied = []
    state = prev
    for p in packets:
        a = apply_record(state, p)
        applied.append(a)
        state = a.state
    return state, applied


def total_delta(applied) -> Totals:
    return sum((a.delta for a in applied), ZERO)


# --- fold_gigawords / usage_delta --------------------------------------------------

@pytest.mark.parametrize(("octets", "gigawords", "folded"), [
    (0, 0, 0),
    (12345, 0, 12345),
    (0, 1, 2**32),
    (5, 1, 2**32 + 5),
    (9, 5, 5 * 2**32 + 9),
    (2**32 - 1, 2**32 - 1, 2**64 - 1),
])
def test_fold_gigawords(octets, gigawords, folded):
    assert fold_gigawords(octets, gigawords) == folded
    assert GIGAWORD == 2**32


@pytest.mark.parametrize(("stored", "reported", "delta"), [
    (ZERO, Totals(600, 1000, 2000), Totals(600, 1000, 2000)),
    (Totals(600, 1000, 2000), Totals(900, 1500, 2100), Totals(300, 500, 100)),
    (Totals(600, 1000, 2000), Totals(600, 1000, 2000), ZERO),        # retransmit / failover copy
    (Totals(900, 1500, 2100), Totals(600, 1000, 2000), ZERO),        # older packet, late
    (Totals(900, 1000, 2100), Totals(600, 1500, 2000), Totals(0, 500, 0)),  # per counter
    # an octet counter that wrapped at 2^32 and was folded with Gigawords
    (Totals(60, 2**32 - 10, 0), Totals(120, 2**32 + 90, 0), Totals(60, 100, 0)),
    (Totals(600, 5 * 2**32 + 9, 70), Totals(600, 5 * 2**32 + 9, 70), ZERO),
])
def test_usage_delta(stored, reported, delta):
    assert usage_delta(stored, reported) == delta


def test_totals_add_and_is_zero():
    assert Totals(1, 2, 3) + Totals(10, 20, 30) == Totals(11, 22, 33)
    assert ZERO.is_zero()
    assert not Totals(0, 0, 1).is_zero()
    assert not Totals(1, 0, 0).is_zero()


# --- session_key --------------------------------------------------------------------

def test_session_key_is_stable():
    # Stored in the database and shared between nodes: it must never change.
    # sha256("192.0.2.1\0" "5A3F0001\0" "alice")[:32]
    assert session_key(NAS, SID, USER) == "4696152bbf20b43af672d99925329fa5"
    assert session_key(NAS, SID, USER) == session_key(NAS, SID, USER)
    assert rec(Status.START).key == session_key(NAS, SID, USER)


@pytest.mark.parametrize("other", [
    ("192.0.2.2", SID, USER),
    (NAS, "5A3F0002", USER),
    (NAS, SID, "bob"),
    (NAS, SID, "Alice"),
    (NAS, SID, "alice "),
    (NAS + SID, "", USER),          # the separator keeps the fields apart
    ("", NAS + SID, USER),
])
def test_session_key_depends_on_every_field(other):
    key = session_key(*other)
    assert len(key) == 32 and int(key, 16) >= 0
    assert key != session_key(NAS, SID, USER)


def test_session_key_takes_undecodable_bytes():
    # The codec decodes text attributes with surrogateescape; such names still hash.
    raw_name = b"alice\xff".decode("utf-8", "surrogateescape")
    assert session_key(NAS, SID, raw_name) == "7fbe491feb49b045b252617174b67a45"
    assert session_key(NAS, SID, raw_name) != session_key(NAS, SID, "alice\ufffd")


# --- event_time ---------------------------------------------------------------------

ARRIVAL = 1_790_000_000


@pytest.mark.parametrize(("event_timestamp", "delay_s", "at"), [
    (ARRIVAL - 10, None, ARRIVAL - 10),           # Event-Timestamp is used
    (ARRIVAL - 10, 300, ARRIVAL - 10),            # ... and then Acct-Delay-Time is not
    (ARRIVAL - 86400, None, ARRIVAL - 86400),     # a late packet counts when it happened
    (ARRIVAL, None, ARRIVAL),
    (None, None, ARRIVAL),
    (None, 0, ARRIVAL),
    (None, 30, ARRIVAL - 30),                     # arrival − Acct-Delay-Time
    (None, 3600, ARRIVAL - 3600),
    (None, -5, ARRIVAL),                          # a negative delay is ignored
    (0, 30, ARRIVAL - 30),                        # Event-Timestamp 0 means "not set"
    # a NAS clock ahead of ours: trusted up to MAX_CLOCK_AHEAD_S, clamped beyond
    (ARRIVAL + 1, None, ARRIVAL + 1),
    (ARRIVAL + MAX_CLOCK_AHEAD_S, None, ARRIVAL + MAX_CLOCK_AHEAD_S),
    (ARRIVAL + MAX_CLOCK_AHEAD_S + 1, None, ARRIVAL + MAX_CLOCK_AHEAD_S),
    (ARRIVAL + 86400, 30, ARRIVAL + MAX_CLOCK_AHEAD_S),
])
def test_event_time(event_timestamp, delay_s, at):
    assert event_time(ARRIVAL, event_timestamp, delay_s) == at


def test_max_clock_ahead_is_five_minutes():
    assert MAX_CLOCK_AHEAD_S == 300


# --- apply_record: one rule at a time -------------------------------------------------

def test_start_creates_an_open_session():
    a = apply_record(None, start(T, arrival=T + 2))
    assert a.created
    assert a.delta == ZERO
    assert (a.t0, a.t1) == (T, T)
    assert a.state == SessionState(key=session_key(NAS, SID, USER), user_name=USER,
                                   totals=ZERO, started_at=T, updated_at=T,
                                   last_seen=T + 2, open=True)


def test_interim_then_stop_count_the_increase():
    s, applied = run([start(T),
                      interim(Totals(300, 1000, 5000), T + 300),
                      stop(Totals(420, 1500, 7000), T + 420)])
    assert [a.delta for a in applied] == [ZERO, Totals(300, 1000, 5000), Totals(120, 500, 2000)]
    assert [(a.t0, a.t1) for a in applied] == [(T, T), (T, T + 300), (T + 300, T + 420)]
    assert [a.created for a in applied] == [True, False, False]
    assert s.totals == Totals(420, 1500, 7000)
    assert (s.open, s.stopped_at, s.terminate_cause) == (False, T + 420, "User-Request")


def test_stop_without_start_creates_a_closed_session_with_full_totals():
    a = apply_record(None, stop(Totals(600, 1000, 2000), T + 600, arrival=T + 605))
    assert a.created
    assert a.delta == Totals(600, 1000, 2000)
    assert (a.t0, a.t1) == (T, T + 600)                   # started = at − Acct-Session-Time
    assert a.state.totals == Totals(600, 1000, 2000)
    assert (a.state.started_at, a.state.updated_at, a.state.last_seen) == (T, T + 600, T + 605)
    assert (a.state.open, a.state.stopped_at, a.state.terminate_cause) == \
        (False, T + 600, "User-Request")


def test_interim_without_start_creates_an_open_session_with_full_totals():
    a = apply_record(None, interim(Totals(300, 10, 20), T + 300))
    assert a.created and a.state.open
    assert a.delta == Totals(300, 10, 20)
    assert (a.t0, a.t1, a.state.started_at) == (T, T + 300, T)


def test_start_after_stop_does_not_reopen():
    closed, _ = run([stop(Totals(600, 1000, 2000), T + 600)])
    a = apply_record(closed, start(T))
    assert a.delta == ZERO
    assert a.state == closed


def test_interim_after_stop_adds_nothing():
    closed, _ = run([start(T), stop(Totals(600, 1000, 2000), T + 600)])
    a = apply_record(closed, interim(Totals(300, 400, 500), T + 300))
    assert a.delta == ZERO
    assert not a.state.open
    assert a.state.totals == Totals(600, 1000, 2000)
    assert (a.state.stopped_at, a.state.terminate_cause) == (T + 600, "User-Request")


def test_stop_without_cause_is_unknown():
    s, _ = run([stop(Totals(60, 1, 1), T + 60, cause=None)])
    assert s.terminate_cause == "Unknown"


def test_second_stop_does_not_replace_a_real_stop():
    s, applied = run([start(T),
                      stop(Totals(600, 1000, 2000), T + 600, cause="User-Request"),
                      stop(Totals(600, 1000, 2000), T + 660, cause="Lost-Carrier")])
    assert applied[-1].delta == ZERO
    assert (s.stopped_at, s.terminate_cause) == (T + 600, "User-Request")


@pytest.mark.parametrize(("cause", "reopens"), [
    (Cause.STALE, True),
    (Cause.NAS_REBOOT, False),
])
def test_interim_reopens_only_a_stale_close(cause, reopens):
    s, _ = run([start(T), interim(Totals(300, 100, 200), T + 300)])
    s = close_state(s, cause)
    assert (s.open, s.stopped_at, s.terminate_cause) == (False, T + 300, cause)
    a = apply_record(s, interim(Totals(600, 150, 250), T + 600))
    assert a.delta == Totals(300, 50, 50)                 # counted either way
    assert a.state.totals == Totals(600, 150, 250)
    if reopens:
        assert (a.state.open, a.state.stopped_at, a.state.terminate_cause) == (True, None, None)
    else:
        assert (a.state.open, a.state.stopped_at, a.state.terminate_cause) == \
            (False, T + 300, cause)


def test_interim_does_not_reopen_a_real_stop_even_with_more_totals():
    s, _ = run([start(T), stop(Totals(300, 100, 200), T + 300)])
    a = apply_record(s, interim(Totals(600, 150, 250), T + 600))
    assert not a.state.open
    assert a.state.terminate_cause == "User-Request"


@pytest.mark.parametrize("cause", [Cause.NAS_REBOOT, Cause.STALE])
def test_real_stop_replaces_an_inferred_close(cause):
    s, _ = run([start(T), interim(Totals(300, 100, 200), T + 300)])
    s = close_state(s, cause)
    a = apply_record(s, stop(Totals(420, 130, 260), T + 420, cause="Lost-Carrier"))
    assert a.delta == Totals(120, 30, 60)
    assert a.state.totals == Totals(420, 130, 260)
    assert (a.state.open, a.state.stopped_at, a.state.terminate_cause) == \
        (False, T + 420, "Lost-Carrier")


def test_close_state():
    s, _ = run([start(T), interim(Totals(300, 1, 2), T + 300, arrival=T + 301)])
    closed = close_state(s, Cause.NAS_REBOOT)
    assert closed == replace(s, open=False, stopped_at=T + 300, terminate_cause="NAS-Reboot")
    assert close_state(closed, Cause.STALE) is closed     # closing twice changes nothing
    stopped, _ = run([stop(Totals(1, 1, 1), T + 1)])
    assert close_state(stopped, Cause.NAS_REBOOT) is stopped


def test_late_packet_keeps_the_newest_times():
    s, _ = run([start(T, arrival=T), interim(Totals(600, 20, 20), T + 600, arrival=T + 600)])
    a = apply_record(s, interim(Totals(300, 10, 10), T + 300, arrival=T + 900))
    assert a.delta == ZERO
    assert (a.t0, a.t1) == (T + 600, T + 600)             # never a backwards interval
    assert (a.state.updated_at, a.state.last_seen) == (T + 600, T + 900)
    assert a.state.totals == Totals(600, 20, 20)


def test_totals_are_a_per_counter_high_water_mark():
    # A NAS that resets one counter must not make the others count twice.
    s, applied = run([start(T),
                      interim(Totals(300, 1000, 50), T + 300),
                      interim(Totals(600, 10, 80), T + 600),
                      interim(Totals(900, 1200, 90), T + 900)])
    assert [a.delta for a in applied] == [ZERO, Totals(300, 1000, 50), Totals(300, 0, 30),
                                          Totals(300, 200, 10)]
    assert s.totals == Totals(900, 1200, 90)


@pytest.mark.parametrize("status", [Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF])
def test_apply_record_refuses_nas_wide_records(status):
    with pytest.raises(ValueError, match="apply_record does not take"):
        apply_record(None, rec(status))


def test_a_delta_is_attributed_to_at_most_the_last_366_days():
    # Found by benchmarks/fuzz.py: Acct-Session-Time 2^32 - 1 on a new
    # session (or a Start with Event-Timestamp 1) spread one packet over
    # ~50,000 daily periods, one usage row each, in one transaction.
    huge = Totals(2**32 - 1, 7, 9)
    [a] = run([stop(huge, T)])[1]
    assert (a.t0, a.t1, a.delta) == (T - MAX_SPAN_S, T, huge)
    assert MAX_SPAN_S == 366 * 86400
    s, [_first, second] = run([start(1), interim(Totals(60, 1, 1), T)])
    assert (second.t0, second.t1) == (T - MAX_SPAN_S, T)
    assert s.started_at == 1 and s.totals == Totals(60, 1, 1)
    # A gap within the span keeps its real start.
    [a] = run([stop(Totals(86400, 0, 0), T)])[1]
    assert (a.t0, a.t1) == (T - 86400, T)


# --- the invariant: any order, any duplication ----------------------------------------

def session_packets(k: int, step_s: int = 300) -> list[AcctRecord]:
    """Start, k Interims and a Stop with strictly increasing totals and times."""
    packets = [start(T)]
    for i in range(1, k + 1):
        packets.append(interim(Totals(i * step_s, i * 1_000_003, i * GIGAWORD + 7 * i),
                               T + i * step_s))
    n = k + 1
    packets.append(stop(Totals(n * step_s, n * 1_000_003 + 5, n * GIGAWORD + 7 * n + 1),
                        T + n * step_s))
    return packets


def check_order_independent(ordered: list[AcctRecord], final_stop: AcctRecord,
                            prev: SessionState | None = None) -> None:
    s, applied = run(ordered, prev)
    base = ZERO if prev is None else prev.totals
    assert total_delta(applied) + base == final_stop.totals
    assert s.totals == final_stop.totals
    assert (s.open, s.stopped_at, s.terminate_cause) == \
        (False, final_stop.at, final_stop.terminate_cause)
    assert s.updated_at == final_stop.at
    assert s.last_seen == max(p.arrival for p in ordered)
    assert all(a.t0 <= a.t1 for a in applied)
    if prev is None:
        assert [a.created for a in applied] == [True] + [False] * (len(applied) - 1)
        assert s.started_at == T


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_every_permutation_counts_the_stop_totals(k):
    packets = session_packets(k)
    for ordered in itertools.permutations(packets):
        check_order_independent(list(ordered), packets[-1])


def _retransmit(p: AcctRecord, n: int) -> AcctRecord:
    # A retransmit or failover copy: same packet, seen later (and by another node).
    return replace(p, arrival=p.arrival + 5 * n)


def distinct_orders(counts: list[int]):
    """Every distinct ordering of a multiset: packet i appears counts[i] times.

    Yields (packet index, copy number) lists; copy n of a packet comes before copy n+1.
    """
    total = sum(counts)

    def walk(used: list[int], prefix: list[tuple[int, int]]):
        if len(prefix) == total:
            yield list(prefix)
            return
        for i, c in enumerate(counts):
            if used[i] < c:
                used[i] += 1
                prefix.append((i, used[i] - 1))
                yield from walk(used, prefix)
                prefix.pop()
                used[i] -= 1

    yield from walk([0] * len(counts), [])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_every_duplication_pattern_in_every_order_counts_once(k):
    packets = session_packets(k)
    for copies in itertools.product([1, 2, 3] if k == 0 else [1, 2], repeat=len(packets)):
        for order in distinct_orders(list(copies)):
            delivered = [_retransmit(packets[i], n) for i, n in order]
            check_order_independent(delivered, packets[-1])


@pytest.mark.parametrize("cause", [Cause.STALE, Cause.NAS_REBOOT])
@pytest.mark.parametrize("k", [1, 2])
def test_an_inferred_close_at_any_point_does_not_change_the_outcome(cause, k):
    # The sweeper or an Accounting-On may close the session between any two
    # packets; the real Stop still decides how it ended.
    packets = session_packets(k)
    for ordered in itertools.permutations(packets):
        for cut in range(1, len(ordered)):
            s, first = run(ordered[:cut])
            s, rest = run(ordered[cut:], close_state(s, cause))
            assert total_delta(first + rest) == packets[-1].totals
            assert s.totals == packets[-1].totals
            assert (s.open, s.stopped_at, s.terminate_cause) == \
                (False, packets[-1].at, "User-Request")


def test_a_reordered_interim_on_an_existing_session():
    # The same property starting from a stored state part-way through.
    packets = session_packets(3)
    prev, _ = run(packets[:2])
    for ordered in itertools.permutations(packets[2:] + packets[:2]):
        check_order_independent(list(ordered), packets[-1], prev)


# --- the same, randomized ------------------------------------------------------------

@st.composite
def sessions(draw):
    """A monotone packet list, then a shuffled copy with duplicates."""
    k = draw(st.integers(min_value=0, max_value=8))
    at = draw(st.integers(min_value=T - 10**7, max_value=T + 10**7))
    totals = ZERO
    packets = [start(at, arrival=at + draw(st.integers(0, 30)))]
    counter = st.integers(min_value=0, max_value=3 * GIGAWORD)
    for i in range(k + 1):
        step = draw(st.integers(min_value=0, max_value=3600))
        at += step
        totals = Totals(totals.session_s + step, totals.in_octets + draw(counter),
                        totals.out_octets + draw(counter))
        arrival = at + draw(st.integers(0, 30))
        if i < k:
            packets.append(interim(totals, at, arrival=arrival))
        else:
            packets.append(stop(totals, at, arrival=arrival,
                                cause=draw(st.sampled_from(["User-Request", "Idle-Timeout",
                                                            "Lost-Carrier", None]))))
    extra = draw(st.lists(st.sampled_from(packets), max_size=3 * len(packets)))
    delivered = draw(st.permutations(packets + extra))
    return packets, delivered


@settings(max_examples=500)
@given(sessions())
def test_random_order_and_duplicates_count_the_stop_totals(session):
    packets, delivered = session
    final = packets[-1]
    s, applied = run(delivered)
    assert total_delta(applied) == final.totals
    assert s.totals == final.totals
    assert not s.open
    assert s.terminate_cause == (final.terminate_cause or "Unknown")
    assert s.stopped_at == final.at
    assert s.updated_at == max(p.at for p in packets)
    assert s.last_seen == max(p.arrival for p in delivered)
    assert all(a.t0 <= a.t1 for a in applied)
    assert all(min(a.delta.session_s, a.delta.in_octets, a.delta.out_octets) >= 0
               for a in applied)


@settings(max_examples=300)
@given(sessions(), st.data())
def test_random_inferred_close_does_not_change_the_outcome(session, data):
    packets, delivered = session
    cut = data.draw(st.integers(min_value=1, max_value=len(delivered)))
    cause = data.draw(st.sampled_from(sorted(Cause.INFERRED)))
    s, first = run(delivered[:cut])
    s, rest = run(delivered[cut:], close_state(s, cause))
    assert total_delta(first + rest) == packets[-1].totals
    assert s.totals == packets[-1].totals
    assert not s.open
