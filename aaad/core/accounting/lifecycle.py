"""A session's lifecycle as one table: phase × event → phase, action (RFC 2866 §5.1).

Every rule about opening and closing a session is a row of ``TRANSITIONS``:
the pure counting rule (sessions.apply_record, sessions.close_state) looks its
move up here, and the SQL closes (Accounting-On/Off, the stale sweep) close
exactly the phases this table lets those events close; their tests walk the
same table. Counting is separate: every Start/Interim/Stop is counted by the
high-water rule whatever the phase (a late Interim after a Stop still adds
what it reports beyond the stored totals).

Phases:
    NEW        no packet counted yet (no row, or a placeholder row)
    OPEN       running
    STOPPED    closed by a real Stop: final, nothing reopens it
    STALE      closed by aaad after silence, or (a client that sends no
               Interim-Updates) at the maximum call duration: an Interim
               reopens it, a Stop replaces the inferred close
    NAS_REBOOT closed by aaad on Accounting-On/Off: a Stop replaces the
               inferred close; an Interim does not reopen it (the NAS said
               it restarted, so the session is gone)
    REPLACED   closed by aaad for a new login of a plan with
               ``on_max_sessions: replace-oldest`` (and sent a
               Disconnect-Request): a Stop replaces the inferred close; an
               Interim does not reopen it (its place was given away)
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Phase", "Event", "Action", "TRANSITIONS", "transition", "phase_of",
           "closing_phases"]


class Phase(Enum):
    NEW = "new"
    OPEN = "open"
    STOPPED = "stopped"
    STALE = "stale"
    NAS_REBOOT = "nas_reboot"
    REPLACED = "replaced"


class Event(Enum):
    START = "start"
    INTERIM = "interim"
    STOP = "stop"
    NAS_RESTART = "nas_restart"     # Accounting-On or Accounting-Off from its NAS
    SILENCE = "silence"             # no packet for the stale window
    REPLACED = "replaced"           # a new login took its place (on_max_sessions)


class Action(Enum):
    NONE = "none"                   # totals and times only
    OPEN = "open"                   # a new session, running
    CLOSE = "close"                 # closed by this Stop: its time and cause
    CLOSE_INFERRED = "close_inferred"   # closed by aaad at the last event time
    REOPEN = "reopen"               # running again: the inferred close undone


_P, _E, _A = Phase, Event, Action

TRANSITIONS: dict[tuple[Phase, Event], tuple[Phase, Action]] = {
    (_P.NEW, _E.START): (_P.OPEN, _A.OPEN),
    (_P.NEW, _E.INTERIM): (_P.OPEN, _A.OPEN),
    (_P.NEW, _E.STOP): (_P.STOPPED, _A.CLOSE),           # a Stop without a Start
    (_P.NEW, _E.NAS_RESTART): (_P.NEW, _A.NONE),
    (_P.NEW, _E.SILENCE): (_P.NEW, _A.NONE),
    (_P.NEW, _E.REPLACED): (_P.NEW, _A.NONE),

    (_P.OPEN, _E.START): (_P.OPEN, _A.NONE),
    (_P.OPEN, _E.INTERIM): (_P.OPEN, _A.NONE),
    (_P.OPEN, _E.STOP): (_P.STOPPED, _A.CLOSE),
    (_P.OPEN, _E.NAS_RESTART): (_P.NAS_REBOOT, _A.CLOSE_INFERRED),
    (_P.OPEN, _E.SILENCE): (_P.STALE, _A.CLOSE_INFERRED),
    (_P.OPEN, _E.REPLACED): (_P.REPLACED, _A.CLOSE_INFERRED),

    (_P.STOPPED, _E.START): (_P.STOPPED, _A.NONE),       # a Start after the Stop
    (_P.STOPPED, _E.INTERIM): (_P.STOPPED, _A.NONE),
    (_P.STOPPED, _E.STOP): (_P.STOPPED, _A.NONE),        # the first Stop's cause stays
    (_P.STOPPED, _E.NAS_RESTART): (_P.STOPPED, _A.NONE),
    (_P.STOPPED, _E.SILENCE): (_P.STOPPED, _A.NONE),
    (_P.STOPPED, _E.REPLACED): (_P.STOPPED, _A.NONE),

    (_P.STALE, _E.START): (_P.STALE, _A.NONE),
    (_P.STALE, _E.INTERIM): (_P.OPEN, _A.REOPEN),        # it was alive after all
    (_P.STALE, _E.STOP): (_P.STOPPED, _A.CLOSE),         # the real Stop wins
    (_P.STALE, _E.NAS_RESTART): (_P.STALE, _A.NONE),
    (_P.STALE, _E.SILENCE): (_P.STALE, _A.NONE),
    (_P.STALE, _E.REPLACED): (_P.STALE, _A.NONE),

    (_P.NAS_REBOOT, _E.START): (_P.NAS_REBOOT, _A.NONE),
    (_P.NAS_REBOOT, _E.INTERIM): (_P.NAS_REBOOT, _A.NONE),
    (_P.NAS_REBOOT, _E.STOP): (_P.STOPPED, _A.CLOSE),    # the real Stop wins
    (_P.NAS_REBOOT, _E.NAS_RESTART): (_P.NAS_REBOOT, _A.NONE),
    (_P.NAS_REBOOT, _E.SILENCE): (_P.NAS_REBOOT, _A.NONE),
    (_P.NAS_REBOOT, _E.REPLACED): (_P.NAS_REBOOT, _A.NONE),

    (_P.REPLACED, _E.START): (_P.REPLACED, _A.NONE),
    (_P.REPLACED, _E.INTERIM): (_P.REPLACED, _A.NONE),    # its place was given away
    (_P.REPLACED, _E.STOP): (_P.STOPPED, _A.CLOSE),      # the real Stop wins
    (_P.REPLACED, _E.NAS_RESTART): (_P.REPLACED, _A.NONE),
    (_P.REPLACED, _E.SILENCE): (_P.REPLACED, _A.NONE),
    (_P.REPLACED, _E.REPLACED): (_P.REPLACED, _A.NONE),
}

# The terminate causes aaad writes for its own closes, by phase.
STALE_CAUSE = "Stale"
NAS_REBOOT_CAUSE = "NAS-Reboot"
MAX_DURATION_CAUSE = "Max-Duration"
REPLACED_CAUSE = "Replaced"
_INFERRED = {STALE_CAUSE: Phase.STALE, MAX_DURATION_CAUSE: Phase.STALE,
             NAS_REBOOT_CAUSE: Phase.NAS_REBOOT, REPLACED_CAUSE: Phase.REPLACED}


def transition(phase: Phase, event: Event) -> tuple[Phase, Action]:
    """The next phase and what to do; every (phase, event) pair has a row."""
    return TRANSITIONS[(phase, event)]


def phase_of(*, counted: bool, open: bool, terminate_cause: str | None) -> Phase:
    """The phase of a stored session (``counted``: a packet was counted for it)."""
    if not counted:
        return Phase.NEW
    if open:
        return Phase.OPEN
    return _INFERRED.get(terminate_cause or "", Phase.STOPPED)


def closing_phases(event: Event) -> frozenset[Phase]:
    """The phases an aaad-side event (NAS restart, silence, replacement) closes: what the SQL
    close of that event must select."""
    return frozenset(p for (p, e), (_, a) in TRANSITIONS.items()
                     if e is event and a is Action.CLOSE_INFERRED)
