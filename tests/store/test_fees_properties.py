"""Property: what plan fees bill does not depend on when the billing runs.

A user's history of plan changes is drawn at random; one database is billed
on random days in between (a daemon running), the other only at the end (a
daemon that was down the whole time). Both must end with the same lines:
every cycle, setup fee, partial stretch and credit once, for the same money.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import migrate
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.database import Database, open_database
from aaad.store.jobs.fees import assign_plan, bill_fees
from aaad.store.plans import plan_to_json
from aaad.store.tables import charges
from tests.support.billing import BERLIN, DAY, at

PLANS = [{"name": "fiber", "fee": "29.90", "setup_fee": "10.00"},
         {"name": "gold", "fee": "59.90", "cycle_months": 3, "billing_day": 15},
         {"name": "free"}]
START = at(2027, 1, 1)


def template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    if not path.exists():
        db = open_database(f"sqlite:///{path}")
        migrate.upgrade(db.writer)
        with db.writer.begin() as conn:
            for p in PLANS:
                plan = parse_plan(p)
                plan_store.save_plan(conn, plan.name, plan_to_json(plan), 0)
        db.dispose()
    return path


def run(db: Database, joined: int, first: str, changes: list[tuple[int, str | None]],
        bills: list[int], end: int) -> list[tuple[str, int, int]]:
    with db.writer.begin() as conn:
        uid = user_store.add_user(conn, "ann", password_hash=None, password_cleartext="x",
                                  plan=first, enabled=True, now=joined)
    events = sorted([(t, 0, p) for t, p in changes] + [(t, 1, None) for t in bills])
    for t, kind, plan in events:
        with db.writer.begin() as conn:
            if kind == 0:
                assign_plan(conn, uid, "ann", plan, now=t, tz=BERLIN)
            else:
                bill_fees(conn, now=t, tz=BERLIN)
    with db.writer.begin() as conn:
        while bill_fees(conn, now=end, tz=BERLIN).users:
            pass
    with db.reader.connect() as conn:
        return sorted((r.ref, r.amount, r.period_start) for r in conn.execute(
            select(charges.c.ref, charges.c.amount, charges.c.period_start)))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(joined=st.integers(0, 40 * DAY),
       first=st.sampled_from(["fiber", "gold", "free"]),
       changes=st.lists(st.tuples(st.integers(1, 300 * DAY),
                                  st.sampled_from(["fiber", "gold", "free", None])),
                        max_size=4, unique_by=lambda c: c[0]),
       bills=st.lists(st.integers(0, 380 * DAY), max_size=12))   # all before the end
def test_when_billing_runs_does_not_change_what_is_billed(
        tmp_path_factory, joined: int, first: str,  # type: ignore[no-untyped-def]
        changes: list[tuple[int, str | None]], bills: list[int]) -> None:
    directory = tmp_path_factory.mktemp("fees-property")
    base = template(tmp_path_factory.getbasetemp())
    results = []
    for name, billed in (("often", bills), ("never", [])):
        path = directory / f"{name}.sqlite3"
        shutil.copy(base, path)
        db = open_database(f"sqlite:///{path}")
        try:
            results.append(run(db, START + joined, first,
                               [(START + joined + t, p) for t, p in changes],
                               [START + joined + t for t in billed],
                               START + 420 * DAY))
        finally:
            db.dispose()
    often, never = results
    assert often == never
    refs = [r for r, _, _ in often]
    assert len(refs) == len(set(refs))
