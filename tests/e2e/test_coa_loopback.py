"""The RFC 5176 client (aaad/radius/coa.py) against a fake NAS on 127.0.0.1 (a port
the kernel chose), through the real reactor: ack, nak, and a silent NAS."""

from __future__ import annotations

from typing import Any

from pyrad.packet import CoAPacket
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import TestCase

from aaad.radius import framing
from aaad.radius.coa import CoAClient, CoAResult
from tests.support.radius_packets import DICT, coa_reply, decode_coa, make_client

NAS_IP = "192.0.2.10"
SESSION = [("User-Name", "alice"), ("Acct-Session-Id", "s-1"),
           ("NAS-IP-Address", NAS_IP), ("Framed-IP-Address", "10.0.0.7")]


class FakeNAS(DatagramProtocol):
    """Answers Disconnect-Requests with ``mode``: "ack", "nak" or "silent"."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received: list[tuple[CoAPacket, bool, bool]] = []

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        p = decode_coa(data)
        self.received.append((p, p.VerifyCoARequest(), p.verify_message_authenticator()))
        if self.mode == "ack":
            self.transport.write(coa_reply(data, framing.DISCONNECT_ACK, ma=True), addr)
        elif self.mode == "nak":
            self.transport.write(coa_reply(data, framing.DISCONNECT_NAK, error_cause=503), addr)


class LoopbackTests(TestCase):
    """A real CoAClient and a fake NAS on 127.0.0.1, through the real reactor."""

    timeout = 10

    def setUp(self) -> None:
        from twisted.internet import reactor
        self.nas = FakeNAS("ack")
        nas_port = reactor.listenUDP(0, self.nas, interface="127.0.0.1")
        self.addCleanup(nas_port.stopListening)
        self.client = make_client("lo", network="127.0.0.1/32",
                                  coa_port=nas_port.getHost().port)
        self.coa = CoAClient(reactor=reactor, dictionary=DICT, bind_address="127.0.0.1")
        self.coa.start()
        self.addCleanup(self.coa.stop)

    def disconnect(self, **kw: Any) -> Deferred[CoAResult]:
        return self.coa.disconnect(self.client, attributes=SESSION, **kw)

    def checked(self, result: CoAResult, status: str, error_cause: int | None,
                attempts: int) -> None:
        self.assertEqual((result.status, result.error_cause, result.attempts),
                         (status, error_cause, attempts))
        self.assertEqual([(v, m) for _, v, m in self.nas.received], [(True, True)] * attempts)
        self.assertEqual(self.nas.received[0][0]["Acct-Session-Id"], ["s-1"])
        self.assertEqual(self.coa.ignored, 0)

    def test_ack(self) -> Deferred[None]:
        d = self.disconnect()
        d.addCallback(self.checked, "ack", None, 1)
        return d

    def test_nak(self) -> Deferred[None]:
        self.nas.mode = "nak"
        d = self.disconnect()
        d.addCallback(self.checked, "nak", 503, 1)
        return d

    def test_silent_nas_times_out(self) -> Deferred[None]:
        self.nas.mode = "silent"
        d = self.disconnect(timeouts=(0.05, 0.1))
        d.addCallback(self.checked, "timeout", None, 2)
        return d
