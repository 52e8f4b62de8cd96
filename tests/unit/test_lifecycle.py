"""The session lifecycle table (core/accounting/lifecycle.py), and the counting
rule and the inferred closes agreeing with it for every (phase, event)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from aaad.core.accounting.lifecycle import (
    TRANSITIONS,
    Action,
    Event,
    Phase,
    closing_phases,
    phase_of,
    transition,
)
from aaad.core.accounting.sessions import (
    AcctRecord,
    Cause,
    SessionState,
    Status,
    Totals,
    apply_record,
    close_state,
    state_phase,
)
from tests.support.records import acct_record

T = 1_790_000_000
STATUS = {Event.START: Status.START, Event.INTERIM: Status.INTERIM, Event.STOP: Status.STOP}
CAUSE = {Event.NAS_RESTART: Cause.NAS_REBOOT, Event.SILENCE: Cause.STALE,
         Event.REPLACED: Cause.REPLACED}


def record(status: Status, at: int, seconds: int) -> AcctRecord:
    return acct_record(status, at, Totals(seconds, seconds, seconds),
                       terminate_cause="User-Request" if status is Status.STOP else None)


def in_phase(phase: Phase) -> SessionState | None:
    """A stored session in ``phase`` (None: never counted)."""
    if phase is Phase.NEW:
        return None
    s = apply_record(None, record(Status.START, T, 0)).state
    s = apply_record(s, record(Status.INTERIM, T + 300, 300)).state
    if phase is Phase.STOPPED:
        return apply_record(s, record(Status.STOP, T + 400, 400)).state
    if phase is Phase.STALE:
        return close_state(s, Cause.STALE)
    if phase is Phase.NAS_REBOOT:
        return close_state(s, Cause.NAS_REBOOT)
    if phase is Phase.REPLACED:
        return close_state(s, Cause.REPLACED)
    return s


def test_every_phase_and_event_has_exactly_one_row() -> None:
    assert set(TRANSITIONS) == set(itertools.product(Phase, Event))


def test_nothing_leaves_stopped_and_nothing_returns_to_new() -> None:
    for (phase, event), (after, _) in TRANSITIONS.items():
        if phase is Phase.STOPPED:
            assert after is Phase.STOPPED, event
        if phase is not Phase.NEW:
            assert after is not Phase.NEW, (phase, event)


def test_only_a_running_session_is_closed_by_aaad() -> None:
    assert closing_phases(Event.NAS_RESTART) == {Phase.OPEN}
    assert closing_phases(Event.SILENCE) == {Phase.OPEN}
    assert closing_phases(Event.REPLACED) == {Phase.OPEN}
    assert closing_phases(Event.STOP) == frozenset()


@pytest.mark.parametrize(("phase", "event"), sorted(
    itertools.product(Phase, Event), key=lambda pe: (pe[0].value, pe[1].value)))
def test_the_counting_rule_moves_as_the_table_says(phase: Phase, event: Event) -> None:
    before = in_phase(phase)
    assert state_phase(before) is phase
    after, action = transition(phase, event)
    if event in STATUS:
        applied = apply_record(before, record(STATUS[event], T + 500, 500))
        assert applied.action is action
        assert state_phase(applied.state) is after
        # Counting does not depend on the phase: the high-water rule always adds.
        assert applied.delta == Totals(500, 500, 500) - (before.totals if before else
                                                         Totals(0, 0, 0))
    elif before is not None:
        closed = close_state(before, CAUSE[event])
        assert state_phase(closed) is after
        assert (closed is before) is (action is Action.NONE)


def test_phase_of_reads_the_stored_columns() -> None:
    assert phase_of(counted=False, open=True, terminate_cause=None) is Phase.NEW
    assert phase_of(counted=True, open=True, terminate_cause=None) is Phase.OPEN
    assert phase_of(counted=True, open=False, terminate_cause="Stale") is Phase.STALE
    assert phase_of(counted=True, open=False, terminate_cause="NAS-Reboot") is Phase.NAS_REBOOT
    assert phase_of(counted=True, open=False, terminate_cause="Replaced") is Phase.REPLACED
    assert phase_of(counted=True, open=False, terminate_cause="Lost-Carrier") is Phase.STOPPED
    assert phase_of(counted=True, open=False, terminate_cause=None) is Phase.STOPPED


def test_an_inferred_close_keeps_the_last_event_time() -> None:
    s = in_phase(Phase.OPEN)
    assert s is not None
    assert close_state(s, Cause.STALE) == replace(s, open=False, stopped_at=T + 300,
                                                  terminate_cause=Cause.STALE)


def test_a_replaced_session_is_not_reopened_and_its_late_stop_counts_once() -> None:
    """A session a new login replaced (on_max_sessions: replace-oldest): its
    late Interim adds only what is beyond the stored totals and leaves it
    closed; its late Stop closes it for real, adding nothing twice."""
    s = in_phase(Phase.REPLACED)
    assert s is not None and not s.open and s.terminate_cause == "Replaced"
    assert s.stopped_at == T + 300                  # its last event time, as the sweeper does
    interim = apply_record(s, record(Status.INTERIM, T + 360, 360))
    assert not interim.state.open and interim.state.terminate_cause == "Replaced"
    assert interim.delta == Totals(60, 60, 60)
    again = apply_record(interim.state, record(Status.INTERIM, T + 360, 360))
    assert again.delta == Totals(0, 0, 0)
    stop = apply_record(again.state, record(Status.STOP, T + 360, 360))
    assert stop.delta == Totals(0, 0, 0)
    assert (stop.state.open, stop.state.terminate_cause) == (False, "User-Request")
