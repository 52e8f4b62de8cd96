"""Reply attributes and throttling in the store, on SQLite, PostgreSQL and MariaDB:
a user's own attributes (store/reply_attributes.py) as the login read gives them,
sessions crossing a ``throttle`` cap marked once (store/jobs/throttle.py, from the
accounting transaction) and restored when the period rolls over."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.quotas.reply import configured_reply
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import BatchOutcome, record_accounting
from aaad.store.jobs.login import read_logins
from aaad.store.jobs.throttle import restore_throttled
from aaad.store.plans import plan_to_json
from aaad.store.reply_attributes import NoSuchAttribute, set_user_reply, user_reply
from aaad.store.tables import sessions
from aaad.store.users import NoSuchUser
from tests.support.records import acct_record

BERLIN = ZoneInfo("Europe/Berlin")
MONTHLY = parse_period_spec("monthly", 1)
GB = 10**9
FAIR = {"name": "fair", "octets_limit": "1GB", "over_limit": "throttle",
        "reply": {"Mikrotik-Rate-Limit": "10M/50M", "Filter-Id": "std"},
        "throttle_reply": {"Mikrotik-Rate-Limit": "512k/1M"}}


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


def rec(status: Status, t: int, i: int = 0, *, sid: str = "s1",
        user: str = "pat") -> AcctRecord:
    return acct_record(status, t, Totals(60, i, 0), user_name=user, acct_session_id=sid,
                       client="nas", nas_address="10.0.0.1", framed_ip="100.64.0.7")


def setup(db: Database, users: tuple[str, ...] = ("pat",)) -> None:
    p = parse_plan(FAIR)
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, p.name, plan_to_json(p), 0)
        for u in users:
            user_store.add_user(conn, u, password_hash=None, password_cleartext="x",
                                plan=p.name, enabled=True, now=0)


def apply(db: Database, records: list[AcctRecord]) -> BatchOutcome:
    with db.writer.begin() as conn:
        return record_accounting(conn, records, period=MONTHLY, tz=BERLIN)


def throttled(db: Database) -> dict[str, bool]:
    with db.reader.connect() as conn:
        return {r.acct_session_id: bool(r.throttled) for r in conn.execute(
            select(sessions.c.acct_session_id, sessions.c.throttled))}


def test_user_reply_attributes_are_stored_changed_and_read_at_login(db: Database) -> None:
    setup(db, ("pat", "sam"))
    with db.writer.begin() as conn:
        got = set_user_reply(conn, "pat", now=1, set_=[
            ("Framed-IP-Address", "10.0.0.5"), ("Cisco-AVPair", "a=1"), ("Cisco-AVPair", "b=2"),
            ("Mikrotik-Rate-Limit", "20M/100M")])
    assert got == (("Cisco-AVPair", "a=1"), ("Cisco-AVPair", "b=2"),
                   ("Framed-IP-Address", "10.0.0.5"), ("Mikrotik-Rate-Limit", "20M/100M"))
    with db.writer.begin() as conn:
        got = set_user_reply(conn, "pat", now=2, set_=[("Cisco-AVPair", "c=3")],
                             unset=["Mikrotik-Rate-Limit"])
    assert got == (("Cisco-AVPair", "c=3"), ("Framed-IP-Address", "10.0.0.5"))
    with db.writer.begin() as conn:
        with pytest.raises(NoSuchAttribute):
            set_user_reply(conn, "pat", now=3, unset=["Filter-Id"])
        with pytest.raises(NoSuchUser):
            user_reply(conn, "nobody")
    with db.reader.connect() as conn:
        assert user_reply(conn, "pat") == got
        assert user_reply(conn, "sam") == ()
        pat, sam = read_logins(conn, ["pat", "sam"], now=at(2027, 1, 5), tz=BERLIN,
                               period_starts=(), call_rules=CallRules()).states
    assert pat is not None and sam is not None
    assert pat.reply == got and sam.reply == ()
    assert configured_reply(pat.plan, pat.reply, throttled=False) == (
        ("Cisco-AVPair", "c=3"), ("Filter-Id", "std"), ("Framed-IP-Address", "10.0.0.5"),
        ("Mikrotik-Rate-Limit", "10M/50M"))
    # sam gets the plan's alone: nothing of pat's.
    assert configured_reply(sam.plan, sam.reply, throttled=False) == (
        ("Filter-Id", "std"), ("Mikrotik-Rate-Limit", "10M/50M"))
    with db.writer.begin() as conn:
        assert set_user_reply(conn, "pat", now=4, replace_all=True) == ()
    with db.reader.connect() as conn:
        assert user_reply(conn, "pat") == ()


def test_crossing_the_cap_throttles_once_and_rollover_restores(db: Database) -> None:
    setup(db)
    t0 = at(2027, 1, 30, 12)
    assert apply(db, [rec(Status.START, t0)]).over_limit == ()
    assert apply(db, [rec(Status.INTERIM, t0 + 300, GB // 2)]).over_limit == ()
    out = apply(db, [rec(Status.INTERIM, t0 + 600, GB)]).over_limit
    [item] = out
    assert (item.action, item.user_name, item.acct_session_id) == ("throttle", "pat", "s1")
    assert item.attributes == (("Mikrotik-Rate-Limit", "512k/1M"),)
    assert item.framed_ip == "100.64.0.7"
    assert throttled(db) == {"s1": True}
    # Later interims over the cap send nothing more.
    assert apply(db, [rec(Status.INTERIM, t0 + 900, 2 * GB)]).over_limit == ()
    # Still January: nothing to restore.
    with db.writer.begin() as conn:
        assert restore_throttled(conn, now=t0 + 1000, tz=BERLIN) == []
    with db.writer.begin() as conn:
        [back] = restore_throttled(conn, now=at(2027, 2, 1, 0, 1), tz=BERLIN)
    assert back.action == "unthrottle" and back.session_key == item.session_key
    assert back.attributes == (("Mikrotik-Rate-Limit", "10M/50M"),)
    assert throttled(db) == {"s1": False}
    with db.writer.begin() as conn:         # once: a second run (another node) finds none
        assert restore_throttled(conn, now=at(2027, 2, 1, 0, 2), tz=BERLIN) == []


def test_a_session_starting_over_the_cap_is_marked_without_a_request(db: Database) -> None:
    setup(db)
    t0 = at(2027, 1, 10, 12)
    apply(db, [rec(Status.START, t0, sid="a"), rec(Status.STOP, t0 + 60, 2 * GB, sid="a")])
    assert apply(db, [rec(Status.START, t0 + 120, sid="b")]).over_limit == ()
    assert throttled(db) == {"a": False, "b": True}
    assert apply(db, [rec(Status.INTERIM, t0 + 420, 100, sid="b")]).over_limit == ()


def test_restore_uses_the_users_own_full_speed_value(db: Database) -> None:
    setup(db)
    with db.writer.begin() as conn:
        set_user_reply(conn, "pat", now=1, set_=[("Mikrotik-Rate-Limit", "20M/100M")])
    t0 = at(2027, 1, 30, 12)
    apply(db, [rec(Status.START, t0)])
    assert len(apply(db, [rec(Status.INTERIM, t0 + 300, 2 * GB)]).over_limit) == 1
    with db.writer.begin() as conn:
        [back] = restore_throttled(conn, now=at(2027, 2, 1, 0, 1), tz=BERLIN)
    assert back.attributes == (("Mikrotik-Rate-Limit", "20M/100M"),)
