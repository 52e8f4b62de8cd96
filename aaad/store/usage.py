"""Per-period usage counters: raw and plan-counted, per user and per band.

Counters are rows keyed by (user, period start), added to with one atomic
upsert per batch, so nothing has to run at rollover and a read is a
primary-key lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    select,
    tuple_,
)

from aaad.core.accounting.sessions import ZERO, Totals
from aaad.store.sql import (
    MAX_COUNTER,
    capped,
    json_param,
    select_rows,
    upsert_add,
    write,
    write_many,
)
from aaad.store.tables import usage, usage_bands
from aaad.store.users import UserRef, ids_for, user_ids

__all__ = ["COUNTERS", "MAX_COUNTER", "counter_rows", "session_counter_rows", "pg_add_usage",
           "pg_add_one_usage", "usage_one",
           "add_usage", "SQLITE_ADD_USAGE", "sqlite_usage_params", "usage_arrays",
           "get_usage", "counted_usage", "band_usage", "band_usage_many",
           "add_band_usage"]


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
    rows = counter_rows(by_id, label)
    if conn.dialect.name == "postgresql":
        # One statement for the batch: executemany would run one upsert per row.
        write(conn, _PG_ADD_USAGE, {"rows": json_param(rows)})
        return
    stmt = upsert_add(conn, usage, ("user_id", "period_start"), COUNTERS)
    write_many(conn, stmt, rows)


def counter_rows(parts: dict[tuple[int, int], tuple[Totals, Totals]],
                 names: Mapping[int, str]) -> list[dict[str, Any]]:
    """(user id, period start) → (raw, counted): the rows add_usage upserts,
    in key order, each counter :func:`capped`; ``names``: each user's name."""
    return [_counter_row(u, p, names[u], raw, counted)
            for (u, p), (raw, counted) in sorted(parts.items())]


def _counter_row(user: int, period_start: int, name: str, raw: Totals,
                 counted: Totals) -> dict[str, Any]:
    return {"user_id": user, "period_start": period_start, "user_name": name,
            "session_s": capped(raw.session_s),
            "in_octets": capped(raw.in_octets), "out_octets": capped(raw.out_octets),
            "counted_s": capped(counted.session_s),
            "counted_in_octets": capped(counted.in_octets),
            "counted_out_octets": capped(counted.out_octets)}


COUNTERS = ("session_s", "in_octets", "out_octets", "counted_s", "counted_in_octets",
            "counted_out_octets")


# The columns of pg_add_usage's arrays (usage_arrays), in the order it reads them.
_ARRAY_COLUMNS = ("user_id", "period_start", *COUNTERS)
_PG_TYPES = {c: "integer" if c == "user_id" else "bigint" for c in _ARRAY_COLUMNS}


def _add_to_row(value: Callable[[str], str], least: str = "least") -> str:
    """The SET list that adds ``value(column)`` (SQL) to each counter of the
    row ``u``, each sum stopping at MAX_COUNTER (``least``: the SQL function
    of the smaller of two values; SQLite's is ``min``)."""
    return ", ".join(f"{c} = {least}(u.{c}, {MAX_COUNTER} - {value(c)}) + {value(c)}"
                     for c in COUNTERS)


# An upsert's addition to the row it found.
_ADD_EXCLUDED = _add_to_row(lambda c: f"excluded.{c}")

# SQLite: upsert_add's statement for the counter rows as driver SQL, run on
# the driver's cursor (store.sessions.sqlite_save_known); its parameters
# come from sqlite_usage_params.
_SQLITE_ADD_COLUMNS = ("user_id", "period_start", "user_name", *COUNTERS)
SQLITE_ADD_USAGE = " ".join(f"""
INSERT INTO usage_counters AS u ({", ".join(_SQLITE_ADD_COLUMNS)})
VALUES ({", ".join("?" * len(_SQLITE_ADD_COLUMNS))})
ON CONFLICT (user_id, period_start) DO UPDATE SET
{_add_to_row(lambda c: f"excluded.{c}", least="min")}""".split())


def sqlite_usage_params(rows: Sequence[dict[str, Any]], sessions: Collection[str]
                        ) -> list[tuple[Any, ...]]:
    """The per-session rows of :func:`session_counter_rows` whose session is
    in ``sessions``, summed per user and period as :func:`counter_rows`
    makes them: the parameters of :data:`SQLITE_ADD_USAGE`, one tuple a row."""
    parts: dict[tuple[int, int], tuple[Totals, Totals]] = {}
    names: dict[int, str] = {}
    for r in rows:
        if r["session_id"] in sessions:
            key = (r["user_id"], r["period_start"])
            raw = Totals(r["session_s"], r["in_octets"], r["out_octets"])
            counted = Totals(r["counted_s"], r["counted_in_octets"], r["counted_out_octets"])
            old_raw, old_counted = parts.get(key, (ZERO, ZERO))
            parts[key] = (old_raw + raw, old_counted + counted)
            names[r["user_id"]] = r["user_name"]
    return [tuple(row[c] for c in _SQLITE_ADD_COLUMNS) for row in counter_rows(parts, names)]


def pg_add_usage(param: str, *, of_sessions: str | None = None, arrays: bool = False) -> str:
    """PostgreSQL: one statement adding the counter rows in the JSON parameter
    ``param`` (:func:`counter_rows`); sums stop at MAX_COUNTER like
    upsert_add's. ``of_sessions``: the rows are per session
    (:func:`session_counter_rows`), and only those of the sessions whose id
    the relation of that name (a CTE of the statement this one is part of)
    returns are added, summed per user and period, in that order: two such
    statements at once lock the rows they share in the same order."""
    fields = f"""user_id integer, period_start bigint, user_name varchar,
    {", ".join(f"{c} bigint" for c in COUNTERS)}"""
    if arrays and of_sessions is not None:
        # One session's rows as arrays (usage_arrays): no two rows of the
        # same user and period, so nothing to sum.
        columns = _ARRAY_COLUMNS
        source = f"""
SELECT x.user_id, x.period_start, CAST(%({param}_user_name)s AS varchar),
    {", ".join(f"x.{c}" for c in COUNTERS)}
FROM unnest({", ".join(f"CAST(%({param}_{c})s AS {_PG_TYPES[c]}[])"
                       for c in columns)}) AS x({", ".join(columns)})
WHERE EXISTS (SELECT FROM {of_sessions})
ORDER BY x.user_id, x.period_start"""
    elif of_sessions is None:
        source = f"SELECT x.* FROM json_to_recordset(CAST(%({param})s AS json)) AS x({fields})"
    else:
        source = f"""
SELECT x.user_id, x.period_start, min(x.user_name),
    {", ".join(f"CAST(least(sum(x.{c}), {MAX_COUNTER}) AS bigint)" for c in COUNTERS)}
FROM json_to_recordset(CAST(%({param})s AS json)) AS x(session_id varchar, {fields})
WHERE x.session_id IN (SELECT id FROM {of_sessions})
GROUP BY x.user_id, x.period_start
ORDER BY x.user_id, x.period_start"""
    return f"""
INSERT INTO usage_counters AS u (user_id, period_start, user_name, {", ".join(COUNTERS)})
{source}
ON CONFLICT (user_id, period_start) DO UPDATE SET {_ADD_EXCLUDED}"""


def pg_add_one_usage(param: str, *, of_sessions: str) -> str:
    """PostgreSQL: the CTEs ``usage_set`` and ``added`` of a statement that
    adds one counter row (scalar parameters ``{param}_user_id``, …, see
    :func:`usage_one`) if the relation ``of_sessions`` returns a row.

    An ``UPDATE`` of the row; when it finds none (the user's first record
    in the period), an ``INSERT``, whose ``ON CONFLICT`` adds to a row
    another writer inserted meanwhile. The row almost always exists, and on
    the server the ``UPDATE`` costs a fraction of the ``INSERT … ON
    CONFLICT`` that :func:`pg_add_usage` runs whether it exists or not."""
    value = {c: f"CAST(%({param}_{c})s AS {_PG_TYPES[c]})" for c in _ARRAY_COLUMNS}
    return f"""
usage_set AS (
UPDATE usage_counters u SET {_add_to_row(value.__getitem__)}
WHERE u.user_id = {value["user_id"]} AND u.period_start = {value["period_start"]}
    AND EXISTS (SELECT FROM {of_sessions})
RETURNING 1),
added AS (
INSERT INTO usage_counters AS u (user_id, period_start, user_name, {", ".join(COUNTERS)})
SELECT {value["user_id"]}, {value["period_start"]}, CAST(%({param}_user_name)s AS varchar),
    {", ".join(value[c] for c in COUNTERS)}
WHERE EXISTS (SELECT FROM {of_sessions}) AND NOT EXISTS (SELECT FROM usage_set)
ON CONFLICT (user_id, period_start) DO UPDATE SET {_ADD_EXCLUDED})"""


def usage_one(row: dict[str, Any], param: str = "usage") -> dict[str, Any]:
    """One :func:`session_counter_rows` row as the parameters of
    :func:`pg_add_one_usage`."""
    out = {f"{param}_{c}": row[c] for c in _ARRAY_COLUMNS}
    out[f"{param}_user_name"] = row["user_name"]
    return out


def usage_arrays(rows: Sequence[dict[str, Any]], param: str = "usage") -> dict[str, Any]:
    """One session's :func:`session_counter_rows` as the array parameters of
    :func:`pg_add_usage` with ``arrays``: one array of numbers per column, in
    PostgreSQL's text form (``{1,2}``), and the user's name (the same in
    every row)."""
    out: dict[str, Any] = {f"{param}_{c}": "{" + ",".join([str(r[c]) for r in rows]) + "}"
                           for c in _ARRAY_COLUMNS}
    out[f"{param}_user_name"] = rows[0]["user_name"] if rows else ""
    return out


def session_counter_rows(parts: Mapping[tuple[str, int, int], Totals],
                         names: Mapping[int, str]) -> list[dict[str, Any]]:
    """(session key, user id, period start) → usage (counted in full: no bands):
    the rows :func:`pg_add_usage` takes ``of_sessions``."""
    return [{"session_id": k, **_counter_row(u, p, names[u], t, t)}
            for (k, u, p), t in sorted(parts.items())]


# One statement for the batch.
_PG_ADD_USAGE = pg_add_usage("rows")


def get_usage(conn: Connection, user: UserRef, period_start: int) -> Totals:
    """A user's counters for one period (zero if nothing was used)."""
    uid = ids_for(conn, [user]).get(user)
    if uid is None:
        return ZERO
    r = conn.execute(select(usage.c.session_s, usage.c.in_octets, usage.c.out_octets).where(
        and_(usage.c.user_id == uid, usage.c.period_start == period_start))).first()
    return ZERO if r is None else Totals(r.session_s, r.in_octets, r.out_octets)


def counted_usage(conn: Connection, keys: Sequence[tuple[UserRef, int]]
                  ) -> dict[tuple[Any, int], Any]:
    """(user, period start) → row with raw and counted usage, for the given keys."""
    ids = ids_for(conn, {u for u, _ in keys})
    wanted = {(ids[u], p): (u, p) for u, p in keys if u in ids}
    if not wanted:
        return {}
    # Every user of the keys in every period of the keys (a batch's keys are
    # nearly always one period each), the pairs asked for kept: a statement
    # built once and run on the driver's cursor (store.sql.select_rows),
    # where a tuple IN would be built and compiled per batch.
    rows = select_rows(conn, _COUNTED, {"ids": sorted({u for u, _ in wanted}),
                                        "starts": sorted({p for _, p in wanted})})
    found = {(r.user_id, r.period_start): r for r in rows}
    return {key: found[k] for k, key in wanted.items() if k in found}


_COUNTED = select(usage).where(and_(usage.c.user_id.in_(bindparam("ids", expanding=True)),
                                    usage.c.period_start.in_(
                                        bindparam("starts", expanding=True))))


def band_usage(conn: Connection, user: UserRef, period_start: int) -> dict[str, Totals]:
    """Band → raw usage of one user in one period."""
    return band_usage_many(conn, [(user, period_start)]).get((user, period_start), {})


def band_usage_many(conn: Connection, keys: Iterable[tuple[UserRef, int]]
                    ) -> dict[tuple[Any, int], dict[str, Totals]]:
    """(user, period start) → band → raw usage so far, for the given keys."""
    keys = list(set(keys))
    ids = ids_for(conn, {u for u, _ in keys})
    wanted = {(ids[u], p): (u, p) for u, p in keys if u in ids}
    if not wanted:
        return {}
    out: dict[tuple[Any, int], dict[str, Totals]] = {}
    rows = conn.execute(select(usage_bands).where(
        tuple_(usage_bands.c.user_id, usage_bands.c.period_start).in_(sorted(wanted))))
    for r in rows:
        out.setdefault(wanted[(r.user_id, r.period_start)], {})[r.band] = Totals(
            r.session_s, r.in_octets, r.out_octets)
    return out


def add_band_usage(conn: Connection, parts: dict[tuple[int, int, str], Any],
                   names: Mapping[int, str]) -> None:
    """Add per-band raw usage: (user id, period start, band) → Totals; ``names``
    gives each user's name for a new row."""
    if not parts:
        return
    stmt = upsert_add(conn, usage_bands, ("user_id", "period_start", "band"),
                      ("session_s", "in_octets", "out_octets"))
    conn.execute(stmt, [
        {"user_id": u, "period_start": p, "band": b, "user_name": names[u],
         "session_s": capped(t.session_s),
         "in_octets": capped(t.in_octets), "out_octets": capped(t.out_octets)}
        for (u, p, b), t in sorted(parts.items())])
