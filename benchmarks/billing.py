#!/usr/bin/env python3
"""Time a billing turn's catch-up: N users on a monthly fee plan, M cycles missed.

    .venv/bin/python benchmarks/billing.py                       # SQLite in a temp dir
    .venv/bin/python benchmarks/billing.py --users 100000 --database postgresql+psycopg://postgres@127.0.0.1/aaad_bench
    .venv/bin/python benchmarks/billing.py --prepaid             # every user prepaid, balances pay

No daemon: the billing turn (store/jobs/billing_turn.py) runs as the daemon's
biller runs it at start, in transactions of at most 500 users, until nothing
is due. The users joined M months and a few days ago, so each has a setup fee,
a partial first month and M-1 whole months to bill. Then a second turn at the
same instant (nothing due: the cost of a sweep with nothing to do). It empties
the database first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, delete, func, select

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import migrate
from aaad.store import plans as plan_store
from aaad.store.database import open_database
from aaad.store.jobs.billing_turn import billing_turn
from aaad.store.plans import plan_to_json
from aaad.store.tables import balances, charges, metadata, users

T = TypeVar("T")
UTC = ZoneInfo("UTC")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", help="SQLAlchemy URL (default: SQLite in a temp dir)")
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--months", type=int, default=3, help="months since the users joined")
    p.add_argument("--prepaid", action="store_true",
                   help="prepaid users with a balance that pays every line")
    a = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="aaad-billing-")
    url = a.database or f"sqlite:///{workdir}/billing.sqlite3"
    db = open_database(url)
    migrate.upgrade(db.writer)
    now = int(datetime(2027, 6, 15, 12, tzinfo=UTC).timestamp())
    joined = now - a.months * 31 * 86400
    with db.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
        plan = parse_plan({"name": "fiber", "fee": "29.90", "setup_fee": "49.00"})
        plan_store.save_plan(conn, "fiber", plan_to_json(plan), 0)
        for start in range(0, a.users, 10_000):
            n = min(10_000, a.users - start)
            conn.execute(users.insert(), [
                {"name": f"bill{i:07d}", "password_cleartext": "x", "password_hash": None,
                 "enabled": True, "plan": "fiber", "created_at": joined,
                 "updated_at": joined, "plan_since": joined, "next_fee_at": joined,
                 "billing": "prepaid" if a.prepaid else "postpaid"}
                for i in range(start, start + n)])
        if a.prepaid:
            conn.execute(balances.insert(), [
                {"user_id": r.id, "user_name": r.name, "balance": 10**8, "credit_limit": 0,
                 "updated_at": joined}
                for r in conn.execute(select(users.c.id, users.c.name))])

    def transaction(job: Callable[[Connection], T]) -> T:
        with db.writer.begin() as conn:
            return job(conn)

    def turn() -> tuple[float, Any]:
        t0 = time.perf_counter()
        done = billing_turn(transaction, now=now, tz=UTC, period=PeriodSpec("monthly", 1),
                            taxes=(), close_after_days=None, revoke_after_days=None,
                            grace_s=0)
        return time.perf_counter() - t0, done

    spent, done = turn()
    idle, again = turn()
    with db.reader.connect() as conn:
        lines = conn.execute(select(func.count()).select_from(charges)).scalar_one()
    db.dispose()
    print(f"{url.split(':', 1)[0]}: {a.users:,} {'prepaid' if a.prepaid else 'postpaid'} "
          f"users, {a.months} months missed: {done.fee_lines:,} fee lines "
          f"({lines:,} stored) in {spent:.1f} s = {done.fee_lines / spent:,.0f} lines/s, "
          f"{a.users / spent:,.0f} users/s; a turn with nothing due: {idle * 1000:.1f} ms "
          f"({again.fee_lines} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
