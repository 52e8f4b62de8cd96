"""Sessions and the counting rule (RFC 2866 cumulative counters, DESIGN §2).

Every Interim-Update and Stop carries the session's totals so far. What one
packet adds is ``max(0, reported - stored)`` per counter, and what is stored
afterwards is the per-counter maximum. That makes a retransmit, a failover
copy, an Interim after the Stop, or any reordering add nothing twice, with no
table of packets seen. Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import NamedTuple

from aaad.core.accounting.lifecycle import (
    MAX_DURATION_CAUSE,
    NAS_REBOOT_CAUSE,
    REPLACED_CAUSE,
    STALE_CAUSE,
    Action,
    Event,
    Phase,
    phase_of,
    transition,
)

__all__ = [
    "Totals",
    "ZERO",
    "Status",
    "Cause",
    "AcctRecord",
    "SessionState",
    "Applied",
    "MAX_SPAN_S",
    "UNATTRIBUTED",
    "usage_delta",
    "fold_gigawords",
    "session_key",
    "event_time",
    "apply_record",
    "close_state",
    "state_phase",
]

GIGAWORD = 2**32
# Event-Timestamp later than arrival by more than this is a NAS clock error;
# the arrival time is used instead, so usage never lands in a future period.
MAX_CLOCK_AHEAD_S = 300
# A delta is attributed to at most the last 366 days before its event time.
# Acct-Session-Time up to 2^32 - 1 s (136 years) or an Event-Timestamp of 1970
# would otherwise spread one packet over tens of thousands of daily periods:
# as many usage rows, written in one transaction that stalls every other
# accounting packet. The totals are unaffected; only where they are attributed.
MAX_SPAN_S = 366 * 86400
# The User-Name a session keyed by its Call-ID is stored under when neither
# the record nor an authorisation of that Call-ID names a user (no account
# holds it: it is counted and shown, never billed to anyone).
UNATTRIBUTED = "(unattributed)"


class Totals(NamedTuple):
    """A session's cumulative counters. Octets have Gigawords folded in.

    A NamedTuple, not a frozen dataclass: several are made per accounting
    record, and a frozen dataclass's constructor sets each field through
    ``object.__setattr__``. ``+`` and ``-`` add and subtract the counters."""

    session_s: int
    in_octets: int
    out_octets: int

    def __add__(self, other: Totals) -> Totals:  # type: ignore[override]
        return Totals(self.session_s + other.session_s, self.in_octets + other.in_octets,
                      self.out_octets + other.out_octets)

    def __sub__(self, other: Totals) -> Totals:
        return Totals(self.session_s - other.session_s, self.in_octets - other.in_octets,
                      self.out_octets - other.out_octets)

    def is_zero(self) -> bool:
        return not (self.session_s or self.in_octets or self.out_octets)


ZERO = Totals(0, 0, 0)


class Status(Enum):
    """Acct-Status-Type values aaad acts on (RFC 2866 §5.1)."""

    START = 1
    STOP = 2
    INTERIM = 3
    ACCOUNTING_ON = 7
    ACCOUNTING_OFF = 8
    # A call that never connected (busy, no answer, cancelled): what SIP
    # proxies send for a failed INVITE (Kamailio's acc_radius, RFC 2866 §5.1
    # leaves 15 to vendors). Stored as a closed session of 0 s: a missed call.
    FAILED = 15


class Cause:
    """Why a session ended, when aaad (not a Stop) ended it."""

    NAS_REBOOT = NAS_REBOOT_CAUSE
    STALE = STALE_CAUSE
    REPLACED = REPLACED_CAUSE       # a new login took its place (on_max_sessions)
    # A call from a client that sends no Interim-Updates, open longer than
    # accounting.max_call_duration_s: closed and rated at that duration.
    MAX_DURATION = MAX_DURATION_CAUSE
    # Closes inferred by aaad; a later real Stop overrides them.
    INFERRED = frozenset({NAS_REBOOT, STALE, REPLACED, MAX_DURATION})


@dataclass(frozen=True, slots=True)
class AcctRecord:
    """One accounting packet, decoded and validated by the wire layer."""

    status: Status
    nas_key: str            # NAS-IP-Address / NAS-IPv6-Address / NAS-Identifier / source IP
    client: str             # configured client name
    nas_address: str        # the packet's source address
    user_name: str
    acct_session_id: str
    totals: Totals
    at: int                 # when it happened (POSIX s), see event_time()
    arrival: int            # when aaad received it (POSIX s)
    terminate_cause: str | None = None
    framed_ip: str | None = None
    calling_station_id: str | None = None
    called_station_id: str | None = None
    nas_port: int | None = None
    nas_port_id: str | None = None
    interim_interval_s: int | None = None
    direction: str | None = None    # calls: "in" or "out" (telephony.direction_attribute)
    # False when the packet had no Acct-Session-Time: the duration is then the
    # time since the session's Start (apply_record), as SIP proxies report it.
    session_time_sent: bool = True
    # True: the session is the NAS's Acct-Session-Id alone (a SIP Call-ID),
    # whoever the User-Name says: a Stop sent by the callee's side, or with no
    # User-Name at all, is still the caller's call.
    keyed_by_id: bool = False
    # The call time its authorisation allowed (a SIP proxy's Call-ID, see
    # daemon.call_index): a call without interims is closed after it.
    authorised_s: int | None = None
    # session_key(), computed once: a batch looks it up several times a record.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", session_key(
            self.nas_key, self.acct_session_id, "" if self.keyed_by_id else self.user_name))


@dataclass(frozen=True, slots=True)
class SessionState:
    """What is stored per session between packets."""

    key: str
    user_name: str
    totals: Totals
    started_at: int
    updated_at: int         # event time of the newest packet counted
    last_seen: int          # arrival time of the newest packet (staleness)
    open: bool
    stopped_at: int | None = None
    terminate_cause: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one packet: the new state and what it added, when."""

    state: SessionState
    delta: Totals
    t0: int                 # the delta happened in [t0, t1]
    t1: int
    created: bool
    action: Action = Action.NONE    # what the lifecycle table did (lifecycle.py)


def fold_gigawords(octets: int, gigawords: int) -> int:
    """RFC 2869 §5.1: the 64-bit count is gigawords × 2^32 + octets."""
    return gigawords * GIGAWORD + octets


def usage_delta(stored: Totals, reported: Totals) -> Totals:
    """What one Interim/Stop adds. Never negative: a repeat adds zero."""
    return Totals(max(0, reported.session_s - stored.session_s),
                  max(0, reported.in_octets - stored.in_octets),
                  max(0, reported.out_octets - stored.out_octets))


def _high_water(a: Totals, b: Totals) -> Totals:
    return Totals(max(a.session_s, b.session_s), max(a.in_octets, b.in_octets),
                  max(a.out_octets, b.out_octets))


def session_key(nas_key: str, acct_session_id: str, user_name: str) -> str:
    """A stable id for a session across nodes: 32 hex digits of SHA-256."""
    raw = "\x00".join((nas_key, acct_session_id, user_name)).encode("utf-8", "surrogateescape")
    return hashlib.sha256(raw).hexdigest()[:32]


def event_time(arrival: int, event_timestamp: int | None, delay_s: int | None) -> int:
    """When the event happened: Event-Timestamp, else arrival − Acct-Delay-Time."""
    if event_timestamp is not None and event_timestamp > 0:
        return min(event_timestamp, arrival + MAX_CLOCK_AHEAD_S)
    return arrival - max(0, delay_s or 0)


_EVENTS = {Status.START: Event.START, Status.INTERIM: Event.INTERIM, Status.STOP: Event.STOP,
           Status.FAILED: Event.STOP}
_CLOSE_EVENTS = {Cause.NAS_REBOOT: Event.NAS_RESTART, Cause.STALE: Event.SILENCE,
                 Cause.MAX_DURATION: Event.SILENCE, Cause.REPLACED: Event.REPLACED}


def state_phase(state: SessionState | None) -> Phase:
    """Where a stored session is in its lifecycle (None: never counted)."""
    if state is None:
        return Phase.NEW
    return phase_of(counted=True, open=state.open, terminate_cause=state.terminate_cause)


def apply_record(prev: SessionState | None, rec: AcctRecord) -> Applied:
    """Apply one Start/Interim/Stop to a session's stored state.

    Counting follows the high-water rule whatever the phase; opening and
    closing follow lifecycle.TRANSITIONS: a Stop without a Start creates the
    session already closed; a Start after a Stop does not reopen it; an
    Interim reopens a session only if aaad itself had closed it as stale; a
    real Stop replaces an inferred close.

    A record without Acct-Session-Time (``session_time_sent`` False) reports
    the time since the session began: its Event-Timestamp minus the Start's.
    A Failed record closes the session at 0 s.
    """
    event = _EVENTS.get(rec.status)
    if event is None:
        raise ValueError(f"apply_record does not take {rec.status}")
    if rec.status is Status.FAILED:
        rec = replace(rec, totals=ZERO, session_time_sent=True)
    elif not rec.session_time_sent and rec.status is not Status.START and prev is not None:
        rec = replace(rec, totals=rec.totals._replace(session_s=max(0, rec.at - prev.started_at)),
                      session_time_sent=True)
    _, action = transition(state_phase(prev), event)
    created = prev is None
    if prev is None:
        started = rec.at if rec.status is Status.START else rec.at - rec.totals.session_s
        prev = SessionState(key=rec.key, user_name=rec.user_name, totals=Totals(0, 0, 0),
                            started_at=started, updated_at=started, last_seen=rec.arrival,
                            open=True)
    delta = usage_delta(prev.totals, rec.totals)
    t1 = max(rec.at, prev.updated_at)
    t0 = prev.updated_at if not created else min(prev.started_at, t1)
    t0 = max(t0, t1 - MAX_SPAN_S)
    # Built with the constructor, not dataclasses.replace: this runs once per
    # accounting record, and replace() inspects the fields on every call.
    if action is Action.CLOSE:
        is_open, stopped_at, cause = False, rec.at, rec.terminate_cause or "Unknown"
    elif action is Action.REOPEN:
        is_open, stopped_at, cause = True, None, None
    else:
        is_open, stopped_at, cause = prev.open, prev.stopped_at, prev.terminate_cause
    state = SessionState(
        prev.key, prev.user_name, _high_water(prev.totals, rec.totals),
        min(prev.started_at, rec.at) if rec.status is Status.START else prev.started_at,
        t1, max(prev.last_seen, rec.arrival), is_open, stopped_at, cause)
    return Applied(state, delta, t0, t1, created, action)


def close_state(state: SessionState, cause: str) -> SessionState:
    """Close a session the way aaad does (NAS reboot, stale, replaced): at its last event
    time, with its last known totals, if the lifecycle table says this closes it."""
    _, action = transition(state_phase(state), _CLOSE_EVENTS[cause])
    if action is not Action.CLOSE_INFERRED:
        return state
    return replace(state, open=False, stopped_at=state.updated_at, terminate_cause=cause)
