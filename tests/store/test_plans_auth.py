"""Plan decisions at login: the real auth handler over a migrated SQLite file,
with an injected clock (MemoryReactorClock) and the thread hop run inline."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
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
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.plans import plan_to_json
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
