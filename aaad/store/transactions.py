"""Storage transactions: load → pure core → write, in one ``Connection``.

The caller opens the transaction (``with db.writer.begin() as conn``), so a
whole group-commit batch is one commit: its Accounting-Responses go out only
after that commit returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.accounting.periods import PeriodSpec
from aaad.accounting.sessions import (ZERO, AcctRecord, Cause, SessionState, Status, Totals,
                                      apply_record)
from aaad.accounting.usage import split_usage
from aaad.store import queries

__all__ = ["BatchOutcome", "record_accounting", "sweep_stale"]


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one accounting batch did, for metrics and logs."""

    records: int
    added: Totals
    sessions_created: int
    sessions_closed_by_nas: int


def record_accounting(conn: Connection, records: Sequence[AcctRecord], *,
                      period: PeriodSpec, tz: ZoneInfo) -> BatchOutcome:
    """Apply a batch of accounting records in arrival order.

    Accounting-On/Off split the batch: what came before them is applied
    first, then the NAS's open sessions are closed, then the rest.
    """
    added, created, closed = Totals(0, 0, 0), 0, 0
    segment: list[AcctRecord] = []
    for rec in records:
        if rec.status in (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF):
            a, c = _apply_sessions(conn, segment, period, tz)
            added, created, segment = added + a, created + c, []
            closed += queries.close_nas_sessions(conn, rec.nas_key, rec.at, Cause.NAS_REBOOT)
        else:
            segment.append(rec)
    a, c = _apply_sessions(conn, segment, period, tz)
    return BatchOutcome(len(records), added + a, created + c, closed)


def _apply_sessions(conn: Connection, records: list[AcctRecord], period: PeriodSpec,
                    tz: ZoneInfo) -> tuple[Totals, int]:
    if not records:
        return Totals(0, 0, 0), 0
    first: dict[str, AcctRecord] = {}
    for rec in records:
        first.setdefault(rec.key, rec)
    loaded = queries.lock_sessions(conn, list(first))
    missing = [rec for key, rec in first.items() if key not in loaded]
    if missing:
        queries.insert_placeholders(conn, missing)
        loaded.update(queries.lock_sessions(conn, [r.key for r in missing]))
    # A placeholder (0 packets counted) is a session seen for the first time.
    states: dict[str, SessionState | None] = {
        k: (s if n else None) for k, (s, n) in loaded.items()}
    counts: dict[str, int] = {}
    newest: dict[str, AcctRecord] = {}
    parts: dict[tuple[str, int], tuple[Totals, Totals]] = {}
    added, created = Totals(0, 0, 0), 0
    for rec in records:
        applied = apply_record(states[rec.key], rec)
        states[rec.key] = applied.state
        counts[rec.key] = counts.get(rec.key, 0) + 1
        newest[rec.key] = rec
        created += applied.created
        if applied.delta.is_zero():
            continue
        added = added + applied.delta
        for start, part in split_usage(applied.delta, applied.t0, applied.t1, period, tz):
            key = (rec.user_name, start)
            raw, counted = parts.get(key, (ZERO, ZERO))
            parts[key] = (raw + part, counted + part)
    queries.save_sessions(conn, [(s, counts[k], newest[k])
                                 for k, s in states.items() if s is not None and k in counts])
    queries.add_usage(conn, parts)
    return added, created


def sweep_stale(conn: Connection, *, now: int, default_interval_s: int, intervals: int) -> int:
    """Close sessions that have been silent too long; returns how many."""
    return queries.close_stale_sessions(conn, now, default_interval_s, intervals, Cause.STALE)
