"""Every SQL statement aaad runs, and the one place where dialects differ.

Functions take a ``Connection`` and never open or commit a transaction: the
caller owns ``with engine.begin()``. Counter updates are atomic increments
(``col = col + :n``), so several nodes on one database count exactly.

Users are keyed by id. Functions that read per-user rows take a
:data:`UserRef`: an id (the hot paths, which already hold it), or a name,
meaning the user that holds the name now (admin tools); results are keyed by
the refs given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    Connection,
    Insert,
    and_,
    bindparam,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from aaad.core.accounting.lifecycle import Event, Phase, closing_phases
from aaad.core.accounting.sessions import ZERO, AcctRecord, Cause, SessionState, Totals
from aaad.store.tables import plans, sessions, usage, users

__all__ = [
    "UserRef",
    "user_ids",
    "add_holders",
    "ids_for",
    "owner_id",
    "insert_ignore",
    "insert_once",
    "upsert_add",
    "capped",
    "MAX_COUNTER",
    "find_users_for_auth",
    "claim_sessions",
    "lock_sessions",
    "insert_placeholders",
    "save_sessions",
    "add_usage",
    "close_nas_sessions",
    "close_stale_sessions",
    "nas_session_ids",
    "stale_session_ids",
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


def insert_once(conn: Connection, table: Any, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless it collides with a unique key; True if it went in.

    On PostgreSQL the driver reports rowcount -1 for an INSERT that SQLAlchemy
    gives an implicit ``RETURNING`` (tables with an autoincrement key), so ask
    for the key explicitly there: a skipped row returns nothing.
    """
    stmt = insert_ignore(conn, table)
    if conn.dialect.name == "postgresql":
        return conn.execute(stmt.returning(*table.primary_key.columns), row).first() is not None
    return bool(conn.execute(stmt, row).rowcount)


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
    cache_key = (conn.dialect.name, table.name, tuple(keys), tuple(counters))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        # Built once per dialect: building it (the ``excluded`` namespace)
        # cost more than running it on SQLite.
        stmt = _upsert_add(conn, table, keys, counters)
        _UPSERTS[cache_key] = stmt
    return stmt


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert_add(conn: Connection, table: Any, keys: Sequence[str], counters: Sequence[str]) -> Any:
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

UserRef: TypeAlias = "int | str"
"""A user id, or a name: the user that holds the name now."""


def user_ids(conn: Connection, names: Iterable[str], *, create: bool = False,
             now: int = 0) -> dict[str, int]:
    """The id of the user holding each name: its account, or its no-account
    holder (``users.account`` false, the owner of usage under a name that has
    no account). With ``create``, a name nobody holds gets a no-account
    holder: two more statements, only then. Names nobody holds are left out
    unless ``create``.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = _holders(conn, wanted)
    missing = [n for n in wanted if n not in found]
    if create and missing:
        found.update(add_holders(conn, missing, now))
    return found


def add_holders(conn: Connection, names: Iterable[str], now: int) -> dict[str, int]:
    """Give each name a no-account holder unless someone holds it already;
    name → the holder's id (or the account's)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    # Ignore-on-conflict: another node may be creating the same holder (this
    # waits for its transaction, then finds its row).
    conn.execute(insert_ignore(conn, users), [{
        "name": n, "account": False, "enabled": False, "password_hash": None,
        "password_cleartext": None, "plan": None, "created_at": now, "updated_at": now}
        for n in wanted])
    return _holders(conn, wanted)


def _holders(conn: Connection, names: list[str]) -> dict[str, int]:
    rows = conn.execute(select(users.c.id, users.c.name).where(users.c.name.in_(names))).all()
    wanted = set(names)
    found = {r.name: r.id for r in rows if r.name in wanted}
    if len(rows) > len(found):
        # The collation matched a name spelled otherwise (MariaDB folds case
        # and trailing spaces): look the names that found no exact row up alone.
        for n in names:
            if n not in found:
                one = conn.execute(select(users.c.id).where(users.c.name == n)).scalar()
                if one is not None:
                    found[n] = one
    return found


def ids_for(conn: Connection, refs: Iterable[UserRef]) -> dict[UserRef, int]:
    """ref → user id: ids stand for themselves; names are looked up (one
    query, only if there are any) and left out if nobody holds them."""
    out: dict[UserRef, int] = {}
    names = []
    for ref in refs:
        if isinstance(ref, str):
            names.append(ref)
        else:
            out[ref] = ref
    if names:
        out.update(user_ids(conn, names))
    return out


def owner_id(conn: Connection, user_name: str, user_id: int | None, now: int) -> int:
    """The user a new row of ``user_name`` belongs to: ``user_id`` when the
    caller knows it, else the holder of the name (created if nobody holds it)."""
    if user_id is not None:
        return user_id
    return user_ids(conn, [user_name], create=True, now=now)[user_name]


def find_users_for_auth(conn: Connection, names: Iterable[str],
                        period_starts: Iterable[int]) -> list[Any]:
    """One query for a batch of logins: account, plan definition, open
    sessions, and the counted usage rows whose period starts are among
    ``period_starts`` (the current periods of the plans in use). A user can
    have several rows (one per matching start) or one row with no usage.
    Sessions and usage are the account's own, by its id: a deleted user's
    with the same name are not counted."""
    return list(conn.execute(_FOR_AUTH, {"names": list(set(names)),
                                         "starts": sorted(set(period_starts)) or [-1]}))


# Built once: constructing a statement costs more than running it here.
_OPEN_COUNT = (select(func.count()).select_from(sessions)
               .where(and_(sessions.c.user_id == users.c.id, sessions.c.active.is_(True)))
               .correlate(users).scalar_subquery())
_FOR_AUTH = (
    select(users.c.id, users.c.name, users.c.password_hash, users.c.password_cleartext,
           users.c.enabled, users.c.created_at,
           users.c.plan, plans.c.definition, usage.c.period_start, usage.c.counted_s,
           usage.c.counted_in_octets, usage.c.counted_out_octets,
           _OPEN_COUNT.label("open_sessions"))
    .select_from(users.outerjoin(plans, plans.c.name == users.c.plan)
                 .outerjoin(usage, and_(usage.c.user_id == users.c.id,
                                        usage.c.period_start.in_(
                                            bindparam("starts", expanding=True)))))
    .where(and_(users.c.name.in_(bindparam("names", expanding=True)),
                users.c.account.is_(True))))


# -- sessions ----------------------------------------------------------------

def _state(r: Any) -> SessionState:
    return SessionState(
        key=r.id, user_name=r.user_name,
        totals=Totals(r.session_s, r.in_octets, r.out_octets),
        started_at=r.started_at, updated_at=r.updated_at, last_seen=r.last_seen,
        open=bool(r.active), stopped_at=r.stopped_at, terminate_cause=r.terminate_cause)


Loaded: TypeAlias = "tuple[SessionState, int, int | None]"
"""A claimed session: (state, packets counted so far, the user id it belongs to)."""


def claim_sessions(conn: Connection, records: Sequence[AcctRecord]
                   ) -> tuple[dict[str, Loaded], dict[int, str] | None]:
    """Create the missing session rows and row-lock all of them, in key order.

    ``records`` has one record per session (the first of the batch). Locks
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
        # Two statements whatever the batch: the upsert creates the missing
        # rows and, through its DO UPDATE … WHERE false, locks the existing
        # ones (in the order of the rows) without writing them; then one read
        # of the sessions with their users' plans.
        conn.execute(_PG_CLAIM, {"rows": _json(_placeholder_rows(ordered))})
        return _with_plans(conn.execute(_PG_LOCKED, {"ids": _json([r.key for r in ordered])}))
    if name in ("mysql", "mariadb"):
        # INSERT … ON DUPLICATE KEY UPDATE takes exclusive locks on existing
        # rows (INSERT IGNORE takes shared ones, and two nodes upgrading
        # shared locks deadlock), then one read of the locked rows.
        conn.execute(_MYSQL_CLAIM, _placeholder_rows(ordered))
        return lock_sessions(conn, [r.key for r in ordered]), None
    # SQLite: the writer holds the database lock from BEGIN IMMEDIATE.
    loaded, plans_ = _with_plans(conn.execute(_LOAD_WITH_PLANS,
                                              {"ids": [r.key for r in ordered]}))
    missing = [r for r in ordered if r.key not in loaded]
    if missing:
        insert_placeholders(conn, missing)
        more, more_plans = _with_plans(conn.execute(_LOAD_WITH_PLANS,
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
            definitions[r.owner] = r.definition
    return loaded, definitions


_SESSION_COLUMNS = ("s.id, s.user_name, s.session_s, s.in_octets, s.out_octets, s.started_at, "
                    "s.updated_at, s.last_seen, s.active, s.stopped_at, s.terminate_cause, "
                    "s.packets")
_PG_CLAIM = text("""
INSERT INTO sessions (id, user_name, nas_key, client, nas_address, acct_session_id, active,
                      packets, started_at, updated_at, last_seen, session_s, in_octets, out_octets,
                      direction)
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS v(
    id varchar, user_name varchar, nas_key varchar, client varchar, nas_address varchar,
    acct_session_id varchar, active boolean, packets integer, started_at bigint,
    updated_at bigint, last_seen bigint, session_s bigint, in_octets bigint, out_octets bigint,
    direction varchar)
ON CONFLICT (id) DO UPDATE SET packets = sessions.packets WHERE false""")
# A plain read: every row is locked by the statement above, and a new
# statement (READ COMMITTED) sees their newest committed versions.
# The session's user, or for a row just created (user_id still NULL) the
# holder of its name now: coalesce evaluates the lookup only then.
_OWNER = "coalesce(s.user_id, (SELECT h.id FROM users h WHERE h.name = s.user_name))"
_PG_LOCKED = text(f"""
SELECT {_SESSION_COLUMNS}, {_OWNER} AS owner, p.definition
FROM sessions s LEFT JOIN users u ON u.id = {_OWNER} LEFT JOIN plans p ON p.name = u.plan
WHERE s.id IN (SELECT json_array_elements_text(CAST(:ids AS json)))""")
_MYSQL_CLAIM = mysql.insert(sessions).on_duplicate_key_update(packets=sessions.c.packets)
_s, _u, _p, _h = sessions.alias("s"), users.alias("u"), plans.alias("p"), users.alias("h")


def _owner(s: Any) -> Any:
    return func.coalesce(s.c.user_id, select(_h.c.id).where(_h.c.name == s.c.user_name)
                         .correlate(s).scalar_subquery())


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


def insert_placeholders(conn: Connection, records: Sequence[AcctRecord]) -> None:
    """Create empty rows for new sessions, ignoring ones another node just made.

    Once every session row exists, :func:`lock_sessions` serialises all
    writers of a session, whichever node they run on.
    """
    if not records:
        return
    conn.execute(insert_ignore(conn, sessions),
                 _placeholder_rows(sorted(records, key=lambda r: r.key)))


def _placeholder_rows(records: Sequence[AcctRecord]) -> list[dict[str, Any]]:
    return [{
        "id": r.key, "user_name": r.user_name, "nas_key": r.nas_key, "client": r.client,
        "nas_address": r.nas_address, "acct_session_id": r.acct_session_id,
        "active": True, "packets": 0, "started_at": r.at, "updated_at": r.at,
        "last_seen": r.arrival, "session_s": 0, "in_octets": 0, "out_octets": 0,
        "direction": r.direction,
    } for r in records]


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
    user_id=func.coalesce(sessions.c.user_id, bindparam("b_user_id")),
))


def save_sessions(conn: Connection,
                  changes: Sequence[tuple[SessionState, int, AcctRecord, int]]) -> None:
    """Write new session states: (state, packets added, newest record, user id).

    The user id is written only into a row that has none yet (one created
    in this transaction): a session belongs to one user for its whole life.
    """
    if not changes:
        return
    ordered = sorted(changes, key=lambda c: c[0].key)
    name = conn.dialect.name
    if name == "postgresql":
        # One statement for the batch: executemany would run one UPDATE per row.
        conn.execute(_PG_SAVE, {"rows": _json(_save_rows(ordered))})
        return
    if name in ("mysql", "mariadb"):
        # The driver sends an executemany INSERT as one multi-row statement
        # (an UPDATE as one statement per row). Every row exists and is locked
        # by claim_sessions, so this only ever takes the UPDATE branch.
        conn.execute(_MYSQL_SAVE, _save_rows(ordered))
        return
    conn.execute(_SAVE, [{
        "b_id": s.key, "b_active": s.open, "b_packets": n, "b_started_at": s.started_at,
        "b_updated_at": s.updated_at, "b_last_seen": s.last_seen, "b_stopped_at": s.stopped_at,
        "b_terminate_cause": s.terminate_cause, "b_session_s": s.totals.session_s,
        "b_in_octets": s.totals.in_octets, "b_out_octets": s.totals.out_octets,
        "b_framed_ip": r.framed_ip, "b_calling": r.calling_station_id,
        "b_called": r.called_station_id, "b_nas_port": r.nas_port,
        "b_nas_port_id": r.nas_port_id, "b_interim": r.interim_interval_s, "b_user_id": u,
    } for s, n, r, u in ordered])


_PG_SAVE = text("""
UPDATE sessions SET active = v.active, packets = sessions.packets + v.packets,
    started_at = v.started_at, updated_at = v.updated_at, last_seen = v.last_seen,
    stopped_at = v.stopped_at, terminate_cause = v.terminate_cause,
    session_s = v.session_s, in_octets = v.in_octets, out_octets = v.out_octets,
    framed_ip = coalesce(v.framed_ip, sessions.framed_ip),
    calling_station_id = coalesce(v.calling_station_id, sessions.calling_station_id),
    called_station_id = coalesce(v.called_station_id, sessions.called_station_id),
    nas_port = coalesce(v.nas_port, sessions.nas_port),
    nas_port_id = coalesce(v.nas_port_id, sessions.nas_port_id),
    interim_interval_s = coalesce(v.interim_interval_s, sessions.interim_interval_s),
    user_id = coalesce(sessions.user_id, v.user_id)
FROM json_to_recordset(CAST(:rows AS json)) AS v(
    id varchar, user_name varchar, nas_key varchar, client varchar, nas_address varchar,
    acct_session_id varchar, active boolean, packets integer, started_at bigint,
    updated_at bigint, last_seen bigint, stopped_at bigint, terminate_cause varchar,
    session_s bigint, in_octets bigint, out_octets bigint, framed_ip varchar,
    calling_station_id varchar, called_station_id varchar, nas_port bigint,
    nas_port_id varchar, interim_interval_s integer, user_id integer)
WHERE sessions.id = v.id""")


def _save_rows(ordered: Sequence[tuple[SessionState, int, AcctRecord, int]]
               ) -> list[dict[str, Any]]:
    return [{
        "id": s.key, "user_name": s.user_name, "nas_key": r.nas_key, "client": r.client,
        "nas_address": r.nas_address, "acct_session_id": r.acct_session_id,
        "active": s.open, "packets": n, "started_at": s.started_at,
        "updated_at": s.updated_at, "last_seen": s.last_seen, "stopped_at": s.stopped_at,
        "terminate_cause": s.terminate_cause, "session_s": s.totals.session_s,
        "in_octets": s.totals.in_octets, "out_octets": s.totals.out_octets,
        "framed_ip": r.framed_ip, "calling_station_id": r.calling_station_id,
        "called_station_id": r.called_station_id, "nas_port": r.nas_port,
        "nas_port_id": r.nas_port_id, "interim_interval_s": r.interim_interval_s,
        "user_id": u,
    } for s, n, r, u in ordered]


def _json(value: Any) -> str:
    """Rows for json_to_recordset: one parameter, whatever the batch size, so
    the statement text never changes (and the driver prepares it), and
    encoding is one C call rather than an array dump per column."""
    return json.dumps(value, separators=(",", ":"))


def _mysql_save() -> Any:
    stmt = mysql.insert(sessions)
    new = stmt.inserted
    keep = ("framed_ip", "calling_station_id", "called_station_id", "nas_port", "nas_port_id",
            "interim_interval_s")
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
    closed_as = {Phase.STALE: Cause.STALE, Phase.NAS_REBOOT: Cause.NAS_REBOOT}
    c = sessions.c
    terms: list[Any] = []
    for p in set(phases):
        if p is Phase.OPEN:
            terms.append(c.active.is_(True))
        elif p in closed_as:
            terms.append(and_(c.active.is_(False), c.terminate_cause == closed_as[p]))
        elif p is Phase.STOPPED:
            terms.append(and_(c.active.is_(False),
                              or_(c.terminate_cause.is_(None),
                                  c.terminate_cause.not_in(sorted(closed_as.values())))))
    return or_(false(), *terms)


def _nas_open_before(nas_key: str, at: int) -> Any:
    return and_(sessions.c.nas_key == nas_key, in_phases(closing_phases(Event.NAS_RESTART)),
                sessions.c.updated_at <= at)


def _stale(now: int, default_interval_s: int, intervals: int) -> Any:
    silence = func.coalesce(sessions.c.interim_interval_s, default_interval_s) * intervals
    return and_(in_phases(closing_phases(Event.SILENCE)), sessions.c.last_seen < now - silence)


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
                         intervals: int, cause: str = Cause.STALE) -> int:
    """Close sessions silent for ``intervals`` × their interim interval (the
    phases lifecycle.TRANSITIONS closes on silence)."""
    result = conn.execute(
        update(sessions).where(_stale(now, default_interval_s, intervals))
        .values(active=False, stopped_at=sessions.c.updated_at, terminate_cause=cause))
    return int(result.rowcount)


def stale_session_ids(conn: Connection, now: int, default_interval_s: int,
                      intervals: int) -> list[str]:
    """The sessions :func:`close_stale_sessions` would close."""
    return list(conn.execute(select(sessions.c.id)
                             .where(_stale(now, default_interval_s, intervals))).scalars())


# -- usage counters ------------------------------------------------------------

def add_usage(conn: Connection, parts: Mapping[tuple[Any, int], tuple[Totals, Totals]],
              names: Mapping[int, str] | None = None) -> None:
    """Add (raw, counted) usage to (user, period start) counters, creating rows.

    A user given by id needs its name in ``names`` (stored with a new row);
    one given by name is its holder, created if nobody holds the name.
    """
    if not parts:
        return
    named = {u for u, _ in parts if isinstance(u, str)}
    ids: dict[str, int] = user_ids(conn, named, create=True) if named else {}
    label: dict[int, str] = dict(names or {})
    label.update({ids[n]: n for n in named})
    by_id: dict[tuple[int, int], tuple[Totals, Totals]] = {}
    for (u, p), (raw, counted) in parts.items():
        key = (ids[u] if isinstance(u, str) else u, p)
        old_raw, old_counted = by_id.get(key, (ZERO, ZERO))
        by_id[key] = (old_raw + raw, old_counted + counted)
    rows = _usage_rows(by_id, label)
    if conn.dialect.name == "postgresql":
        # One statement for the batch: executemany would run one upsert per row.
        conn.execute(_PG_ADD_USAGE, {"rows": _json(rows)})
        return
    stmt = upsert_add(conn, usage, ("user_id", "period_start"), _COUNTERS)
    conn.execute(stmt, rows)


def _usage_rows(parts: dict[tuple[int, int], tuple[Totals, Totals]],
                names: Mapping[int, str]) -> list[dict[str, Any]]:
    return [
        {"user_id": u, "period_start": p, "user_name": names[u],
         "session_s": capped(raw.session_s),
         "in_octets": capped(raw.in_octets), "out_octets": capped(raw.out_octets),
         "counted_s": capped(counted.session_s),
         "counted_in_octets": capped(counted.in_octets),
         "counted_out_octets": capped(counted.out_octets)}
        for (u, p), (raw, counted) in sorted(parts.items())]


_COUNTERS = ("session_s", "in_octets", "out_octets", "counted_s", "counted_in_octets",
             "counted_out_octets")
# One statement for the batch; sums stop at MAX_COUNTER like upsert_add's.
_PG_ADD_USAGE = text(f"""
INSERT INTO usage_counters (user_id, period_start, user_name, {", ".join(_COUNTERS)})
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS v(
    user_id integer, period_start bigint, user_name varchar,
    {", ".join(f"{c} bigint" for c in _COUNTERS)})
ON CONFLICT (user_id, period_start) DO UPDATE SET
    {", ".join(f"{c} = least(usage_counters.{c}, {MAX_COUNTER} - excluded.{c}) + excluded.{c}"
               for c in _COUNTERS)}""")


def get_usage(conn: Connection, user: UserRef, period_start: int) -> Totals:
    """A user's counters for one period (zero if nothing was used)."""
    uid = ids_for(conn, [user]).get(user)
    if uid is None:
        return ZERO
    r = conn.execute(select(usage.c.session_s, usage.c.in_octets, usage.c.out_octets).where(
        and_(usage.c.user_id == uid, usage.c.period_start == period_start))).first()
    return ZERO if r is None else Totals(r.session_s, r.in_octets, r.out_octets)
