"""RadiusPort with the real handlers over a real SQLite file, without sockets.

The fakes are the edges only: a memory reactor for time, a datagram transport
that records writes, and executors that replace the thread hop. The SQL, the
codec and the handlers are the real ones.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import struct
from collections import OrderedDict
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry
from pyrad.packet import AcctPacket, AuthPacket
from sqlalchemy import select, update
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from aaad import credentials
from aaad.core.accounting.periods import PeriodSpec
from aaad.core.quotas.plan_parse import parse_plan
from aaad.credentials import VerifyCache, hash_password
from aaad.daemon.access_handler import AuthHandler
from aaad.daemon.accounting_handler import AccountingHandler
from aaad.daemon.batch import GroupCommit, PassEnd
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import InlineExecutor
from aaad.daemon.metrics import Metrics
from aaad.radius import protocol
from aaad.radius.authenticators import hide_password
from aaad.radius.clients import ClientTable
from aaad.radius.coa import CoAClient
from aaad.radius.codec import ACCT_CODES, AUTH_CODES
from aaad.radius.framing import (
    ACCESS_ACCEPT,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    ACCOUNTING_REQUEST,
    ACCOUNTING_RESPONSE,
    STATUS_SERVER,
)
from aaad.radius.protocol import RadiusPort
from aaad.store import events as event_store
from aaad.store import plans as plan_store
from aaad.store import sessions as session_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.plans import plan_to_json
from aaad.store.tables import users
from tests.support.fakes import GatedExecutor
from tests.support.radius_packets import (
    DICT,
    NAS,
    SECRET,
    FakeDatagramTransport,
    access_request,
    acct_request,
    make_client,
    raw_packet,
    status_server,
)

T0 = 1_800_000_000          # 2027-01-15, UTC
UTC = ZoneInfo("UTC")
STRANGER = ("198.51.100.99", 40000)
FIXED_AUTHENTICATOR = bytes(range(16))  # with it, the wrong secret surely garbles the password


def doubling(seen: list[list[int]]) -> Any:
    """A batch job for GroupCommit: records each batch in ``seen`` and
    answers every item doubled."""
    def process(items: Any) -> list[int]:
        seen.append(list(items))
        return [i * 2 for i in items]
    return process


class RecordingSocket:
    """A UDP socket for a port's transport: records what is sent to it, or
    refuses it (as a kernel with a full send buffer) while ``refuse``."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.refuse = refuse

    def sendto(self, data: bytes, addr: Any) -> int:
        if self.refuse:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        self.sent.append((data, addr))
        return len(data)


class Ports:
    """An auth and an accounting RadiusPort, with real handlers, on ``db``."""

    def __init__(self, db: Database, *, writer: Any = None, reader: Any = None,
                 hasher: Any = None, clients: ClientTable | None = None,
                 max_pending: int = 4096, acct_max_queue: int = 8192,
                 on_over_limit: Any = None, auth_writer: Any = None) -> None:
        self.db = db
        self.reactor = MemoryReactorClock()
        self.reactor.advance(T0)
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.writer: Any = writer if writer is not None else GatedExecutor()
        self.reader: Any = reader if reader is not None else InlineExecutor()
        self.hasher: Any = hasher if hasher is not None else InlineExecutor()
        self.clients = clients if clients is not None else ClientTable([make_client()])
        self.accounting = AccountingHandler(
            db=db, executor=self.writer, reactor=self.reactor, metrics=self.metrics,
            period=PeriodSpec("monthly"), tz=UTC, max_queue=acct_max_queue,
            **({} if on_over_limit is None else {"on_over_limit": on_over_limit}))
        self.auth = AuthHandler(
            db=db, reader=self.reader, hasher=self.hasher, writer=auth_writer,
            reactor=self.reactor, metrics=self.metrics,
            cache=VerifyCache(max_entries=100, ttl_s=300, now=self.reactor.seconds))
        common: dict[str, Any] = {"clients": self.clients, "dictionary": DICT,
                                      "reactor": self.reactor, "metrics": self.metrics,
                                      "max_pending": max_pending}
        self.acct_port = RadiusPort(name="acct", allowed=ACCT_CODES, handler=self.accounting,
                                    **common)
        self.auth_port = RadiusPort(name="auth", allowed=AUTH_CODES, handler=self.auth, **common)
        self.acct_wire = FakeDatagramTransport()
        self.auth_wire = FakeDatagramTransport()
        self.acct_port.makeConnection(self.acct_wire)
        self.auth_port.makeConnection(self.auth_wire)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def dropped(self, port: str, reason: str) -> float:
        return self.sample("aaad_packets_dropped_total", port=port, reason=reason)

    def drops(self) -> dict[tuple[str, str], float]:
        return {(s.labels["port"], s.labels["reason"]): s.value
                for metric in self.registry.collect() if metric.name == "aaad_packets_dropped"
                for s in metric.samples if s.name == "aaad_packets_dropped_total"}

    def sessions(self) -> list[dict[str, Any]]:
        with self.db.reader.connect() as conn:
            return session_store.list_sessions(conn)

    def add_user(self, name: str, *, cleartext: str | None = None, password: str | None = None,
                 enabled: bool = True, nt_hash: str | None = None) -> None:
        with self.db.writer.begin() as conn:
            user_store.add_user(conn, name, password_cleartext=cleartext,
                                password_hash=None if password is None else hash_password(password),
                                plan=None, enabled=enabled, now=T0, password_nt_hash=nt_hash)


def verify_reply(request: bytes, reply: bytes, *, secret: bytes = SECRET) -> AuthPacket:
    """pyrad, as the NAS, accepts ``reply`` for ``request`` (BlastRADIUS checks included)."""
    cls = AuthPacket if request[0] == ACCESS_REQUEST else AcctPacket
    sent = cls(packet=request, secret=secret, dict=DICT)
    received = sent.CreateReply(packet=reply)
    enforce = request[0] in (ACCESS_REQUEST, STATUS_SERVER)
    assert sent.VerifyReply(received, reply, enforce_ma=enforce), "reply does not verify"
    return received


def wire_attributes(packet: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 20
    while pos < len(packet):
        out.append((packet[pos], packet[pos + 2:pos + packet[pos + 1]]))
        pos += packet[pos + 1]
    return out


class PortTest(SynchronousTestCase):
    db: Database

    @pytest.fixture(autouse=True)
    def _database(self, sqlite_db: Database) -> None:
        self.db = sqlite_db


# --- (a) the Accounting-Response waits for the commit; duplicates -----------------

class AccountingResponseTests(PortTest):
    def test_reply_only_after_commit_and_retransmit_gets_cached_bytes(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request("Interim-Update", "alice", "s1", Acct_Input_Octets=10,
                           Acct_Session_Time=60)
        ports.acct_port.datagramReceived(pkt, NAS)
        self.assertEqual(ports.acct_wire.written, [])      # not durable yet
        self.assertEqual(ports.sessions(), [])
        self.assertEqual(len(ports.writer.jobs), 1)

        ports.writer.release()                              # runs the real SQL
        [(raw, addr)] = ports.acct_wire.written
        self.assertEqual((raw[0], addr), (ACCOUNTING_RESPONSE, NAS))
        verify_reply(pkt, raw)
        [row] = ports.sessions()
        self.assertEqual((row["user"], row["in_octets"], row["packets"]), ("alice", 10, 1))

        ports.reactor.advance(5)
        ports.acct_port.datagramReceived(pkt, NAS)          # the NAS retransmits
        self.assertEqual(len(ports.acct_wire.written), 2)
        self.assertEqual(ports.acct_wire.written[1], (raw, NAS))   # cached reply, same bytes
        self.assertEqual(ports.writer.jobs, [])
        self.assertEqual(ports.writer.jobs_run, 1)          # counted once
        self.assertEqual(ports.sessions()[0]["packets"], 1)
        self.assertEqual(ports.dropped("acct", "duplicate"), 1)
        self.assertEqual(ports.sample("aaad_replies_total", port="acct",
                                      code="Accounting-Response"), 1)

    def test_a_reply_the_kernel_refuses_is_counted_and_the_retransmit_answered(self) -> None:
        ports = Ports(self.db)
        sock = RecordingSocket(refuse=True)
        ports.acct_wire.socket = sock       # type: ignore[attr-defined]
        pkt = acct_request("Interim-Update", "alice", "s1", Acct_Input_Octets=10)
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.release()
        self.assertEqual(sock.sent, [])
        self.assertEqual(ports.dropped("acct", "send_error"), 1)
        self.assertEqual(ports.acct_port.pending, 0)
        sock.refuse = False
        ports.acct_port.datagramReceived(pkt, NAS)          # the NAS retransmits
        [(raw, addr)] = sock.sent
        verify_reply(pkt, raw)
        self.assertEqual((addr, ports.sessions()[0]["packets"]), (NAS, 1))   # counted once

    def test_replies_of_one_batch_leave_together_in_order(self) -> None:
        ports = Ports(self.db)
        sock = RecordingSocket()
        ports.acct_wire.socket = sock       # type: ignore[attr-defined]
        # A request alone is answered at once.
        alone = acct_request("Start", "alice", "s0")
        ports.acct_port.datagramReceived(alone, NAS)
        ports.writer.release()
        [(raw, _)] = sock.sent
        verify_reply(alone, raw)
        sock.sent.clear()
        # Five answered by one batch: held until the last, then sent in order.
        pkts = [acct_request("Start", "alice", f"s{i}") for i in range(1, 6)]
        for pkt in pkts:
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()                # one batch of one, then one of four
        self.assertEqual(ports.acct_port.pending, 0)
        self.assertEqual(len(sock.sent), 5)
        for pkt, (raw, addr) in zip(pkts, sock.sent, strict=True):
            verify_reply(pkt, raw)
            self.assertEqual(addr, NAS)
        self.assertEqual(ports.sample("aaad_replies_total", port="acct",
                                      code="Accounting-Response"), 6)

    def test_at_most_32_replies_are_held(self) -> None:
        ports = Ports(self.db)
        pending_at_send: list[int] = []

        class Socket(RecordingSocket):
            def sendto(self, data: bytes, addr: Any) -> int:
                pending_at_send.append(ports.acct_port.pending)
                return super().sendto(data, addr)

        sock = Socket()
        ports.acct_wire.socket = sock       # type: ignore[attr-defined]
        pkts = [acct_request("Start", "alice", f"c{i}") for i in range(41)]
        for pkt in pkts:
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()                # a batch of one, then one of forty
        self.assertEqual(len(sock.sent), 41)
        # The first 32 answered left as the 32nd was written (it and 9 more
        # still pending); the other 9 once the last was done.
        self.assertEqual(pending_at_send[:32], [10] * 32)
        self.assertEqual(pending_at_send[32:], [0] * 9)
        for pkt, (raw, _) in zip(pkts, sock.sent, strict=True):
            verify_reply(pkt, raw)

    def test_held_replies_leave_at_the_end_of_the_pass_while_others_are_pending(self) -> None:
        ports = Ports(self.db)
        sock = RecordingSocket()
        ports.acct_wire.socket = sock       # type: ignore[attr-defined]
        pkts = [acct_request("Start", "alice", f"a{i}") for i in range(3)]
        for pkt in pkts:
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.release()              # the first batch: a0 alone
        self.assertEqual(sock.sent, [])     # a1 and a2 pending: a0's reply waits
        ports.reactor.advance(0)            # the end of the reactor's pass
        self.assertEqual(len(sock.sent), 1)
        ports.writer.release()              # a1 and a2: the last one answered sends both
        self.assertEqual(len(sock.sent), 3)
        for pkt, (raw, _) in zip(pkts, sock.sent, strict=True):
            verify_reply(pkt, raw)

    def test_duplicate_while_in_flight_is_dropped(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request("Start", "alice", "s1")
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.acct_port.datagramReceived(pkt + b"\x00\x00", NAS)   # padded copy: same request
        self.assertEqual(ports.dropped("acct", "duplicate_in_flight"), 2)
        self.assertEqual(ports.acct_port.pending, 1)
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 1)
        self.assertEqual(ports.writer.jobs_run, 1)
        self.assertEqual(ports.sessions()[0]["packets"], 1)
        self.assertEqual(ports.acct_port.pending, 0)

    def test_same_id_from_another_source_port_is_a_new_request(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request("Start", "alice", "s1")
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.acct_port.datagramReceived(pkt, (NAS[0], NAS[1] + 1))
        ports.writer.drain()
        self.assertEqual([addr for _, addr in ports.acct_wire.written],
                         [NAS, (NAS[0], NAS[1] + 1)])

    def test_retransmit_after_the_dedup_window_is_processed_again(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request("Interim-Update", "alice", "s1", Acct_Input_Octets=10)
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()
        ports.reactor.advance(31)
        ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()
        self.assertEqual(ports.writer.jobs_run, 2)
        [row] = ports.sessions()
        # Processed twice, counted once (the delta rule).
        self.assertEqual((row["in_octets"], row["packets"]), (10, 2))

    def test_a_record_is_dated_by_its_arrival_at_the_port(self) -> None:
        ports = Ports(self.db)
        ports.reactor.advance(0.5)
        ports.acct_port.datagramReceived(acct_request("Start", "alice", "s1"), NAS)
        ports.reactor.advance(7)                            # the database is slow
        [(_, args, _)] = ports.writer.jobs
        [rec] = args[0]
        self.assertEqual((rec.arrival, rec.at), (T0, T0))
        ports.writer.release()
        self.assertEqual(ports.sessions()[0]["started_at"], T0)

    def test_ignored_status_type_is_acknowledged_without_the_database(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request(9, "alice", "s1")                 # Tunnel-Start: not counted
        ports.acct_port.datagramReceived(pkt, NAS)
        [(raw, _)] = ports.acct_wire.written
        verify_reply(pkt, raw)
        self.assertEqual(ports.writer.jobs, [])

    def test_stop_reading_waits_for_pending_replies(self) -> None:
        ports = Ports(self.db)
        ports.acct_port.datagramReceived(acct_request(), NAS)
        stopped = ports.acct_port.stop_reading()
        self.assertNoResult(stopped)
        ports.acct_port.datagramReceived(acct_request(id=2), NAS)   # not read any more
        ports.writer.drain()
        self.assertIsNone(self.successResultOf(stopped))
        self.assertEqual(len(ports.acct_wire.written), 1)


# --- (b) what never reaches the database -----------------------------------------

class DropTests(PortTest):
    def assert_nothing_reached_the_database(self, ports: Ports) -> None:
        self.assertEqual(ports.writer.jobs, [])
        self.assertEqual(ports.writer.jobs_run, 0)
        self.assertEqual(ports.reader.jobs, [])
        self.assertEqual(ports.sessions(), [])
        self.assertEqual(ports.acct_wire.written, [])
        self.assertEqual(ports.auth_wire.written, [])
        self.assertEqual(ports.acct_port.pending + ports.auth_port.pending, 0)

    def test_accounting_drops(self) -> None:
        ports = Ports(self.db, reader=GatedExecutor())
        good = acct_request("Start", "alice", "s1")
        cases = [
            (good, STRANGER, "unknown_client"),
            (good, ("::ffff:198.51.100.1", 1813), "unknown_client"),
            (acct_request(secret=b"wrong"), NAS, "bad_authenticator"),
            (good[:4] + bytes(16) + good[20:], NAS, "bad_authenticator"),
            (good[:-1], NAS, "malformed"),                   # Length now past the end
            (good[:19], NAS, "malformed"),
            (b"", NAS, "malformed"),
            (raw_packet(ACCOUNTING_REQUEST, b"\x01\x01"), NAS, "malformed"),
            (raw_packet(ACCOUNTING_RESPONSE), NAS, "unexpected_code"),
            (access_request("alice", "pw"), NAS, "unexpected_code"),
            (status_server(ma=False), NAS, "missing_message_authenticator"),
            (status_server(secret=b"wrong"), NAS, "bad_message_authenticator"),
            (acct_request(status=None), NAS, "malformed"),   # found in the body, before the DB
            (acct_request(session=None), NAS, "malformed"),
            (acct_request(user=None, session=None), NAS, "malformed"),
        ]
        for data, addr, _ in cases:
            ports.acct_port.datagramReceived(data, addr)
        expected: dict[tuple[str, str], float] = {}
        for _, _, reason in cases:
            expected[("acct", reason)] = expected.get(("acct", reason), 0) + 1
        self.assertEqual(ports.drops(), expected)
        self.assert_nothing_reached_the_database(ports)

    def test_auth_drops(self) -> None:
        ports = Ports(self.db, reader=GatedExecutor(),
                      clients=ClientTable([make_client(),
                                           make_client("strict", "203.0.113.0/24",
                                                       require_message_authenticator=True)]))
        strict = ("203.0.113.5", 1812)
        cases = [
            (access_request("alice", "pw"), STRANGER, "unknown_client"),
            (access_request("alice", "pw", ma=True, secret=b"wrong"), NAS,
             "bad_message_authenticator"),
            (access_request("alice", "pw"), strict, "missing_message_authenticator"),
            (status_server(ma=False), NAS, "missing_message_authenticator"),
            (access_request("alice", "pw")[:-3], NAS, "malformed"),
            (acct_request(), NAS, "unexpected_code"),
            # No Message-Authenticator: only the password shows the wrong secret.
            (access_request("alice", "correct horse", secret=b"wrong", id=9,
                            authenticator=FIXED_AUTHENTICATOR), NAS, "undecodable_password"),
            (access_request("alice", password=None, User_Password=bytes(17)), NAS, "malformed"),
        ]
        for data, addr, _ in cases:
            ports.auth_port.datagramReceived(data, addr)
        expected: dict[tuple[str, str], float] = {}
        for _, _, reason in cases:
            expected[("auth", reason)] = expected.get(("auth", reason), 0) + 1
        self.assertEqual(ports.drops(), expected)
        self.assert_nothing_reached_the_database(ports)

    def test_random_bytes_from_a_stranger_are_not_even_parsed(self) -> None:
        ports = Ports(self.db)
        ports.auth_port.datagramReceived(b"\xff" * 3, STRANGER)
        self.assertEqual(ports.drops(), {("auth", "unknown_client"): 1})

    def test_drop_logs_are_rate_limited(self) -> None:
        ports = Ports(self.db)
        with self.assertLogs("aaad.radius.protocol", "WARNING") as logs:
            for i in range(50):
                ports.acct_port.datagramReceived(acct_request(id=i, secret=b"wrong"), NAS)
            ports.reactor.advance(11)
            ports.acct_port.datagramReceived(acct_request(id=99, secret=b"wrong"), NAS)
        self.assertEqual(len(logs.records), 2)
        self.assertIn("49 similar suppressed", logs.output[1])
        self.assertEqual(ports.dropped("acct", "bad_authenticator"), 51)
        self.assertNotIn(SECRET.decode(), "".join(logs.output))


class AddressTests(PortTest):
    def test_ipv6_and_ipv4_mapped_sources(self) -> None:
        clients = ClientTable([make_client(), make_client("v6", "2001:db8::/64")])
        ports = Ports(self.db, clients=clients)
        for addr in [("2001:db8::5", 1813), ("::ffff:192.0.2.10", 1813)]:
            pkt = acct_request(id=len(ports.acct_wire.written))
            ports.acct_port.datagramReceived(pkt, addr)
            ports.writer.drain()
            raw, to = ports.acct_wire.written[-1]
            self.assertEqual(to, addr)                       # answered where it came from
            verify_reply(pkt, raw)
        self.assertEqual(ports.sample("aaad_requests_total", port="acct", client="v6",
                                      code="Accounting-Request"), 1)
        self.assertEqual(ports.sample("aaad_requests_total", port="acct", client="nas1",
                                      code="Accounting-Request"), 1)

    def test_a_decoder_bug_costs_one_packet(self) -> None:
        ports = Ports(self.db)

        def broken(*args: Any, **kw: Any) -> Any:
            raise ValueError("a bug in the decoder")
        self.patch(protocol, "decode_request", broken)
        with self.assertLogs("aaad.radius.protocol", "ERROR"):
            ports.acct_port.datagramReceived(acct_request(), NAS)
        self.assertEqual(ports.drops(), {("acct", "internal_error"): 1})
        self.assertEqual(ports.acct_wire.written, [])


# --- (c) the database fails: no reply, and the retransmit is processed ---------------

class BackendErrorTests(PortTest):
    def test_failed_commit_gets_no_reply_and_the_retransmit_is_processed(self) -> None:
        ports = Ports(self.db)
        pkt = acct_request("Interim-Update", "alice", "s1", Acct_Input_Octets=500)
        with self.db.writer.begin() as conn:                 # the real SQL will fail
            conn.exec_driver_sql("ALTER TABLE sessions RENAME TO sessions_away")
        ports.acct_port.datagramReceived(pkt, NAS)
        with self.assertLogs("aaad.radius.protocol", "WARNING") as logs:
            ports.writer.release()
        self.assertEqual(ports.writer.jobs_run, 1)
        self.assertEqual(ports.acct_wire.written, [])
        self.assertEqual(ports.dropped("acct", "backend_error"), 1)
        self.assertEqual(ports.sample("aaad_db_errors_total", kind="accounting"), 1)
        self.assertIn("the NAS will retry", logs.output[0])
        self.assertEqual(ports.acct_port.pending, 0)

        with self.db.writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE sessions_away RENAME TO sessions")
        ports.acct_port.datagramReceived(pkt, NAS)           # the NAS retransmits
        self.assertEqual(ports.dropped("acct", "duplicate_in_flight"), 0)
        ports.writer.release()
        [(raw, _)] = ports.acct_wire.written
        verify_reply(pkt, raw)
        self.assertEqual(ports.writer.jobs_run, 2)
        [row] = ports.sessions()
        self.assertEqual((row["in_octets"], row["packets"]), (500, 1))

    def test_failed_batch_fails_every_request_in_it(self) -> None:
        ports = Ports(self.db)
        first = acct_request("Start", "alice", "s1", id=1)
        batch = [acct_request("Start", f"u{i}", f"s{i}", id=10 + i) for i in range(3)]
        ports.acct_port.datagramReceived(first, NAS)
        for pkt in batch:
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.release()                               # the first commits
        ports.writer.release(error=RuntimeError("writer pool is gone"))
        self.assertEqual(len(ports.acct_wire.written), 1)
        self.assertEqual(ports.dropped("acct", "backend_error"), 3)
        for pkt in batch:                                    # all retransmitted
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 4)
        self.assertEqual(len(ports.sessions()), 4)

    def test_auth_query_failure_gets_no_reply(self) -> None:
        ports = Ports(self.db)
        ports.add_user("alice", cleartext="pw")
        pkt = access_request("alice", "pw")
        with self.db.writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE users RENAME TO users_away")
        ports.auth_port.datagramReceived(pkt, NAS)
        self.assertEqual(ports.auth_wire.written, [])
        self.assertEqual(ports.dropped("auth", "backend_error"), 1)
        self.assertEqual(ports.sample("aaad_db_errors_total", kind="auth"), 1)
        with self.db.writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE users_away RENAME TO users")
        ports.auth_port.datagramReceived(pkt, NAS)
        [(raw, _)] = ports.auth_wire.written
        self.assertEqual(verify_reply(pkt, raw).code, ACCESS_ACCEPT)

    def test_auth_lookup_failure_gets_no_reply(self) -> None:
        ports = Ports(self.db, reader=GatedExecutor())
        ports.add_user("alice", cleartext="pw")
        pkt = access_request("alice", "pw")
        ports.auth_port.datagramReceived(pkt, NAS)
        ports.reader.release(error=RuntimeError("reader pool is gone"))
        self.assertEqual(ports.auth_wire.written, [])
        self.assertEqual(ports.dropped("auth", "backend_error"), 1)
        ports.auth_port.datagramReceived(pkt, NAS)
        ports.reader.release()
        [(raw, _)] = ports.auth_wire.written
        self.assertEqual(verify_reply(pkt, raw).code, ACCESS_ACCEPT)


# --- (d) Status-Server on both ports ------------------------------------------------

class StatusServerTests(PortTest):
    def test_answered_on_both_ports_with_a_valid_message_authenticator(self) -> None:
        ports = Ports(self.db)
        for port, wire, code in [(ports.auth_port, ports.auth_wire, ACCESS_ACCEPT),
                                 (ports.acct_port, ports.acct_wire, ACCOUNTING_RESPONSE)]:
            pkt = status_server(id=33, proxy_states=(b"ps",))
            port.datagramReceived(pkt, NAS)
            [(raw, addr)] = wire.written
            self.assertEqual((raw[0], raw[1], addr), (code, 33, NAS))
            reply = verify_reply(pkt, raw)                   # enforce_ma=True inside
            self.assertTrue(reply.message_authenticator)
            self.assertEqual(reply[33], [b"ps"])
        self.assertEqual(ports.writer.jobs, [])
        self.assertEqual(ports.sample("aaad_requests_total", port="auth", client="nas1",
                                      code="Status-Server"), 1)

    def test_the_reader_keeps_its_connection_and_no_transaction_between_batches(self) -> None:
        ports = Ports(self.db)
        ports.add_user("alice", cleartext="alice-pw")

        def login(password: str, id: int) -> int:
            ports.auth_wire.written.clear()
            ports.auth_port.datagramReceived(access_request("alice", password, id=id), NAS)
            [(raw, _)] = ports.auth_wire.written
            return raw[0]
        self.assertEqual(login("alice-pw", 1), ACCESS_ACCEPT)
        held = ports.auth._held.conn
        driver = held.connection.driver_connection
        self.assertFalse(held.in_transaction())
        self.assertFalse(driver.in_transaction)     # no SQLite snapshot kept
        # A change written meanwhile is seen by the next batch on the same connection.
        with self.db.writer.begin() as conn:
            user_store.update_user(conn, "alice", now=T0, password_cleartext="new-pw")
        self.assertEqual(login("alice-pw", 2), ACCESS_REJECT)
        self.assertEqual(login("new-pw", 3), ACCESS_ACCEPT)
        self.assertIs(ports.auth._held.conn, held)

    def test_a_reader_connection_that_failed_is_not_kept(self) -> None:
        ports = Ports(self.db)
        ports.add_user("alice", cleartext="alice-pw")
        ports.auth_port.datagramReceived(access_request("alice", "alice-pw", id=1), NAS)
        held = ports.auth._held.conn
        held.close()                                # as if it had broken under the batch
        ports.auth_port.datagramReceived(access_request("alice", "alice-pw", id=2), NAS)
        self.assertIsNone(ports.auth._held.conn)    # dropped, not reused
        self.assertEqual(ports.sample("aaad_db_errors_total", kind="auth"), 1)
        ports.auth_wire.written.clear()
        ports.auth_port.datagramReceived(access_request("alice", "alice-pw", id=3), NAS)
        [(raw, _)] = ports.auth_wire.written        # the next batch takes a new one
        self.assertEqual(raw[0], ACCESS_ACCEPT)
        self.assertIsNot(ports.auth._held.conn, held)

    def test_a_probe_is_no_login_decision(self) -> None:
        # Status-Server on the auth port is answered with an Access-Accept: it
        # counts as a request by code and a reply sent, never as a login.
        ports = Ports(self.db)
        ports.add_user("alice", cleartext="alice-pw")

        def decisions() -> tuple[float, float]:
            return (ports.sample("aaad_auth_decisions_total", result="accept"),
                    ports.sample("aaad_auth_decisions_total", result="reject"))
        # Both results are exported at 0 before any login, so rate() works at once.
        self.assertIsNotNone(ports.registry.get_sample_value("aaad_auth_decisions_total",
                                                             {"result": "accept"}))
        ports.auth_port.datagramReceived(status_server(id=1), NAS)
        ports.acct_port.datagramReceived(status_server(id=2), NAS)
        self.assertEqual(decisions(), (0, 0))
        self.assertEqual(ports.sample("aaad_requests_total", port="auth", client="nas1",
                                      code="Status-Server"), 1)
        self.assertEqual(ports.sample("aaad_replies_total", port="auth", code="Access-Accept"), 1)
        ports.auth_port.datagramReceived(access_request("alice", "alice-pw", id=3), NAS)
        self.assertEqual(decisions(), (1, 0))
        ports.auth_port.datagramReceived(access_request("alice", "wrong", id=4), NAS)
        ports.auth_port.datagramReceived(access_request("nobody", "pw", id=5), NAS)
        self.assertEqual(decisions(), (1, 2))
        self.assertEqual(ports.sample("aaad_replies_total", port="auth", code="Access-Accept"), 2)
        # Every reject has its reason; accept + reject = answered Access-Requests.
        self.assertEqual(ports.sample("aaad_access_rejects_total", reason="bad_password")
                         + ports.sample("aaad_access_rejects_total", reason="unknown_user"), 2)
        self.assertEqual(sum(decisions()), ports.sample(
            "aaad_requests_total", port="auth", client="nas1", code="Access-Request"))


# --- (e) authentication -----------------------------------------------------------------

class AuthTests(PortTest):
    def setUp(self) -> None:
        self.ports = Ports(self.db)
        self.ports.add_user("clear", cleartext="clear-pw")
        self.ports.add_user("hashed", password="hashed-pw")
        self.ports.add_user("off", password="off-pw", enabled=False)
        self.next_id = 0

    def ask(self, user: str, password: str | None = None, **kw: Any) -> AuthPacket:
        self.next_id += 1
        pkt = access_request(user, password, id=self.next_id, **kw)
        before = len(self.ports.auth_wire.written)
        self.ports.auth_port.datagramReceived(pkt, NAS)
        [(raw, addr)] = self.ports.auth_wire.written[before:]
        self.assertEqual(addr, NAS)
        return verify_reply(pkt, raw)

    def rejects(self, reason: str) -> float:
        return self.ports.sample("aaad_access_rejects_total", reason=reason)

    def legacy_user(self) -> tuple[GatedExecutor, str]:
        """Ports whose login writes wait for ``gate``, and a user ``legacy``
        whose hash has older parameters than today's (returned)."""
        gate = GatedExecutor()
        self.ports = Ports(self.db, auth_writer=gate)
        old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2).hash("legacy-pw")
        with self.db.writer.begin() as conn:
            user_store.add_user(conn, "legacy", password_hash=old, password_cleartext=None,
                                plan=None, enabled=True, now=T0)
        return gate, old

    def test_an_old_parameter_hash_is_rehashed_after_the_accept(self) -> None:
        gate, old = self.legacy_user()

        def stored() -> str:
            with self.db.reader.connect() as conn:
                return str(conn.execute(select(users.c.password_hash)
                                        .where(users.c.name == "legacy")).scalar_one())
        self.assertEqual(self.ask("legacy", "wrong").code, ACCESS_REJECT)
        gate.drain()
        self.assertEqual(stored(), old)                     # a wrong password changes nothing
        # The Accept goes out before the new hash is written (the writer is
        # held here): the login never waits for it.
        self.assertEqual(self.ask("legacy", "legacy-pw").code, ACCESS_ACCEPT)
        self.assertEqual(stored(), old)
        gate.drain()
        new = stored()
        self.assertNotEqual(new, old)
        self.assertFalse(credentials.needs_rehash(new))
        self.assertTrue(credentials.verify_hash(new, b"legacy-pw"))
        self.assertEqual(self.ports.sample("aaad_password_rehashes_total", result="ok"), 1)
        # The next login is a cache hit on the new hash; nothing is re-hashed again.
        self.assertEqual(self.ask("legacy", "legacy-pw").code, ACCESS_ACCEPT)
        gate.drain()
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="cache_hit"), 1)
        self.assertEqual(self.ports.sample("aaad_password_rehashes_total", result="ok"), 1)

    def test_a_rehash_does_not_overwrite_a_password_changed_meanwhile(self) -> None:
        gate, _ = self.legacy_user()
        self.assertEqual(self.ask("legacy", "legacy-pw").code, ACCESS_ACCEPT)
        changed = credentials.hash_password("changed-pw")
        with self.db.writer.begin() as conn:    # the operator sets a new password
            conn.execute(update(users).where(users.c.name == "legacy")
                         .values(password_hash=changed))
        gate.drain()
        with self.db.reader.connect() as conn:
            self.assertEqual(conn.execute(select(users.c.password_hash)
                                          .where(users.c.name == "legacy")).scalar_one(),
                             changed)
        self.assertEqual(self.ports.sample("aaad_password_rehashes_total", result="changed"), 1)

    def test_pap_cleartext_user(self) -> None:
        self.assertEqual(self.ask("clear", "clear-pw").code, ACCESS_ACCEPT)
        self.assertEqual(self.ask("clear", "clear-pw", ma=True).code, ACCESS_ACCEPT)

    def test_pap_hashed_user_then_verify_cache_hit(self) -> None:
        self.assertEqual(self.ask("hashed", "hashed-pw").code, ACCESS_ACCEPT)
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="ok"), 1)
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="cache_hit"), 0)
        self.assertEqual(self.ask("hashed", "hashed-pw").code, ACCESS_ACCEPT)
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="cache_hit"), 1)
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="ok"), 1)
        # A wrong password is never a cache hit.
        self.assertEqual(self.ask("hashed", "hashed-pw!").code, ACCESS_REJECT)
        self.assertEqual(self.ports.sample("aaad_password_verify_total", result="mismatch"), 1)

    def test_wrong_password(self) -> None:
        for user, password in [("clear", "clear-pW"), ("hashed", "nope"), ("clear", "")]:
            reply = self.ask(user, password)
            self.assertEqual(reply.code, ACCESS_REJECT)
            self.assertEqual(reply["Reply-Message"], ["Authentication failed"])
        self.assertEqual(self.rejects("bad_password"), 3)

    def test_unknown_user(self) -> None:
        reply = self.ask("nobody", "pw")
        self.assertEqual(reply.code, ACCESS_REJECT)
        self.assertEqual(reply["Reply-Message"], ["Authentication failed"])  # as a bad password
        self.assertEqual(self.rejects("unknown_user"), 1)

    def test_disabled_user(self) -> None:
        reply = self.ask("off", "off-pw")
        self.assertEqual(reply.code, ACCESS_REJECT)
        self.assertEqual(reply["Reply-Message"], ["Account disabled"])
        self.assertEqual(self.rejects("disabled"), 1)
        # Without the right password the account's state is not revealed.
        self.assertEqual(self.ask("off", "guess")["Reply-Message"], ["Authentication failed"])

    def test_chap(self) -> None:
        challenge = bytes(range(16, 32))
        good = bytes((5,)) + hashlib.md5(b"\x05clear-pw" + challenge).digest()
        self.assertEqual(self.ask("clear", chap=(good, challenge)).code, ACCESS_ACCEPT)
        # No CHAP-Challenge: the Request Authenticator is the challenge.
        authenticator = bytes(range(100, 116))
        in_auth = bytes((6,)) + hashlib.md5(b"\x06clear-pw" + authenticator).digest()
        self.assertEqual(self.ask("clear", chap=(in_auth, None),
                                  authenticator=authenticator).code, ACCESS_ACCEPT)
        bad = bytes((5,)) + hashlib.md5(b"\x05wrong" + challenge).digest()
        self.assertEqual(self.ask("clear", chap=(bad, challenge)).code, ACCESS_REJECT)
        reply = self.ask("hashed", chap=(good, challenge))
        self.assertEqual(reply.code, ACCESS_REJECT)
        self.assertEqual(self.rejects("chap_needs_cleartext"), 1)
        self.assertEqual(self.rejects("bad_password"), 1)

    def test_every_credential_failure_gets_the_same_reply(self) -> None:
        # The reply must not tell which user names exist: an unknown user, a
        # wrong password and CHAP on an account with only a hash get the same
        # attributes on the wire. Only the metric tells them apart.
        challenge = bytes(range(16, 32))

        def chap(password: bytes) -> tuple[bytes, bytes]:
            return bytes((7,)) + hashlib.md5(b"\x07" + password + challenge).digest(), challenge
        cases = [("nobody", "pw", None), ("nobody", None, chap(b"pw")),
                 ("clear", "wrong", None), ("clear", None, chap(b"wrong")),
                 ("hashed", "wrong", None),
                 ("hashed", None, chap(b"hashed-pw")),     # the right password, but CHAP
                 ("hashed", None, chap(b"wrong"))]
        seen = set()
        for user, password, chap_pair in cases:
            self.next_id += 1
            pkt = access_request(user, password, id=self.next_id, chap=chap_pair)
            self.ports.auth_port.datagramReceived(pkt, NAS)
            raw = self.ports.auth_wire.written[-1][0]
            self.assertEqual(verify_reply(pkt, raw).code, ACCESS_REJECT)
            # The attributes as sent, the Message-Authenticator's value aside.
            seen.add(tuple((t, b"" if t == 80 else v) for t, v in wire_attributes(raw)))
        self.assertEqual(seen, {((80, b""), (18, b"Authentication failed"))})
        self.assertEqual((self.rejects("unknown_user"), self.rejects("bad_password"),
                          self.rejects("chap_needs_cleartext")), (2, 3, 2))

    def test_rejects_are_logged_once_per_user_per_minute(self) -> None:
        challenge = bytes(range(16, 32))
        chap_response = bytes((3,)) + hashlib.md5(b"\x03chap-guess" + challenge).digest()
        secrets = ["guess-one", "guess-two", "guess-three", "guess-four", "guess-five"]
        with self.assertLogs("aaad.daemon.access_handler", "INFO") as logs:
            self.assertEqual(self.ask("clear", secrets[0]).code, ACCESS_REJECT)
            [first] = logs.records
            self.assertEqual(first.levelno, logging.INFO)
            self.assertEqual(first.getMessage(),
                             "Access-Reject: 'clear' from nas1 (192.0.2.10): bad_password, "
                             "Reply-Message 'Authentication failed'")
            self.ask("clear", secrets[1])                       # within the minute: held back
            self.ask("clear", chap=(chap_response, challenge))
            self.assertEqual(len(logs.records), 1)
            self.ask("hashed", secrets[2])                      # another user: a line of its own
            self.ask("off", "off-pw")                           # disabled: a reject too
            self.assertEqual(self.ask("clear", "clear-pw").code, ACCESS_ACCEPT)   # not logged
            self.assertEqual(len(logs.records), 3)
            self.assertIn("'off' from nas1 (192.0.2.10): disabled, Reply-Message "
                          "'Account disabled'", logs.records[2].getMessage())
            self.ports.reactor.advance(59)
            self.ask("clear", secrets[3])
            self.assertEqual(len(logs.records), 3)
            self.ports.reactor.advance(1)                       # 60 s after the first line
            self.ask("clear", secrets[4])
            self.assertEqual(len(logs.records), 4)
            self.assertEqual(logs.records[3].getMessage(),
                             "Access-Reject: 'clear' from nas1 (192.0.2.10): bad_password, "
                             "Reply-Message 'Authentication failed' (3 similar suppressed)")
        text = "\n".join(logs.output) + repr([r.args for r in logs.records])
        for secret in [*secrets, "clear-pw", "off-pw", "chap-guess"]:
            self.assertNotIn(secret, text)
        self.assertNotIn(chap_response.hex(), text)
        self.assertNotIn(repr(chap_response)[2:-1], text)

    def test_pap_against_an_nt_hash(self) -> None:
        self.ports.add_user("nt", nt_hash=credentials.nt_hash("nt-pw"))
        self.assertEqual(self.ask("nt", "nt-pw").code, ACCESS_ACCEPT)
        reply = self.ask("nt", "nt-pW")
        self.assertEqual((reply.code, reply["Reply-Message"]),
                         (ACCESS_REJECT, ["Authentication failed"]))
        self.assertEqual(self.rejects("bad_password"), 1)
        # CHAP needs the cleartext: an NT hash cannot serve it.
        challenge = bytes(range(16, 32))
        good = bytes((5,)) + hashlib.md5(b"\x05nt-pw" + challenge).digest()
        self.assertEqual(self.ask("nt", chap=(good, challenge)).code, ACCESS_REJECT)
        self.assertEqual(self.rejects("chap_needs_cleartext"), 1)

    def test_request_without_credentials(self) -> None:
        self.assertEqual(self.ask("clear").code, ACCESS_REJECT)
        self.assertEqual(self.rejects("unsupported_method"), 1)
        self.next_id += 1
        pkt = access_request(None, "pw", id=self.next_id)
        self.ports.auth_port.datagramReceived(pkt, NAS)
        self.assertEqual(verify_reply(pkt, self.ports.auth_wire.written[-1][0]).code,
                         ACCESS_REJECT)
        self.assertEqual(self.rejects("no_user_name"), 1)

    def test_lookups_are_batched(self) -> None:
        ports = Ports(self.db, reader=GatedExecutor())
        requests = [access_request("clear", "clear-pw", id=i) for i in range(1, 5)]
        for pkt in requests:
            ports.auth_port.datagramReceived(pkt, NAS)
        self.assertEqual(len(ports.reader.jobs), 1)
        ports.reader.release()                 # the first; the other three queued meanwhile
        [(_, args, _)] = ports.reader.jobs
        # (the client's tenant, User-Name): the client has none
        self.assertEqual(list(args[0]), [(None, "clear")] * 3)
        ports.reader.release()
        self.assertEqual(ports.reader.jobs_run, 2)
        for pkt, (raw, _) in zip(requests, ports.auth_wire.written, strict=True):
            self.assertEqual(verify_reply(pkt, raw).code, ACCESS_ACCEPT)


# --- (f) group commit --------------------------------------------------------------------

class GroupCommitTests(PortTest):
    def test_packets_arriving_during_a_commit_share_the_next_one(self) -> None:
        ports = Ports(self.db)
        first = acct_request("Start", "u0", "s0", id=0)
        rest = [acct_request("Start", f"u{i}", f"s{i}", id=i) for i in range(1, 6)]
        ports.acct_port.datagramReceived(first, NAS)
        for pkt in rest:
            ports.acct_port.datagramReceived(pkt, NAS)
        self.assertEqual(len(ports.writer.jobs), 1)          # only the first is in the DB
        self.assertEqual(ports.accounting.queue_depth, 5)

        ports.writer.release()
        self.assertEqual([raw[1] for raw, _ in ports.acct_wire.written], [0])
        [(_, args, _)] = ports.writer.jobs                    # ONE next job, for all five
        self.assertEqual([r.user_name for r in args[0]], [f"u{i}" for i in range(1, 6)])
        self.assertEqual(ports.acct_wire.written[1:], [])    # none answered before its commit

        ports.writer.release()
        self.assertEqual(ports.writer.jobs_run, 2)
        self.assertEqual(sorted(raw[1] for raw, _ in ports.acct_wire.written), list(range(6)))
        for pkt, (raw, _) in zip([first, *rest], ports.acct_wire.written, strict=True):
            verify_reply(pkt, raw)
        self.assertEqual(len(ports.sessions()), 6)
        self.assertEqual(ports.sample("aaad_db_batch_size_count", kind="accounting"), 2)
        self.assertEqual(ports.sample("aaad_db_batch_size_sum", kind="accounting"), 6)
        self.assertEqual(ports.sample("aaad_accounting_records_total", status="start"), 6)

    def test_a_record_the_database_cannot_hold_does_not_take_its_batch_down(self) -> None:
        # Found by the fuzz test: Gigawords of 2^32 - 1 folded to a count
        # past 2^63, the INSERT overflowed, and every request in the batch
        # went unanswered (and again on each retransmit).
        ports = Ports(self.db)
        ports.acct_port.datagramReceived(acct_request("Start", "u0", "s0", id=0), NAS)
        poison = acct_request("Interim-Update", "bad", "s9", id=9,
                              Acct_Input_Gigawords=2**32 - 1)
        good = acct_request("Interim-Update", "good", "s1", id=1, Acct_Input_Octets=5)
        ports.acct_port.datagramReceived(poison, NAS)
        ports.acct_port.datagramReceived(good, NAS)
        ports.writer.drain()
        self.assertEqual(sorted(raw[1] for raw, _ in ports.acct_wire.written), [0, 1])
        self.assertEqual(ports.dropped("acct", "malformed"), 1)
        self.assertEqual(ports.dropped("acct", "backend_error"), 0)
        self.assertEqual(sorted(r["user"] for r in ports.sessions()), ["good", "u0"])

    def test_one_session_twice_in_a_batch_counts_once(self) -> None:
        ports = Ports(self.db)
        ports.acct_port.datagramReceived(acct_request("Start", "u0", "s0", id=0), NAS)
        interim = acct_request("Interim-Update", "alice", "s1", id=1, Acct_Input_Octets=100,
                               NAS_IP_Address="10.0.0.1")
        ports.acct_port.datagramReceived(interim, NAS)
        ports.acct_port.datagramReceived(interim, ("192.0.2.11", 1000))   # failover copy
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 3)
        [alice] = [r for r in ports.sessions() if r["user"] == "alice"]
        self.assertEqual((alice["in_octets"], alice["packets"]), (100, 2))
        self.assertEqual(ports.sample("aaad_accounting_octets_total", direction="in"), 100)


# --- (g) overload ----------------------------------------------------------------------

class EnforcementTests(PortTest):
    def _ports_with_enforcer(self) -> tuple[Ports, FakeDatagramTransport]:
        # The enforcer needs the ports' clock, writer and clients: it is built
        # after them, and the handler calls it through this lambda.
        ports = Ports(self.db, on_over_limit=lambda items: enforcer.over_limit(items))
        coa = CoAClient(reactor=ports.reactor, dictionary=DICT)
        coa_wire = FakeDatagramTransport()
        coa.makeConnection(coa_wire)
        enforcer = Enforcer(coa=coa, clients=lambda: ports.clients, db=self.db,
                            writer=ports.writer, reactor=ports.reactor, metrics=ports.metrics,
                            timeouts=(1.0,))
        with self.db.writer.begin() as conn:
            plan = parse_plan({"name": "cut", "time_limit": "10m", "over_limit": "disconnect"})
            plan_store.save_plan(conn, "cut", plan_to_json(plan), T0)
            user_store.add_user(conn, "carol", password_hash=None, password_cleartext="pw",
                                plan="cut", enabled=True, now=T0)
        return ports, coa_wire

    def test_a_session_no_disconnect_request_can_name_is_still_answered(self) -> None:
        # Found by benchmarks/fuzz.py: a NAS-Identifier of 100 undecodable
        # octets is stored as 100 U+FFFD (300 octets of UTF-8), too long for
        # the Disconnect-Request. The CoA client's ValueError escaped from
        # the after-commit hook, so the batch's Accounting-Responses were
        # never sent and SIGTERM waited for them forever.
        ports, coa_wire = self._ports_with_enforcer()
        ports.acct_port.datagramReceived(acct_request(
            "Start", "carol", "c-1", id=1, NAS_Identifier=b"\xff" * 100), NAS)
        over = acct_request("Interim-Update", "carol", "c-1", id=2,
                            NAS_Identifier=b"\xff" * 100, Acct_Session_Time=3600)
        ports.acct_port.datagramReceived(over, NAS)
        with self.assertLogs("aaad.daemon.enforcement", "WARNING") as logs:
            ports.writer.drain()
        self.assertEqual(sorted(raw[1] for raw, _ in ports.acct_wire.written), [1, 2])
        self.assertEqual(ports.acct_port.pending, 0)
        self.assertEqual(coa_wire.written, [])
        self.assertIn("cannot disconnect carol session c-1", logs.output[0])
        with self.db.reader.connect() as conn:
            [event] = event_store.list_events(conn, kind="disconnect")
        self.assertTrue(event["result"].startswith("error: NAS-Identifier"), event)
        self.assertEqual(ports.sample("aaad_disconnect_requests_total", result="error"), 1)

    def test_a_failing_after_batch_hook_does_not_strand_the_batch(self) -> None:
        # The same failure one level down: whatever the hook does, the
        # batch's requests get their answers and the next batch runs.
        executor = GatedExecutor()

        def broken(size: int, seconds: float) -> None:
            raise RuntimeError("hook failed")
        batches = GroupCommit(executor=executor, process=lambda items: [i * 2 for i in items],
                              max_batch=8, max_queue=64, clock=lambda: 0.0, on_batch=broken)
        first = batches.submit(1)
        second = batches.submit(2)
        with self.assertLogs("aaad.daemon.batch", "ERROR") as logs:
            executor.drain()
        self.assertEqual((self.successResultOf(first), self.successResultOf(second)), (2, 4))
        self.assertIn("RuntimeError: hook failed", logs.output[0])

    def test_an_inline_executor_batches_what_arrives_in_one_reactor_pass(self) -> None:
        reactor = MemoryReactorClock()
        seen: list[list[int]] = []
        process = doubling(seen)
        batches = GroupCommit(executor=InlineExecutor(), process=process, max_batch=2,
                              max_queue=64, clock=reactor.seconds,
                              call_soon=lambda f: reactor.callLater(0, f))
        ds = [batches.submit(i) for i in (1, 2, 3)]
        self.assertEqual(seen, [])                  # nothing runs during the pass
        reactor.advance(0)
        # One scheduled run: batches of max_batch until the queue is empty.
        self.assertEqual(seen, [[1, 2], [3]])
        self.assertEqual([self.successResultOf(d) for d in ds], [2, 4, 6])
        later = batches.submit(4)                   # the next pass schedules anew
        reactor.advance(0)
        self.assertEqual((seen[-1], self.successResultOf(later)), ([4], 8))

    def test_inline_batches_run_at_the_end_of_a_read_pass(self) -> None:
        reactor = MemoryReactorClock()
        seen: list[list[int]] = []
        process = doubling(seen)
        pass_end = PassEnd(reactor)
        batches = GroupCommit(executor=InlineExecutor(), process=process, max_batch=8,
                              max_queue=64, clock=reactor.seconds, call_soon=pass_end.call)
        pass_end.begin()                            # a port starts reading its socket
        ds = [batches.submit(i) for i in (1, 2, 3)]
        pass_end.begin()                            # (a pass inside a pass ends with it)
        ds.append(batches.submit(4))
        pass_end.end()
        self.assertEqual(seen, [])
        pass_end.end()                              # the socket would block: the batch runs
        self.assertEqual(seen, [[1, 2, 3, 4]])
        self.assertEqual([self.successResultOf(d) for d in ds], [2, 4, 6, 8])
        self.assertEqual(reactor.getDelayedCalls(), [])     # no timer was needed
        # Outside a read pass (a TLS connection's packets): the reactor's next turn.
        outside = batches.submit(5)
        self.assertEqual(seen[-1], [1, 2, 3, 4])
        reactor.advance(0)
        self.assertEqual((seen[-1], self.successResultOf(outside)), ([5], 10))

    def test_a_batch_is_done_here_while_the_executor_is_idle(self) -> None:
        reactor = MemoryReactorClock()
        on_thread: list[list[int]] = []
        here: list[list[int]] = []
        executor = GatedExecutor()
        pass_end = PassEnd(reactor)
        batches = GroupCommit(executor=executor, process=doubling(on_thread), max_batch=8,
                              max_queue=64, clock=reactor.seconds, call_soon=pass_end.call,
                              here=doubling(here))
        pass_end.begin()
        ds = [batches.submit(i) for i in (1, 2, 3)]
        pass_end.end()
        self.assertEqual((here, executor.jobs), ([[1, 2, 3]], []))
        self.assertEqual([self.successResultOf(d) for d in ds], [2, 4, 6])
        # The executor has a job of someone else's: the next batch queues
        # behind it on the executor's thread, in order, and nothing is done here.
        other = executor.run(lambda: "billing")
        pass_end.begin()
        later = batches.submit(4)
        pass_end.end()
        self.assertNoResult(later)
        executor.drain()
        self.assertEqual((self.successResultOf(other), self.successResultOf(later)),
                         ("billing", 8))
        self.assertEqual((here, on_thread), ([[1, 2, 3]], [[4]]))

    def test_a_batch_that_cannot_be_done_here_goes_to_the_executor(self) -> None:
        reactor = MemoryReactorClock()
        on_thread: list[list[int]] = []
        tried: list[list[int]] = []
        executor = GatedExecutor()

        def declines(items: Any) -> None:
            tried.append(list(items))
            return None
        batches = GroupCommit(executor=executor, process=doubling(on_thread), max_batch=8,
                              max_queue=64, clock=reactor.seconds,
                              call_soon=lambda f: reactor.callLater(0, f), here=declines)
        ds = [batches.submit(i) for i in (1, 2)]
        reactor.advance(0)
        self.assertEqual(tried, [[1, 2]])
        self.assertNoResult(ds[0])
        executor.drain()
        self.assertEqual((on_thread, [self.successResultOf(d) for d in ds]), ([[1, 2]], [2, 4]))

    def test_a_failing_call_at_the_end_of_a_read_pass_does_not_stop_the_others(self) -> None:
        pass_end = PassEnd(MemoryReactorClock())
        ran: list[str] = []

        def fails() -> None:
            ran.append("fails")
            raise RuntimeError("a bug")
        pass_end.begin()
        pass_end.call(fails)
        pass_end.call(lambda: ran.append("next"))
        with self.assertLogs("aaad.daemon.batch", "ERROR"):
            pass_end.end()
        self.assertEqual(ran, ["fails", "next"])

class OverloadTests(PortTest):
    def test_max_pending(self) -> None:
        ports = Ports(self.db, max_pending=3)
        packets = [acct_request("Start", f"u{i}", f"s{i}", id=i) for i in range(5)]
        for pkt in packets:
            ports.acct_port.datagramReceived(pkt, NAS)
        self.assertEqual(ports.acct_port.pending, 3)
        self.assertEqual(ports.dropped("acct", "overload"), 2)
        self.assertEqual(ports.sample("aaad_pending_requests", port="acct"), 3)
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 3)
        self.assertEqual(ports.sample("aaad_pending_requests", port="acct"), 0)
        for pkt in packets[3:]:                              # their retransmits get through
            ports.acct_port.datagramReceived(pkt, NAS)
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 5)

    def test_batch_queue_full(self) -> None:
        ports = Ports(self.db, acct_max_queue=2)
        for i in range(5):                                   # 1 in the DB, 2 queued, 2 refused
            ports.acct_port.datagramReceived(acct_request("Start", f"u{i}", f"s{i}", id=i), NAS)
        self.assertEqual(ports.dropped("acct", "overload"), 2)
        self.assertEqual(ports.acct_port.pending, 3)
        ports.writer.drain()
        self.assertEqual(len(ports.acct_wire.written), 3)

    def test_status_server_is_answered_under_overload(self) -> None:
        ports = Ports(self.db, max_pending=1)
        ports.acct_port.datagramReceived(acct_request(id=1), NAS)
        ports.acct_port.datagramReceived(acct_request(id=2), NAS)
        ports.acct_port.datagramReceived(status_server(id=3), NAS)
        self.assertEqual([raw[1] for raw, _ in ports.acct_wire.written], [3])


# --- (h) fuzz ----------------------------------------------------------------------------

INTERESTING = (1, 2, 3, 4, 5, 8, 18, 24, 25, 26, 30, 31, 32, 33, 40, 41, 42, 43, 44, 46, 49,
               52, 53, 55, 60, 61, 79, 80, 85, 87, 95)
VENDORS = (9, 14122, 14559, 14988, 0, 2**32 - 1)
OTHER_SECRET = b"other-Secret"
STRICT_NAS = ("203.0.113.7", 1645)


def tlv(t: int, value: bytes) -> bytes:
    return bytes((t, len(value) + 2)) + value


def random_value(rnd: random.Random, t: int) -> bytes:
    if t == 26 and rnd.random() < 0.8:                   # Vendor-Specific, maybe well formed
        subs = b"".join(tlv(rnd.randrange(256), rnd.randbytes(rnd.randint(0, 12)))
                        for _ in range(rnd.randint(0, 3)))
        if rnd.random() < 0.2 and subs:
            subs = subs[:-1]
        return struct.pack("!I", rnd.choice(VENDORS)) + subs
    n = rnd.choice((0, 1, 3, 4, 4, 4, 5, 15, 16, 16, 17, 32, rnd.randint(0, 253)))
    if n == 4 and rnd.random() < 0.5:
        return struct.pack("!I", rnd.choice((0, 1, 2, 3, 7, 8, 15, 2**31, 2**32 - 1,
                                             rnd.randrange(2**32))))
    return rnd.randbytes(n)


def random_attributes(rnd: random.Random, budget: int = 600) -> list[bytes]:
    out = []
    for _ in range(rnd.randint(0, 10)):
        t = rnd.choice(INTERESTING) if rnd.random() < 0.8 else rnd.randrange(256)
        out.append(tlv(t, random_value(rnd, t)))
        budget -= len(out[-1])
        if budget < 0:
            break
    return out


def signed_accounting(rnd: random.Random, secret: bytes) -> bytes:
    attrs = random_attributes(rnd)
    if rnd.random() < 0.9:
        attrs.append(tlv(40, struct.pack("!I", rnd.choice((1, 2, 3, 3, 7, 8, 9, 15)))))
    if rnd.random() < 0.9:
        attrs.append(tlv(1, rnd.choice((b"alice", b"bob", b"", b"\xff\xfe", rnd.randbytes(8)))))
    if rnd.random() < 0.9:
        attrs.append(tlv(44, rnd.choice((b"s1", b"s2", rnd.randbytes(rnd.randint(0, 40))))))
    rnd.shuffle(attrs)
    body = b"".join(attrs)[:4076]
    header = struct.pack("!BBH", ACCOUNTING_REQUEST, rnd.randrange(256), 20 + len(body))
    return header + hashlib.md5(header + bytes(16) + body + secret).digest() + body


def signed_access(rnd: random.Random, secret: bytes) -> bytes:
    authenticator = rnd.randbytes(16)
    attrs = random_attributes(rnd)
    if rnd.random() < 0.8:
        attrs.append(tlv(1, rnd.choice((b"alice", b"nobody", b"", rnd.randbytes(5)))))
    if rnd.random() < 0.6:
        pw = rnd.choice((b"pw", b"", rnd.randbytes(rnd.randint(1, 130))))[:128]
        attrs.append(tlv(2, hide_password(pw, secret, authenticator)))
    rnd.shuffle(attrs)
    attrs = [a for a in attrs if a[0] != 80]
    code = ACCESS_REQUEST if rnd.random() < 0.9 else STATUS_SERVER
    body = b"".join(attrs)[:3900] + tlv(80, bytes(16))
    header = struct.pack("!BBH", code, rnd.randrange(256), 20 + len(body))
    mac = hmac.new(secret, header + authenticator + body, hashlib.md5).digest()
    return header + authenticator + body[:-16] + mac


def mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    if not b:
        return rnd.randbytes(rnd.randint(0, 30))
    op = rnd.randrange(8)
    if op == 0:
        for _ in range(rnd.randint(1, 3)):
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
    elif op == 1:
        b = b[:rnd.randrange(len(b))]
    elif op == 2:
        b += rnd.randbytes(rnd.randint(1, 40))
    elif op == 3:
        b[2:4] = struct.pack("!H", rnd.choice((0, 19, 20, 21, len(b) - 1, len(b) + 1,
                                               4096, 4097, 65535, rnd.randrange(65536))))
    elif op == 4 and len(b) > 21:
        i = rnd.randrange(20, len(b))
        b[i] = rnd.choice((0, 1, 2, 255, rnd.randrange(256)))
    elif op == 5:
        b.insert(rnd.randrange(len(b) + 1), rnd.randrange(256))
    elif op == 6 and len(b) > 1:
        del b[rnd.randrange(len(b))]
    else:
        b[0] = rnd.choice((1, 2, 4, 5, 11, 12, 40, 43, rnd.randrange(256)))
    return bytes(b)


class FuzzTests(PortTest):
    def test_twenty_thousand_random_and_mutated_datagrams(self) -> None:
        # The wire is under test here, not argon2: a cheap dummy hash keeps
        # the unknown-user path fast without changing which code runs.
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.patch(credentials, "_DUMMY", [cheap.hash("dummy")])
        clients = ClientTable([make_client(),
                               make_client("strict", "203.0.113.0/24", OTHER_SECRET,
                                           require_message_authenticator=True)])
        ports = Ports(self.db, clients=clients, max_pending=256)
        with self.db.writer.begin() as conn:
            user_store.add_user(conn, "alice", password_hash=None, password_cleartext="pw",
                                plan=None, enabled=True, now=T0)
        rnd = random.Random(20240709)
        auth = rnd.randbytes     # seeded authenticators keep the corpus the same every run
        seeds = [access_request("alice", "pw", id=1, authenticator=auth(16)),
                 access_request("alice", "pw", id=2, ma=True, authenticator=auth(16)),
                 access_request("alice", chap=(bytes(17), None), id=3, authenticator=auth(16)),
                 acct_request("Start", id=4), acct_request("Stop", id=5, Acct_Input_Octets=7,
                                                            Acct_Input_Gigawords=1),
                 acct_request("Accounting-On", None, None, id=6),
                 acct_request("Interim-Update", id=7, ma=True, proxy_states=(b"a", b"b")),
                 status_server(id=8, authenticator=auth(16)),
                 status_server(id=9, ma=False, authenticator=auth(16))]
        sent: dict[tuple[str, tuple[str, int], int], list[bytes]] = {}
        history: list[bytes] = []
        seen_writes = {"acct": 0, "auth": 0}
        codes: dict[int, int] = {}

        def check_replies() -> None:
            for name, wire in (("acct", ports.acct_wire), ("auth", ports.auth_wire)):
                for reply, addr in wire.written[seen_writes[name]:]:
                    secret = OTHER_SECRET if addr[0] == STRICT_NAS[0] else SECRET
                    candidates = sent.get((name, addr, reply[1]), [])
                    self.assertTrue(any(self._verifies(req, reply, secret) for req in candidates),
                                    f"{name} reply {reply.hex()} matches no request")
                    codes[reply[0]] = codes.get(reply[0], 0) + 1
                seen_writes[name] = len(wire.written)

        for n in range(20_000):
            kind = rnd.random()
            secret = SECRET
            addr = rnd.choice((NAS, NAS, NAS, ("192.0.2.11", rnd.randrange(1024, 65536)),
                               STRICT_NAS, STRANGER))
            if addr == STRICT_NAS:
                secret = OTHER_SECRET
            if kind < 0.15:
                data = rnd.randbytes(rnd.choice((0, 1, 19, 20, 21, rnd.randint(0, 300))))
            elif kind < 0.3:
                body = b"".join(random_attributes(rnd))
                data = struct.pack("!BBH", rnd.choice((1, 4, 12, 2, 5, rnd.randrange(256))),
                                   rnd.randrange(256), 20 + len(body)) + rnd.randbytes(16) + body
            elif kind < 0.6:
                data = mutate(rnd, rnd.choice(seeds))
                if rnd.random() < 0.3:
                    data = mutate(rnd, data)
            elif kind < 0.9:
                data = (signed_accounting if rnd.random() < 0.5 else signed_access)(rnd, secret)
            else:
                data = rnd.choice(history) if history else b""
            history.append(data)
            if len(history) > 200:
                del history[rnd.randrange(len(history))]
            port_name = "acct" if rnd.random() < 0.5 else "auth"
            port = ports.acct_port if port_name == "acct" else ports.auth_port
            if len(data) >= 20:
                length = struct.unpack("!H", data[2:4])[0]
                if 20 <= length <= len(data):
                    sent.setdefault((port_name, addr, data[1]), []).append(data[:length])
            port.datagramReceived(data, addr)
            if n % 97 == 0:
                ports.writer.release()
                check_replies()
            if n % 1000 == 0:
                ports.reactor.advance(rnd.choice((1, 5, 40)))

        ports.writer.drain()
        check_replies()
        drops = ports.drops()
        self.assertEqual(ports.acct_port.pending + ports.auth_port.pending, 0)
        self.assertNotIn(("acct", "internal_error"), drops)
        self.assertNotIn(("auth", "internal_error"), drops)
        self.assertNotIn(("acct", "backend_error"), drops)
        self.assertNotIn(("auth", "backend_error"), drops)
        # Every datagram got exactly one outcome: a drop or a reply.
        replies = sum(s.value for metric in ports.registry.collect()
                      if metric.name == "aaad_replies" for s in metric.samples
                      if s.name == "aaad_replies_total")
        self.assertEqual(sum(drops.values()) + replies, 20_000)
        self.assertEqual(len(ports.acct_wire.written) + len(ports.auth_wire.written),
                         replies + drops.get(("acct", "duplicate"), 0)
                         + drops.get(("auth", "duplicate"), 0))
        # The corpus reached every layer: framing, the gates, the handlers, the DB.
        for reason in ("malformed", "unexpected_code", "unknown_client", "bad_authenticator",
                       "bad_message_authenticator", "missing_message_authenticator",
                       "duplicate"):
            self.assertGreater(drops.get(("acct", reason), 0) + drops.get(("auth", reason), 0),
                               10, reason)
        for code in (ACCESS_ACCEPT, ACCESS_REJECT, ACCOUNTING_RESPONSE):
            self.assertGreater(codes.get(code, 0), 10, code)
        self.assertGreater(len(ports.sessions()), 10)

    def _verifies(self, request: bytes, reply: bytes, secret: bytes) -> bool:
        expected = {ACCESS_REQUEST: (ACCESS_ACCEPT, ACCESS_REJECT),
                    ACCOUNTING_REQUEST: (ACCOUNTING_RESPONSE,),
                    STATUS_SERVER: (ACCESS_ACCEPT, ACCOUNTING_RESPONSE)}.get(request[0], ())
        if reply[0] not in expected:
            return False
        try:
            verify_reply(request, reply, secret=secret)
        except Exception:       # not a request pyrad decodes, or not this reply's request
            return False
        return True


# --- (e2) MS-CHAP v1 and v2 (RFC 2433, RFC 2759, RFC 2548) ---------------------------

AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")     # RFC 2759 §9.2
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
V1_CHALLENGE = bytes.fromhex("102DB5DF085D3041")                       # RFC 2433 §B.2


class MsChapTests(PortTest):
    """The access handler on the wire: responses made by py3mschap (an independent
    implementation), the reply read back by pyrad as a NAS would."""

    def setUp(self) -> None:
        from py3mschap import U32
        U32.U32.__index__ = lambda self: int(self)     # py3mschap on Python >= 3.10
        self.ports = Ports(self.db)
        self.ports.add_user("User", cleartext="clientPass")
        self.ports.add_user("nt", nt_hash=credentials.nt_hash("nt-pw"))
        self.ports.add_user("hashed", password="hashed-pw")
        self.ports.add_user("off", cleartext="off-pw", enabled=False)
        self.next_id = 0

    def v2(self, user: str, password: str, *, ident: int = 1,
           challenge: bytes = AUTH_CHALLENGE) -> tuple[bytes, AuthPacket]:
        from py3mschap import mschap as theirs
        nt_response = theirs.generate_nt_response_mschap2(challenge, PEER_CHALLENGE, user,
                                                          password)
        value = bytes((ident, 0)) + PEER_CHALLENGE + bytes(8) + nt_response
        return self.send(user, MS_CHAP_Challenge=challenge, MS_CHAP2_Response=value)

    def v1(self, user: str, password: str, *, ident: int = 2) -> tuple[bytes, AuthPacket]:
        from py3mschap import mschap as theirs
        nt_response = theirs.generate_nt_response_mschap(V1_CHALLENGE, password)
        value = bytes((ident, 1)) + bytes(24) + nt_response
        return self.send(user, MS_CHAP_Challenge=V1_CHALLENGE, MS_CHAP_Response=value)

    def send(self, user: str, **attributes: Any) -> tuple[bytes, AuthPacket]:
        self.next_id += 1
        pkt = access_request(user, id=self.next_id, **attributes)
        before = len(self.ports.auth_wire.written)
        self.ports.auth_port.datagramReceived(pkt, NAS)
        [(raw, _)] = self.ports.auth_wire.written[before:]
        reply = verify_reply(pkt, raw)
        reply.request_authenticator = pkt[4:20]      # for pyrad's salt decryption
        return pkt, reply

    def rejects(self, reason: str) -> float:
        return self.ports.sample("aaad_access_rejects_total", reason=reason)

    def test_v2_accept_carries_the_authenticator_response_and_the_rfc_3079_keys(self) -> None:
        from py3mschap import mppe
        from py3mschap import mschap as theirs
        _, reply = self.v2("User", "clientPass", ident=9)
        self.assertEqual(reply.code, ACCESS_ACCEPT)
        # RFC 2759 §9.2: this user, password and these challenges give exactly this.
        self.assertEqual(reply["MS-CHAP2-Success"],
                         [b"\x09S=407A5589115FD0D6209F510FE9C04566932CDA56"])
        nt_response = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE,
                                                          "User", "clientPass")
        send, recv = mppe.mppe_chap2_gen_keys("clientPass", nt_response)
        # RFC 3079 §3.5.3's SendStartKey128; pyrad decrypts (RFC 2548 §2.4.2).
        self.assertEqual(reply["MS-MPPE-Send-Key"],
                         [bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")])
        self.assertEqual((reply["MS-MPPE-Send-Key"], reply["MS-MPPE-Recv-Key"]),
                         ([send], [recv]))
        self.assertEqual(reply["MS-MPPE-Encryption-Policy"], ["Encryption-Allowed"])
        self.assertEqual(reply["MS-MPPE-Encryption-Types"], ["RC4-40or128-bit-Allowed"])
        # Each salt is different and has its top bit set.
        salts = [OrderedDict.__getitem__(reply, (311, t))[0][:2] for t in (16, 17)]
        self.assertTrue(salts[0] != salts[1] and all(x[0] & 0x80 for x in salts))

    def test_v2_against_a_stored_nt_hash(self) -> None:
        _, reply = self.v2("nt", "nt-pw")
        self.assertEqual(reply.code, ACCESS_ACCEPT)
        self.assertEqual(len(reply["MS-CHAP2-Success"][0]), 43)

    def test_v2_wrong_password_gets_ms_chap_error_691(self) -> None:
        for user in ("User", "nt", "nobody", "hashed"):
            _, reply = self.v2(user, "wrong", ident=4)
            self.assertEqual(reply.code, ACCESS_REJECT)
            self.assertEqual(reply["Reply-Message"], ["Authentication failed"])
            self.assertEqual(reply["MS-CHAP-Error"],
                             ["\x04E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3"])
            self.assertNotIn("MS-MPPE-Send-Key", reply)
        # An argon2id hash cannot serve MS-CHAP: the same reply, its own reason.
        _, reply = self.v2("hashed", "hashed-pw", ident=4)
        self.assertEqual(reply["MS-CHAP-Error"],
                         ["\x04E=691 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3"])
        self.assertEqual((self.rejects("bad_password"), self.rejects("unknown_user"),
                          self.rejects("mschap_needs_nt_hash_or_cleartext")), (2, 1, 2))

    def test_v2_right_password_on_a_disabled_account_gets_649(self) -> None:
        _, reply = self.v2("off", "off-pw", ident=3)
        self.assertEqual(reply.code, ACCESS_REJECT)
        self.assertEqual(reply["Reply-Message"], ["Account disabled"])
        self.assertEqual(reply["MS-CHAP-Error"],
                         ["\x03E=649 R=0 C=5B5D7C7D7B3F2F3E3C2C602132262628 V=3"])

    def test_v2_first_login_of_a_ticket_starts_its_clock_and_keeps_the_keys(self) -> None:
        """An MS-CHAP accept that writes first (the ticket's first login) still
        carries MS-CHAP2-Success, and Session-Timeout is the ticket's validity."""
        with self.db.writer.begin() as conn:
            conn.execute(update(users).where(users.c.name == "User")
                         .values(valid_s=3600, ticket_batch="b"))
        _, reply = self.v2("User", "clientPass", ident=9)
        self.assertEqual(reply.code, ACCESS_ACCEPT)
        self.assertEqual(reply["MS-CHAP2-Success"],
                         [b"\x09S=407A5589115FD0D6209F510FE9C04566932CDA56"])
        self.assertEqual(reply["Session-Timeout"], [3600])
        with self.db.reader.connect() as conn:
            self.assertEqual(conn.execute(select(users.c.first_login_at)
                                          .where(users.c.name == "User")).scalar(), T0)

    def test_v1_accept_carries_ms_chap_mppe_keys(self) -> None:
        pkt, reply = self.v1("nt", "nt-pw")
        self.assertEqual(reply.code, ACCESS_ACCEPT)
        hidden = OrderedDict.__getitem__(reply, (311, 12))[0]
        self.assertEqual(len(hidden), 32)
        # RFC 2548 §2.4.1: hidden like User-Password with the Request Authenticator.
        b1 = hashlib.md5(SECRET + pkt[4:20]).digest()
        b2 = hashlib.md5(SECRET + hidden[:16]).digest()
        plain = bytes(x ^ y for x, y in zip(hidden, b1 + b2, strict=True))
        nt = bytes.fromhex(credentials.nt_hash("nt-pw"))
        from Crypto.Hash import MD4
        self.assertEqual(plain, bytes(8) + MD4.new(nt).digest() + bytes(8))
        self.assertNotIn("MS-CHAP2-Success", reply)

    def test_v1_wrong_password_gets_ms_chap_error_691(self) -> None:
        _, reply = self.v1("User", "clientPasS", ident=6)
        self.assertEqual(reply.code, ACCESS_REJECT)
        self.assertEqual(reply["MS-CHAP-Error"], ["\x06E=691 R=0 C=102DB5DF085D3041 V=2"])
        self.assertEqual(self.v1("User", "clientPass")[1].code, ACCESS_ACCEPT)

    def test_a_corrupt_stored_nt_hash_matches_nothing(self) -> None:
        from sqlalchemy import update

        from aaad.store.tables import users
        for name, stored in (("bad1", "zz" * 16), ("bad2", "00" * 15), ("bad3", "é" * 32)):
            self.ports.add_user(name, nt_hash="0" * 32)
            with self.db.writer.begin() as conn:     # written around aaad's checks
                conn.execute(update(users).where(users.c.name == name)
                             .values(password_nt_hash=stored))
            _, reply = self.v2(name, "anything")
            self.assertEqual(reply.code, ACCESS_REJECT)
            self.assertEqual(reply["Reply-Message"], ["Authentication failed"])
            pkt = access_request(name, "anything", id=200)
            self.ports.auth_port.datagramReceived(pkt, NAS)
            self.assertEqual(verify_reply(pkt, self.ports.auth_wire.written[-1][0]).code,
                             ACCESS_REJECT)
        self.assertEqual((self.rejects("corrupt_nt_hash"), self.rejects("bad_password")),
                         (3, 3))

    def test_a_response_without_its_challenge_is_dropped(self) -> None:
        pkt = access_request("User", id=50, MS_CHAP2_Response=bytes(50))
        self.ports.auth_port.datagramReceived(pkt, NAS)
        pkt = access_request("User", id=51, MS_CHAP_Challenge=bytes(16),
                             MS_CHAP2_Response=bytes(49))
        self.ports.auth_port.datagramReceived(pkt, NAS)
        self.assertEqual(self.ports.auth_wire.written, [])
        self.assertEqual(self.ports.dropped("auth", "malformed"), 2)

    def test_trace_and_logs_hold_no_response_and_no_key(self) -> None:
        from py3mschap import mschap as theirs
        nt_response = theirs.generate_nt_response_mschap2(AUTH_CHALLENGE, PEER_CHALLENGE,
                                                          "User", "wrong")
        with self.assertLogs("aaad", "INFO") as logs:
            self.ports.auth_port.tracer.enable(user="User")
            self.v2("User", "wrong")
            self.v2("User", "clientPass")
        text = "\n".join(logs.output)
        self.assertIn("MS-CHAP2-Response=***", text)
        self.assertIn("(311, 16)=***", text)            # the keys in the reply trace
        self.assertIn("(311, 17)=***", text)
        self.assertNotIn(nt_response.hex(), text)
        self.assertNotIn(repr(nt_response)[2:-1], text)
        self.assertNotIn(credentials.nt_hash("clientPass"), text)
