"""Session rows: claimed and locked per batch, saved, closed by aaad, listed.

Which phases the closes select comes from the lifecycle table
(aaad.core.accounting.lifecycle); the rows are written as the core's
:class:`~aaad.core.accounting.sessions.SessionState`.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    desc,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql

from aaad.core.accounting.lifecycle import Event, Phase, closing_phases
from aaad.core.accounting.realms import OPERATOR, Route
from aaad.core.accounting.sessions import AcctRecord, Cause, SessionState, Totals
from aaad.core.quotas.concurrency import OpenSession, sessions_to_replace
from aaad.store.sql import (
    flush_writes,
    insert_ignore,
    json_param,
    native_sql,
    on_driver,
    qmark_sql,
    query,
    select_rows,
    write,
    write_many,
)
from aaad.store.tables import plans, sessions, users
from aaad.store.usage import (
    SQLITE_ADD_USAGE,
    pg_add_one_usage,
    pg_add_usage,
    sqlite_usage_params,
    usage_arrays,
    usage_one,
)
from aaad.store.users import UserRef, ids_for

__all__ = ["Loaded", "Known", "KnownUser", "KnownSessions", "Change", "save_known",
           "save_known_params", "save_known_values", "save_known_statement",
           "sqlite_save_known", "sqlite_write_known",
           "SAVE_KNOWN_SQL", "SAVE_KNOWN_STATEMENTS",
           "claim_sessions",
           "lock_sessions", "insert_placeholders", "save_sessions",
           "in_phases", "close_nas_sessions", "nas_session_ids", "close_stale_sessions",
           "stale_session_ids", "too_long_sessions", "close_too_long_sessions",
           "list_sessions", "open_session_count", "open_sessions", "Replaced", "replace_oldest"]


@dataclass(frozen=True, slots=True)
class Known:
    """An open session as this node last committed it: its state, the packets
    counted, its user and that user's plan definition (None: no plan)."""

    state: SessionState
    packets: int
    owner: int
    definition: str | None


@dataclass(frozen=True, slots=True)
class KnownUser:
    """The operator's holder of a User-Name as this node last read it: its id
    and plan definition (None: no plan)."""

    owner: int
    definition: str | None


class KnownSessions:
    """The open sessions this node wrote last, by key, and the users their
    names belonged to: what the next record of a session needs, without
    reading the row back (PostgreSQL's accounting batch, :func:`save_known`).
    Only a hint: each write is guarded by the whole stored state (or, for a
    new session, by the row not existing and the name's holder and plan), so
    an entry that another writer made stale (another node, a stale-session
    sweep, a replaced login, an edited plan, a user deleted) costs that
    session a second statement, never a wrong count. At most ``limit``
    sessions and ``limit`` names; the oldest written go first."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._known: dict[str, Known] = {}
        self._users: dict[str, KnownUser] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, key: str) -> Known | None:
        return self._known.get(key)

    def user(self, name: str) -> KnownUser | None:
        return self._users.get(name)

    def remember(self, items: Iterable[Known], users_: Iterable[tuple[str, KnownUser]] = (),
                 forgotten: Iterable[str] = ()) -> None:
        """Committed states (a closed session is forgotten), and the holders
        of names as read in the same transaction; ``forgotten`` first: the
        sessions remembered wrongly (a batch's ``forgotten``)."""
        self.forget(forgotten)
        for k in items:
            self._known.pop(k.state.key, None)
            if k.state.open:
                self._known[k.state.key] = k
        for name, u in users_:
            self._users.pop(name, None)
            self._users[name] = u
        for kept in (self._known, self._users):
            while len(kept) > self._limit:
                del kept[next(iter(kept))]

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._known.pop(key, None)


@dataclass(frozen=True, slots=True)
class Change:
    """A session's new state, computed from ``was`` (None: a new session, whose
    row must not exist yet), for :func:`save_known`."""

    was: Known | None
    state: SessionState
    packets: int            # added by this batch
    newest: AcctRecord
    owner: int
    definition: str | None


def save_known(conn: Connection, changes: Sequence[Change],
               usage_rows: Sequence[dict[str, Any]]) -> set[str]:
    """Write the new states of sessions computed without reading them, and
    the usage they add; returns the keys of the sessions written. PostgreSQL:
    one statement run alone (autocommit: the server commits it before it
    answers), a batch of one session a statement of its own (typed
    parameters, :data:`SAVE_KNOWN_STATEMENTS`). SQLite: a statement per
    session in the caller's transaction, which holds the write lock.

    A known session is written only if its row still holds the
    state it was computed from (its counters, times, phase, packets, user
    and the user's plan definition); a new one only if no row exists yet,
    its name (the operator's) is still held by the same user and that user's
    plan is the same. A session not written is left untouched, usage
    included: the caller reads it and does it again. ``usage_rows``: per
    session (:func:`aaad.store.usage.session_counter_rows`).

    On PostgreSQL the known rows are locked (or updated) in key order, as
    the claim locks them, so two nodes cannot deadlock; under READ COMMITTED
    the lock re-reads the row's newest version, so the guard sees what
    another node committed last.

    The same statements run without a SQLAlchemy connection too: prepared as
    :data:`SAVE_KNOWN_STATEMENTS` (PostgreSQL's ``$n`` parameters), picked
    with their values by :func:`save_known_statement`, they return the keys
    written, one per row (daemon.pg_statement, on the reactor's thread).
    """
    if conn.dialect.name == "sqlite":
        return on_driver(conn, lambda raw: sqlite_save_known(raw, changes, usage_rows))
    if len(changes) == 1:
        _, sql, params = _one_params(changes[0], usage_rows)
        rows = query(conn, sql, params, commit=True)
    else:
        rows = query(conn, _PG_SAVE_KNOWN, save_known_params(changes, usage_rows), commit=True)
    return {r.id for r in rows}


def save_known_params(changes: Sequence[Change],
                      usage_rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The JSON parameters of save_known's statement, by name."""
    ordered = sorted(changes, key=_change_key)
    was = [{"id": c.state.key, **dict(zip(_GUARDED, _guarded(k), strict=True)),
            "plan_md5": _md5(k.definition)}
           for c in ordered if (k := c.was) is not None]
    new = [{"id": c.state.key, "name": c.state.user_name, "user_id": c.owner,
            "plan_md5": _md5(c.definition)} for c in ordered if c.was is None]
    return {
        "was": json_param(was), "new": json_param(new),
        "rows": json_param(_save_rows([(c.state, c.packets, c.newest, c.owner)
                                       for c in ordered], omit_nulls=True)),
        "usage": json_param(list(usage_rows))}


def save_known_values(changes: Sequence[Change],
                      usage_rows: Sequence[dict[str, Any]]) -> list[bytes | None]:
    """save_known's parameters in the order of :data:`SAVE_KNOWN_SQL`'s ``$n``,
    as the text the server reads them from (UTF-8)."""
    params = save_known_params(changes, usage_rows)
    return [params[name].encode("utf-8") for name in _SAVE_KNOWN_ORDER]


@functools.lru_cache(maxsize=4096)
def _md5(definition: str | None) -> str | None:
    """What save_known's guard compares a plan definition by: its MD5, as
    PostgreSQL's md5() gives it (hex digits of the UTF-8 text), so each row of
    the batch carries 32 characters instead of the whole definition."""
    if definition is None:
        return None
    return hashlib.md5(definition.encode("utf-8"), usedforsecurity=False).hexdigest()


def _state(r: Any) -> SessionState:
    return SessionState(
        key=r.id, user_name=r.user_name,
        totals=Totals(r.session_s, r.in_octets, r.out_octets),
        started_at=r.started_at, updated_at=r.updated_at, last_seen=r.last_seen,
        open=bool(r.active), stopped_at=r.stopped_at, terminate_cause=r.terminate_cause)


Loaded: TypeAlias = "tuple[SessionState, int, int | None]"
"""A claimed session: (state, packets counted so far, the user id it belongs to)."""


def claim_sessions(conn: Connection, records: Sequence[AcctRecord],
                   routes: Mapping[str, Route] | None = None
                   ) -> tuple[dict[str, Loaded], dict[int, str] | None]:
    """Create the missing session rows and row-lock all of them, in key order.

    ``records`` has one record per session (the first of the batch);
    ``routes`` says, by session key, where a new session's user is looked up
    (core.accounting.realms.route; missing: the operator's user of the
    User-Name as sent). Locks
    are taken in key order so two nodes cannot deadlock. Once every session
    row exists, its lock serialises all writers of the session, whichever
    node they run on.

    Returns:
        key → (state, packets counted so far, user id), where a row created
        here has 0 packets; and, where the dialect reads them in the same
        statement, user id → plan definition for the users of these sessions
        that have a plan (None: not read, ask
        :func:`aaad.store.plans.plan_definitions`). The user id is the
        session's own, or for a session created here the holder of its
        name now, read in the same statement; None if nobody holds the name
        (see :func:`user_ids`). :func:`save_sessions` stores it.
    """
    if not records:
        return {}, {}
    name = conn.dialect.name
    ordered = sorted(records, key=lambda r: r.key)
    if name == "postgresql":
        # One statement whatever the batch: the upsert creates the missing
        # rows and locks the existing ones (in the order of the rows), and
        # returns every row as it is now, read with their users' plans.
        # On the driver's connection, pipelined with the transaction's BEGIN.
        return _with_plans(query(
            conn, _PG_CLAIM, {"rows": json_param(_placeholder_rows(ordered, routes))}))
    if name in ("mysql", "mariadb"):
        # INSERT … ON DUPLICATE KEY UPDATE takes exclusive locks on existing
        # rows (INSERT IGNORE takes shared ones, and two nodes upgrading
        # shared locks deadlock), then one read of the locked rows.
        conn.execute(_MYSQL_CLAIM, _placeholder_rows(ordered, routes))
        return lock_sessions(conn, [r.key for r in ordered]), None
    # SQLite: the writer holds the database lock from BEGIN IMMEDIATE.
    loaded, plans_ = _with_plans(select_rows(conn, _LOAD_WITH_PLANS,
                                             {"ids": [r.key for r in ordered]}))
    missing = [r for r in ordered if r.key not in loaded]
    if missing:
        insert_placeholders(conn, missing, routes)
        more, more_plans = _with_plans(select_rows(conn, _LOAD_WITH_PLANS,
                                                   {"ids": [r.key for r in missing]}))
        loaded.update(more)
        plans_.update(more_plans)
    return loaded, plans_


def _with_plans(rows: Any) -> tuple[dict[str, Loaded], dict[int, str]]:
    loaded: dict[str, Loaded] = {}
    definitions: dict[int, str] = {}
    for r in rows:
        loaded[r.id] = (_state(r), r.packets, r.owner)
        if r.definition is not None:
            # One copy of each plan's text, however many sessions remember it.
            definitions[r.owner] = sys.intern(r.definition)
    return loaded, definitions


_SESSION_COLUMNS = ("s.id, s.user_name, s.session_s, s.in_octets, s.out_octets, s.started_at, "
                    "s.updated_at, s.last_seen, s.active, s.stopped_at, s.terminate_cause, "
                    "s.packets")


# The upsert's DO UPDATE locks an existing row and works on its newest
# committed version, whatever the statement's snapshot (READ COMMITTED):
# what RETURNING gives is what another node committed last. Setting packets
# to itself changes no value and no index (a heap-only new version); it is
# there so that RETURNING has the existing rows too (one round trip where a
# lock and a read were two). A row created here is returned as
# inserted (0 packets). The session's user, or for a row just created
# (user_id still NULL) the holder of its name now, in the session's tenant:
# coalesce evaluates the lookup only then. The owner and its plan are read
# per returned row (LATERAL, a scalar subquery: index lookups); a join of
# the CTE to users is planned as a hash join over every user.
def _holder(name: str, tenant: str) -> str:
    """SQL: the id of the user holding the name ``name`` in tenant ``tenant``."""
    return f"(SELECT h.id FROM users h WHERE h.name = {name} AND h.tenant_id = {tenant})"


def _plan_of(user_id: str) -> str:
    """SQL: the plan definition of the user whose id is ``user_id`` (NULL: none)."""
    return (f"(SELECT p.definition FROM users u JOIN plans p ON p.name = u.plan "
            f"WHERE u.id = {user_id})")


_OWNER = f"coalesce(s.user_id, {_holder('coalesce(s.login, s.user_name)', 's.tenant_id')})"


_PG_CLAIM = f"""
WITH s AS (
INSERT INTO sessions (id, user_name, nas_key, client, nas_address, acct_session_id, active,
                      packets, started_at, updated_at, last_seen, session_s, in_octets, out_octets,
                      direction, tenant_id, login)
SELECT * FROM json_to_recordset(CAST(%(rows)s AS json)) AS v(
    id varchar, user_name varchar, nas_key varchar, client varchar, nas_address varchar,
    acct_session_id varchar, active boolean, packets integer, started_at bigint,
    updated_at bigint, last_seen bigint, session_s bigint, in_octets bigint, out_octets bigint,
    direction varchar, tenant_id integer, login varchar)
ON CONFLICT (id) DO UPDATE SET packets = sessions.packets
RETURNING sessions.id, sessions.user_name, sessions.session_s, sessions.in_octets,
    sessions.out_octets, sessions.started_at, sessions.updated_at, sessions.last_seen,
    sessions.active, sessions.stopped_at, sessions.terminate_cause, sessions.packets,
    sessions.user_id, sessions.login, sessions.tenant_id)
SELECT {_SESSION_COLUMNS}, o.owner, {_plan_of("o.owner")} AS definition
FROM s CROSS JOIN LATERAL (SELECT {_OWNER} AS owner) o"""


_MYSQL_CLAIM = mysql.insert(sessions).on_duplicate_key_update(packets=sessions.c.packets)


_s, _u, _p, _h = sessions.alias("s"), users.alias("u"), plans.alias("p"), users.alias("h")


def _owner(s: Any) -> Any:
    return func.coalesce(s.c.user_id, select(_h.c.id).where(
        and_(_h.c.name == func.coalesce(s.c.login, s.c.user_name),
             _h.c.tenant_id == s.c.tenant_id)).correlate(s).scalar_subquery())


_LOAD_WITH_PLANS = (
    select(_s.c.id, _s.c.user_name, _s.c.session_s, _s.c.in_octets, _s.c.out_octets,
           _s.c.started_at, _s.c.updated_at, _s.c.last_seen, _s.c.active, _s.c.stopped_at,
           _s.c.terminate_cause, _s.c.packets, _owner(_s).label("owner"), _p.c.definition)
    .select_from(_s.outerjoin(_u, _u.c.id == _owner(_s))
                 .outerjoin(_p, _p.c.name == _u.c.plan))
    .where(_s.c.id.in_(bindparam("ids", expanding=True))))


def lock_sessions(conn: Connection, keys: Sequence[str]) -> dict[str, Loaded]:
    """Load and row-lock sessions, in key order so two nodes cannot deadlock.

    Returns:
        key → (state, packets counted so far, user id) as in
        :func:`claim_sessions`. A placeholder row inserted by
        :func:`insert_placeholders` has 0 packets.
    """
    if not keys:
        return {}
    # The users row the owner lookup reads is not locked: a locking read
    # locks a subquery's rows only if the subquery says so.
    stmt = (select(_s.c.id, _s.c.user_name, _s.c.session_s, _s.c.in_octets, _s.c.out_octets,
                   _s.c.started_at, _s.c.updated_at, _s.c.last_seen, _s.c.active,
                   _s.c.stopped_at, _s.c.terminate_cause, _s.c.packets,
                   _owner(_s).label("owner"))
            .where(_s.c.id.in_(sorted(keys))).order_by(_s.c.id).with_for_update())
    return {r.id: (_state(r), r.packets, r.owner) for r in conn.execute(stmt)}


def insert_placeholders(conn: Connection, records: Sequence[AcctRecord],
                        routes: Mapping[str, Route] | None = None) -> None:
    """Create empty rows for new sessions, ignoring ones another node just made.

    Once every session row exists, :func:`lock_sessions` serialises all
    writers of a session, whichever node they run on.
    """
    if not records:
        return
    name = conn.dialect.name
    stmt = _INSERT_IGNORE.get(name)
    if stmt is None:
        stmt = _INSERT_IGNORE[name] = insert_ignore(conn, sessions)
    # Queued where the transaction defers writes (on SQLite: the driver's
    # cursor, no per-statement work) and sent now: the claim reads the rows.
    write_many(conn, stmt, _placeholder_rows(sorted(records, key=lambda r: r.key), routes))
    flush_writes(conn)


# Built once per dialect (write_many compiles a statement once, by identity).
_INSERT_IGNORE: dict[str, Any] = {}


_NO_ROUTES: Mapping[str, Route] = {}


def _placeholder_rows(records: Sequence[AcctRecord],
                      routes: Mapping[str, Route] | None) -> list[dict[str, Any]]:
    routes = routes or _NO_ROUTES
    return [{
        "id": r.key, "user_name": r.user_name, "nas_key": r.nas_key, "client": r.client,
        "nas_address": r.nas_address, "acct_session_id": r.acct_session_id,
        "active": True, "packets": 0, "started_at": r.at, "updated_at": r.at,
        "last_seen": r.arrival, "session_s": 0, "in_octets": 0, "out_octets": 0,
        "direction": r.direction,
        "tenant_id": route.tenant_id if route is not None else OPERATOR,
        "login": route.name if route is not None and route.name != r.user_name else None,
    } for r in records for route in (routes.get(r.key),)]


def _sqlite_save(*, settled: bool) -> Any:
    """SQLite's UPDATE of a session row. ``settled``: the row's ``active`` and
    ``user_id`` already hold what would be written, so they are left out of
    the SET: SQLite rewrites every index holding a column the SET names,
    whatever the value, and these two are in three indexes (an Interim-Update
    wrote five pages instead of three, and every page is in the WAL that the
    commit syncs)."""
    values: dict[str, Any] = {
        "packets": sessions.c.packets + bindparam("b_packets"),
        "started_at": bindparam("b_started_at"), "updated_at": bindparam("b_updated_at"),
        "last_seen": bindparam("b_last_seen"), "stopped_at": bindparam("b_stopped_at"),
        "terminate_cause": bindparam("b_terminate_cause"), "session_s": bindparam("b_session_s"),
        "in_octets": bindparam("b_in_octets"), "out_octets": bindparam("b_out_octets"),
        "framed_ip": func.coalesce(bindparam("b_framed_ip"), sessions.c.framed_ip),
        "calling_station_id": func.coalesce(bindparam("b_calling"), sessions.c.calling_station_id),
        "called_station_id": func.coalesce(bindparam("b_called"), sessions.c.called_station_id),
        "nas_port": func.coalesce(bindparam("b_nas_port"), sessions.c.nas_port),
        "nas_port_id": func.coalesce(bindparam("b_nas_port_id"), sessions.c.nas_port_id),
        "interim_interval_s": func.coalesce(bindparam("b_interim"), sessions.c.interim_interval_s),
        "authorised_s": func.coalesce(bindparam("b_authorised"), sessions.c.authorised_s)}
    if not settled:
        values["active"] = bindparam("b_active")
        values["user_id"] = func.coalesce(sessions.c.user_id, bindparam("b_user_id"))
    return update(sessions).where(sessions.c.id == bindparam("b_id")).values(**values)


_SAVE = _sqlite_save(settled=False)
_SAVE_SETTLED = _sqlite_save(settled=True)


def save_sessions(conn: Connection,
                  changes: Sequence[tuple[SessionState, int, AcctRecord, int]],
                  settled: Collection[str] = ()) -> None:
    """Write new session states: (state, packets added, newest record, user id).

    The user id is written only into a row that has none yet (one created
    in this transaction): a session belongs to one user for its whole life.
    ``settled``: the keys of rows whose ``active`` and user id already hold
    what is written (an existing row with its user, still open or still
    closed); SQLite then leaves those columns, and the indexes on them, alone.
    """
    if not changes:
        return
    ordered = sorted(changes, key=lambda c: c[0].key)
    name = conn.dialect.name
    if name == "postgresql":
        # One statement for the batch: executemany would run one UPDATE per row.
        # Deferred where the transaction allows it: sent with the commit.
        write(conn, _PG_SAVE, {"rows": json_param(_save_rows(ordered, omit_nulls=True))})
        return
    if name in ("mysql", "mariadb"):
        # The driver sends an executemany INSERT as one multi-row statement
        # (an UPDATE as one statement per row). Every row exists and is locked
        # by claim_sessions, so this only ever takes the UPDATE branch.
        conn.execute(_MYSQL_SAVE, _save_rows(ordered))
        return
    rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for s, n, r, u in ordered:
        row = {
            "b_id": s.key, "b_packets": n, "b_started_at": s.started_at,
            "b_updated_at": s.updated_at, "b_last_seen": s.last_seen,
            "b_stopped_at": s.stopped_at, "b_terminate_cause": s.terminate_cause,
            "b_session_s": s.totals.session_s, "b_in_octets": s.totals.in_octets,
            "b_out_octets": s.totals.out_octets, "b_framed_ip": r.framed_ip,
            "b_calling": r.calling_station_id, "b_called": r.called_station_id,
            "b_nas_port": r.nas_port, "b_nas_port_id": r.nas_port_id,
            "b_interim": r.interim_interval_s, "b_authorised": r.authorised_s}
        keep = s.key in settled
        if not keep:
            row["b_active"] = s.open
            row["b_user_id"] = u
        rows[keep].append(row)
    for keep, statement in ((True, _SAVE_SETTLED), (False, _SAVE)):
        if rows[keep]:
            write_many(conn, statement, rows[keep])


# save_sessions' rows all exist and are locked (claim_sessions), so its
# upsert only ever takes the UPDATE branch; save_known's inserts its fresh
# rows and updates only the ones it locked (``held``). An upsert, not an
# UPDATE … FROM the rows: its conflict check is a lookup in the primary key
# whatever the planner thinks of the table, where a join with the rows (100
# of them, as the planner guesses for any json_to_recordset) is planned as
# a hash join over a scan of every session while the table is small or not
# analysed, and a prepared statement keeps that plan as the table grows.
_PG_TYPES = (("id", "varchar"), ("user_name", "varchar"), ("nas_key", "varchar"),
             ("client", "varchar"), ("nas_address", "varchar"), ("acct_session_id", "varchar"),
             ("active", "boolean"), ("packets", "integer"), ("started_at", "bigint"),
             ("updated_at", "bigint"), ("last_seen", "bigint"), ("stopped_at", "bigint"),
             ("terminate_cause", "varchar"), ("session_s", "bigint"), ("in_octets", "bigint"),
             ("out_octets", "bigint"), ("framed_ip", "varchar"),
             ("calling_station_id", "varchar"), ("called_station_id", "varchar"),
             ("nas_port", "bigint"), ("nas_port_id", "varchar"),
             ("interim_interval_s", "integer"), ("user_id", "integer"),
             ("authorised_s", "integer"), ("direction", "varchar"))

# How an upsert (or save_known's UPDATE) sets each column from the new
# values: "new" takes them, "add" adds them to the stored count, "or_old"
# keeps the stored value where the new one is NULL, "old_or" keeps a stored
# value that is not NULL.
_SET_RULES = (("active", "new"), ("packets", "add"), ("started_at", "new"),
              ("updated_at", "new"), ("last_seen", "new"), ("stopped_at", "new"),
              ("terminate_cause", "new"), ("session_s", "new"), ("in_octets", "new"),
              ("out_octets", "new"), ("framed_ip", "or_old"), ("calling_station_id", "or_old"),
              ("called_station_id", "or_old"), ("nas_port", "or_old"), ("nas_port_id", "or_old"),
              ("interim_interval_s", "or_old"), ("authorised_s", "or_old"),
              ("user_id", "old_or"))


def _set_list(new: Callable[[str], str], old: str, skip: Collection[str] = ()) -> str:
    """The SET list of :data:`_SET_RULES`: ``new(column)`` is the new value's
    SQL, ``old`` the name the stored row goes by; without the columns in
    ``skip``."""
    rule = {"new": "{n}", "add": "{o}.{c} + {n}", "or_old": "coalesce({n}, {o}.{c})",
            "old_or": "coalesce({o}.{c}, {n})"}
    return ", ".join(f"{c} = " + rule[how].format(n=new(c), o=old, c=c)
                     for c, how in _SET_RULES if c not in skip)


_PG_SET = _set_list(lambda c: f"excluded.{c}", "sessions")


def _pg_save(gate: str = "", where: str = "") -> str:
    """The upsert of the rows of :func:`_save_rows` in parameter ``rows``;
    ``gate``: a WHERE clause on them (``v``); ``where``: which existing rows
    may be updated."""
    return f"""
INSERT INTO sessions ({", ".join(c for c, _ in _PG_TYPES)})
SELECT v.* FROM json_to_recordset(CAST(%(rows)s AS json))
    AS v({", ".join(f"{c} {t}" for c, t in _PG_TYPES)}){gate}
ON CONFLICT (id) DO UPDATE SET {_PG_SET}{f" WHERE {where}" if where else ""}"""


_PG_SAVE = _pg_save()


# What save_known compares: the stored state (as core.accounting.sessions
# reads it), the packets counted and the user; _guarded gives the values.
_GUARDED = ("packets", "active", "started_at", "updated_at", "last_seen", "stopped_at",
            "terminate_cause", "session_s", "in_octets", "out_octets", "user_id")


def _guarded(k: Known) -> tuple[Any, ...]:
    s, t = k.state, k.state.totals
    return (k.packets, s.open, s.started_at, s.updated_at, s.last_seen, s.stopped_at,
            s.terminate_cause, t.session_s, t.in_octets, t.out_octets, k.owner)
_OLD_TYPES = dict(_PG_TYPES)


# save_known's statement. ``held``: the known rows (``was``, sorted by key)
# that still hold the state the new one was computed from, locked one by one
# in key order: a lookup of each by its key, which the planner cannot turn
# into a scan of the table (a subquery with FOR UPDATE is not merged into a
# join). The lock re-reads a row another transaction changed, and the guard
# is evaluated on that version. ``fresh``: the new sessions whose name and
# plan are as they were read. ``saved`` inserts the fresh rows and updates
# the held ones; a fresh row that exists after all (another writer made it)
# conflicts and is left alone (the update's WHERE), so what it returns is
# what was written, and only their usage is added (add_usage's upsert, per
# user and period). Without its layout: psycopg caches the parsing of a
# statement's placeholders only up to 4,096 characters.
_PG_SAVE_KNOWN = " ".join(f"""
WITH o AS (
SELECT * FROM json_to_recordset(CAST(%(was)s AS json)) AS o(id varchar,
    {", ".join(f"{c} {_OLD_TYPES[c]}" for c in _GUARDED)}, plan_md5 text)),
held AS (
SELECT h.id FROM o CROSS JOIN LATERAL (
    SELECT s.id FROM sessions s
    WHERE s.id = o.id
        AND ({", ".join(f"s.{c}" for c in _GUARDED)})
            IS NOT DISTINCT FROM ({", ".join(f"o.{c}" for c in _GUARDED)})
        AND md5({_plan_of("o.user_id")}) IS NOT DISTINCT FROM o.plan_md5
    FOR UPDATE OF s) h),
fresh AS (
SELECT n.id FROM json_to_recordset(CAST(%(new)s AS json))
    AS n(id varchar, name varchar, user_id integer, plan_md5 text)
WHERE {_holder("n.name", str(OPERATOR))} = n.user_id
    AND md5({_plan_of("n.user_id")}) IS NOT DISTINCT FROM n.plan_md5),
saved AS ({_pg_save(" WHERE v.id IN (SELECT id FROM held UNION ALL SELECT id FROM fresh)",
                    where="sessions.id IN (SELECT id FROM held)")} RETURNING sessions.id),
added AS ({pg_add_usage("usage", of_sessions="saved")})
SELECT id FROM saved""".split())


# save_known's statement with PostgreSQL's own parameters ($1 …), for a
# statement prepared on a connection of its own; and the order of its values.
SAVE_KNOWN_SQL, _SAVE_KNOWN_ORDER = native_sql(_PG_SAVE_KNOWN)


# save_known's statement for a batch of one known session (most of them at
# one request at a time): the same guard and writes as _PG_SAVE_KNOWN, with
# typed parameters instead of JSON, and an UPDATE of the row where the guard
# holds instead of a lock, then an upsert (the UPDATE waits for a row another
# transaction changed and evaluates its WHERE on the newest version).
# About a tenth less time on the server than the batch's statement.
_PG_SAVE_ONE_SESSION = f"""
WITH saved AS (
UPDATE sessions s SET {_set_list(lambda c: f"CAST(%(new_{c})s AS {_OLD_TYPES[c]})", "s")}
WHERE s.id = CAST(%(id)s AS varchar)
    AND ({", ".join(f"s.{c}" for c in _GUARDED)}) IS NOT DISTINCT FROM
        ({", ".join(f"CAST(%(was_{c})s AS {_OLD_TYPES[c]})" for c in _GUARDED)})
    AND md5({_plan_of("CAST(%(was_user_id)s AS integer)")})
        IS NOT DISTINCT FROM CAST(%(plan_md5)s AS text)
RETURNING s.id),"""
_PG_SAVE_ONE = " ".join(f"""{_PG_SAVE_ONE_SESSION}
added AS ({pg_add_usage("usage", of_sessions="saved", arrays=True)})
SELECT id FROM saved""".split())
# The same with exactly one usage row (an Interim-Update or Stop within one
# period): an UPDATE of that row, not an INSERT … ON CONFLICT.
_PG_SAVE_ONE_ROW = " ".join(f"""{_PG_SAVE_ONE_SESSION}
{pg_add_one_usage("usage", of_sessions="saved")}
SELECT id FROM saved""".split())

def _insert_new(value: Callable[[str, str], str], same_plan: Callable[[str], str]) -> str:
    """The INSERT of one new session (of a user known): the row goes in if
    the name's holder and plan are as they were read and no row exists yet.
    ``value(column, type)``: a parameter's SQL; ``same_plan(plan)``: the test
    of the plan definition's SQL against what was read."""
    user_id = value("user_id", "integer")
    return " ".join(f"""
INSERT INTO sessions ({", ".join(c for c, _ in _PG_TYPES)})
SELECT {", ".join(value(c, t) for c, t in _PG_TYPES)}
WHERE {_holder(value("user_name", "varchar"), str(OPERATOR))} = {user_id}
    AND {same_plan(_plan_of(user_id))}
ON CONFLICT (id) DO NOTHING""".split())


# And for a batch of one new session.
_PG_SAVE_NEW = " ".join(f"""WITH saved AS ({_insert_new(
    lambda c, t: f"CAST(%(new_{c})s AS {t})",
    lambda plan: f"md5({plan}) IS NOT DISTINCT FROM CAST(%(plan_md5)s AS text)")}
RETURNING sessions.id),
added AS ({pg_add_usage("usage", of_sessions="saved", arrays=True)})
SELECT id FROM saved""".split())

# The statements save_known_statement picks from, by the name each is
# prepared as (daemon.pg_statement), and the order of their parameters.
_ONE_STATEMENTS = {b"aaad_save_one": native_sql(_PG_SAVE_ONE),
                   b"aaad_save_one_row": native_sql(_PG_SAVE_ONE_ROW),
                   b"aaad_save_new": native_sql(_PG_SAVE_NEW)}
SAVE_KNOWN_STATEMENTS = {b"aaad_save_known": SAVE_KNOWN_SQL,
                         **{name: sql for name, (sql, _) in _ONE_STATEMENTS.items()}}


_NEW_NAMES = {c: f"new_{c}" for c, _ in _PG_TYPES}
_WAS_NAMES = tuple(f"was_{c}" for c in _GUARDED)


def _change_params(c: Change) -> dict[str, Any]:
    """The parameters of a one-session statement that come from ``c``: its
    new row (``new_…``), and for a known session its key and the guarded
    state it was computed from (``was_…``)."""
    row = _save_rows([(c.state, c.packets, c.newest, c.owner)])[0]
    params = {_NEW_NAMES[k]: v for k, v in row.items()}
    if c.was is not None:
        params.update(zip(_WAS_NAMES, _guarded(c.was), strict=True))
        params["id"] = c.state.key
    return params


def _one_params(c: Change, usage_rows: Sequence[dict[str, Any]]
                ) -> tuple[bytes, str, dict[str, Any]]:
    """The statement for a batch of the one change ``c``: its name, driver
    SQL and parameters."""
    params = _change_params(c)
    if c.was is None:
        params.update(usage_arrays(usage_rows))
        params["plan_md5"] = _md5(c.definition)
        return b"aaad_save_new", _PG_SAVE_NEW, params
    params["plan_md5"] = _md5(c.was.definition)
    if len(usage_rows) == 1:
        params.update(usage_one(usage_rows[0]))
        return b"aaad_save_one_row", _PG_SAVE_ONE_ROW, params
    params.update(usage_arrays(usage_rows))
    return b"aaad_save_one", _PG_SAVE_ONE, params


# SQLite: save_known's writes, one statement per session, in the caller's
# transaction (the writer holds the database's write lock from its BEGIN
# IMMEDIATE, so the guard cannot change under it). The plan is compared by its
# text: nothing crosses a network. A known row whose phase and user stay as
# they are is updated without ``active`` and ``user_id`` in the SET, which
# would rewrite their index entries (see _sqlite_save).
_SQLITE_GUARD = " ".join(f"""
WHERE id = :id
    AND {" AND ".join(f"{c} IS :was_{c}" for c in _GUARDED)}
    AND {_plan_of(":was_user_id")} IS :definition""".split())
# As qmark SQL and the names of its parameters in order (the driver binds
# positions faster than names).
_SQLITE_SAVE_ONE = {
    settled: qmark_sql(f"UPDATE sessions SET {_set_list(lambda c: f':new_{c}', 'sessions', skip)} "
                       + _SQLITE_GUARD)
    for settled, skip in ((False, ()), (True, ("active", "user_id")))}
_SQLITE_SAVE_NEW = qmark_sql(_insert_new(lambda c, _: f":new_{c}",
                                         lambda plan: f"{plan} IS :definition"))


def sqlite_save_known(raw: Any, changes: Sequence[Change],
                      usage_rows: Sequence[dict[str, Any]]) -> set[str]:
    """:func:`save_known` on SQLite, on the driver's connection (``sqlite3``)
    in its caller's transaction: a guarded write per session, in key order,
    then the usage of those written. The keys written; driver errors are
    raised as they are."""
    written: set[str] = set()
    cur = raw.cursor()
    try:
        for c in sorted(changes, key=_change_key) if len(changes) > 1 else changes:
            params = _change_params(c)
            if c.was is None:
                params["definition"] = c.definition
                sql, order = _SQLITE_SAVE_NEW
            else:
                params["definition"] = c.was.definition
                settled = c.was.state.open == c.state.open and c.was.owner is not None
                sql, order = _SQLITE_SAVE_ONE[settled]
            cur.execute(sql, [params[n] for n in order])
            if cur.rowcount == 1:
                written.add(c.state.key)
        if rows := sqlite_usage_params(usage_rows, written):
            cur.executemany(SQLITE_ADD_USAGE, rows)
    finally:
        cur.close()
    return written


def sqlite_write_known(raw: Any, changes: Sequence[Change],
                       usage_rows: Sequence[dict[str, Any]]) -> bool:
    """:func:`sqlite_save_known` as a transaction of its own on the driver's
    connection (in autocommit mode, as database.open_database makes them),
    without SQLAlchemy's transaction around it: committed only if every
    session was written, else rolled back. True: committed; False: nothing
    was written (another writer changed a session; the caller does the
    batch the usual way, which reads those sessions). A driver error
    (the write lock held elsewhere: "database is locked") leaves nothing
    written either, and is raised."""
    raw.execute("BEGIN IMMEDIATE")
    try:
        written = sqlite_save_known(raw, changes, usage_rows)
        if len(written) < len(changes):
            raw.rollback()
            return False
        raw.commit()
        return True
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


def _change_key(c: Change) -> str:
    return c.state.key


def save_known_statement(changes: Sequence[Change], usage_rows: Sequence[dict[str, Any]]
                         ) -> tuple[bytes, list[bytes | None]]:
    """Which of :data:`SAVE_KNOWN_STATEMENTS` writes ``changes``, and its
    parameters in the order of its ``$n``, as the text the server reads them
    from (UTF-8)."""
    if len(changes) == 1:
        name, _, params = _one_params(changes[0], usage_rows)
        return name, [None if v is None else b"t" if v is True else b"f" if v is False
                      else str(v).encode("utf-8")
                      for v in [params[p] for p in _ONE_STATEMENTS[name][1]]]
    return b"aaad_save_known", save_known_values(changes, usage_rows)


def _save_rows(ordered: Sequence[tuple[SessionState, int, AcctRecord, int]], *,
               omit_nulls: bool = False) -> list[dict[str, Any]]:
    """The rows of a batch's sessions for json_to_recordset. ``omit_nulls``:
    leave out the keys whose value is None (json_to_recordset reads a
    missing key as NULL): a smaller text to encode and parse."""
    rows = [{
        "id": s.key, "user_name": s.user_name, "nas_key": r.nas_key, "client": r.client,
        "nas_address": r.nas_address, "acct_session_id": r.acct_session_id,
        "active": s.open, "packets": n, "started_at": s.started_at,
        "updated_at": s.updated_at, "last_seen": s.last_seen, "stopped_at": s.stopped_at,
        "terminate_cause": s.terminate_cause, "session_s": s.totals.session_s,
        "in_octets": s.totals.in_octets, "out_octets": s.totals.out_octets,
        "framed_ip": r.framed_ip, "calling_station_id": r.calling_station_id,
        "called_station_id": r.called_station_id, "nas_port": r.nas_port,
        "nas_port_id": r.nas_port_id, "interim_interval_s": r.interim_interval_s,
        "user_id": u, "authorised_s": r.authorised_s, "direction": r.direction,
    } for s, n, r, u in ordered]
    if omit_nulls:
        return [{k: v for k, v in row.items() if v is not None} for row in rows]
    return rows


def _mysql_save() -> Any:
    stmt = mysql.insert(sessions)
    new = stmt.inserted
    keep = ("framed_ip", "calling_station_id", "called_station_id", "nas_port", "nas_port_id",
            "interim_interval_s", "authorised_s")
    values: dict[str, Any] = {c: new[c] for c in (
        "active", "started_at", "updated_at", "last_seen", "stopped_at", "terminate_cause",
        "session_s", "in_octets", "out_octets")}
    values["packets"] = sessions.c.packets + new.packets
    values.update({c: func.coalesce(new[c], sessions.c[c]) for c in keep})
    values["user_id"] = func.coalesce(sessions.c.user_id, new.user_id)
    return stmt.on_duplicate_key_update(values)


_MYSQL_SAVE = _mysql_save()


def in_phases(phases: Iterable[Phase]) -> Any:
    """SQL for "the session row is in one of these lifecycle phases".

    A row is written only once a packet was counted for it (placeholders of
    a batch are saved in the same transaction), so NEW never matches a row.
    """
    closed_as = {Phase.STALE: [Cause.STALE, Cause.MAX_DURATION],
                 Phase.NAS_REBOOT: [Cause.NAS_REBOOT], Phase.REPLACED: [Cause.REPLACED]}
    c = sessions.c
    terms: list[Any] = []
    for p in set(phases):
        if p is Phase.OPEN:
            terms.append(c.active.is_(True))
        elif p in closed_as:
            terms.append(and_(c.active.is_(False), c.terminate_cause.in_(closed_as[p])))
        elif p is Phase.STOPPED:
            terms.append(and_(c.active.is_(False),
                              or_(c.terminate_cause.is_(None),
                                  c.terminate_cause.not_in(sorted(Cause.INFERRED)))))
    return or_(false(), *terms)


def _nas_open_before(nas_key: str, at: int) -> Any:
    return and_(sessions.c.nas_key == nas_key, in_phases(closing_phases(Event.NAS_RESTART)),
                sessions.c.updated_at <= at)


def _stale(now: int, default_interval_s: int, intervals: int,
           no_interims: Sequence[str] = ()) -> Any:
    silence = func.coalesce(sessions.c.interim_interval_s, default_interval_s) * intervals
    cond = and_(in_phases(closing_phases(Event.SILENCE)), sessions.c.last_seen < now - silence)
    if no_interims:     # clients that send no Interim-Updates: silence means nothing
        cond = and_(cond, sessions.c.client.not_in(sorted(no_interims)))
    return cond


def _allowed_s(max_duration_s: int, grace_s: int) -> Any:
    """A session's longest life: the call time it was authorised for plus
    ``grace_s`` when that is shorter, else ``max_duration_s``."""
    authorised = sessions.c.authorised_s + grace_s
    return case((and_(sessions.c.authorised_s.is_not(None), authorised < max_duration_s),
                 authorised), else_=max_duration_s)


def too_long_sessions(conn: Connection, now: int, max_duration_s: int,
                      no_interims: Sequence[str], grace_s: int = 0) -> dict[str, int]:
    """Open sessions of clients that send no Interim-Updates that outlived the
    call time they were authorised for (plus ``grace_s``) or ``max_duration_s``
    (accounting.max_call_duration_s): id → the duration to close them at (the
    authorised time, or the maximum)."""
    if not no_interims:
        return {}
    rows = conn.execute(select(sessions.c.id, sessions.c.authorised_s).where(
        in_phases(closing_phases(Event.SILENCE)), sessions.c.client.in_(sorted(no_interims)),
        sessions.c.started_at <= now - _allowed_s(max_duration_s, grace_s)))
    return {r.id: (r.authorised_s if r.authorised_s is not None
                   and r.authorised_s + grace_s < max_duration_s else max_duration_s)
            for r in rows}


def close_too_long_sessions(conn: Connection, durations: Mapping[str, int]) -> int:
    """Close these sessions at their start + their duration (cause Max-Duration);
    their counted totals stay, so a real Stop still counts all its usage."""
    n = 0
    for seconds in sorted(set(durations.values())):
        keys = sorted(k for k, s in durations.items() if s == seconds)
        result = conn.execute(
            update(sessions).where(and_(sessions.c.id.in_(keys), sessions.c.active.is_(True)))
            .values(active=False, stopped_at=sessions.c.started_at + seconds,
                    terminate_cause=Cause.MAX_DURATION))
        n += int(result.rowcount)
    return n


def close_nas_sessions(conn: Connection, nas_key: str, at: int,
                       cause: str = Cause.NAS_REBOOT) -> int:
    """Accounting-On/Off: close the NAS's sessions last heard of before ``at``
    (the phases lifecycle.TRANSITIONS closes on a NAS restart)."""
    result = conn.execute(
        update(sessions).where(_nas_open_before(nas_key, at))
        .values(active=False, stopped_at=sessions.c.updated_at, terminate_cause=cause))
    return int(result.rowcount)


def nas_session_ids(conn: Connection, nas_key: str, at: int) -> list[str]:
    """The sessions :func:`close_nas_sessions` would close."""
    return list(conn.execute(select(sessions.c.id).where(_nas_open_before(nas_key, at))).scalars())


def close_stale_sessions(conn: Connection, now: int, default_interval_s: int,
                         intervals: int, cause: str = Cause.STALE,
                         no_interims: Sequence[str] = ()) -> int:
    """Close sessions silent for ``intervals`` × their interim interval (the
    phases lifecycle.TRANSITIONS closes on silence), except those of the
    clients in ``no_interims``."""
    result = conn.execute(
        update(sessions).where(_stale(now, default_interval_s, intervals, no_interims))
        .values(active=False, stopped_at=sessions.c.updated_at, terminate_cause=cause))
    return int(result.rowcount)


def stale_session_ids(conn: Connection, now: int, default_interval_s: int,
                      intervals: int, no_interims: Sequence[str] = ()) -> list[str]:
    """The sessions :func:`close_stale_sessions` would close."""
    return list(conn.execute(select(sessions.c.id).where(
        _stale(now, default_interval_s, intervals, no_interims))).scalars())


@dataclass(frozen=True, slots=True)
class Replaced:
    """A session :func:`replace_oldest` closed: what a Disconnect-Request needs."""

    key: str
    user_name: str
    client: str
    nas_address: str
    nas_key: str
    acct_session_id: str
    framed_ip: str | None


def replace_oldest(conn: Connection, user_id: int, *, max_sessions: int) -> list[Replaced]:
    """Close the user's oldest open sessions so that a new login fits in
    ``max_sessions`` (core.quotas.concurrency), the way the stale sweep closes
    one: at its last event time, with its last known totals (usage already
    counted stays counted), terminate cause ``Replaced``. A later Stop for it
    replaces that close; an Interim does not reopen it (lifecycle.py).

    The user row is locked first, as every per-user write does, so two
    logins at once (two nodes on one database) close each session once: the
    second sees the first's closes. The caller owns the transaction.
    """
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update()).all()
    c = sessions.c
    rows = {r.id: r for r in conn.execute(
        select(c.id, c.user_name, c.client, c.nas_address, c.nas_key, c.acct_session_id,
               c.framed_ip, c.started_at)
        .where(and_(c.user_id == user_id, in_phases({Phase.OPEN}))).order_by(c.id)
        .with_for_update())}
    keys = sessions_to_replace([OpenSession(r.id, r.started_at) for r in rows.values()],
                               max_sessions)
    if not keys:
        return []
    conn.execute(update(sessions)
                 .where(and_(c.id.in_(keys), in_phases(closing_phases(Event.REPLACED))))
                 .values(active=False, stopped_at=c.updated_at, terminate_cause=Cause.REPLACED))
    return [Replaced(k, rows[k].user_name, rows[k].client, rows[k].nas_address, rows[k].nas_key,
                     rows[k].acct_session_id, rows[k].framed_ip) for k in keys]


def list_sessions(conn: Connection, *, user: UserRef | None = None, active_only: bool = False,
                  limit: int = 100, tenant: int | None = None) -> list[dict[str, Any]]:
    """Sessions, newest first; of ``user``: the sessions of the user holding
    the name, or if nobody holds it, those the NAS reported under that name
    (a deleted user's history). With ``tenant``, that tenant's sessions only
    (a name is its user's there); without, a name is the operator's user's."""
    conds = []
    if tenant is not None:
        conds.append(sessions.c.tenant_id == tenant)
    if user is not None:
        uid = ids_for(conn, [user], tenant=OPERATOR if tenant is None else tenant).get(user)
        conds.append(sessions.c.user_id == uid if uid is not None
                     else sessions.c.user_name == user)
    if active_only:
        conds.append(sessions.c.active.is_(True))
    stmt = select(sessions).order_by(desc(sessions.c.started_at), sessions.c.id).limit(limit)
    if conds:
        stmt = stmt.where(and_(*conds))
    out = []
    for r in conn.execute(stmt):
        out.append({
            "id": r.id, "user": r.user_name, "client": r.client, "nas": r.nas_key,
            "nas_address": r.nas_address,
            "acct_session_id": r.acct_session_id, "active": bool(r.active),
            "started_at": r.started_at, "updated_at": r.updated_at, "stopped_at": r.stopped_at,
            "terminate_cause": r.terminate_cause, "session_s": r.session_s,
            "in_octets": r.in_octets, "out_octets": r.out_octets, "packets": r.packets,
            "framed_ip": r.framed_ip, "calling_station_id": r.calling_station_id,
            "nas_port": r.nas_port,
        })
    return out


def open_session_count(conn: Connection, user: UserRef | None = None) -> int:
    """Open sessions, all or the user's own."""
    stmt = select(func.count()).select_from(sessions).where(sessions.c.active.is_(True))
    if user is not None:
        uid = ids_for(conn, [user]).get(user)
        if uid is None:
            return 0
        stmt = stmt.where(sessions.c.user_id == uid)
    return int(conn.execute(stmt).scalar_one())


def open_sessions(conn: Connection, users_: Iterable[UserRef]) -> dict[Any, int]:
    """user → sessions open now (users with none are left out)."""
    ids = ids_for(conn, set(users_))
    if not ids:
        return {}
    rows = conn.execute(
        select(sessions.c.user_id, func.count())
        .where(and_(sessions.c.user_id.in_(set(ids.values())), sessions.c.active.is_(True)))
        .group_by(sessions.c.user_id))
    found = {r[0]: int(r[1]) for r in rows}
    return {ref: found[i] for ref, i in ids.items() if i in found}
