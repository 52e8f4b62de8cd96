"""The UDP port of the daemon (aaad/daemon/service.py) on 127.0.0.1 with the real
reactor: every datagram it reads before its socket would block is one read pass,
and what was queued during the pass runs once, at its end, with no timer."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from aaad.daemon.batch import PassEnd
from aaad.daemon.service import AaadService, _ReadPassPort


class Recorder(DatagramProtocol):
    """Queues a call on ``pass_end`` for every datagram; the call records how
    many datagrams had been read when it ran."""

    def __init__(self, pass_end: PassEnd) -> None:
        self.pass_end = pass_end
        self.received: list[bytes] = []
        self.ran: list[int] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        self.pass_end.call(lambda: self.ran.append(len(self.received)))


def test_what_a_read_pass_queued_runs_at_its_end() -> None:
    pass_end = PassEnd(reactor)
    proto = Recorder(pass_end)
    # The daemon's own choice of port for a real reactor.
    shim = SimpleNamespace(_reactor=reactor, pass_end=pass_end)
    port = AaadService._listen_udp(shim, 0, proto, "127.0.0.1")  # type: ignore[arg-type]
    try:
        assert isinstance(port, _ReadPassPort)
        timers = len(reactor.getDelayedCalls())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nas:
            for i in range(3):
                nas.sendto(b"request %d" % i, ("127.0.0.1", port.getHost().port))
        port.doRead()               # what the reactor calls when the socket is readable
        assert proto.received == [b"request 0", b"request 1", b"request 2"]
        assert proto.ran == [3, 3, 3]       # none ran before the third was read
        assert len(reactor.getDelayedCalls()) == timers
        port.doRead()               # nothing to read: an empty pass runs nothing
        assert proto.ran == [3, 3, 3]
    finally:
        port.stopListening()
