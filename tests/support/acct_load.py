"""A NAS for end-to-end tests: Interim-Updates with rising totals, retransmitted until answered.

Each session has one request in flight at a time (as a NAS sends them); an
unanswered request is retransmitted with the same bytes after ``retry_s``.
What was answered is recorded, so a test can check it against the database.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field

from pyrad.packet import AccountingRequest, AcctPacket
from sqlalchemy import func
from sqlalchemy import select as sql_select

from aaad.radius.codec import load_dictionary
from aaad.store import sessions as session_store
from aaad.store.database import Database
from aaad.store.tables import usage

DICT = load_dictionary()


def totals(n: int) -> tuple[int, int, int]:
    """Session seconds, input and output octets reported by the n-th Interim."""
    return 10 * n, 1_000_003 * n, 7 * n


@dataclass
class AcctLoad:
    port: int
    secret: bytes
    user: str
    sessions: int = 32
    window: int = 32
    retry_s: float = 1.0
    step: dict[str, int] = field(default_factory=dict)       # n of the newest sent
    answered: dict[str, int] = field(default_factory=dict)   # highest n answered
    sent: int = 0
    replies: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.in_flight: dict[int, tuple[str, int, bytes, float]] = {}
        self._busy: set[str] = set()
        self.sids = [f"{self.user}-{i}" for i in range(self.sessions)]
        self._next = 0

    def _packet(self, ident: int, sid: str, n: int) -> bytes:
        p = AcctPacket(code=AccountingRequest, id=ident, secret=self.secret, dict=DICT)
        s, i, o = totals(n)
        p["User-Name"] = self.user
        p["Acct-Session-Id"] = sid
        p["Acct-Status-Type"] = "Interim-Update"
        p["Acct-Session-Time"] = s
        p["Acct-Input-Octets"] = i
        p["Acct-Output-Octets"] = o
        p["NAS-IP-Address"] = "192.0.2.77"
        raw: bytes = p.RequestPacket()
        return raw

    def pump(self, seconds: float, *, new: bool = True) -> None:
        """Send and receive for ``seconds``; with ``new`` False only retransmit."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.monotonic()
            if new:
                self._send_new(now)
            for ident, (sid, n, raw, at) in list(self.in_flight.items()):
                if now - at >= self.retry_s:
                    self._send(raw)
                    self.in_flight[ident] = (sid, n, raw, now)
            if select.select([self.sock], [], [], 0.02)[0]:
                self._receive()
            if not new and not self.in_flight:
                return

    def settle(self, deadline_s: float) -> bool:
        """Retransmit until every request is answered; True if all were."""
        self.pump(deadline_s, new=False)
        return not self.in_flight

    def _send_new(self, now: float) -> None:
        for ident in range(256):
            if len(self.in_flight) >= self.window:
                return
            if ident in self.in_flight:
                continue
            sid = self.sids[self._next % len(self.sids)]
            self._next += 1
            if sid in self._busy:
                continue
            n = self.step.get(sid, 0) + 1
            self.step[sid] = n
            raw = self._packet(ident, sid, n)
            self.in_flight[ident] = (sid, n, raw, now)
            self._busy.add(sid)
            self._send(raw)

    def _send(self, raw: bytes) -> None:
        try:
            self.sock.sendto(raw, ("127.0.0.1", self.port))
            self.sent += 1
        except BlockingIOError:
            pass

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            hit = self.in_flight.get(data[1]) if len(data) >= 20 and data[0] == 5 else None
            if hit is None:
                continue
            sid, n, _, _ = self.in_flight.pop(data[1])
            self._busy.discard(sid)
            self.answered[sid] = max(self.answered.get(sid, 0), n)
            self.replies += 1

    def check_stored(self, db: Database, *, exact: bool) -> None:
        """Every answered total is stored; with ``exact``, stored == last sent, and the
        user's counters are the sum of the sessions' totals (each delta counted once)."""
        with db.reader.connect() as conn:
            rows = {s["acct_session_id"]: s for s in
                    session_store.list_sessions(conn, user=self.user, limit=10 * self.sessions)}
            used = conn.execute(sql_select(func.sum(usage.c.session_s),
                                           func.sum(usage.c.in_octets),
                                           func.sum(usage.c.out_octets))
                                .where(usage.c.user_name == self.user)).one()
        lost = {sid: n for sid, n in self.answered.items()
                if sid not in rows or rows[sid]["in_octets"] < totals(n)[1]}
        assert lost == {}, f"answered but not stored: {lost}"
        assert all(r["active"] for r in rows.values()), "an open session was closed"
        if exact:
            assert {sid: r["in_octets"] for sid, r in rows.items()} == \
                {sid: totals(n)[1] for sid, n in self.step.items()}
            sums = tuple(sum(r[k] for r in rows.values())
                         for k in ("session_s", "in_octets", "out_octets"))
            assert tuple(int(x or 0) for x in used) == sums

    def close(self) -> None:
        self.sock.close()
