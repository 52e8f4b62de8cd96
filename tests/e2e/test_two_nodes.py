"""Two real aaad nodes on one database: NAS failover, spread sessions, limits.

Two ``aaad serve`` processes share one fresh PostgreSQL (and MariaDB)
database with the same client table, as two nodes behind a NAS's
primary/secondary RADIUS configuration do. The NAS side is played by the
test: it sends the same accounting packets (the same bytes, or the same
content under a new Identifier) to both nodes, duplicated, reordered and in
parallel, and computes what must be stored from the packets alone: per
session the high-water mark of each counter, per user the sum over their
sessions. Each test uses its own users and its own NAS-IP-Address, so an
Accounting-On in one test closes nothing of another's.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from pyrad.packet import AccessAccept, AccessReject, AccountingResponse, AuthPacket, Packet
from sqlalchemy import func, select

from aaad.core.accounting.sessions import GIGAWORD
from aaad.store import blocks as block_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import charges, sessions, usage
from tests.support.daemon import SECRET, Daemon, drop_users_and_plans, start_daemon
from tests.support.databases import migrated
from tests.support.radius_packets import acct_request

PASSWORD = "Two-nodes-pw-1234"
PLANS = """\
plans:
  - name: tn-one
    max_sessions: 1
    over_limit: reject
  - name: tn-bill
    time_limit: 10m
    over_limit: bill
    overage_price: {per_hour: "1.20"}
  - name: tn-blocks
    period: none
    block: {hours: 1, valid_days: 30, on_exhaust: renew, price: "5.00"}
"""
USERS: dict[str, str | None] = {
    **{f"tn-fail{i}": None for i in range(4)},
    **{f"tn-spread{i}": None for i in range(3)},
    "tn-solo": "tn-one", "tn-bill": "tn-bill", "tn-block": "tn-blocks",
    "tn-reboot1": "tn-one", "tn-reboot2": "tn-one",
}


@dataclass
class Nodes:
    a: Daemon
    b: Daemon
    db: Database


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def nodes(request: pytest.FixtureRequest, server_urls: dict[str, object],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    db = migrated(server_urls, str(request.param))
    with ThreadPoolExecutor(2) as pool:            # the nodes start side by side
        starting = [pool.submit(start_daemon, tmp_path_factory.mktemp(f"node-{x}-{request.param}"),
                                db.url) for x in "ab"]
        started = [f.result() for f in starting if f.exception() is None]
    if len(started) < 2:
        for d in started:
            d.stop()
        raise next(f.exception() for f in starting if f.exception() is not None)  # type: ignore[misc]
    a, b = started
    try:
        plans = a.config.parent / "plans.yaml"
        plans.write_text(PLANS)
        a.cli("plan", "apply", str(plans))
        with db.writer.begin() as conn:
            for user, plan in USERS.items():
                user_store.add_user(conn, user, password_hash=None, password_cleartext=PASSWORD,
                                    plan=plan, enabled=True, now=int(time.time()))
        yield Nodes(a, b, db)
    finally:
        codes = (a.stop(), b.stop())
        drop_users_and_plans(db, USERS, "tn-")
    assert codes == (0, 0), a.logs() + b.logs()


# -- the NAS -----------------------------------------------------------------------------

def send(port: int, raw: bytes, *, sock: socket.socket | None = None,
         timeout: float = 1.0, tries: int = 4) -> bytes:
    """Send a datagram to 127.0.0.1:``port`` and return the reply, resending the same bytes
    after each ``timeout`` like a NAS. ``sock``: reuse a socket (same source port)."""
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if own:
            s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        for _ in range(tries):
            s.sendto(raw, ("127.0.0.1", port))
            try:
                while True:
                    data = s.recvfrom(4096)[0]
                    if data[1] == raw[1]:          # the reply to this Identifier
                        return data
            except TimeoutError:
                continue
        raise AssertionError(f"no reply from 127.0.0.1:{port} after {tries} tries")
    finally:
        if own:
            s.close()


def acct(nas: str, user: str, sid: str, status: str, *, id: int, t: int = 0, i: int = 0,
         o: int = 0, at: int | None = None) -> bytes:
    """An Accounting-Request as the NAS ``nas`` sends it (counters with Gigawords)."""
    extra: dict[str, Any] = {"NAS_IP_Address": nas}
    if status in ("Interim-Update", "Stop"):
        extra.update(Acct_Session_Time=t, Acct_Input_Octets=i % GIGAWORD,
                     Acct_Input_Gigawords=i // GIGAWORD, Acct_Output_Octets=o % GIGAWORD,
                     Acct_Output_Gigawords=o // GIGAWORD)
    if at is not None:
        extra["Event_Timestamp"] = at
    return acct_request(status, user, sid, secret=SECRET.encode(), id=id % 256, **extra)


def deliver(n: Nodes, schedule: list[tuple[Daemon, bytes]], workers: int = 8) -> None:
    """Send every (node, packet) in parallel; each must get an Accounting-Response."""
    def one(item: tuple[Daemon, bytes]) -> None:
        reply = send(item[0].acct_port, item[1])
        assert reply[0] == AccountingResponse
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, schedule))


def login(d: Daemon, user: str) -> Packet:
    req: AuthPacket = d.client().CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(PASSWORD)
    req.add_message_authenticator()
    raw = req.RequestPacket()
    data = send(d.auth_port, raw)
    reply = req.CreateReply(packet=data)
    assert req.VerifyReply(reply, data)
    return reply


# -- what must be stored, from the packets alone ----------------------------------------

@dataclass
class Sent:
    """A session's packets in NAS order, and its high-water totals."""

    user: str
    sid: str
    packets: list[bytes]
    high: tuple[int, int, int]
    stopped: bool


def session_packets(rng: random.Random, nas: str, user: str, sid: str, base_id: int,
                    now: int) -> Sent:
    """Start, a few Interims with rising totals (some past 2³² octets), maybe a Stop."""
    interims = rng.randint(1, 4)
    t = i = o = 0
    at = now - 3000
    pkts = [acct(nas, user, sid, "Start", id=base_id, at=at)]
    for k in range(interims):
        t += rng.randint(1, 600)
        i += rng.randint(0, 3 * GIGAWORD)
        o += rng.randint(0, 10**9)
        pkts.append(acct(nas, user, sid, "Interim-Update", id=base_id + 1 + k, t=t, i=i, o=o,
                         at=at + t))
    stopped = rng.random() < 0.7
    if stopped:
        t += rng.randint(0, 60)
        i += rng.randint(0, 10**6)
        pkts.append(acct(nas, user, sid, "Stop", id=base_id + 9, t=t, i=i, o=o, at=at + t))
    return Sent(user, sid, pkts, (t, i, o), stopped)


def stored_session(db: Database, nas: str, sid: str) -> Any:
    with db.reader.connect() as conn:
        return conn.execute(select(sessions).where(
            sessions.c.acct_session_id == sid, sessions.c.nas_key.startswith(nas))).one()


def stored_usage(db: Database, user: str) -> tuple[int, int, int, int, int, int]:
    """The user's raw and counted usage summed over every period row."""
    with db.reader.connect() as conn:
        r = conn.execute(select(
            func.coalesce(func.sum(usage.c.session_s), 0),
            func.coalesce(func.sum(usage.c.in_octets), 0),
            func.coalesce(func.sum(usage.c.out_octets), 0),
            func.coalesce(func.sum(usage.c.counted_s), 0),
            func.coalesce(func.sum(usage.c.counted_in_octets), 0),
            func.coalesce(func.sum(usage.c.counted_out_octets), 0),
        ).where(usage.c.user_name == user)).one()
    return tuple(int(v) for v in r)  # type: ignore[return-value]


def check_against_packets(n: Nodes, nas: str, sent: list[Sent]) -> None:
    for s in sent:
        row = stored_session(n.db, nas, s.sid)
        assert (row.session_s, row.in_octets, row.out_octets) == s.high, s.sid
        assert bool(row.active) == (not s.stopped), s.sid
        assert row.packets >= len(s.packets), s.sid
    for user in {s.user for s in sent}:
        want = [sum(x.high[k] for x in sent if x.user == user) for k in range(3)]
        assert stored_usage(n.db, user) == (*want, *want), user


# -- NAS failover: the same packets on both nodes ---------------------------------------

def test_failover_copies_reordered_and_duplicated_count_exactly(nodes: Nodes) -> None:
    """Every packet reaches both nodes, some twice (same bytes, and same content under a
    new Identifier), all shuffled and sent in parallel: each octet counts once."""
    rng = random.Random(2865)
    nas, now = "192.0.2.1", int(time.time())
    sent = [session_packets(rng, nas, f"tn-fail{k % 4}", f"fail-{k}", 10 * k, now)
            for k in range(12)]
    schedule: list[tuple[Daemon, bytes]] = []
    for s in sent:
        for raw in s.packets:
            schedule += [(nodes.a, raw), (nodes.b, raw)]
            if rng.random() < 0.3:                 # a retransmission to one of them
                schedule.append((rng.choice((nodes.a, nodes.b)), raw))
            if rng.random() < 0.3:                 # the same content, a new Identifier
                copy = bytearray(raw)
                copy[1] = (copy[1] + 128) % 256
                resigned = acct_resign(bytes(copy))
                schedule.append((rng.choice((nodes.a, nodes.b)), resigned))
    rng.shuffle(schedule)
    deliver(nodes, schedule)
    check_against_packets(nodes, nas, sent)

    # the NAS retransmits everything once more, to both: nothing changes
    deliver(nodes, [(d, raw) for s in sent for raw in s.packets for d in (nodes.a, nodes.b)])
    check_against_packets(nodes, nas, sent)


def acct_resign(raw: bytes) -> bytes:
    """The same Accounting-Request with a recomputed Request Authenticator (RFC 2866 §3)."""
    body = raw[:4] + bytes(16) + raw[20:]
    return raw[:4] + hashlib.md5(body + SECRET.encode()).digest() + raw[20:]


def test_sessions_spread_over_both_nodes_add_up(nodes: Nodes) -> None:
    """A user's sessions, each on either node (the NAS's choice), in parallel."""
    rng = random.Random(5080)
    nas, now = "192.0.2.2", int(time.time())
    sent = [session_packets(rng, nas, f"tn-spread{k % 3}", f"spread-{k}", 10 * k, now)
            for k in range(15)]
    by_session: list[list[tuple[Daemon, bytes]]] = [
        [(rng.choice((nodes.a, nodes.b)), raw) for raw in s.packets] for s in sent]

    def run(items: list[tuple[Daemon, bytes]]) -> None:
        for d, raw in items:                       # one session's packets in order
            assert send(d.acct_port, raw)[0] == AccountingResponse
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(run, by_session))
    check_against_packets(nodes, nas, sent)
    with nodes.db.reader.connect() as conn:
        periods = conn.execute(select(func.count()).select_from(usage)
                               .where(usage.c.user_name == "tn-spread0")).scalar()
    if periods == 1:            # not across a month boundary: the CLI shows the same
        out = json.loads(nodes.b.cli("usage", "show", "tn-spread0", "--json").stdout)
        got = (out["session_s"], out["in_octets"], out["out_octets"])
        assert got == stored_usage(nodes.db, "tn-spread0")[:3]


# -- limits that must hold across nodes -------------------------------------------------

def test_concurrent_session_limit_holds_across_nodes(nodes: Nodes) -> None:
    nas, now = "192.0.2.3", int(time.time())
    assert login(nodes.b, "tn-solo").code == AccessAccept
    deliver(nodes, [(nodes.a, acct(nas, "tn-solo", "solo-1", "Start", id=1, at=now))])
    busy = login(nodes.b, "tn-solo")
    assert busy.code == AccessReject
    assert busy["Reply-Message"] == ["Concurrent session limit of 1 reached"]
    assert login(nodes.a, "tn-solo").code == AccessReject
    deliver(nodes, [(nodes.b, acct(nas, "tn-solo", "solo-1", "Stop", id=2, t=60, at=now + 60))])
    assert login(nodes.a, "tn-solo").code == AccessAccept
    assert login(nodes.b, "tn-solo").code == AccessAccept


def charge_rows(n: Nodes, user: str) -> list[tuple[str, int]]:
    with n.db.reader.connect() as conn:
        return [(r.kind, r.amount) for r in conn.execute(
            select(charges.c.kind, charges.c.amount).where(charges.c.user_name == user)
            .order_by(charges.c.id))]


def test_overage_is_charged_once_when_both_nodes_see_the_packets(nodes: Nodes) -> None:
    nas, now = "192.0.2.4", int(time.time()) - 2000
    one = [acct(nas, "tn-bill", "bill-1", "Start", id=1, at=now),
           acct(nas, "tn-bill", "bill-1", "Interim-Update", id=2, t=1200, i=10, o=20,
                at=now + 1200),
           acct(nas, "tn-bill", "bill-1", "Stop", id=3, t=1800, i=30, o=40, at=now + 1800)]
    for raw in one:                                # each step on both nodes at once
        deliver(nodes, [(nodes.a, raw), (nodes.b, raw), (nodes.b, raw), (nodes.a, raw)])
    two = acct(nas, "tn-bill", "bill-2", "Stop", id=4, t=600, i=1, o=1, at=now + 1900)
    deliver(nodes, [(nodes.b, two), (nodes.a, two)])
    rows = charge_rows(nodes, "tn-bill")
    # 2,400 s against a 600 s cap: 1,800 s at 1.20/h = 0.60, in 1/10,000 units
    assert sum(amount for _, amount in rows) == 6000, rows
    assert {kind for kind, _ in rows} == {"overage"} and len(rows) == 2, rows
    listed = json.loads(nodes.a.cli("charges", "list", "--user", "tn-bill", "--json").stdout)
    assert sum(Decimal(r["amount"]) for r in listed) == Decimal("0.60")


def test_block_renewal_is_charged_once_when_both_nodes_see_the_packets(nodes: Nodes) -> None:
    for d in (nodes.a, nodes.b):                   # the same sale made on both nodes
        d.cli("block", "add", "tn-block", "--ref", "tn-sale-1")
    nas, now = "192.0.2.5", int(time.time()) - 6000
    pkts = [acct(nas, "tn-block", "blk-1", "Start", id=1, at=now),
            acct(nas, "tn-block", "blk-1", "Interim-Update", id=2, t=3000, at=now + 3000),
            acct(nas, "tn-block", "blk-1", "Stop", id=3, t=5400, at=now + 5400)]
    for raw in pkts:
        deliver(nodes, [(nodes.a, raw), (nodes.b, raw)])
    deliver(nodes, [(d, raw) for raw in pkts for d in (nodes.b, nodes.a)])
    # the sale, then one renewal for the half hour the first block did not cover
    assert charge_rows(nodes, "tn-block") == [("block", 50000), ("block", 50000)]
    with nodes.db.reader.connect() as conn:
        blocks = block_store.list_blocks(conn, "tn-block")
    used = sorted(b["seconds_used"] for b in blocks)
    assert used == [1800, 3600], blocks


def test_accounting_on_via_one_node_closes_sessions_of_both(nodes: Nodes) -> None:
    nas, now = "192.0.2.6", int(time.time()) - 100
    deliver(nodes, [(nodes.a, acct(nas, "tn-reboot1", "rb-1", "Start", id=1, at=now)),
                    (nodes.b, acct(nas, "tn-reboot2", "rb-2", "Start", id=2, at=now)),
                    (nodes.b, acct(nas, "tn-reboot1", "rb-1", "Interim-Update", id=3, t=50,
                                   i=500, o=700, at=now + 50))])
    assert login(nodes.a, "tn-reboot1").code == AccessReject
    assert login(nodes.a, "tn-reboot2").code == AccessReject
    on = acct_request("Accounting-On", None, None, secret=SECRET.encode(), id=4,
                      NAS_IP_Address=nas, Event_Timestamp=now + 60)
    deliver(nodes, [(nodes.a, on)])
    for user, sid in (("tn-reboot1", "rb-1"), ("tn-reboot2", "rb-2")):
        row = stored_session(nodes.db, nas, sid)
        assert not row.active and row.terminate_cause == "NAS-Reboot", sid
        assert login(nodes.b, user).code == AccessAccept
    row = stored_session(nodes.db, nas, "rb-1")
    assert (row.session_s, row.in_octets, row.out_octets, row.stopped_at) == (50, 500, 700,
                                                                             now + 50)
    # the failover copy of the Accounting-On on node B changes nothing more
    deliver(nodes, [(nodes.b, on)])
    assert stored_usage(nodes.db, "tn-reboot1") == (50, 500, 700, 50, 500, 700)
