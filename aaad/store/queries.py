"""Every SQL statement aaad runs, and the one place where dialects differ.

Functions take a ``Connection`` and never open or commit a transaction: the
caller owns ``with engine.begin()``. Counter updates are atomic increments
(``col = col + :n``), so several nodes on one database count exactly.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sqlalchemy import (BigInteger, Connection, Insert, and_, bindparam, func, literal_column,
                        select, update)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from aaad.accounting.sessions import AcctRecord, SessionState, Totals
from aaad.store.tables import plans, sessions, usage, users

__all__ = [
    "insert_ignore",
    "upsert_add",
    "capped",
    "MAX_COUNTER",
    "find_users_for_auth",
    "lock_sessions",
    "insert_placeholders",
    "save_sessions",
    "add_usage",
    "close_nas_sessions",
    "close_stale_sessions",
    "get_usage",
]

def _insert(conn: Connection, table: Any) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name in ("mysql", "mariadb"):
        return mysql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: Connection, table: Any) -> Insert:
    stmt = _insert(conn, table)
    if conn.dialect.name in ("mysql", "mariadb"):
        return stmt.prefix_with("IGNORE")  # type: ignore[no-any-return]
    return stmt.on_conflict_do_nothing()  # type: ignore[no-any-return]


MAX_COUNTER = 2**63 - 1     # the counter columns are signed 64-bit BIGINT


def capped(n: int) -> int:
    """A counter value as it is stored: at most :data:`MAX_COUNTER`."""
    return n if n <= MAX_COUNTER else MAX_COUNTER


def upsert_add(conn: Connection, table: Any, keys: Sequence[str], counters: Sequence[str]) -> Any:
    """INSERT …, or add the new values to the existing row's counters.

    The sum stops at :data:`MAX_COUNTER` instead of overflowing (written
    ``least(col, MAX - new) + new``, which never overflows itself): PostgreSQL
    and MariaDB would refuse the row, and with it the record at every
    retransmit; SQLite would silently turn the column into a float. Only
    impossible usage, 9.2 EB in one period, gets there. Inserted values must
    be :func:`capped` by the caller.
    """
    stmt = _insert(conn, table)
    least = func.min if conn.dialect.name == "sqlite" else func.least
    # A literal, not a parameter: pymysql's executemany cannot bind one in
    # the ON DUPLICATE KEY UPDATE part.
    top = literal_column(str(MAX_COUNTER), BigInteger())
    if conn.dialect.name in ("mysql", "mariadb"):
        return stmt.on_duplicate_key_update(
            {c: least(table.c[c], top - stmt.inserted[c]) + stmt.inserted[c]
             for c in counters})
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: least(table.c[c], top - stmt.excluded[c]) + stmt.excluded[c]
              for c in counters})


# -- users -------------------------------------------------------------------


def find_users_for_auth(conn: Connection, names: Iterable[str],
                        period_starts: Iterable[int]) -> list[Any]:
    """One query for a batch of logins: user, plan definition, open sessions,
    and the counted usage rows whose period starts are among ``period_starts``
    (the current periods of the plans in use). A user can have several rows
    (one per matching start) or one row with no usage."""
    return list(conn.execute(_FOR_AUTH, {"names": list(set(names)),
                                         "starts": sorted(set(period_starts)) or [-1]}))


# Built once: constructing a statement costs more than running it here.
_OPEN_COUNT = (select(func.count()).select_from(sessions)
               .where(and_(sessions.c.user_name == users.c.name, sessions.c.active.is_(True)))
               .correlate(users).scalar_subquery())
_FOR_AUTH = (
    select(users.c.name, users.c.password_hash, users.c.password_cleartext, users.c.enabled,
           users.c.plan, plans.c.definition, usage.c.period_start, usage.c.counted_s,
           usage.c.counted_in_octets, usage.c.counted_out_octets,
           _OPEN_COUNT.label("open_sessions"))
    .select_from(users.outerjoin(plans, plans.c.name == users.c.plan)
                 .outerjoin(usage, and_(usage.c.user_name == users.c.name,
                                        usage.c.period_start.in_(
                                            bindparam("starts", expanding=True)))))
    .where(users.c.name.in_(bindparam("names", expanding=True))))


# -- sessions ----------------------------------------------------------------

def _state(r: Any) -> SessionState:
    return SessionState(
        key=r.id, user_name=r.user_name,
        totals=Totals(r.session_s, r.in_octets, r.out_octets),
        started_at=r.started_at, updated_at=r.updated_at, last_seen=r.last_seen,
        open=bool(r.active), stopped_at=r.stopped_at, terminate_cause=r.terminate_cause)


def lock_sessions(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[SessionState, int]]:
    """Load and row-lock sessions, in key order so two nodes cannot deadlock.

    Returns:
        key → (state, packets counted so far). A placeholder row inserted by
        :func:`insert_placeholders` has 0 packets.
    """
    if not keys:
        return {}
    stmt = (select(sessions.c.id, sessions.c.user_name, sessions.c.session_s,
                   sessions.c.in_octets, sessions.c.out_octets, sessions.c.started_at,
                   sessions.c.updated_at, sessions.c.last_seen, sessions.c.active,
                   sessions.c.stopped_at, sessions.c.terminate_cause, sessions.c.packets)
            .where(sessions.c.id.in_(sorted(keys))).order_by(sessions.c.id).with_for_update())
    return {r.id: (_state(r), r.packets) for r in conn.execute(stmt)}


def insert_placeholders(conn: Connection, records: Sequence[AcctRecord]) -> None:
    """Create empty rows for new sessions, ignoring ones another node just made.

    Once every session row exists, :func:`lock_sessions` serialises all
    writers of a session, whichever node they run on.
    """
    if not records:
        return
    rows = [{
        "id": r.key, "user_name": r.user_name, "nas_key": r.nas_key, "client": r.client,
        "nas_address": r.nas_address, "acct_session_id": r.acct_session_id,
        "active": True, "packets": 0, "started_at": r.at, "updated_at": r.at,
        "last_seen": r.arrival, "session_s": 0, "in_octets": 0, "out_octets": 0,
    } for r in sorted(records, key=lambda r: r.key)]
    conn.execute(insert_ignore(conn, sessions), rows)


_SAVE = (update(sessions).where(sessions.c.id == bindparam("b_id")).values(
    active=bindparam("b_active"), packets=sessions.c.packets + bindparam("b_packets"),
    started_at=bindparam("b_started_at"), updated_at=bindparam("b_updated_at"),
    last_seen=bindparam("b_last_seen"), stopped_at=bindparam("b_stopped_at"),
    terminate_cause=bindparam("b_terminate_cause"), session_s=bindparam("b_session_s"),
    in_octets=bindparam("b_in_octets"), out_octets=bindparam("b_out_octets"),
    framed_ip=func.coalesce(bindparam("b_framed_ip"), sessions.c.framed_ip),
    calling_station_id=func.coalesce(bindparam("b_calling"), sessions.c.calling_station_id),
    called_station_id=func.coalesce(bindparam("b_called"), sessions.c.called_station_id),
    nas_port=func.coalesce(bindparam("b_nas_port"), sessions.c.nas_port),
    nas_port_id=func.coalesce(bindparam("b_nas_port_id"), sessions.c.nas_port_id),
    interim_interval_s=func.coalesce(bindparam("b_interim"), sessions.c.interim_interval_s),
))


def save_sessions(conn: Connection,
                  changes: Sequence[tuple[SessionState, int, AcctRecord]]) -> None:
    """Write new session states: (state, packets added, newest record)."""
    if not changes:
        return
    conn.execute(_SAVE, [{
        "b_id": s.key, "b_active": s.open, "b_packets": n, "b_started_at": s.started_at,
        "b_updated_at": s.updated_at, "b_last_seen": s.last_seen, "b_stopped_at": s.stopped_at,
        "b_terminate_cause": s.terminate_cause, "b_session_s": s.totals.session_s,
        "b_in_octets": s.totals.in_octets, "b_out_octets": s.totals.out_octets,
        "b_framed_ip": r.framed_ip, "b_calling": r.calling_station_id,
        "b_called": r.called_station_id, "b_nas_port": r.nas_port,
        "b_nas_port_id": r.nas_port_id, "b_interim": r.interim_interval_s,
    } for s, n, r in sorted(changes, key=lambda c: c[0].key)])


def close_nas_sessions(conn: Connection, nas_key: str, at: int, cause: str) -> int:
    """Accounting-On/Off: close the NAS's sessions last heard of before ``at``."""
    result = conn.execute(
        update(sessions)
        .where(and_(sessions.c.nas_key == nas_key, sessions.c.active.is_(True),
                    sessions.c.updated_at <= at))
        .values(active=False, stopped_at=sessions.c.updated_at, terminate_cause=cause))
    return int(result.rowcount)


def close_stale_sessions(conn: Connection, now: int, default_interval_s: int,
                         intervals: int, cause: str) -> int:
    """Close sessions silent for ``intervals`` × their interim interval."""
    silence = func.coalesce(sessions.c.interim_interval_s, default_interval_s) * intervals
    result = conn.execute(
        update(sessions)
        .where(and_(sessions.c.active.is_(True), sessions.c.last_seen < now - silence))
        .values(active=False, stopped_at=sessions.c.updated_at, terminate_cause=cause))
    return int(result.rowcount)


# -- usage counters ------------------------------------------------------------

def add_usage(conn: Connection, parts: dict[tuple[str, int], tuple[Totals, Totals]]) -> None:
    """Add (raw, counted) usage to (user, period start) counters, creating rows."""
    if not parts:
        return
    stmt = upsert_add(conn, usage, ("user_name", "period_start"),
                       ("session_s", "in_octets", "out_octets", "counted_s",
                        "counted_in_octets", "counted_out_octets"))
    conn.execute(stmt, [
        {"user_name": u, "period_start": p, "session_s": capped(raw.session_s),
         "in_octets": capped(raw.in_octets), "out_octets": capped(raw.out_octets),
         "counted_s": capped(counted.session_s),
         "counted_in_octets": capped(counted.in_octets),
         "counted_out_octets": capped(counted.out_octets)}
        for (u, p), (raw, counted) in sorted(parts.items())])


def get_usage(conn: Connection, user_name: str, period_start: int) -> Totals:
    """A user's counters for one period (zero if nothing was used)."""
    r = conn.execute(select(usage.c.session_s, usage.c.in_octets, usage.c.out_octets).where(
        and_(usage.c.user_name == user_name, usage.c.period_start == period_start))).first()
    return Totals(0, 0, 0) if r is None else Totals(r.session_s, r.in_octets, r.out_octets)
