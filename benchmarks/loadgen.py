#!/usr/bin/env python3
"""Windowed UDP RADIUS load generator.

A single-file, standard-library-only program that drives any RADIUS server
(aaad, FreeRADIUS, ...) with Access-Request, Accounting-Request or
Status-Server traffic and reports throughput and latency.

Packets are built directly with :mod:`struct`, :mod:`hashlib` and
:mod:`hmac` so the generator itself is cheap: it is meant to share a small
machine with the server under test without becoming the bottleneck.

* At most ``--window`` requests are outstanding at any time.  RADIUS ids are
  8 bits, so one UDP socket is opened per 256 ids (several sockets when the
  window is larger than 256) and replies are matched by (socket, id).
* Every reply's Response Authenticator is verified; replies that fail are
  discarded (as a real client does) and counted as bad authenticators.
* A request without a reply after ``--timeout`` seconds is retransmitted
  unchanged (same id and Request Authenticator) up to ``--retries`` times,
  then counted as lost.  Latency of a retransmitted request is measured from
  its first transmission.
* ``auth`` mode sends Access-Request (PAP or CHAP) with a
  Message-Authenticator; ``acct`` mode simulates NAS sessions (Start,
  ``--interims`` Interim-Updates, Stop; a session's next packet is sent only
  after the previous one was answered or lost); ``status`` mode sends
  Status-Server (RFC 5997).

Exit status: 0 if every request was answered, 1 if any was lost, 2 for bad
arguments.

Example::

    python3 benchmarks/loadgen.py --mode auth --secret testing123 \\
        --window 64 --requests 50000 --users 1000
"""

from __future__ import annotations

import argparse
import array
import collections
import contextlib
import hashlib
import hmac
import ipaddress
import json
import math
import os
import random
import selectors
import socket
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    'ACCESS_REQUEST', 'ACCESS_ACCEPT', 'ACCESS_REJECT', 'ACCOUNTING_REQUEST',
    'ACCOUNTING_RESPONSE', 'ACCESS_CHALLENGE', 'STATUS_SERVER',
    'hide_password', 'chap_password', 'build_access_request',
    'build_status_server', 'build_accounting_request', 'verify_response',
    'AcctSession', 'LoadGenerator', 'Stats', 'parse_args', 'run', 'main',
]

# --------------------------------------------------------------------------
# RADIUS constants

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCOUNTING_REQUEST = 4
ACCOUNTING_RESPONSE = 5
ACCESS_CHALLENGE = 11
STATUS_SERVER = 12

CODE_NAMES = {
    1: 'Access-Request',
    2: 'Access-Accept',
    3: 'Access-Reject',
    4: 'Accounting-Request',
    5: 'Accounting-Response',
    11: 'Access-Challenge',
    12: 'Status-Server',
    13: 'Status-Client',
    40: 'Disconnect-Request',
    41: 'Disconnect-ACK',
    42: 'Disconnect-NAK',
    43: 'CoA-Request',
    44: 'CoA-ACK',
    45: 'CoA-NAK',
}

# attribute types
USER_NAME = 1
USER_PASSWORD = 2
CHAP_PASSWORD = 3
NAS_IP_ADDRESS = 4
NAS_PORT = 5
FRAMED_IP_ADDRESS = 8
CALLING_STATION_ID = 31
ACCT_STATUS_TYPE = 40
ACCT_INPUT_OCTETS = 42
ACCT_OUTPUT_OCTETS = 43
ACCT_SESSION_ID = 44
ACCT_SESSION_TIME = 46
ACCT_INPUT_PACKETS = 47
ACCT_OUTPUT_PACKETS = 48
ACCT_TERMINATE_CAUSE = 49
ACCT_INPUT_GIGAWORDS = 52
ACCT_OUTPUT_GIGAWORDS = 53
EVENT_TIMESTAMP = 55
CHAP_CHALLENGE = 60
MESSAGE_AUTHENTICATOR = 80
NAS_IPV6_ADDRESS = 95

STATUS_START = 1
STATUS_STOP = 2
STATUS_INTERIM_UPDATE = 3
TERMINATE_USER_REQUEST = 1

MAX_PACKET = 4096
_U32 = 0xFFFFFFFF

_HDR = struct.Struct('!BBH')
_INT_ATTR = struct.Struct('!BBI')
_Z16 = bytes(16)
_MA_ZERO = bytes((MESSAGE_AUTHENTICATOR, 18)) + _Z16
_MA_HDR = bytes((MESSAGE_AUTHENTICATOR, 18))
_pack_int = _INT_ATTR.pack
_md5 = hashlib.md5
_hmac_digest = hmac.digest


# --------------------------------------------------------------------------
# attribute and packet builders

def attr(atype: int, value: bytes | str) -> bytes:
    """Encode one attribute (type, length, value)."""
    if isinstance(value, str):
        value = value.encode('utf-8')
    if len(value) > 253:
        raise ValueError(f'attribute {atype} is longer than 253 octets')
    return bytes((atype, len(value) + 2)) + value


def attr_int(atype: int, value: int) -> bytes:
    """Encode a 32-bit integer attribute (raises if out of range)."""
    return _pack_int(atype, 6, value)


def nas_address_attr(nas_ip: str) -> bytes:
    """NAS-IP-Address, or NAS-IPv6-Address for an IPv6 address."""
    address = ipaddress.ip_address(nas_ip)
    if address.version == 4:
        return attr(NAS_IP_ADDRESS, address.packed)
    return attr(NAS_IPV6_ADDRESS, address.packed)


def _to_bytes(value: bytes | str) -> bytes:
    return value.encode('utf-8') if isinstance(value, str) else value


def hide_password(password: bytes | str, authenticator: bytes,
                  secret: bytes | Any) -> bytes:
    """User-Password hiding (RFC 2865 section 5.2).

    ``secret`` is the shared secret or a ``hashlib.md5`` object already fed
    with it (saves one hash of the secret per 16 octets).
    """
    password = _to_bytes(password)
    if len(password) > 128:
        raise ValueError('password is longer than 128 octets')
    if isinstance(secret, (bytes, bytearray)):
        secret = _md5(secret)
    padded = password + bytes(-len(password) % 16) if password else _Z16
    out = []
    last = authenticator
    for i in range(0, len(padded), 16):
        h = secret.copy()
        h.update(last)
        last = (int.from_bytes(padded[i:i + 16], 'big')
                ^ int.from_bytes(h.digest(), 'big')).to_bytes(16, 'big')
        out.append(last)
    return b''.join(out)


def chap_password(chap_id: int, password: bytes | str,
                  challenge: bytes) -> bytes:
    """CHAP-Password value: CHAP ident + MD5(ident + password + challenge)."""
    ident = bytes((chap_id & 0xFF,))
    return ident + _md5(ident + _to_bytes(password) + challenge).digest()


def _sign_with_message_authenticator(code: int, ident: int,
                                     authenticator: bytes, attrs: bytes,
                                     secret: bytes) -> bytes:
    """Packet with a Message-Authenticator (RFC 3579 section 3.2) as first
    attribute: HMAC-MD5 over the packet with the field zeroed."""
    header = _HDR.pack(code, ident, 38 + len(attrs)) + authenticator
    mac = _hmac_digest(secret, header + _MA_ZERO + attrs, 'md5')
    return header + _MA_HDR + mac + attrs


def build_access_request(ident: int, authenticator: bytes, secret: bytes,
                         user: bytes | str, password: bytes | str, *,
                         nas_attr: bytes, nas_port: int,
                         auth: str = 'pap', challenge: bytes | None = None,
                         user_attr: bytes | None = None,
                         secret_md5: Any = None) -> bytes:
    """Access-Request with User-Name, User-Password (``auth='pap'``) or
    CHAP-Password + CHAP-Challenge (``auth='chap'``), NAS-IP-Address,
    NAS-Port and Message-Authenticator.

    ``user_attr`` (the encoded User-Name) and ``secret_md5`` are optional
    precomputed values for the hot path.
    """
    if user_attr is None:
        user_attr = attr(USER_NAME, user)
    if auth == 'pap':
        cred = attr(USER_PASSWORD, hide_password(
            password, authenticator,
            secret_md5 if secret_md5 is not None else secret))
    elif auth == 'chap':
        if challenge is None:
            challenge = authenticator
        cred = (attr(CHAP_PASSWORD, chap_password(ident, password, challenge))
                + attr(CHAP_CHALLENGE, challenge))
    else:
        raise ValueError(f'unknown auth method {auth!r}')
    attrs = user_attr + cred + nas_attr + _pack_int(NAS_PORT, 6, nas_port)
    return _sign_with_message_authenticator(
        ACCESS_REQUEST, ident, authenticator, attrs, secret)


def build_status_server(ident: int, authenticator: bytes, secret: bytes, *,
                        nas_attr: bytes = b'') -> bytes:
    """Status-Server (RFC 5997) with Message-Authenticator."""
    return _sign_with_message_authenticator(
        STATUS_SERVER, ident, authenticator, nas_attr, secret)


def build_accounting_request(ident: int, secret: bytes,
                             attrs: bytes) -> bytes:
    """Accounting-Request; the Request Authenticator is
    MD5(Code + Identifier + Length + 16 zero octets + attributes + secret)
    (RFC 2866 section 3)."""
    header = _HDR.pack(ACCOUNTING_REQUEST, ident, 20 + len(attrs))
    authenticator = _md5(header + _Z16 + attrs + secret).digest()
    return header + authenticator + attrs


def verify_response(reply: bytes, request_authenticator: bytes,
                    secret: bytes) -> bool:
    """Check a reply's Response Authenticator:
    MD5(Code + ID + Length + RequestAuth + Attributes + Secret)."""
    if len(reply) < 20:
        return False
    length = (reply[2] << 8) | reply[3]
    if length < 20 or length > len(reply):
        return False
    return hmac.compare_digest(
        _md5(reply[:4] + request_authenticator + reply[20:length]
             + secret).digest(),
        reply[4:20])


# --------------------------------------------------------------------------
# accounting sessions

class AcctSession:
    """One simulated NAS session: Start, ``interims`` Interim-Updates, Stop.

    Call :meth:`attributes` for the current packet's attributes and
    :meth:`advance` once it was answered (or given up).  Octet totals grow
    at every step; a *heavy* session transfers more than 2**32 octets in each
    direction over its lifetime, so its later packets carry
    Acct-Input-Gigawords / Acct-Output-Gigawords.
    """

    __slots__ = ('session_id', 'fixed', 'steps', 'step', 'interval',
                 'rng', 'in_rate', 'out_rate', 'in_total', 'out_total',
                 'session_time', 'start_ts', 'heavy')

    def __init__(self, session_id: str, user: bytes | str, *,
                 nas_attr: bytes, nas_port: int, framed_ip: int,
                 calling_station_id: str, interims: int, interval: int,
                 rng: random.Random, heavy: bool, now: int | None = None):
        self.session_id = session_id
        self.fixed = (attr(ACCT_SESSION_ID, session_id)
                      + attr(USER_NAME, user) + nas_attr
                      + _pack_int(NAS_PORT, 6, nas_port)
                      + _pack_int(FRAMED_IP_ADDRESS, 6, framed_ip)
                      + attr(CALLING_STATION_ID, calling_station_id))
        self.steps = interims + 2
        self.step = 0
        self.interval = interval
        self.rng = rng
        self.heavy = heavy
        intervals = interims + 1
        if heavy:
            # increments are at least the rate, so the totals cross 2**32
            # by the Stop at the latest, whatever the number of interims
            self.in_rate = int(rng.uniform(1.05, 1.5) * 2**32 / intervals)
            self.out_rate = int(rng.uniform(1.2, 2.5) * 2**32 / intervals)
        else:
            self.in_rate = rng.randint(100_000, 40_000_000)
            self.out_rate = rng.randint(1_000_000, 400_000_000)
        self.in_total = 0
        self.out_total = 0
        self.session_time = 0
        if now is None:
            now = int(time.time())
        # back-date the start so that the Stop's Event-Timestamp is ~now
        self.start_ts = now - intervals * interval

    @property
    def done(self) -> bool:
        return self.step >= self.steps

    @property
    def status_type(self) -> int:
        if self.step == 0:
            return STATUS_START
        if self.step == self.steps - 1:
            return STATUS_STOP
        return STATUS_INTERIM_UPDATE

    def attributes(self) -> bytes:
        """Attributes of the current packet (without an authenticator)."""
        step = self.step
        if step == 0:
            return (_pack_int(ACCT_STATUS_TYPE, 6, STATUS_START) + self.fixed
                    + _pack_int(EVENT_TIMESTAMP, 6, self.start_ts))
        stop = step == self.steps - 1
        i_tot = self.in_total
        o_tot = self.out_total
        parts = [
            _pack_int(ACCT_STATUS_TYPE, 6,
                      STATUS_STOP if stop else STATUS_INTERIM_UPDATE),
            self.fixed,
            _pack_int(ACCT_SESSION_TIME, 6, self.session_time),
            _pack_int(ACCT_INPUT_OCTETS, 6, i_tot & _U32),
            _pack_int(ACCT_OUTPUT_OCTETS, 6, o_tot & _U32),
            _pack_int(ACCT_INPUT_PACKETS, 6, (i_tot // 700 + step) & _U32),
            _pack_int(ACCT_OUTPUT_PACKETS, 6, (o_tot // 1200 + step) & _U32),
        ]
        if i_tot > _U32:
            parts.append(_pack_int(ACCT_INPUT_GIGAWORDS, 6, i_tot >> 32))
        if o_tot > _U32:
            parts.append(_pack_int(ACCT_OUTPUT_GIGAWORDS, 6, o_tot >> 32))
        parts.append(_pack_int(EVENT_TIMESTAMP, 6,
                               self.start_ts + self.session_time))
        if stop:
            parts.append(_pack_int(ACCT_TERMINATE_CAUSE, 6,
                                   TERMINATE_USER_REQUEST))
        return b''.join(parts)

    def advance(self) -> None:
        """Move to the next packet of the session."""
        self.step += 1
        if self.step >= self.steps:
            return
        rnd = self.rng.random
        self.in_total += int(self.in_rate * (1.0 + 0.3 * rnd())) + 1
        self.out_total += int(self.out_rate * (1.0 + 0.3 * rnd())) + 1
        if self.step == self.steps - 1:
            # the Stop comes part-way into the next interval
            self.session_time += max(1, int(self.interval * rnd()))
        else:
            self.session_time += self.interval


# --------------------------------------------------------------------------
# request sources

class _AuthSource:
    """Access-Request or Status-Server packets over the user set."""

    def __init__(self, cfg: argparse.Namespace, users: Sequence[bytes],
                 passwords: Sequence[bytes], rng: random.Random):
        self.secret = cfg.secret
        self.secret_md5 = _md5(cfg.secret)
        self.nas_attr = nas_address_attr(cfg.nas_ip)
        self.status = cfg.mode == 'status'
        self.chap = cfg.auth == 'chap'
        self.user_attrs = [attr(USER_NAME, u) for u in users]
        self.passwords = list(passwords)
        self.first_user = cfg.first_user
        self.n_users = len(self.user_attrs)
        self.random_order = cfg.user_order == 'random'
        self.rng = rng
        self.cursor = 0
        self.budget = 0          # remaining requests, or -1 for no limit
        self.end_time = math.inf

    def start_phase(self, requests: int | None, end_time: float) -> None:
        self.budget = -1 if requests is None else requests
        self.end_time = end_time

    def next(self, ident: int, now: float) -> tuple[bytes, None] | None:
        if self.budget == 0 or now >= self.end_time:
            return None
        if self.budget > 0:
            self.budget -= 1
        randbytes = self.rng.randbytes
        authenticator = randbytes(16)
        if self.status:
            return build_status_server(ident, authenticator, self.secret,
                                       nas_attr=self.nas_attr), None
        if self.random_order:
            i = self.rng.randrange(self.n_users)
        else:
            i = self.cursor
            self.cursor = i + 1 if i + 1 < self.n_users else 0
        secret = self.secret
        if self.chap:
            challenge = randbytes(16)
            ident_b = bytes((ident,))
            attrs = (self.user_attrs[i]
                     + bytes((CHAP_PASSWORD, 19)) + ident_b
                     + _md5(ident_b + self.passwords[i] + challenge).digest()
                     + bytes((CHAP_CHALLENGE, 18)) + challenge)
        else:
            hidden = hide_password(self.passwords[i], authenticator,
                                   self.secret_md5)
            attrs = (self.user_attrs[i]
                     + bytes((USER_PASSWORD, len(hidden) + 2)) + hidden)
        attrs += self.nas_attr + _pack_int(NAS_PORT, 6,
                                           (self.first_user + i) & _U32)
        header = _HDR.pack(ACCESS_REQUEST, ident, 38 + len(attrs)) \
            + authenticator
        mac = _hmac_digest(secret, header + _MA_ZERO + attrs, 'md5')
        return header + _MA_HDR + mac + attrs, None

    def finished(self, session: Any) -> None:
        """Nothing to do: auth and status requests have no session."""


class _AcctSource:
    """Accounting-Request packets from concurrently running sessions."""

    def __init__(self, cfg: argparse.Namespace, users: Sequence[bytes],
                 rng: random.Random):
        self.secret = cfg.secret
        self.nas_attr = nas_address_attr(cfg.nas_ip)
        self.users = list(users)
        self.n_users = len(self.users)
        self.random_order = cfg.user_order == 'random'
        self.rng = rng
        self.interims = cfg.interims
        self.interval = cfg.interim_interval
        self.heavy_fraction = cfg.gigaword_fraction
        self.max_active = cfg.sessions or cfg.window
        self.prefix = cfg.session_prefix
        self.steps = cfg.interims + 2
        self.cursor = 0
        self.counter = 0         # sessions created over the run
        self.ready: collections.deque[AcctSession] = collections.deque()
        self.active = 0
        self.new_budget = 0      # sessions still to start, -1 for no limit
        self.end_time = math.inf
        self.started = 0
        self.completed = 0

    def start_phase(self, requests: int | None, end_time: float) -> None:
        # whole sessions: the request count is rounded up to a multiple of
        # interims + 2
        self.new_budget = (-1 if requests is None
                           else -(-requests // self.steps))
        self.end_time = end_time
        self.started = 0
        self.completed = 0

    def _new_session(self) -> AcctSession:
        n = self.counter
        self.counter = n + 1
        if self.random_order:
            i = self.rng.randrange(self.n_users)
        else:
            i = self.cursor
            self.cursor = i + 1 if i + 1 < self.n_users else 0
        rng = self.rng
        mac = n & 0xFFFFFFFF
        return AcctSession(
            f'{self.prefix}{n:08X}', self.users[i],
            nas_attr=self.nas_attr, nas_port=n & 0xFFFFFF,
            framed_ip=0x0A000000 | (n % 0xFFFFFE + 1),
            calling_station_id="-".join(
                f"{b:02X}" for b in (2, 0, mac >> 24, (mac >> 16) & 0xFF, (mac >> 8) & 0xFF,
                                     mac & 0xFF)),
            interims=self.interims, interval=self.interval, rng=rng,
            heavy=rng.random() < self.heavy_fraction)

    def next(self, ident: int,
             now: float) -> tuple[bytes, AcctSession] | None:
        if self.ready:
            session = self.ready.popleft()
        elif (self.active < self.max_active and self.new_budget != 0
              and now < self.end_time):
            if self.new_budget > 0:
                self.new_budget -= 1
            session = self._new_session()
            self.active += 1
            self.started += 1
        else:
            return None
        return build_accounting_request(ident, self.secret,
                                        session.attributes()), session

    def finished(self, session: AcctSession) -> None:
        """The session's current packet was answered or lost."""
        session.advance()
        if session.step >= session.steps:
            self.active -= 1
            self.completed += 1
        else:
            self.ready.append(session)


# --------------------------------------------------------------------------
# the engine

class _Req:
    __slots__ = ('slot', 'pkt', 'auth', 't0', 'tries', 'session')

    def __init__(self, slot: int, pkt: bytes, t0: float, session: Any):
        self.slot = slot
        self.pkt = pkt
        self.auth = pkt[4:20]
        self.t0 = t0
        self.tries = 0
        self.session = session


class Stats:
    """Counters of one measured phase."""

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self.lost = 0
        self.retransmissions = 0
        self.bad_authenticators = 0
        self.late_replies = 0
        self.unmatched_replies = 0
        self.malformed_replies = 0
        self.send_errors = 0
        self.codes: collections.Counter[int] = collections.Counter()
        self.latencies = array.array('d')
        self.elapsed = 0.0
        self.interrupted = False
        self.sessions_started = 0
        self.sessions_completed = 0


def _percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    n = len(sorted_values)
    rank = max(1, math.ceil(pct / 100.0 * n))
    return sorted_values[min(rank, n) - 1]


class LoadGenerator:
    """Sockets, id allocation and the send/receive loop."""

    def __init__(self, cfg: argparse.Namespace):
        self.cfg = cfg
        self.window = cfg.window
        self.timeout = cfg.timeout
        self.retries = cfg.retries
        self.secret = cfg.secret
        seed = cfg.seed
        self.rng = random.Random(seed)
        users = [cfg.user_format.format(i=i).encode('utf-8')
                 for i in range(cfg.first_user, cfg.first_user + cfg.users)]
        if cfg.mode == 'acct':
            self.source: Any = _AcctSource(cfg, users, self.rng)
        else:
            passwords = [cfg.password_format.format(i=i).encode('utf-8')
                         for i in range(cfg.first_user,
                                        cfg.first_user + cfg.users)]
            self.source = _AuthSource(cfg, users, passwords, self.rng)

        infos = socket.getaddrinfo(cfg.host, cfg.port, 0, socket.SOCK_DGRAM,
                                   socket.IPPROTO_UDP)
        family, _, _, _, address = infos[0]
        self.address = address
        self.n_sockets = (self.window + 255) // 256
        self.sockets: list[socket.socket] = []
        self.selector = selectors.DefaultSelector()
        for i in range(self.n_sockets):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
            if cfg.bind:
                sock.bind((cfg.bind, 0))
            # a connected socket: cheaper send(), and the kernel drops
            # datagrams from other sources
            sock.connect(address)
            sock.setblocking(False)
            self.sockets.append(sock)
            self.selector.register(sock, selectors.EVENT_READ, i)
        n_slots = 256 * self.n_sockets
        self.pending: list[_Req | None] = [None] * n_slots
        # Request Authenticator of the last request that used each slot, to
        # tell late/duplicate replies from bad ones
        self.prev_auth: list[bytes | None] = [None] * n_slots
        # FIFO of free (socket << 8 | id) slots, interleaved over sockets so
        # an id is reused as late as possible
        self.free = collections.deque(
            (s << 8) | i for i in range(256) for s in range(self.n_sockets))
        self.deadlines: collections.deque[tuple[float, _Req, int]] = \
            collections.deque()
        self.outstanding = 0

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run_phase(self, requests: int | None,
                  duration: float | None) -> Stats:
        """Send ``requests`` requests (or for ``duration`` seconds) and wait
        for all of them to be answered or lost."""
        stats = Stats()
        source = self.source
        start = time.perf_counter()
        source.start_phase(
            requests, math.inf if duration is None else start + duration)
        try:
            self._loop(stats)
        except KeyboardInterrupt:
            stats.interrupted = True
            # whatever is still outstanding never got an answer
            for slot, req in enumerate(self.pending):
                if req is not None:
                    self.pending[slot] = None
                    self.prev_auth[slot] = req.auth
                    self.free.append(slot)
                    stats.lost += 1
            self.outstanding = 0
            self.deadlines.clear()
        stats.elapsed = time.perf_counter() - start
        if isinstance(source, _AcctSource):
            stats.sessions_started = source.started
            stats.sessions_completed = source.completed
        return stats

    def _loop(self, stats: Stats) -> None:
        # Hot loop: everything used per packet is bound to a local name.
        perf_counter = time.perf_counter
        md5 = _md5
        secret = self.secret
        window = self.window
        timeout = self.timeout
        retries = self.retries
        pending = self.pending
        prev_auth = self.prev_auth
        free = self.free
        free_popleft = free.popleft
        free_append = free.append
        deadlines = self.deadlines
        dl_append = deadlines.append
        dl_popleft = deadlines.popleft
        sends = [s.send for s in self.sockets]
        recvs = [s.recv for s in self.sockets]
        select = self.selector.select
        source = self.source
        source_next = source.next
        source_finished = source.finished
        codes = stats.codes
        lat_append = stats.latencies.append
        outstanding = self.outstanding

        sent = answered = lost = retrans = 0
        bad = late = unmatched = malformed = send_errors = 0
        try:
            while True:
                # -- fill the window
                now = perf_counter()
                while outstanding < window:
                    slot = free_popleft()
                    item = source_next(slot & 0xFF, now)
                    if item is None:
                        free.appendleft(slot)
                        break
                    pkt, session = item
                    t0 = perf_counter()
                    try:
                        sends[slot >> 8](pkt)
                    except OSError:
                        # ENOBUFS, ECONNREFUSED from an earlier ICMP error,
                        # ...: the request times out and is retransmitted
                        send_errors += 1
                    req = _Req(slot, pkt, t0, session)
                    pending[slot] = req
                    dl_append((t0 + timeout, req, 0))
                    outstanding += 1
                    sent += 1
                if outstanding == 0:
                    break

                # -- wait for replies or the next retransmission deadline
                while deadlines:
                    head = deadlines[0]
                    req = head[1]
                    if pending[req.slot] is req and req.tries == head[2]:
                        break
                    dl_popleft()          # already answered or resent
                wait = deadlines[0][0] - perf_counter() if deadlines else 0.0
                events = select(wait if wait > 0.0 else 0.0)

                # -- receive
                for key, _ in events:
                    si = key.data
                    recv = recvs[si]
                    base = si << 8
                    while True:
                        try:
                            data = recv(MAX_PACKET)
                        except BlockingIOError:
                            break
                        except InterruptedError:
                            continue
                        except OSError:
                            # ICMP port unreachable and the like
                            continue
                        n = len(data)
                        if n < 20:
                            malformed += 1
                            continue
                        length = (data[2] << 8) | data[3]
                        if length < 20 or length > n:
                            malformed += 1
                            continue
                        if length < n:
                            data = data[:length]
                        slot = base | data[1]
                        req = pending[slot]
                        head4 = data[:4]
                        tail = data[20:]
                        rauth = data[4:20]
                        if req is not None and md5(
                                head4 + req.auth + tail + secret
                        ).digest() == rauth:
                            lat_append(perf_counter() - req.t0)
                            codes[data[0]] += 1
                            answered += 1
                            pending[slot] = None
                            prev_auth[slot] = req.auth
                            free_append(slot)
                            outstanding -= 1
                            if req.session is not None:
                                source_finished(req.session)
                            continue
                        pa = prev_auth[slot]
                        if pa is not None and md5(
                                head4 + pa + tail + secret
                        ).digest() == rauth:
                            late += 1
                        elif req is not None:
                            bad += 1
                        else:
                            unmatched += 1

                # -- retransmit or give up timed-out requests
                now = perf_counter()
                while deadlines:
                    deadline, req, tries = deadlines[0]
                    slot = req.slot
                    if pending[slot] is not req or req.tries != tries:
                        dl_popleft()
                        continue
                    if deadline > now:
                        break
                    dl_popleft()
                    if tries < retries:
                        req.tries = tries + 1
                        retrans += 1
                        try:
                            sends[slot >> 8](req.pkt)
                        except OSError:
                            send_errors += 1
                        dl_append((now + timeout, req, tries + 1))
                    else:
                        lost += 1
                        pending[slot] = None
                        prev_auth[slot] = req.auth
                        free_append(slot)
                        outstanding -= 1
                        if req.session is not None:
                            source_finished(req.session)
        finally:
            self.outstanding = outstanding
            stats.sent += sent
            stats.answered += answered
            stats.lost += lost
            stats.retransmissions += retrans
            stats.bad_authenticators += bad
            stats.late_replies += late
            stats.unmatched_replies += unmatched
            stats.malformed_replies += malformed
            stats.send_errors += send_errors


# --------------------------------------------------------------------------
# command line

def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1: {text}')
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must not be negative: {text}')
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f'must be a positive number: {text}')
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'must be between 0 and 1: {text}')
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='loadgen.py',
        description='Windowed UDP RADIUS load generator (auth, accounting '
                    'or Status-Server traffic).',
        epilog='Exit status: 0 all requests answered, 1 some lost, '
               '2 bad arguments.')
    p.add_argument('--mode', choices=('auth', 'acct', 'status'),
                   default='auth', help='traffic type (default: auth)')
    p.add_argument('--host', default='127.0.0.1',
                   help='server address or name (default: 127.0.0.1)')
    p.add_argument('--port', type=int, default=None,
                   help='server port (default: 1812, 1813 for acct)')
    p.add_argument('--bind', default=None, metavar='ADDR',
                   help='local address to send from')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--secret', help='shared secret')
    g.add_argument('--secret-file', metavar='PATH',
                   help='read the shared secret from the first line of PATH')
    p.add_argument('--window', type=_positive_int, default=64,
                   help='maximum outstanding requests (default: 64)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--requests', type=_positive_int, default=None,
                   help='requests to send (default: 20000; acct mode: '
                        'rounded up to whole sessions)')
    g.add_argument('--duration', type=_positive_float, default=None,
                   metavar='SECONDS',
                   help='send new requests for this long instead')
    p.add_argument('--warmup', type=_non_negative_int, default=0,
                   metavar='N', help='requests sent first and not counted')
    p.add_argument('--timeout', type=_positive_float, default=2.0,
                   help='seconds before a retransmission (default: 2.0)')
    p.add_argument('--retries', type=_non_negative_int, default=2,
                   help='retransmissions before a request is lost '
                        '(default: 2)')
    p.add_argument('--users', type=_positive_int, default=1000,
                   help='size of the user set (default: 1000)')
    p.add_argument('--first-user', type=_non_negative_int, default=0,
                   metavar='I', help='index of the first user (default: 0)')
    p.add_argument('--user-format', default='bench{i:06d}',
                   help='User-Name template (default: bench{i:06d})')
    p.add_argument('--password-format', default='bench{i:06d}',
                   help='password template (default: bench{i:06d})')
    p.add_argument('--user-order', choices=('roundrobin', 'random'),
                   default='roundrobin',
                   help='how users are picked (default: roundrobin)')
    p.add_argument('--auth', choices=('pap', 'chap'), default='pap',
                   help='auth mode credential (default: pap)')
    p.add_argument('--nas-ip', default='127.0.0.1',
                   help='NAS-IP-Address (NAS-IPv6-Address for an IPv6 '
                        'address; default: 127.0.0.1)')
    p.add_argument('--interims', type=_non_negative_int, default=3,
                   metavar='K',
                   help='acct: Interim-Updates per session (default: 3)')
    p.add_argument('--interim-interval', type=_positive_int, default=300,
                   metavar='SECONDS',
                   help='acct: Acct-Session-Time step (default: 300)')
    p.add_argument('--sessions', type=_positive_int, default=None,
                   help='acct: concurrent sessions (default: the window)')
    p.add_argument('--gigaword-fraction', type=_fraction, default=0.05,
                   metavar='F',
                   help='acct: fraction of sessions moving more than 4 GiB '
                        'each way, so they send Gigawords (default: 0.05)')
    p.add_argument('--session-prefix', default=None,
                   help='acct: Acct-Session-Id prefix (default: random)')
    p.add_argument('--seed', type=int, default=None,
                   help='seed for authenticators, user order and traffic')
    p.add_argument('--json', action='store_true',
                   help='print the result as one JSON object')
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    cfg = parser.parse_args(argv)
    if cfg.secret_file is not None:
        try:
            with open(cfg.secret_file, 'rb') as f:
                line = f.readline()
        except OSError as e:
            parser.error(f'--secret-file: {e}')
        cfg.secret = line.rstrip(b'\r\n')
    elif cfg.secret is not None:
        cfg.secret = cfg.secret.encode('utf-8')
    else:
        parser.error('one of --secret or --secret-file is required')
    if not cfg.secret:
        parser.error('the secret must not be empty')
    if cfg.port is None:
        cfg.port = 1813 if cfg.mode == 'acct' else 1812
    if not 0 < cfg.port < 65536:
        parser.error(f'--port out of range: {cfg.port}')
    if cfg.requests is None and cfg.duration is None:
        cfg.requests = 20000
    try:
        nas_address_attr(cfg.nas_ip)
    except ValueError:
        parser.error(f'--nas-ip is not an IP address: {cfg.nas_ip}')
    for option, fmt in (('--user-format', cfg.user_format),
                        ('--password-format', cfg.password_format)):
        try:
            value = fmt.format(i=cfg.first_user + cfg.users - 1)
        except (KeyError, IndexError, ValueError) as e:
            parser.error(f'{option} {fmt!r}: {e!r} (use {{i}} for the '
                         f'user index)')
        if option == '--user-format' and not 0 < len(value.encode()) <= 253:
            parser.error('User-Name must be 1 to 253 octets')
        if option == '--password-format' and len(value.encode()) > 128:
            parser.error('passwords must be at most 128 octets')
    if cfg.session_prefix is None:
        cfg.session_prefix = os.urandom(4).hex().upper() + '-'
    if len(cfg.session_prefix.encode()) > 200:
        parser.error('--session-prefix is too long')
    return cfg


def _result(cfg: argparse.Namespace, gen: LoadGenerator,
            stats: Stats) -> dict[str, Any]:
    lat = sorted(stats.latencies)
    latency: dict[str, float] | None = None
    if lat:
        latency = {
            'p50': round(_percentile(lat, 50) * 1000.0, 3),
            'p90': round(_percentile(lat, 90) * 1000.0, 3),
            'p99': round(_percentile(lat, 99) * 1000.0, 3),
            'max': round(lat[-1] * 1000.0, 3),
            'mean': round(sum(lat) / len(lat) * 1000.0, 3),
        }
    elapsed = stats.elapsed
    result: dict[str, Any] = {
        'mode': cfg.mode,
        'auth': cfg.auth if cfg.mode == 'auth' else None,
        'server': f'{cfg.host}:{cfg.port}',
        'window': cfg.window,
        'sockets': gen.n_sockets,
        'sent': stats.sent,
        'answered': stats.answered,
        'lost': stats.lost,
        'retransmissions': stats.retransmissions,
        'bad_authenticators': stats.bad_authenticators,
        'late_replies': stats.late_replies,
        'unmatched_replies': stats.unmatched_replies,
        'malformed_replies': stats.malformed_replies,
        'send_errors': stats.send_errors,
        'replies': {CODE_NAMES.get(code, f'code-{code}'): count
                    for code, count in sorted(stats.codes.items())},
        'elapsed_s': round(elapsed, 6),
        'requests_per_s': round(stats.answered / elapsed, 1)
        if elapsed > 0 else 0.0,
        'latency_ms': latency,
        'interrupted': stats.interrupted,
    }
    if cfg.mode == 'acct':
        result['sessions_started'] = stats.sessions_started
        result['sessions_completed'] = stats.sessions_completed
    return result


def format_text(result: dict[str, Any]) -> str:
    mode = result['mode'] + (f" ({result['auth']})" if result['auth'] else '')
    lines = [
        f"mode                {mode} -> {result['server']}, window "
        f"{result['window']}, {result['sockets']} socket(s)",
        f"sent                {result['sent']}"
        f" (+{result['retransmissions']} retransmissions)",
        f"answered            {result['answered']}",
        f"lost                {result['lost']}",
        f"bad authenticators  {result['bad_authenticators']}",
    ]
    extra = [(k.replace('_', ' '), result[k]) for k in
             ('late_replies', 'unmatched_replies', 'malformed_replies',
              'send_errors') if result[k]]
    for name, value in extra:
        lines.append(f'{name:<20}{value}')
    if 'sessions_started' in result:
        lines.append(f"sessions            {result['sessions_started']} "
                     f"started, {result['sessions_completed']} completed")
    replies = result['replies']
    lines.append('replies             ' + (', '.join(
        f'{name} {count}' for name, count in replies.items()) or 'none'))
    lines.append(f"elapsed             {result['elapsed_s']:.3f} s")
    lines.append(f"rate                {result['requests_per_s']:.1f} "
                 f"answered/s")
    lat = result['latency_ms']
    if lat:
        lines.append(f"latency ms          p50 {lat['p50']:.3f}  "
                     f"p90 {lat['p90']:.3f}  p99 {lat['p99']:.3f}  "
                     f"max {lat['max']:.3f}")
    else:
        lines.append('latency ms          n/a')
    if result['interrupted']:
        lines.append('interrupted         yes')
    return '\n'.join(lines)


def run(cfg: argparse.Namespace) -> dict[str, Any]:
    """Run the warm-up and the measured phase; return the result dict."""
    with LoadGenerator(cfg) as gen:
        if cfg.warmup:
            warm = gen.run_phase(cfg.warmup, None)
            if warm.interrupted:
                raise KeyboardInterrupt
        stats = gen.run_phase(cfg.requests, cfg.duration)
        return _result(cfg, gen, stats)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        result = run(cfg)
    except KeyboardInterrupt:
        print('interrupted during warm-up', file=sys.stderr)
        return 1
    except OSError as e:
        print(f'loadgen: {e}', file=sys.stderr)
        return 1
    if cfg.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(format_text(result))
    sys.stdout.flush()
    return 0 if result['lost'] == 0 and not result['interrupted'] else 1


if __name__ == '__main__':
    sys.exit(main())
