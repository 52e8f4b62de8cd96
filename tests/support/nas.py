"""A fake NAS's Dynamic Authorization port (RFC 5176) on 127.0.0.1, a port the kernel
chose and the fake keeps open: the daemon sends it Disconnect-Requests and
CoA-Requests, which it records and answers with the matching ACK or NAK."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any

from pyrad.packet import CoANAK, CoAPacket, DisconnectNAK, DisconnectRequest

from aaad.radius.codec import load_dictionary
from tests.support.daemon import SECRET

DICT = load_dictionary()


@dataclass
class Seen:
    """One Disconnect- or CoA-Request as the fake NAS received and checked it."""

    raw: bytes
    code: int
    attrs: dict[str, list[Any]]
    request_authenticator_ok: bool
    message_authenticator_ok: bool


class FakeNas:
    """A NAS's Dynamic Authorization port on 127.0.0.1: it answers each Disconnect- or
    CoA-Request with ``ack`` (Disconnect-ACK/CoA-ACK), ``nak`` (Disconnect-NAK/CoA-NAK,
    Error-Cause 503) or nothing (``silent``), by User-Name."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 0))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.answers: dict[str, str] = {}
        self.seen: dict[str, list[Seen]] = {}
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-nas", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._handle(data, addr)
            except Exception as e:
                with self._cond:
                    self.errors.append(f"{type(e).__name__}: {e}")
                    self._cond.notify_all()

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        pkt = CoAPacket(dict=DICT, secret=SECRET.encode(), packet=data)
        attrs = {str(k): list(pkt[k]) for k in pkt.keys()}  # noqa: SIM118  (names, not codes)
        seen = Seen(raw=data, code=pkt.code, attrs=attrs,
                    request_authenticator_ok=pkt.VerifyCoARequest(),
                    message_authenticator_ok=(pkt.message_authenticator is not None
                                              and pkt.verify_message_authenticator()))
        user = attrs.get("User-Name", ["?"])[0]
        with self._cond:
            self.seen.setdefault(user, []).append(seen)
            self._cond.notify_all()
        answer = self.answers.get(user, "ack")
        if answer == "silent":
            return
        reply = pkt.CreateReply()           # Disconnect-ACK or CoA-ACK
        if answer == "nak":
            reply.code = DisconnectNAK if pkt.code == DisconnectRequest else CoANAK
            reply["Error-Cause"] = 503      # Session-Context-Not-Found
        reply.add_message_authenticator()
        self.sock.sendto(reply.ReplyPacket(), addr)

    def wait(self, user: str, count: int = 1, timeout: float = 5.0) -> list[Seen]:
        """The requests for ``user`` once at least ``count`` arrived (fails at the deadline)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.seen.get(user, [])) >= count or self.errors,
                                timeout)
            assert not self.errors, self.errors
            got = list(self.seen.get(user, []))
        assert len(got) >= count, f"{user}: {len(got)} requests, wanted {count}"
        return got

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
