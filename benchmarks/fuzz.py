#!/usr/bin/env python3
"""Fuzz a running aaad with random and mutated RADIUS packets, then check it is healthy.

    .venv/bin/python benchmarks/fuzz.py                        # 1,000,000 packets, SQLite
    .venv/bin/python benchmarks/fuzz.py --packets 50000 --seed 7
    .venv/bin/python benchmarks/fuzz.py --database postgresql+psycopg://postgres@127.0.0.1/aaad_fuzz

The script starts ``aaad serve`` on free loopback ports (SQLite in a temp dir
unless ``--database`` names a database it may empty), seeds users on several
plans, and sends packets on the auth and accounting ports from two clients
(127.0.0.1 without and 127.0.0.2 with ``require_message_authenticator``):

* ``random``: random bytes, mostly short, some up to 4,200 octets;
* ``random_framed``: a well-framed packet of random attributes with a random
  authenticator (reaches pyrad and, on the auth port, the login path);
* ``valid_auth`` / ``valid_acct``: correct Access-Requests (PAP, CHAP) and
  session streams (Start, Interims with growing counters and Gigawords, Stop);
* ``mutated_raw``: a valid packet with bit flips, truncation, extension or a
  corrupted length field, not re-signed;
* ``mutated_signed``: attributes duplicated, removed or inserted (any type of
  the bundled dictionary, vendor-specific ones with good and broken inner
  lengths), huge and zero counters, odd strings, bad UTF-8, NULs, then the
  Request Authenticator (accounting) and Message-Authenticator re-computed so
  that the packet passes authentication and reaches the decoder, the
  accounting core and the database;
* ``wrong_secret``: valid packets signed with another secret;
* ``status_server``: with, without and with a broken Message-Authenticator.

Flow control: every ``--sync-every`` packets a Status-Server marker goes to
the same port; at most ``--window`` markers are outstanding per port. A
marker's reply means the daemon has read everything sent before it, so the
socket buffer never overflows and every packet is really processed.

Every reply is checked: its Response Authenticator must verify against a
request recently sent with that (socket, id), and no request signed with a
wrong secret may get one. At the end: the process is alive, the log has no
traceback, "Unhandled" or ERROR line, no datagram was dropped as
``internal_error`` or ``backend_error``, and a fresh Access-Request (right and
wrong password) and accounting session still get correct answers and land in
the database. Exit status 0 when all of that holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import json
import os
import random
import re
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import bound_ports  # noqa: E402

__all__ = ["Generator", "FuzzResult", "fuzz", "start_daemon", "seed_database", "main"]

SECRET = b"fuzz-Secret-0123"
WRONG_SECRET = b"not-the-secret-9"
PASSWORD = "Fuzz-pw-12345678"
PLAIN, SIGNED = "127.0.0.1", "127.0.0.2"     # SIGNED requires a Message-Authenticator
USERS = 64

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE, STATUS_SERVER = 4, 5, 12
USER_NAME, USER_PASSWORD, CHAP_PASSWORD, NAS_IP_ADDRESS = 1, 2, 3, 4
VSA, PROXY_STATE, NAS_IDENTIFIER = 26, 33, 32
ACCT_STATUS_TYPE, ACCT_DELAY_TIME, ACCT_INPUT_OCTETS, ACCT_OUTPUT_OCTETS = 40, 41, 42, 43
ACCT_SESSION_ID, ACCT_SESSION_TIME, ACCT_TERMINATE_CAUSE = 44, 46, 49
ACCT_INPUT_GIGAWORDS, ACCT_OUTPUT_GIGAWORDS, EVENT_TIMESTAMP = 52, 53, 55
CHAP_CHALLENGE, MESSAGE_AUTHENTICATOR, ACCT_INTERIM_INTERVAL = 60, 80, 85
COUNTERS = (ACCT_SESSION_TIME, ACCT_INPUT_OCTETS, ACCT_OUTPUT_OCTETS, ACCT_INPUT_GIGAWORDS,
            ACCT_OUTPUT_GIGAWORDS, ACCT_DELAY_TIME, EVENT_TIMESTAMP, ACCT_STATUS_TYPE,
            ACCT_INTERIM_INTERVAL, ACCT_TERMINATE_CAUSE)
ZERO16 = bytes(16)

KINDS = {                       # share of the packets, per kind
    "random": 8, "random_framed": 8, "valid_auth": 8, "valid_acct": 14,
    "mutated_raw": 16, "mutated_signed": 38, "wrong_secret": 4, "status_server": 4,
}

# Plans the seeded users are spread over: every limit kind, bands, a DST zone.
PLANS: list[dict[str, Any]] = [
    {"name": "fz-daily", "period": "daily", "time_limit": "2h", "octets_limit": "1GB",
     "over_limit": "disconnect",
     "bands": [{"name": "night", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "from": "01:30", "to": "06:00", "weight": "0"},
               {"name": "weekend", "days": ["sat", "sun"], "from": "00:00", "to": "24:00",
                "weight": "1/2"}]},
    {"name": "fz-cap", "period": "weekly", "octets_limit": "5GB", "octets_direction": "total",
     "max_sessions": 2, "over_limit": "reject"},
    {"name": "fz-bill", "period": "monthly", "billing_day": 28, "time_limit": "10m",
     "over_limit": "bill", "overage_price": {"per_hour": "1.20", "per_gb": "0.05"}},
    {"name": "fz-block", "period": "none", "block": {"hours": 1, "valid_days": 30,
                                                     "on_exhaust": "renew", "price": "2.50"}},
]


# -- packets ------------------------------------------------------------------------------

def tlv(attr_type: int, value: bytes) -> bytes:
    value = value[:253]
    return bytes((attr_type, len(value) + 2)) + value


def vsa(vendor: int, vtype: int, value: bytes) -> tuple[int, bytes]:
    return VSA, struct.pack("!I", vendor) + bytes((vtype, len(value) + 2)) + value


def encode(code: int, ident: int, authenticator: bytes, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(tlv(t, v) for t, v in attrs)
    return struct.pack("!BBH", code, ident, 20 + len(body)) + authenticator + body


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    padded = password + bytes(-len(password) % 16 or (0 if password else 16))
    out, last = bytearray(), authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + last).digest()
        last = bytes(a ^ b for a, b in zip(padded[i:i + 16], key, strict=False))
        out += last
    return bytes(out)


def sign(code: int, ident: int, authenticator: bytes | None, attrs: list[tuple[int, bytes]],
         secret: bytes) -> bytes:
    """Encode with a correct Message-Authenticator (if the list has one) and, for
    ``authenticator=None`` (accounting), the RFC 2866 Request Authenticator."""
    attrs = [(t, ZERO16 if t == MESSAGE_AUTHENTICATOR else v) for t, v in attrs]
    vector = ZERO16 if authenticator is None else authenticator
    raw = encode(code, ident, vector, attrs)
    if any(t == MESSAGE_AUTHENTICATOR for t, _ in attrs):
        mac = hmac.new(secret, raw, hashlib.md5).digest()
        pos = _first(raw, MESSAGE_AUTHENTICATOR)
        raw = raw[:pos + 2] + mac + raw[pos + 18:]
    if authenticator is None:
        raw = raw[:4] + hashlib.md5(raw + secret).digest() + raw[20:]
    return raw


def _first(raw: bytes, attr_type: int) -> int:
    pos = 20
    while raw[pos] != attr_type:
        pos += raw[pos + 1]
    return pos


def response_ok(reply: bytes, request_authenticator: bytes, secret: bytes) -> bool:
    """RFC 2865 §3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret)."""
    digest = hashlib.md5(reply[:4] + request_authenticator + reply[20:] + secret).digest()
    return hmac.compare_digest(digest, reply[4:20])


@dataclass
class Packet:
    kind: str
    port: str                   # "auth" or "acct"
    source: str                 # PLAIN or SIGNED
    data: bytes
    must_not_answer: bool = False


class Generator:
    """Seeded packet source: the same seed gives the same packets."""

    def __init__(self, seed: int, dictionary: Any, epoch: int) -> None:
        self.rng = random.Random(seed)
        self.epoch = epoch              # "now" for Event-Timestamps of valid sessions
        self.ids = 0
        self._kinds, self._weights = list(KINDS), list(KINDS.values())
        self._dict_attrs: list[tuple[int, int | None, str]] = []
        for a in dictionary.attributes.values():
            vendor = dictionary.vendors.GetForward(a.vendor) if a.vendor else None
            self._dict_attrs.append((a.code, vendor, a.type))
        self._dict_attrs.sort(key=lambda a: (a[1] or 0, a[0], a[2]))
        self._sessions: dict[tuple[str, str], list[int]] = {}

    # values ---------------------------------------------------------------------------
    def _int(self) -> int:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice((0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32 - 2))
        if r < 0.6:
            return self.rng.randrange(1000)
        return self.rng.getrandbits(32)

    def _text(self) -> bytes:
        r = self.rng.random()
        if r < 0.25:
            return self.rng.choice((b"", b"\x00", b"a\x00b", b"\xff\xfe", b"\xc3\x28",
                                    b"\xed\xa0\x80",
                                    "ü€𝄞".encode(), b"%s%n%x", b"'; DROP TABLE users; --",
                                    b"\\x00", b"\r\n", b" " * 253))
        n = self.rng.choice((1, 8, 32, 128, 253))
        if r < 0.6:
            return self.rng.randbytes(self.rng.randrange(n + 1))
        return bytes(self.rng.choice(b"abcXYZ019-_.@ \x00\x7f\x80\xff")
                     for _ in range(self.rng.randrange(n + 1)))

    def _value(self, attr_type: str) -> bytes:
        if self.rng.random() < 0.15:            # any length, whatever the type says
            return self.rng.randbytes(self.rng.randrange(0, 40))
        if attr_type in ("integer", "date"):
            return struct.pack("!I", self._int())
        if attr_type == "ipaddr":
            return self.rng.randbytes(4)
        if attr_type == "ipv6addr":
            return self.rng.randbytes(16)
        if attr_type == "ipv6prefix":
            n = self.rng.randrange(0, 19)
            return bytes((0, self.rng.randrange(256))) + self.rng.randbytes(max(0, n - 2))
        if attr_type == "ifid":
            return self.rng.randbytes(8)
        return self._text()

    def _random_attribute(self) -> tuple[int, bytes]:
        r = self.rng.random()
        if r < 0.1:
            return self.rng.randrange(256), self.rng.randbytes(self.rng.randrange(40))
        code, vendor, attr_type = self.rng.choice(self._dict_attrs)
        value = self._value(attr_type)[:240]
        if vendor is None:
            return code, value
        t, v = vsa(vendor, code, value)
        if self.rng.random() < 0.2:             # a broken inner length
            v = v[:5] + bytes((self.rng.choice((0, 1, 2, 255, len(value) + 3)),)) + v[6:]
        elif self.rng.random() < 0.1:           # two sub-attributes in one VSA
            v += bytes((code, len(value) + 2)) + value
        return t, v

    # valid packets ----------------------------------------------------------------------
    def _next_id(self) -> int:
        self.ids = (self.ids + 1) & 0xFF
        return self.ids

    def _user(self) -> bytes:
        return f"fz{self.rng.randrange(USERS):03d}".encode()

    def auth_attrs(self, authenticator: bytes, secret: bytes,
                   source: str) -> list[tuple[int, bytes]]:
        user = self._user()
        password = PASSWORD.encode() if self.rng.random() < 0.7 else self._text()[:128]
        attrs: list[tuple[int, bytes]] = [(USER_NAME, user),
                                          (NAS_IP_ADDRESS, bytes((192, 0, 2, 1)))]
        if self.rng.random() < 0.8:
            attrs.append((USER_PASSWORD, hide_password(password, secret, authenticator)))
        else:
            ident = self.rng.randrange(256)
            own_challenge = self.rng.random() < 0.5     # else the authenticator is the challenge
            challenge = self.rng.randbytes(16) if own_challenge else authenticator
            attrs.append((CHAP_PASSWORD, bytes((ident,)) + hashlib.md5(
                bytes((ident,)) + password + challenge).digest()))
            if own_challenge:
                attrs.append((CHAP_CHALLENGE, challenge))
        for _ in range(self.rng.randrange(3)):
            attrs.append((PROXY_STATE, self.rng.randbytes(self.rng.randrange(1, 20))))
        if source == SIGNED or self.rng.random() < 0.5:
            attrs.append((MESSAGE_AUTHENTICATOR, ZERO16))
        return attrs

    def acct_attrs(self) -> list[tuple[int, bytes]]:
        """The next packet of one of a few hundred sessions: growing counters."""
        user = self._user()
        sid = f"fs{self.rng.randrange(400):03d}".encode()
        state = self._sessions.setdefault((user.decode(), sid.decode()),
                                          [1, 0, 0, 0, self.epoch - self.rng.randrange(7200)])
        r = self.rng.random()
        status = 1 if state[0] == 1 else (2 if r < 0.1 else (3 if r < 0.95 else 7))
        step = self.rng.choice((0, 1, 60, 300, 3600))
        state[1] += step
        state[2] += self.rng.choice((0, 1, 1500, 10**6, 2**32 - 1, 3 * 2**32))
        state[3] += self.rng.choice((0, 1, 1500, 10**7, 2**32 + 5))
        state[4] += step
        if status == 2:
            self._sessions.pop((user.decode(), sid.decode()))
        else:
            state[0] = 3
        attrs = [(ACCT_STATUS_TYPE, struct.pack("!I", status)), (USER_NAME, user),
                 (ACCT_SESSION_ID, sid), (NAS_IP_ADDRESS, bytes((192, 0, 2, 1 + len(sid) % 3)))]
        if status != 7:
            attrs += [
                (ACCT_SESSION_TIME, struct.pack("!I", state[1] & 0xFFFFFFFF)),
                (ACCT_INPUT_OCTETS, struct.pack("!I", state[2] & 0xFFFFFFFF)),
                (ACCT_INPUT_GIGAWORDS, struct.pack("!I", state[2] >> 32)),
                (ACCT_OUTPUT_OCTETS, struct.pack("!I", state[3] & 0xFFFFFFFF)),
                (ACCT_OUTPUT_GIGAWORDS, struct.pack("!I", state[3] >> 32)),
            ]
            if self.rng.random() < 0.5:
                attrs.append((EVENT_TIMESTAMP, struct.pack("!I", state[4])))
            else:
                attrs.append((ACCT_DELAY_TIME, struct.pack("!I", self.rng.choice((0, 5, 3600)))))
        if status == 2:
            attrs.append((ACCT_TERMINATE_CAUSE, struct.pack("!I", self.rng.randrange(1, 20))))
        for _ in range(self.rng.randrange(2)):
            attrs.append((PROXY_STATE, self.rng.randbytes(self.rng.randrange(1, 20))))
        if self.rng.random() < 0.3:
            attrs.append((MESSAGE_AUTHENTICATOR, ZERO16))
        return attrs

    def valid(self, port: str, source: str, secret: bytes = SECRET) -> bytes:
        ident = self._next_id()
        if port == "auth":
            authenticator = self.rng.randbytes(16)
            attrs = self.auth_attrs(authenticator, secret, source)
            return sign(ACCESS_REQUEST, ident, authenticator, attrs, secret)
        attrs = self.acct_attrs()
        if source == SIGNED and not any(t == MESSAGE_AUTHENTICATOR for t, _ in attrs):
            attrs.append((MESSAGE_AUTHENTICATOR, ZERO16))
        return sign(ACCOUNTING_REQUEST, ident, None, attrs, secret)

    # mutations --------------------------------------------------------------------------
    def mutate_raw(self, data: bytes) -> bytes:
        b = bytearray(data)
        for _ in range(self.rng.randrange(1, 4)):
            r = self.rng.random()
            if r < 0.35 and b:
                for _ in range(self.rng.randrange(1, 9)):
                    b[self.rng.randrange(len(b))] ^= 1 << self.rng.randrange(8)
            elif r < 0.5:
                del b[self.rng.randrange(len(b) + 1):]
            elif r < 0.65:
                b += self.rng.randbytes(self.rng.choice((1, 2, 16, 300)))
            elif r < 0.8 and len(b) >= 4:
                b[2:4] = struct.pack("!H", self.rng.choice(
                    (0, 19, 20, len(b) - 1, len(b) + 1, 4096, 4097, 65535,
                     self.rng.randrange(65536))))
            elif len(b) > 22:                   # an attribute length byte
                b[self._attr_offset(bytes(b)) + 1] = self.rng.choice((0, 1, 2, 3, 255,
                                                                      self.rng.randrange(256)))
        return bytes(b)

    def _attr_offset(self, raw: bytes) -> int:
        offsets, pos = [20], 20
        while pos + 2 <= len(raw) and raw[pos + 1] >= 2:
            pos += raw[pos + 1]
            if pos + 2 <= len(raw):
                offsets.append(pos)
        return self.rng.choice(offsets)

    def mutate_attrs(self, attrs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        attrs = list(attrs)
        for _ in range(self.rng.randrange(1, 6)):
            r = self.rng.random()
            i = self.rng.randrange(len(attrs)) if attrs else 0
            if r < 0.15 and attrs:
                attrs.insert(self.rng.randrange(len(attrs) + 1), attrs[i])       # duplicate
            elif r < 0.3 and attrs:
                del attrs[i]                                                      # remove
            elif r < 0.55:
                attrs.insert(self.rng.randrange(len(attrs) + 1), self._random_attribute())
            elif r < 0.75:                                                        # a counter
                value = struct.pack("!I", self._int())
                if self.rng.random() < 0.2:
                    value = self.rng.choice((b"", b"\x01", b"\x00\x00\x01", bytes(5), bytes(8)))
                attrs.insert(self.rng.randrange(len(attrs) + 1), (self.rng.choice(COUNTERS), value))
            elif r < 0.9 and attrs:                                               # odd text
                attrs[i] = (attrs[i][0], self._text()[:253])
            elif attrs:                                                           # swap two
                j = self.rng.randrange(len(attrs))
                attrs[i], attrs[j] = attrs[j], attrs[i]
        total = 0
        for n, (_, v) in enumerate(attrs):     # keep within 4096 octets
            total += 2 + len(v)
            if total > 4076:
                return attrs[:n]
        return attrs

    def mutated_signed(self, port: str, source: str) -> bytes:
        ident = self._next_id()
        if port == "auth":
            authenticator = self.rng.randbytes(16)
            attrs = self.mutate_attrs(self.auth_attrs(authenticator, SECRET, source))
            if source == SIGNED and self.rng.random() < 0.9 and \
                    not any(t == MESSAGE_AUTHENTICATOR for t, _ in attrs):
                attrs.append((MESSAGE_AUTHENTICATOR, ZERO16))
            return sign(ACCESS_REQUEST, ident, authenticator, attrs, SECRET)
        attrs = self.mutate_attrs(self.acct_attrs())
        if source == SIGNED and not any(t == MESSAGE_AUTHENTICATOR for t, _ in attrs):
            attrs.append((MESSAGE_AUTHENTICATOR, ZERO16))
        return sign(ACCOUNTING_REQUEST, ident, None, attrs, SECRET)

    def status_server(self) -> bytes:
        attrs: list[tuple[int, bytes]] = [(MESSAGE_AUTHENTICATOR, ZERO16)]
        r = self.rng.random()
        raw = sign(STATUS_SERVER, self._next_id(), self.rng.randbytes(16), attrs, SECRET)
        if r < 0.2:
            return raw[:-1] + bytes((raw[-1] ^ 1,))
        if r < 0.3:
            return encode(STATUS_SERVER, self._next_id(), self.rng.randbytes(16), [])
        return raw

    def random_framed(self) -> bytes:
        attrs = [self._random_attribute() for _ in range(self.rng.randrange(8))]
        code = self.rng.choice((ACCESS_REQUEST, ACCOUNTING_REQUEST, STATUS_SERVER,
                                self.rng.randrange(256)))
        return encode(code, self._next_id(), self.rng.randbytes(16), attrs)

    def next(self) -> Packet:
        kind = self.rng.choices(self._kinds, self._weights)[0]
        port = "auth" if self.rng.random() < 0.4 else "acct"
        source = SIGNED if self.rng.random() < 0.2 else PLAIN
        if kind == "random":
            size = self.rng.choice((0, 1, 19, 20, 21, 40, 100, 300)) if self.rng.random() < 0.95 \
                else self.rng.randrange(4200)
            return Packet(kind, port, source, self.rng.randbytes(size))
        if kind == "random_framed":
            return Packet(kind, port, source, self.random_framed())
        if kind in ("valid_auth", "valid_acct"):
            port = kind[6:]
            return Packet(kind, port, source, self.valid(port, source))
        if kind == "mutated_raw":
            return Packet(kind, port, source, self.mutate_raw(self.valid(port, source)))
        if kind == "mutated_signed":
            return Packet(kind, port, source, self.mutated_signed(port, source))
        if kind == "wrong_secret":
            data = self.valid(port, source, WRONG_SECRET)
            # Accounting packets and signed Access-Requests must never be answered.
            signed = port == "acct" or _has_attr(data, MESSAGE_AUTHENTICATOR)
            return Packet(kind, port, source, data, must_not_answer=signed)
        return Packet(kind, port, source, self.status_server())


def _has_attr(raw: bytes, attr_type: int) -> bool:
    pos = 20
    while pos + 2 <= len(raw) and raw[pos + 1] >= 2:
        if raw[pos] == attr_type:
            return True
        pos += raw[pos + 1]
    return False


# -- the daemon -----------------------------------------------------------------------------

def seed_database(url: str) -> None:
    """Empty the database, then add the plans and the fuzz users (cleartext passwords)."""
    from sqlalchemy import delete

    from aaad.core.quotas.plan_parse import parse_plan
    from aaad.store import migrate
    from aaad.store import plans as plan_store
    from aaad.store import users as user_store
    from aaad.store.database import open_database
    from aaad.store.plans import plan_to_json
    from aaad.store.tables import metadata

    db = open_database(url)
    migrate.upgrade(db.writer)
    with db.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(delete(table))
        for spec in PLANS:
            plan_store.save_plan(conn, spec["name"], plan_to_json(parse_plan(spec)), 0)
        for i in range(USERS):
            plan = PLANS[i % (len(PLANS) + 1) - 1]["name"] if i % (len(PLANS) + 1) else None
            user_store.add_user(conn, f"fz{i:03d}", password_hash=None, password_cleartext=PASSWORD,
                                plan=plan, enabled=i % 17 != 5, now=0)
    db.dispose()


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    auth_port: int
    acct_port: int
    metrics_port: int
    log: Path
    coa_sink: socket.socket

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.coa_sink.close()
        return self.proc.returncode


def start_daemon(workdir: Path, url: str, *, deadline_s: float = 30.0,
                 timezone: str = "Europe/Berlin") -> Daemon:
    """``aaad serve`` on loopback ports it binds itself, with /metrics; returns once it answers.

    ``timezone`` is the daemon's zone, which places the plans' periods and bands."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # takes Disconnect-Requests
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    coa_port = sink.getsockname()[1]
    config = workdir / "aaad.yaml"
    config.write_text(f"""
database: {{url: "{url}"}}
radius: {{bind: 127.0.0.1, auth_port: 0, acct_port: 0, coa_timeouts: [0.2, 0.4]}}
timezone: {timezone}
clients:
  - {{name: fuzz-plain, address: {PLAIN}/32, secret: "{SECRET.decode()}", type: mikrotik,
     coa_port: {coa_port}}}
  - {{name: fuzz-signed, address: {SIGNED}/32, secret: "{SECRET.decode()}", type: chillispot,
     require_message_authenticator: true, coa_port: {coa_port}}}
accounting: {{period: monthly, billing_day: 28}}
metrics: {{bind: 127.0.0.1, port: 0}}
logging: {{level: info}}
""")
    log = workdir / "aaad.log"
    proc = subprocess.Popen([sys.executable, "-m", "aaad", "-c", str(config), "serve"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    end = time.monotonic() + deadline_s
    # The ports are bound by the daemon (port 0) and read from its start-up log
    # line, so no other process can take them between choosing and binding.
    while (ports := bound_ports(log.read_text(errors="replace"))) is None:
        if proc.poll() is not None or time.monotonic() > end:
            sink.close()
            if proc.poll() is None:
                proc.kill()
            raise RuntimeError(f"aaad did not log its ports:\n{log.read_text()}")
        time.sleep(0.02)        # a poll interval under the deadline
    auth_port = ports["auth"]
    d = Daemon(proc, auth_port, ports["acct"], ports["metrics"], log, sink)
    probe = Client(PLAIN, SECRET)
    try:
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"aaad exited with {proc.returncode}:\n{log.read_text()}")
            reply = probe.exchange(sign(STATUS_SERVER, 1, os.urandom(16),
                                        [(MESSAGE_AUTHENTICATOR, ZERO16)], SECRET),
                                   auth_port, timeout=0.3)
            if reply is not None:
                return d
    finally:
        probe.close()
    d.stop()
    raise RuntimeError(f"aaad did not answer within {deadline_s}s:\n{log.read_text()}")


class Client:
    """One blocking request/reply socket bound to ``source`` (for probes and checks)."""

    def __init__(self, source: str, secret: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.secret = secret

    def exchange(self, data: bytes, port: int, timeout: float = 2.0) -> bytes | None:
        """Send, and return the first reply that verifies, or None."""
        end = time.monotonic() + timeout
        self.sock.sendto(data, ("127.0.0.1", port))
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                reply = self.sock.recv(4096)
            except TimeoutError:
                return None
            if reply[1] == data[1] and response_ok(reply, data[4:20], self.secret):
                return reply
        return None

    def close(self) -> None:
        self.sock.close()


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = collections.defaultdict(dict)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


# -- the run --------------------------------------------------------------------------------

@dataclass
class FuzzResult:
    packets: int = 0
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    replies: collections.Counter[str] = field(default_factory=collections.Counter)
    markers_lost: int = 0
    disconnects_received: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    rss_kib_before: int = 0
    rss_kib_after: int = 0
    elapsed_s: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.packets / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"packets": self.packets, "by_kind": dict(self.by_kind),
                "replies": dict(self.replies), "markers_lost": self.markers_lost,
                "disconnect_requests_received": self.disconnects_received,
                "drops": self.drops, "rss_kib_before": self.rss_kib_before,
                "rss_kib_after": self.rss_kib_after, "elapsed_s": round(self.elapsed_s, 2),
                "packets_per_s": round(self.rate), "failures": self.failures}


class _Sender:
    """Sockets per (source, port), the marker flow control, and reply checking."""

    SOCKETS = 4

    def __init__(self, d: Daemon, result: FuzzResult, *, window: int, sync_every: int,
                 marker_timeout_s: float = 3.0) -> None:
        self.d, self.result = d, result
        self.ports = {"auth": d.auth_port, "acct": d.acct_port}
        self.window, self.sync_every, self.marker_timeout = window, sync_every, marker_timeout_s
        self.sel = selectors.DefaultSelector()
        self.socks: dict[tuple[str, str], list[socket.socket]] = {}
        for source in (PLAIN, SIGNED):
            for port in self.ports:
                self.socks[source, port] = [self._socket(source, ("fuzz", port))
                                            for _ in range(self.SOCKETS)]
        self.markers = {port: self._socket(PLAIN, ("marker", port)) for port in self.ports}
        self.sel.register(d.coa_sink, selectors.EVENT_READ, ("coa", ""))
        self.outstanding: dict[str, dict[int, float]] = {p: {} for p in self.ports}
        self.since_marker = dict.fromkeys(self.ports, 0)
        self.marker_id = dict.fromkeys(self.ports, 0)
        # (socket fileno, id) -> recent (request authenticator, must_not_answer)
        self.sent: dict[tuple[int, int], collections.deque[tuple[bytes, bool]]] = \
            collections.defaultdict(lambda: collections.deque(maxlen=64))
        self.rr = 0

    def _socket(self, source: str, role: tuple[str, str]) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((source, 0))
        s.setblocking(False)
        self.sel.register(s, selectors.EVENT_READ, role)
        return s

    def send(self, p: Packet) -> None:
        self.rr += 1
        sock = self.socks[p.source, p.port][self.rr % self.SOCKETS]
        sock.sendto(p.data, ("127.0.0.1", self.ports[p.port]))
        if len(p.data) >= 20:
            self.sent[sock.fileno(), p.data[1]].append((p.data[4:20], p.must_not_answer))
        self.since_marker[p.port] += 1
        if self.since_marker[p.port] >= self.sync_every:
            self.since_marker[p.port] = 0
            self._send_marker(p.port)
            while len(self.outstanding[p.port]) >= self.window:
                self.poll(0.05)
                self._expire_markers()

    def _send_marker(self, port: str) -> None:
        self.marker_id[port] = ident = (self.marker_id[port] + 1) & 0xFF
        if ident in self.outstanding[port]:
            self.result.markers_lost += 1
        self.outstanding[port][ident] = time.monotonic()
        self.markers[port].sendto(sign(STATUS_SERVER, ident, os.urandom(16),
                                       [(MESSAGE_AUTHENTICATOR, ZERO16)], SECRET),
                                  ("127.0.0.1", self.ports[port]))

    def _expire_markers(self) -> None:
        now = time.monotonic()
        for _port, waiting in self.outstanding.items():
            for ident, at in list(waiting.items()):
                if now - at > self.marker_timeout:
                    del waiting[ident]
                    self.result.markers_lost += 1

    def poll(self, timeout: float) -> None:
        for key, _ in self.sel.select(timeout):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            role, port = key.data
            while True:
                try:
                    data, _ = sock.recvfrom(8192)
                except BlockingIOError:
                    break
                if role == "coa":       # a Disconnect-Request, left unanswered (timeouts)
                    self.result.disconnects_received += 1
                elif role == "marker":
                    if len(data) >= 20:
                        self.outstanding[port].pop(data[1], None)
                else:
                    self._check_reply(sock, port, data)

    def _check_reply(self, sock: socket.socket, port: str, data: bytes) -> None:
        r = self.result
        want = (ACCESS_ACCEPT, ACCESS_REJECT) if port == "auth" else (ACCOUNTING_RESPONSE,)
        if len(data) < 20 or struct.unpack("!H", data[2:4])[0] != len(data) or data[0] not in want:
            r.failures.append(f"{port}: malformed reply {data[:24].hex()}")
            return
        r.replies[f"{port}:{data[0]}"] += 1
        for authenticator, must_not_answer in reversed(self.sent[sock.fileno(), data[1]]):
            if response_ok(data, authenticator, SECRET):
                if must_not_answer:
                    r.failures.append(f"{port}: answered a request signed with a wrong secret")
                return
        r.failures.append(f"{port}: reply id {data[1]} matches no recent request")

    def drain(self, deadline_s: float) -> None:
        """Send a last marker per port and wait for every marker and straggling reply."""
        for port in self.ports:
            self._send_marker(port)
        end = time.monotonic() + deadline_s
        while any(self.outstanding.values()) and time.monotonic() < end:
            self.poll(0.05)
        self.result.markers_lost += sum(len(w) for w in self.outstanding.values())
        quiet_until = time.monotonic() + 0.5       # accounting replies follow their commit
        while time.monotonic() < quiet_until:
            self.poll(0.1)

    def close(self) -> None:
        for key in list(self.sel.get_map().values()):
            if key.data[0] != "coa":
                key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()


UNEXPECTED_LOG = re.compile(r"Traceback|Unhandled|\bERROR\b|\bCRITICAL\b")
BAD_DROPS = ("internal_error", "backend_error")


def fuzz(d: Daemon, url: str, *, packets: int, seed: int, epoch: int, window: int = 4,
         sync_every: int = 32, max_backlog: int = 1024,
         progress: bool = False) -> FuzzResult:
    """Send ``packets`` fuzz packets to a running daemon, then check its health."""
    from aaad.radius.codec import load_dictionary

    result = FuzzResult()
    gen = Generator(seed, load_dictionary(), epoch)
    sender = _Sender(d, result, window=window, sync_every=sync_every)
    result.rss_kib_before = rss_kib(d.proc.pid)
    started = time.monotonic()
    try:
        for n in range(packets):
            p = gen.next()
            result.by_kind[p.kind] += 1
            sender.send(p)
            if n % 64 == 63:
                sender.poll(0)
                if progress and n % 100_000 == 99_999:
                    print(f"  {n + 1:>9} packets, {time.monotonic() - started:.0f} s, "
                          f"RSS {rss_kib(d.proc.pid) / 1024:.1f} MiB", file=sys.stderr)
                if n % 2048 == 2047:
                    if d.proc.poll() is not None:
                        result.failures.append(f"aaad exited with {d.proc.returncode} after "
                                               f"{n + 1} packets")
                        break
                    # Records waiting for the database: let them drain before more come.
                    if pending(d) > max_backlog:
                        wait_idle(d, sender, below=max_backlog // 4, deadline_s=120)
        result.packets = sum(result.by_kind.values())
        sender.drain(deadline_s=30.0)
        if not wait_idle(d, sender, below=1, deadline_s=300):
            result.failures.append("requests still pending 300 s after the last packet")
        result.elapsed_s = time.monotonic() - started
    finally:
        sender.close()
    result.rss_kib_after = rss_kib(d.proc.pid)
    check_health(d, url, result)
    return result


def pending(d: Daemon) -> int:
    """Requests the daemon is processing (its aaad_pending_requests gauge)."""
    if d.proc.poll() is not None:
        return 0
    return int(sum(scrape(d.metrics_port).get("aaad_pending_requests", {}).values()))


def wait_idle(d: Daemon, sender: _Sender, *, below: int, deadline_s: float) -> bool:
    """Read replies until fewer than ``below`` requests are pending; False on timeout."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if pending(d) < below:
            return True
        sender.poll(0.1)
    return False


def check_health(d: Daemon, url: str, result: FuzzResult) -> None:
    """The checks after a run; each problem is appended to ``result.failures``."""
    f = result.failures
    if d.proc.poll() is not None:
        f.append(f"aaad is not running (exit status {d.proc.returncode})")
        return
    metrics = scrape(d.metrics_port)
    drops: collections.Counter[str] = collections.Counter()
    for labels, value in metrics.get("aaad_packets_dropped_total", {}).items():
        drops[dict(labels)["reason"]] += int(value)
    result.drops = dict(sorted(drops.items()))
    for reason in BAD_DROPS:
        if drops[reason]:
            f.append(f"{drops[reason]} datagrams dropped as {reason}")
    db_errors = sum(metrics.get("aaad_db_errors_total", {}).values())
    if db_errors:
        f.append(f"{int(db_errors)} failed database batches")
    c = Client(PLAIN, SECRET)
    try:
        for password, want in ((PASSWORD, ACCESS_ACCEPT), ("wrong-password-1", ACCESS_REJECT)):
            auth = os.urandom(16)
            req = sign(ACCESS_REQUEST, 7, auth, [
                (USER_NAME, b"fz000"),
                (USER_PASSWORD, hide_password(password.encode(), SECRET, auth)),
                (MESSAGE_AUTHENTICATOR, ZERO16)], SECRET)
            reply = c.exchange(req, d.auth_port, timeout=5.0)
            if reply is None or reply[0] != want:
                f.append(f"Access-Request with {'right' if want == 2 else 'wrong'} password: "
                         f"{'no reply' if reply is None else f'code {reply[0]}'}")
        sid = f"health-{os.getpid()}".encode()
        for ident, status, t in ((8, 1, 0), (9, 3, 60), (10, 2, 120)):
            req = sign(ACCOUNTING_REQUEST, ident, None, [
                (ACCT_STATUS_TYPE, struct.pack("!I", status)), (USER_NAME, b"fz000"),
                (ACCT_SESSION_ID, sid), (ACCT_SESSION_TIME, struct.pack("!I", t)),
                (ACCT_INPUT_OCTETS, struct.pack("!I", 1000 * t)),
                (ACCT_OUTPUT_GIGAWORDS, struct.pack("!I", 1)),
                (ACCT_OUTPUT_OCTETS, struct.pack("!I", t))], SECRET)
            reply = c.exchange(req, d.acct_port, timeout=5.0)
            if reply is None or reply[0] != ACCOUNTING_RESPONSE:
                f.append(f"Accounting-Request (status {status}): no Accounting-Response")
    finally:
        c.close()
    stored = _stored_session(url, sid.decode())
    if stored != (120, 120_000, 2**32 + 120, False):
        f.append(f"the health-check session is stored as {stored}, "
                 f"not (120, 120000, {2**32 + 120}, closed)")
    for line in d.log.read_text(errors="replace").splitlines():
        if UNEXPECTED_LOG.search(line):
            f.append(f"log: {line[:300]}")
            if len(f) > 50:
                break


def _stored_session(url: str, acct_session_id: str) -> tuple[int, int, int, bool] | None:
    from sqlalchemy import select

    from aaad.store.database import open_database
    from aaad.store.tables import sessions

    db = open_database(url)
    try:
        with db.reader.connect() as conn:
            row = conn.execute(select(sessions.c.session_s, sessions.c.in_octets,
                                      sessions.c.out_octets, sessions.c.active)
                               .where(sessions.c.acct_session_id == acct_session_id)).first()
    finally:
        db.dispose()
    return None if row is None else (int(row[0]), int(row[1]), int(row[2]), bool(row[3]))


def print_summary(r: FuzzResult, seed: int, epoch: int, url: str) -> None:
    print(f"aaad fuzz: --seed {seed} --epoch {epoch}, {url.split(':', 1)[0]}, "
          f"{os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"  packets sent      {r.packets:>10,} in {r.elapsed_s:.1f} s ({r.rate:,.0f}/s)")
    for kind, n in sorted(r.by_kind.items()):
        print(f"    {kind:<16}{n:>10,}")
    print(f"  replies           {sum(r.replies.values()):>10,}  "
          + ", ".join(f"{k}={v:,}" for k, v in sorted(r.replies.items())))
    print(f"  markers lost      {r.markers_lost:>10,}")
    print(f"  Disconnect-Requests received {r.disconnects_received:,}")
    print("  dropped by reason (from /metrics):")
    for reason, n in r.drops.items():
        print(f"    {reason:<30}{n:>10,}")
    print(f"  RSS               {r.rss_kib_before / 1024:.1f} MiB before, "
          f"{r.rss_kib_after / 1024:.1f} MiB after")
    if r.failures:
        print(f"FAILED ({len(r.failures)}):")
        for line in r.failures[:50]:
            print(f"  {line}")
    else:
        print("OK: alive, clean log, correct answers after the run")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epoch", type=int, default=None,
                   help="POSIX time the valid sessions' Event-Timestamps start from "
                        "(default: now; give the printed value to replay a run exactly)")
    p.add_argument("--database", help="SQLAlchemy URL of a database this may empty "
                                      "(default: SQLite in a temp dir)")
    p.add_argument("--window", type=int, default=4, help="markers outstanding per port")
    p.add_argument("--sync-every", type=int, default=32, help="packets per marker")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (log, database)")
    a = p.parse_args(argv)
    epoch = int(time.time()) if a.epoch is None else a.epoch
    workdir = Path(tempfile.mkdtemp(prefix="aaad-fuzz-"))
    url = a.database or f"sqlite:///{workdir / 'fuzz.sqlite3'}"
    seed_database(url)
    d = start_daemon(workdir, url)
    try:
        result = fuzz(d, url, packets=a.packets, seed=a.seed, epoch=epoch, window=a.window,
                      sync_every=a.sync_every, progress=not a.json)
    finally:
        code = d.stop()
    if code != 0:
        result.failures.append(f"aaad exited with {code} on SIGTERM")
    if a.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_summary(result, a.seed, epoch, url)
    if a.keep or result.failures:
        print(f"log and database kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
