"""Plan decisions at login: the real auth handler over a migrated SQLite file,
with an injected clock (MemoryReactorClock) and the thread hop run inline."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.core.quotas.plan_parse import parse_plan
from aaad.credentials import VerifyCache
from aaad.daemon.access_handler import AuthHandler
from aaad.daemon.executor import InlineExecutor
from aaad.daemon.metrics import Metrics
from aaad.radius.codec import AUTH_CODES, decode_request, load_dictionary, read_body
from aaad.radius.framing import ACCESS_ACCEPT, ACCESS_REJECT
from aaad.radius.protocol import Reply
from aaad.store import plans as plan_store
from aaad.store import sessions as session_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.plans import plan_to_json
from aaad.store.tables import users
from tests.support.radius_packets import NAS, access_request, make_client
from tests.support.records import acct_record

TZ = ZoneInfo("Europe/Berlin")
NOV = int(datetime(2026, 11, 20, 12, 0, tzinfo=TZ).timestamp())
DEC = int(datetime(2026, 12, 1, 0, 0, 5, tzinfo=TZ).timestamp())


class World:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.reactor = MemoryReactorClock()
        self.reactor.advance(NOV)
        self.handler = AuthHandler(
            db=db, reader=InlineExecutor(), hasher=InlineExecutor(), reactor=self.reactor,
            metrics=Metrics(CollectorRegistry()), tz=TZ,
            cache=VerifyCache(max_entries=10, ttl_s=60, now=self.reactor.seconds))

    def plan(self, definition: dict[str, Any], user: str = "kim") -> None:
        p = parse_plan(definition)
        with self.db.writer.begin() as conn:
            plan_store.save_plan(conn, p.name, plan_to_json(p), 0)
            user_store.add_user(conn, user, password_hash=None, password_cleartext="pw-kim-1",
                                plan=p.name, enabled=True, now=0)

    def login(self, user: str = "kim", client_type: str = "generic") -> Reply:
        client = make_client(type=client_type)
        req = read_body(decode_request(access_request(user, "pw-kim-1"), client, NAS,
                                       allowed=AUTH_CODES, dictionary=load_dictionary()),
                        arrival=self.reactor.seconds())
        results: list[Reply] = []
        self.handler.handle(req).addCallback(results.append)
        [reply] = results
        return reply

    def use(self, seconds: int, octets: int = 0, *, sid: str = "s", stop: bool = True) -> None:
        t = int(self.reactor.seconds())
        with self.db.writer.begin() as conn:
            record_accounting(conn, [acct_record(
                Status.STOP if stop else Status.START, t,
                Totals(seconds, octets, 0) if stop else Totals(0, 0, 0), user_name="kim",
                acct_session_id=sid, nas_key="n", nas_address="192.0.2.10")],
                period=parse_period_spec("monthly"), tz=TZ, now=t)


def attrs(reply: Reply) -> dict[str, Any]:
    return dict(reply.attributes)


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return World(sqlite_db)


def test_time_cap_accept_use_reject_and_next_month_accept_again(world: World) -> None:
    world.plan({"name": "h1", "time_limit": "1h"})
    first = world.login()
    assert first.code == ACCESS_ACCEPT and attrs(first)["Session-Timeout"] == 3600
    world.use(3000, sid="a")
    assert attrs(world.login())["Session-Timeout"] == 600
    world.use(600, sid="b")
    capped = world.login()
    assert capped.code == ACCESS_REJECT and capped.reason == "time_limit"
    assert "time limit of 1h" in attrs(capped)["Reply-Message"]
    world.reactor.advance(DEC - NOV)            # the billing period rolls over; no job runs
    again = world.login()
    assert again.code == ACCESS_ACCEPT and attrs(again)["Session-Timeout"] == 3600


def test_data_cap_sends_mikrotik_remaining_octets_and_rejects_at_the_cap(world: World) -> None:
    world.plan({"name": "d5", "octets_limit": "5GB"})
    reply = world.login(client_type="mikrotik")
    left = 5 * 10**9
    assert attrs(reply)["Mikrotik-Total-Limit"] == left % 2**32
    assert attrs(reply)["Mikrotik-Total-Limit-Gigawords"] == left >> 32
    assert "Session-Timeout" not in attrs(reply)
    chilli = world.login(client_type="chillispot")
    assert attrs(chilli)["ChilliSpot-Max-Total-Octets"] == left % 2**32
    world.use(60, left)
    capped = world.login(client_type="mikrotik")
    assert capped.code == ACCESS_REJECT and capped.reason == "octets_limit"


def test_concurrent_session_limit(world: World) -> None:
    world.plan({"name": "one", "max_sessions": 1})
    assert world.login().code == ACCESS_ACCEPT
    world.use(0, sid="live", stop=False)        # a Start: one open session
    limited = world.login()
    assert limited.code == ACCESS_REJECT and limited.reason == "max_sessions"
    world.use(30, sid="live")                   # its Stop
    assert world.login().code == ACCESS_ACCEPT


def test_bill_plan_never_rejects_for_usage(world: World) -> None:
    world.plan({"name": "billed", "time_limit": "1h", "over_limit": "bill",
                "overage_price": {"per_hour": "2.00"}})
    world.use(7200)
    assert world.login().code == ACCESS_ACCEPT


def test_last_months_usage_does_not_count_this_month(world: World) -> None:
    # Usage of past periods is never read: only this period's counter row.
    world.plan({"name": "h2", "time_limit": "2h"})
    world.use(7200, sid="old")                  # November: the whole allowance
    world.reactor.advance(DEC - NOV)
    assert attrs(world.login())["Session-Timeout"] == 7200


class GatedWriter:
    """The writer's thread hop, held until the test lets it run (or fail)."""

    queued = 0

    def __init__(self) -> None:
        self.jobs: list[tuple[Any, Any]] = []

    def run(self, fn: Any, *args: Any) -> Any:
        d: Deferred[Any] = Deferred()
        self.jobs.append((lambda: fn(*args), d))
        return d

    def release(self) -> None:
        for job, d in self.jobs:
            try:
                d.callback(job())
            except Exception as e:      # the job's failure is the Deferred's
                d.errback(e)
        self.jobs.clear()


def replacing_world(db: Database) -> tuple[World, GatedWriter, list[Any]]:
    w = World(db)
    writer, replaced = GatedWriter(), []
    w.handler = AuthHandler(
        db=db, reader=InlineExecutor(), hasher=InlineExecutor(), reactor=w.reactor,
        metrics=Metrics(CollectorRegistry()), tz=TZ, writer=writer,  # type: ignore[arg-type]
        on_replaced=replaced.extend,
        cache=VerifyCache(max_entries=10, ttl_s=60, now=w.reactor.seconds))
    return w, writer, replaced


def pending_login(w: World, user: str = "kim") -> list[Any]:
    client = make_client()
    req = read_body(decode_request(access_request(user, "pw-kim-1"), client, NAS,
                                   allowed=AUTH_CODES, dictionary=load_dictionary()),
                    arrival=w.reactor.seconds())
    out: list[Any] = []
    w.handler.handle(req).addBoth(out.append)
    return out


def test_replace_oldest_accepts_only_after_the_close_commits(sqlite_db: Database) -> None:
    w, writer, replaced = replacing_world(sqlite_db)
    w.plan({"name": "one", "max_sessions": 1, "on_max_sessions": "replace-oldest"})
    assert pending_login(w)[0].code == ACCESS_ACCEPT     # nothing open: nothing to write
    assert writer.jobs == []
    w.use(0, sid="old", stop=False)
    got = pending_login(w)
    assert got == [] and len(writer.jobs) == 1             # not sent before the commit
    writer.release()
    [reply] = got
    assert reply.code == ACCESS_ACCEPT
    assert [r.acct_session_id for r in replaced] == ["old"]
    with sqlite_db.reader.connect() as conn:
        [row] = session_store.list_sessions(conn)
    assert (row["active"], row["terminate_cause"]) == (False, "Replaced")


def test_no_reply_when_the_login_write_fails(sqlite_db: Database) -> None:
    w, writer, replaced = replacing_world(sqlite_db)
    w.plan({"name": "one", "max_sessions": 1, "on_max_sessions": "replace-oldest"})
    w.use(0, sid="old", stop=False)
    got = pending_login(w)
    [(_, d)] = writer.jobs
    writer.jobs.clear()
    d.errback(RuntimeError("database went away"))
    [failure] = got
    assert failure.check(RuntimeError) and replaced == []    # the NAS retries


def test_a_ticket_starts_its_clock_at_the_first_login(sqlite_db: Database) -> None:
    w, writer, _ = replacing_world(sqlite_db)
    with sqlite_db.writer.begin() as conn:
        uid = user_store.add_user(conn, "kim", password_hash=None, password_cleartext="pw-kim-1",
                                  plan=None, enabled=True, now=0)
        conn.execute(update(users).where(users.c.id == uid).values(valid_s=3600,
                                                                   ticket_batch="b"))
    got = pending_login(w)
    writer.release()
    assert got[0].code == ACCESS_ACCEPT and attrs(got[0])["Session-Timeout"] == 3600
    with sqlite_db.reader.connect() as conn:
        assert conn.execute(select(users.c.first_login_at)).scalar() == NOV
    w.reactor.advance(3000)
    later = pending_login(w)
    assert writer.jobs == []                               # started already: nothing to write
    assert attrs(later[0])["Session-Timeout"] == 600
    w.reactor.advance(600)
    [expired] = pending_login(w)
    assert (expired.code, attrs(expired)["Reply-Message"]) == (ACCESS_REJECT, "Ticket expired")
