"""Rate tables in the database, and a process-wide cache of them for lookups.

An import replaces a table's rates in one transaction and bumps its
``version``; every node notices the new version at its next lookup (one
small query) and reloads. Lookups then run in memory (telephony.rates).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from aaad.core.accounting.realms import OPERATOR
from aaad.core.telephony.rate_table import PER_MINUTE, Rate, RateTable, parse_increment
from aaad.store.tables import rate_tables, rates

__all__ = ["import_rates", "delete_rate_table", "list_rate_tables", "load_rate_table",
           "rate_table_versions", "rate_table_owner", "count_rates", "RateCache"]

CHUNK = 5000


def import_rates(conn: Connection, name: str, items: Iterable[Rate], now: int, *,
                 tenant: int = OPERATOR) -> int:
    """Replace table ``name`` with ``items`` (the caller's transaction); returns the count.
    A new table is ``tenant``'s (its name then qualified, see store.tenants.qualify)."""
    conn.execute(delete(rates).where(rates.c.rate_table == name))
    count = 0
    chunk: list[dict[str, object]] = []
    for r in items:
        chunk.append({"rate_table": name, "prefix": r.prefix, "band": r.band,
                      "description": r.description, "price": r.price,
                      "connection_fee": r.connection_fee, "first_s": r.increment.first_s,
                      "next_s": r.increment.next_s, "unit": r.unit})
        if len(chunk) == CHUNK:
            conn.execute(insert(rates), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        conn.execute(insert(rates), chunk)
        count += len(chunk)
    updated = conn.execute(update(rate_tables).where(rate_tables.c.name == name)
                           .values(version=rate_tables.c.version + 1, rates=count,
                                   updated_at=now)).rowcount
    if not updated:
        conn.execute(insert(rate_tables).values(name=name, version=1, rates=count,
                                                created_at=now, updated_at=now,
                                                tenant_id=tenant))
    return count


def delete_rate_table(conn: Connection, name: str) -> bool:
    conn.execute(delete(rates).where(rates.c.rate_table == name))
    return bool(conn.execute(delete(rate_tables).where(rate_tables.c.name == name)).rowcount)


def list_rate_tables(conn: Connection, *, tenant: int | None = None) -> list[dict[str, Any]]:
    """The rate tables, or ``tenant``'s only (0: the operator's)."""
    stmt = select(rate_tables).order_by(rate_tables.c.name)
    if tenant is not None:
        stmt = stmt.where(rate_tables.c.tenant_id == tenant)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def rate_table_owner(conn: Connection, name: str) -> int | None:
    """The tenant id that owns table ``name``; None: no such table."""
    return conn.execute(select(rate_tables.c.tenant_id)
                        .where(rate_tables.c.name == name)).scalar()


def rate_table_versions(conn: Connection) -> dict[str, int]:
    return {r.name: r.version for r in
            conn.execute(select(rate_tables.c.name, rate_tables.c.version))}


def load_rate_table(conn: Connection, name: str) -> RateTable | None:
    version = conn.execute(select(rate_tables.c.version)
                           .where(rate_tables.c.name == name)).scalar()
    if version is None:
        return None
    rows = conn.execute(select(rates).where(rates.c.rate_table == name))
    return RateTable(name, (Rate(r.prefix, r.description, r.price, r.connection_fee,
                                 parse_increment(f"{r.first_s}/{r.next_s}"), r.band,
                                 r.unit or PER_MINUTE)
                            for r in rows), version)


def count_rates(conn: Connection, name: str) -> int:
    return int(conn.execute(select(func.count()).select_from(rates)
                            .where(rates.c.rate_table == name)).scalar() or 0)


class RateCache:
    """The rate tables in memory, reloaded when their version changes.

    Shared by the reader (auth) and writer (rating) threads: tables are
    immutable once built; a lock keeps two threads from loading one twice.
    """

    def __init__(self) -> None:
        self._tables: dict[str, RateTable] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, names: Iterable[str]) -> dict[str, RateTable]:
        """The named tables (missing ones left out), current as of this transaction."""
        wanted = set(names)
        if not wanted:
            return {}
        versions = rate_table_versions(conn)
        out: dict[str, RateTable] = {}
        for name in wanted:
            version = versions.get(name)
            if version is None:
                continue
            table = self._tables.get(name)
            if table is None or table.version != version:
                with self._lock:
                    table = self._tables.get(name)
                    if table is None or table.version != version:
                        loaded = load_rate_table(conn, name)
                        if loaded is None:
                            continue
                        self._tables[name] = table = loaded
            out[name] = table
        return out
