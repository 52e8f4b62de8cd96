"""benchmarks/run.py's ``load_history``: the past sessions the scale benchmarks
load (``compare.py --history``) are the same rows on every database, made by
the database itself on PostgreSQL and SQLite and sent from Python elsewhere,
with ``usage_counters`` rows that sum them per user and calendar month."""

from __future__ import annotations

import calendar
import time

from sqlalchemy import select

from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import sessions, usage, users
from tests.support.benchmarks import load_benchmark


def test_history_rows_and_their_monthly_sums(db: Database) -> None:
    n_users, n = 7, 6000       # k * 631 spans 44 days: sessions in two or more months
    with db.writer.begin() as conn:
        user_store.add_user(conn, "other", password_hash=None, password_cleartext="x",
                            plan=None, enabled=True, now=0)
        for i in range(n_users):
            user_store.add_user(conn, f"h{i:04d}", password_hash=None,
                                password_cleartext="x", plan=None, enabled=True, now=0)
    before = int(time.time())
    load_benchmark("run").load_history(db, n, n_users, user_format="h{:04d}")
    after = int(time.time())

    with db.reader.connect() as conn:
        ids = dict(conn.execute(select(users.c.name, users.c.id)).all())
        rows = conn.execute(select(
            sessions.c.id, sessions.c.user_name, sessions.c.user_id, sessions.c.acct_session_id,
            sessions.c.active, sessions.c.started_at, sessions.c.stopped_at,
            sessions.c.session_s, sessions.c.in_octets, sessions.c.out_octets)).all()
        counters = {(r.user_id, r.period_start): r for r in conn.execute(select(usage)).all()}

    assert len(rows) == n
    expected: dict[tuple[int, int], int] = {}
    by_id = {r.id: r for r in rows}
    for k in range(n):
        r = by_id[f"{k:032x}"]
        name = f"h{k % n_users:04d}"
        assert (r.user_name, r.user_id, r.acct_session_id, bool(r.active)) == \
            (name, ids[name], f"h{k}", False)
        offset = 40 * 86400 + (k * 631) % (700 * 86400)
        assert before - offset <= r.started_at <= after - offset
        assert (r.stopped_at - r.started_at, r.session_s, r.in_octets, r.out_octets) == \
            (3600, 3600, 10**8, 10**9)
        month = time.gmtime(r.started_at)
        key = (ids[name], calendar.timegm((month.tm_year, month.tm_mon, 1, 0, 0, 0)))
        expected[key] = expected.get(key, 0) + 1

    assert len({m for _u, m in expected}) >= 2
    assert set(counters) == set(expected)
    for (user_id, _month), c in expected.items():
        row = counters[(user_id, _month)]
        assert (row.session_s, row.in_octets, row.out_octets) == \
            (3600 * c, 10**8 * c, 10**9 * c)
        assert (row.counted_s, row.counted_in_octets, row.counted_out_octets) == \
            (3600 * c, 10**8 * c, 10**9 * c)
