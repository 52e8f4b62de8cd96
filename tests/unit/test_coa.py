"""The RFC 5176 client (aaad/radius/coa.py).

Requests are decoded and checked with pyrad, an encoder aaad does not use for
signing, and replies are built with pyrad the way a NAS would build them.
They run on a MemoryReactorClock and a fake transport; tests/e2e/test_coa_loopback.py
talks to a fake NAS on loopback through the real reactor.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from aaad.radius import framing
from aaad.radius.coa import (
    CoAClient,
    CoAResult,
    QueueFull,
    encode_request,
    verify_reply,
)
from aaad.radius.errors import BadAuthenticator, UnexpectedCode
from tests.support.radius_packets import (
    DICT,
    SECRET,
    FakeDatagramTransport,
    coa_reply,
    decode_coa,
    make_client,
)

NAS_IP = "192.0.2.10"
NAS = make_client(network=f"{NAS_IP}/32")
DEST = (NAS_IP, 3799)
SESSION = [("User-Name", "alice"), ("Acct-Session-Id", "s-1"),
           ("NAS-IP-Address", NAS_IP), ("Framed-IP-Address", "10.0.0.7")]


class CoAClientTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.wire = FakeDatagramTransport()
        self.coa = CoAClient(reactor=self.reactor, dictionary=DICT)
        self.coa.makeConnection(self.wire)    # in place of start(): no socket

    def send(self, **kw: Any) -> Deferred[CoAResult]:
        kw.setdefault("attributes", SESSION)
        return self.coa.disconnect(NAS, **kw)

    def result(self, d: Deferred[CoAResult]) -> CoAResult:
        r: CoAResult = self.successResultOf(d)
        return r

    def test_request_bytes_verify_with_pyrad(self) -> None:
        self.send()
        [(raw, addr)] = self.wire.written
        self.assertEqual(addr, DEST)
        p = decode_coa(raw)
        self.assertEqual(p.code, framing.DISCONNECT_REQUEST)
        self.assertTrue(p.VerifyCoARequest())
        self.assertTrue(p.message_authenticator)
        self.assertTrue(p.verify_message_authenticator())
        self.assertEqual(raw[20], 80)          # Message-Authenticator first
        self.assertEqual(p["User-Name"], ["alice"])
        self.assertEqual(p["Acct-Session-Id"], ["s-1"])
        self.assertEqual(p["NAS-IP-Address"], [NAS_IP])
        self.assertEqual(p["Framed-IP-Address"], ["10.0.0.7"])
        self.assertEqual(p["Event-Timestamp"], [0])      # the reactor's time at sending
        self.assertFalse(decode_coa(raw, b"other").VerifyCoARequest())
        self.assertFalse(decode_coa(raw, b"other").verify_message_authenticator())

    def test_retransmits_identical_packet_then_times_out(self) -> None:
        d = self.send(timeouts=(1.0, 2.0, 4.0))
        self.assertEqual(len(self.wire.written), 1)
        self.reactor.advance(0.999)
        self.assertEqual(len(self.wire.written), 1)
        self.reactor.advance(0.001)                      # t=1
        self.assertEqual(len(self.wire.written), 2)
        self.reactor.advance(2.0)                        # t=3
        self.assertEqual(len(self.wire.written), 3)
        self.assertEqual(set(self.wire.written), {self.wire.written[0]})
        self.reactor.advance(3.999)
        self.assertNoResult(d)
        self.reactor.advance(0.001)                      # t=7: the last wait is over
        self.assertEqual(self.result(d), CoAResult("timeout", None, attempts=3, rtt_s=None))
        self.assertEqual(len(self.wire.written), 3)
        self.assertEqual((self.coa.pending, self.reactor.getDelayedCalls()), (0, []))

    def test_event_timestamp_is_the_first_send_time_unless_given(self) -> None:
        self.reactor.advance(1_700_000_000.7)
        self.send()
        self.reactor.advance(1.0)
        first, again = (decode_coa(raw) for raw, _ in self.wire.written)
        self.assertEqual((first["Event-Timestamp"], again["Event-Timestamp"]),
                         ([1_700_000_000], [1_700_000_000]))
        self.send(attributes=[*SESSION, ("Event-Timestamp", 5)])
        self.assertEqual(decode_coa(self.wire.written[-1][0])["Event-Timestamp"], [5])

    def test_ack(self) -> None:
        d = self.send()
        self.reactor.advance(0.25)
        raw = self.wire.written[0][0]
        self.coa.datagramReceived(coa_reply(raw, framing.DISCONNECT_ACK), DEST)
        self.assertEqual(self.result(d), CoAResult("ack", None, attempts=1, rtt_s=0.25))
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.coa.ignored, 0)

    def test_ack_with_message_authenticator_after_a_retransmit(self) -> None:
        d = self.send()
        self.reactor.advance(1.5)
        raw = self.wire.written[1][0]
        self.coa.datagramReceived(coa_reply(raw, framing.DISCONNECT_ACK, ma=True), DEST)
        self.assertEqual(self.result(d), CoAResult("ack", None, attempts=2, rtt_s=1.5))

    def test_nak_with_error_cause(self) -> None:
        d = self.send()
        raw = self.wire.written[0][0]
        self.coa.datagramReceived(
            coa_reply(raw, framing.DISCONNECT_NAK, error_cause=503, ma=True), DEST)
        self.assertEqual(self.result(d), CoAResult("nak", 503, attempts=1, rtt_s=0.0))

    def test_reply_with_wrong_authenticator_is_ignored(self) -> None:
        d = self.send(timeouts=(1.0,))
        raw = self.wire.written[0][0]
        forged = coa_reply(raw, framing.DISCONNECT_ACK, secret=b"guess")
        self.coa.datagramReceived(forged, DEST)
        self.assertNoResult(d)
        self.assertEqual(self.coa.ignored, 1)
        self.assertEqual(self.coa.ignored_reasons["bad_authenticator"], 1)
        self.reactor.advance(1.0)
        self.assertEqual(self.result(d).status, "timeout")

    def test_bad_message_authenticator_is_ignored(self) -> None:
        """A valid Response Authenticator does not excuse a wrong Message-Authenticator."""
        d = self.send()
        raw = self.wire.written[0][0]
        reply = bytearray(coa_reply(raw, framing.DISCONNECT_ACK, ma=True))
        pos = framing.find_attribute(bytes(reply), 80)
        assert pos is not None
        reply[pos + 2] ^= 1
        reply[4:20] = hashlib.md5(bytes(reply[:4]) + raw[4:20] + bytes(reply[20:])
                                  + SECRET).digest()
        self.coa.datagramReceived(bytes(reply), DEST)
        self.assertNoResult(d)
        self.assertEqual(dict(self.coa.ignored_reasons), {"bad_message_authenticator": 1})

    def test_other_ignored_replies(self) -> None:
        d = self.send()
        raw = self.wire.written[0][0]
        ack = coa_reply(raw, framing.DISCONNECT_ACK)
        self.coa.datagramReceived(ack, ("192.0.2.11", 3799))         # another host
        self.coa.datagramReceived(coa_reply(raw, framing.COA_ACK), DEST)  # wrong kind
        self.coa.datagramReceived(ack[:19], DEST)                      # short
        self.coa.datagramReceived(ack[:1] + b"\x07" + ack[2:], DEST)  # no such id pending
        self.assertNoResult(d)
        self.assertEqual(dict(self.coa.ignored_reasons),
                         {"unmatched": 2, "unexpected_code": 1, "malformed": 1})
        self.coa.datagramReceived(ack, DEST)
        self.assertEqual(self.result(d).status, "ack")
        self.coa.datagramReceived(ack, DEST)                           # late duplicate
        self.assertEqual(self.coa.ignored_reasons["unmatched"], 3)

    def test_change_sends_coa_request(self) -> None:
        d = self.coa.change(NAS, attributes=[("User-Name", "alice"),
                                             ("Session-Timeout", 600)], port=1700)
        [(raw, addr)] = self.wire.written
        self.assertEqual(addr, (NAS_IP, 1700))
        p = decode_coa(raw)
        self.assertEqual((p.code, p.VerifyCoARequest(), p.verify_message_authenticator()),
                         (framing.COA_REQUEST, True, True))
        self.coa.datagramReceived(coa_reply(raw, framing.DISCONNECT_ACK), (NAS_IP, 1700))
        self.assertNoResult(d)
        self.coa.datagramReceived(coa_reply(raw, framing.COA_NAK, error_cause=404), (NAS_IP, 1700))
        self.assertEqual(self.result(d), CoAResult("nak", 404, attempts=1, rtt_s=0.0))

    def test_256_outstanding_then_fifo_queue(self) -> None:
        ds = [self.send() for _ in range(257)]
        self.assertEqual((self.coa.pending, self.coa.queued), (256, 1))
        ids = [raw[1] for raw, _ in self.wire.written]
        self.assertEqual(sorted(ids), list(range(256)))
        # Another NAS has Identifiers of its own.
        other = make_client("nas2", network="192.0.2.20/32")
        self.coa.disconnect(other, attributes=SESSION)
        self.assertEqual(self.wire.written[-1][1], ("192.0.2.20", 3799))
        # Answering one sends the queued request, with the freed Identifier.
        first = self.wire.written[0][0]
        self.coa.datagramReceived(coa_reply(first, framing.DISCONNECT_ACK), DEST)
        self.assertEqual(self.result(ds[0]).status, "ack")
        raw, addr = self.wire.written[-1]
        self.assertEqual((raw[1], addr, self.coa.queued), (first[1], DEST, 0))
        self.assertTrue(decode_coa(raw).VerifyCoARequest())
        self.assertNoResult(ds[256])
        self.coa.datagramReceived(coa_reply(raw, framing.DISCONNECT_ACK), DEST)
        self.assertEqual(self.result(ds[256]).attempts, 1)

    def test_queue_full_fails(self) -> None:
        self.coa = CoAClient(reactor=self.reactor, dictionary=DICT, max_queued=1)
        self.coa.makeConnection(self.wire)
        for _ in range(257):
            self.send()
        self.failureResultOf(self.send(), QueueFull)

    def test_cancel_frees_the_identifier(self) -> None:
        d = self.send()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual((self.coa.pending, self.reactor.getDelayedCalls()), (0, []))

    def test_stop_cancels_everything(self) -> None:
        ds = [self.send() for _ in range(258)]
        self.successResultOf(self.coa.stop())
        for d in ds:
            self.failureResultOf(d, CancelledError)
        self.assertEqual((self.coa.pending, self.coa.queued), (0, 0))
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_target_address(self) -> None:
        pool = make_client("pool", network="198.51.100.0/24")
        with self.assertRaises(ValueError):
            self.coa.disconnect(pool, attributes=SESSION)
        self.coa.disconnect(pool, attributes=SESSION, address="198.51.100.9", port=3800)
        self.assertEqual(self.wire.written[-1][1], ("198.51.100.9", 3800))
        with self.assertRaises(ValueError):                # IPv6 target, IPv4 port
            self.coa.disconnect(pool, attributes=SESSION, address="2001:db8::1")

    def test_bad_arguments(self) -> None:
        for kw in ({"attributes": [("No-Such-Attribute", "x")]},
                   {"attributes": [("NAS-Port", "x")]},
                   {"attributes": [("Message-Authenticator", bytes(16))]},
                   {"attributes": [("Reply-Message", "x" * 250)] * 17},   # > 4096 octets
                   {"timeouts": ()}, {"timeouts": (1.0, 0.0)}, {"port": 0}):
            with self.assertRaises(ValueError, msg=kw):
                self.send(**kw)
        self.assertEqual((self.wire.written, self.coa.pending), ([], 0))
        with self.assertRaises(RuntimeError):
            CoAClient(reactor=self.reactor, dictionary=DICT).disconnect(NAS, attributes=SESSION)

    def test_ipv6_port_reaches_ipv4_nas_through_mapped_address(self) -> None:
        coa = CoAClient(reactor=self.reactor, dictionary=DICT, bind_address="::")
        coa.makeConnection(self.wire)
        d = coa.disconnect(NAS, attributes=SESSION)
        raw, addr = self.wire.written[0]
        self.assertEqual(addr, (f"::ffff:{NAS_IP}", 3799))
        coa.datagramReceived(coa_reply(raw, framing.DISCONNECT_ACK),
                             (f"::ffff:{NAS_IP}", 3799, 0, 0))
        self.assertEqual(self.result(d).status, "ack")


class CodecTests(SynchronousTestCase):
    """verify_reply on hand-made replies, without a client."""

    def test_verify_reply(self) -> None:
        req = encode_request(framing.DISCONNECT_REQUEST, 9, b"\x01\x07alice", SECRET)
        self.assertTrue(decode_coa(req).VerifyCoARequest())
        ack = coa_reply(req, framing.DISCONNECT_NAK, error_cause=503)
        self.assertEqual(verify_reply(ack, req, SECRET).error_cause, 503)
        self.assertEqual(verify_reply(ack + b"\0\0", req, SECRET).code,
                         framing.DISCONNECT_NAK)           # padding ignored (RFC 2865 §3)
        with self.assertRaises(BadAuthenticator):
            verify_reply(ack, req, b"wrong")
        with self.assertRaises(UnexpectedCode):
            verify_reply(coa_reply(req, framing.COA_NAK), req, SECRET)
        signed = coa_reply(req, framing.DISCONNECT_ACK, ma=True)
        self.assertEqual(verify_reply(signed, req, SECRET).code, framing.DISCONNECT_ACK)
        other = encode_request(framing.DISCONNECT_REQUEST, 9, b"\x01\x05bob", SECRET)
        with self.assertRaises(BadAuthenticator):           # same id, other request
            verify_reply(signed, other, SECRET)
        # An authentic reply with a short Error-Cause is still an answer.
        body = bytes((101, 4, 1, 247))
        header = struct.pack("!BBH", framing.DISCONNECT_NAK, 9, 20 + len(body))
        auth = hashlib.md5(header + req[4:20] + body + SECRET).digest()
        self.assertIsNone(verify_reply(header + auth + body, req, SECRET).error_cause)
