"""What the billing tests share: plans and users with fees, charge lines, exact shares."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import select

from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.database import Database, is_retryable
from aaad.store.jobs.fees import bill_fees
from aaad.store.plans import plan_to_json
from aaad.store.tables import charges

BERLIN = ZoneInfo("Europe/Berlin")
DAY = 86400


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


def share(amount: int, part: int, whole: int) -> int:
    """amount × part / whole, half away from zero (the documented rule), computed here."""
    exact = Fraction(amount * part, whole)
    return int(exact + Fraction(1, 2)) if exact >= 0 else -int(-exact + Fraction(1, 2))


def save(db: Database, plan: dict[str, object], now: int) -> None:
    p = parse_plan(plan)
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, p.name, plan_to_json(p), now)


def add(db: Database, name: str, plan: str | None, now: int) -> int:
    with db.writer.begin() as conn:
        return user_store.add_user(conn, name, password_hash=None, password_cleartext="pw",
                                   plan=plan, enabled=True, now=now)


def bill(db: Database, now: int) -> int:
    with db.writer.begin() as conn:
        return bill_fees(conn, now=now, tz=BERLIN).charges


def lines(db: Database, user: str = "ann") -> list[tuple[str, int]]:
    with db.reader.connect() as conn:
        return [(r.ref.split(":")[0], r.amount) for r in conn.execute(
            select(charges.c.ref, charges.c.amount).where(charges.c.user_name == user)
            .order_by(charges.c.created_at, charges.c.id))]


def bounds(label: str) -> tuple[int, int]:
    """A calendar month in Berlin, as the CLI and the daemon pass it to store/closing.py."""
    from aaad.store.closing import month_bounds
    return month_bounds(BERLIN)(label)


def at_once(job: Callable[[], int], nodes: int = 2) -> list[int]:
    """Run ``job`` on ``nodes`` threads released together, as nodes on one database
    do; a deadlock or lock timeout is retried as the daemon retries it. What each
    returned."""
    barrier = threading.Barrier(nodes)
    done: list[int] = []

    def node() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                done.append(job())
                return
            except Exception as e:
                if not is_retryable(e):
                    raise
    threads = [threading.Thread(target=node) for _ in range(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done

