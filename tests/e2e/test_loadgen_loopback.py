"""benchmarks/loadgen.py end to end: the whole generator against a small
pyrad-based responder on 127.0.0.1 (a port the kernel chose)."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from pyrad import packet

from tests.support.loadgen import SECRET, dictionary, loadgen


@pytest.fixture(scope='module')
def rdict():
    return dictionary()


class Responder:
    """A tiny RADIUS server on 127.0.0.1 built with pyrad.

    Access-Request: Access-Accept if the password (PAP or CHAP) equals the
    User-Name, else Access-Reject.  Accounting-Request with a valid Request
    Authenticator: Accounting-Response.  Status-Server: Access-Accept.
    Requests with a bad authenticator or Message-Authenticator are dropped.
    ``drop_first`` drops the first copy of every request (to force
    retransmissions); ``silent`` never answers; ``reply_secret`` signs the
    replies with another secret.
    """

    def __init__(self, rdict, secret=SECRET, drop_first=False, silent=False,
                 reply_secret=None):
        self.rdict = rdict
        self.secret = secret
        self.reply_secret = reply_secret
        self.drop_first = drop_first
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.received = 0
        self.invalid = 0
        self.seen: set[bytes] = set()
        self.clients: set[tuple[str, int]] = set()
        self.sessions: dict[str, list[str]] = {}
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()
        self.sock.close()

    def _reply(self, data):
        code = data[0]
        if code == packet.AccountingRequest:
            req = packet.AcctPacket(packet=data, secret=self.secret,
                                    dict=self.rdict)
            if not req.VerifyAcctRequest():
                return None
            self.sessions.setdefault(req['Acct-Session-Id'][0], []).append(
                req['Acct-Status-Type'][0])
            return self._sign(req.CreateReply())
        req = packet.AuthPacket(packet=data, secret=self.secret,
                                dict=self.rdict)
        if not (req.message_authenticator
                and req.verify_message_authenticator()):
            return None
        reply = req.CreateReply()
        if code == packet.AccessRequest:
            name = req['User-Name'][0]
            if 'User-Password' in req:
                ok = req.PwDecrypt(req['User-Password'][0]) == name
            else:
                ok = req.VerifyChapPasswd(name)
            if not ok:
                reply.code = packet.AccessReject
        return self._sign(reply)

    def _sign(self, reply):
        if self.reply_secret is not None:
            reply.secret = self.reply_secret
        return reply.ReplyPacket()

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.received += 1
            self.clients.add(peer)
            if self.silent:
                continue
            if self.drop_first and data not in self.seen:
                self.seen.add(data)
                continue
            out = self._reply(data)
            if out is None:
                self.invalid += 1
                continue
            self.sock.sendto(out, peer)


def _run(capsys, *args):
    code = loadgen.main(['--json', '--seed', '11', *map(str, args)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _assert_latency(result):
    lat = result['latency_ms']
    assert lat is not None
    assert 0 < lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['max']
    assert result['elapsed_s'] > 0
    assert result['requests_per_s'] > 0


@pytest.mark.parametrize('auth_method', ['pap', 'chap'])
def test_end_to_end_auth(rdict, capsys, auth_method):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--mode', 'auth', '--auth', auth_method,
            '--port', server.port, '--secret', SECRET.decode(),
            '--window', 16, '--requests', 300, '--users', 50,
            '--user-format', 'u{i}', '--password-format', 'u{i}',
            '--warmup', 20)
    assert code == 0
    assert result['sent'] == result['answered'] == 300
    assert result['lost'] == 0
    assert result['bad_authenticators'] == 0
    assert result['retransmissions'] == 0
    assert result['replies'] == {'Access-Accept': 300}
    assert server.received == 320 and server.invalid == 0
    _assert_latency(result)


def test_end_to_end_reject_counted(rdict, capsys):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--port', server.port, '--secret', SECRET.decode(),
            '--window', 16, '--requests', 40, '--users', 4,
            '--user-format', 'u{i}', '--password-format', 'wrong{i}')
    assert code == 0
    assert result['replies'] == {'Access-Reject': 40}


def test_end_to_end_acct_sessions(rdict, capsys):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--mode', 'acct', '--port', server.port,
            '--secret', SECRET.decode(), '--window', 16,
            '--requests', 300, '--interims', 3, '--users', 20,
            '--gigaword-fraction', 0.5, '--session-prefix', 'T-')
    assert code == 0
    assert result['sent'] == result['answered'] == 300
    assert result['replies'] == {'Accounting-Response': 300}
    assert result['sessions_started'] == result['sessions_completed'] == 60
    assert server.invalid == 0
    assert len(server.sessions) == 60
    # one packet of a session at a time, so the server sees them in order
    for session_id, statuses in server.sessions.items():
        assert session_id.startswith('T-')
        assert statuses == ['Start', 'Interim-Update', 'Interim-Update',
                            'Interim-Update', 'Stop']
    _assert_latency(result)


def test_end_to_end_status(rdict, capsys):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--mode', 'status', '--port', server.port,
            '--secret', SECRET.decode(), '--window', 8, '--requests', 50)
    assert code == 0
    assert result['answered'] == 50
    assert result['replies'] == {'Access-Accept': 50}


def test_window_larger_than_256_uses_several_sockets(rdict, capsys):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--mode', 'status', '--port', server.port,
            '--secret', SECRET.decode(), '--window', 300,
            '--requests', 600)
    assert code == 0
    assert result['sockets'] == 2
    assert result['answered'] == 600 and result['lost'] == 0
    assert len(server.clients) == 2


def test_retransmission_reuses_packet_and_times_from_first_send(
        rdict, capsys):
    with Responder(rdict, drop_first=True) as server:
        code, result = _run(
            capsys, '--port', server.port, '--secret', SECRET.decode(),
            '--window', 16, '--requests', 32, '--timeout', 0.2,
            '--retries', 2, '--users', 4, '--user-format', 'u{i}',
            '--password-format', 'u{i}')
    assert code == 0
    assert result['answered'] == 32 and result['lost'] == 0
    # the retransmitted copy was byte-identical, so the responder (which
    # drops only the first copy of each distinct packet) answered it
    assert result['retransmissions'] == 32
    assert server.received == 64
    assert result['latency_ms']['p50'] >= 200.0


def test_lost_requests_exit_1(rdict, capsys):
    with Responder(rdict, silent=True) as server:
        code, result = _run(
            capsys, '--port', server.port, '--secret', SECRET.decode(),
            '--window', 4, '--requests', 8, '--timeout', 0.02,
            '--retries', 1)
    assert code == 1
    assert result['sent'] == 8 and result['lost'] == 8
    assert result['answered'] == 0 and result['retransmissions'] == 8
    assert result['latency_ms'] is None
    assert server.received == 16


def test_bad_response_authenticator_counted(rdict, capsys):
    # the responder checks requests with the right secret but signs its
    # replies with another one
    with Responder(rdict, reply_secret=b'not-the-secret') as server:
        code, result = _run(
            capsys, '--mode', 'status', '--port', server.port,
            '--secret', SECRET.decode(), '--window', 4, '--requests', 4,
            '--timeout', 0.2, '--retries', 1)
    assert code == 1
    assert result['answered'] == 0 and result['lost'] == 4
    assert result['replies'] == {}
    # each request and its retransmission got a reply that was discarded;
    # one arriving after its request was given up is "unmatched"
    assert result['bad_authenticators'] >= 4
    assert result['bad_authenticators'] + result['unmatched_replies'] == 8


def test_duration_mode(rdict, capsys):
    with Responder(rdict) as server:
        code, result = _run(
            capsys, '--mode', 'status', '--port', server.port,
            '--secret', SECRET.decode(), '--window', 4, '--duration', 0.3)
    assert code == 0
    assert result['sent'] == result['answered'] > 0
    assert result['elapsed_s'] >= 0.3


def test_text_output(rdict, capsys):
    with Responder(rdict) as server:
        code = loadgen.main(['--mode', 'status', '--port', str(server.port),
                             '--secret', SECRET.decode(), '--requests', '20'])
    out = capsys.readouterr().out
    assert code == 0
    assert 'answered            20' in out
    assert 'latency ms          p50' in out
