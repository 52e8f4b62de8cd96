"""Tests of benchmarks/loadgen.py, the standalone RADIUS load generator.

The packets it builds by hand are decoded and verified with pyrad, and the
whole generator is run against a small pyrad-based responder on loopback.
"""

from __future__ import annotations

import importlib.util
import io
import json
import random
import socket
import sys
import threading
from pathlib import Path

import pytest
from pyrad import packet
from pyrad.dictionary import Dictionary

LOADGEN_PATH = Path(__file__).resolve().parents[2] / 'benchmarks' / 'loadgen.py'


def _load_loadgen():
    spec = importlib.util.spec_from_file_location('aaad_bench_loadgen',
                                                  LOADGEN_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


loadgen = _load_loadgen()

SECRET = b'bench-secret'

DICTIONARY = """
ATTRIBUTE   User-Name               1   string
ATTRIBUTE   User-Password           2   octets
ATTRIBUTE   CHAP-Password           3   octets
ATTRIBUTE   NAS-IP-Address          4   ipaddr
ATTRIBUTE   NAS-Port                5   integer
ATTRIBUTE   Framed-IP-Address       8   ipaddr
ATTRIBUTE   Calling-Station-Id      31  string
ATTRIBUTE   Acct-Status-Type        40  integer
ATTRIBUTE   Acct-Input-Octets       42  integer
ATTRIBUTE   Acct-Output-Octets      43  integer
ATTRIBUTE   Acct-Session-Id         44  string
ATTRIBUTE   Acct-Session-Time       46  integer
ATTRIBUTE   Acct-Input-Packets      47  integer
ATTRIBUTE   Acct-Output-Packets     48  integer
ATTRIBUTE   Acct-Terminate-Cause    49  integer
ATTRIBUTE   Acct-Input-Gigawords    52  integer
ATTRIBUTE   Acct-Output-Gigawords   53  integer
ATTRIBUTE   Event-Timestamp         55  date
ATTRIBUTE   CHAP-Challenge          60  octets
ATTRIBUTE   Message-Authenticator   80  octets
ATTRIBUTE   NAS-IPv6-Address        95  ipv6addr

VALUE   Acct-Status-Type        Start           1
VALUE   Acct-Status-Type        Stop            2
VALUE   Acct-Status-Type        Interim-Update  3
VALUE   Acct-Terminate-Cause    User-Request    1
"""


@pytest.fixture(scope='module')
def rdict():
    return Dictionary(io.StringIO(DICTIONARY))


def _nas():
    return loadgen.nas_address_attr('192.0.2.7')


# --------------------------------------------------------------------------
# packet builders, verified with pyrad

@pytest.mark.parametrize('password', [
    'bench000042', '', 'x' * 16, 'exactly-sixteen!' * 2, 'p' * 128, 'pässwörd'])
def test_pap_access_request_decodes(rdict, password):
    auth = random.Random(1).randbytes(16)
    raw = loadgen.build_access_request(
        42, auth, SECRET, 'bench000042', password,
        nas_attr=_nas(), nas_port=42)
    pkt = packet.AuthPacket(packet=raw, secret=SECRET, dict=rdict)
    assert pkt.code == packet.AccessRequest
    assert pkt.id == 42
    assert pkt.authenticator == auth
    assert pkt['User-Name'] == ['bench000042']
    assert pkt['NAS-IP-Address'] == ['192.0.2.7']
    assert pkt['NAS-Port'] == [42]
    hidden = pkt['User-Password'][0]
    assert len(hidden) % 16 == 0 and 16 <= len(hidden) <= 128
    assert pkt.PwDecrypt(hidden) == password
    assert pkt.message_authenticator
    assert pkt.verify_message_authenticator()
    # the Message-Authenticator really covers the packet
    tampered = bytearray(raw)
    tampered[-1] ^= 1
    bad = packet.AuthPacket(packet=bytes(tampered), secret=SECRET, dict=rdict)
    assert not bad.verify_message_authenticator()
    # and the secret
    other = packet.AuthPacket(packet=raw, secret=b'other', dict=rdict)
    assert not other.verify_message_authenticator()


def test_hide_password_matches_pyrad(rdict):
    auth = bytes(range(16))
    pkt = packet.AuthPacket(secret=SECRET, authenticator=auth, dict=rdict)
    for password in ('a', 'bench000001', 'y' * 17, 'z' * 128):
        assert loadgen.hide_password(password, auth, SECRET) == \
            pkt.PwCrypt(password)


def test_chap_access_request_decodes(rdict):
    rng = random.Random(2)
    auth, challenge = rng.randbytes(16), rng.randbytes(16)
    raw = loadgen.build_access_request(
        7, auth, SECRET, 'bench000007', 'bench000007',
        nas_attr=_nas(), nas_port=7, auth='chap', challenge=challenge)
    pkt = packet.AuthPacket(packet=raw, secret=SECRET, dict=rdict)
    assert 'User-Password' not in pkt
    assert pkt['CHAP-Challenge'] == [challenge]
    assert pkt['CHAP-Password'][0][0] == 7
    assert pkt.VerifyChapPasswd('bench000007')
    assert not pkt.VerifyChapPasswd('wrong')
    assert pkt.verify_message_authenticator()


@pytest.mark.parametrize('auth_method', ['pap', 'chap'])
def test_auth_source_hot_path_matches_builder(rdict, auth_method):
    """The inlined packet construction of the generator's auth source
    produces valid packets for every user."""
    cfg = loadgen.parse_args(['--secret', SECRET.decode(), '--auth',
                              auth_method, '--users', '5', '--seed', '3',
                              '--first-user', '10'])
    users = [f'bench{i:06d}'.encode() for i in range(10, 15)]
    source = loadgen._AuthSource(cfg, users, users, random.Random(3))
    source.start_phase(7, float('inf'))
    seen = []
    for ident in range(7):
        raw, session = source.next(ident, 0.0)
        assert session is None
        pkt = packet.AuthPacket(packet=raw, secret=SECRET, dict=rdict)
        assert pkt.id == ident
        assert pkt.verify_message_authenticator()
        name = pkt['User-Name'][0]
        seen.append(name)
        if auth_method == 'pap':
            assert pkt.PwDecrypt(pkt['User-Password'][0]) == name
        else:
            assert pkt.VerifyChapPasswd(name)
        assert pkt['NAS-Port'] == [int(name[5:])]
    assert source.next(7, 0.0) is None          # budget used up
    assert seen == ['bench000010', 'bench000011', 'bench000012',
                    'bench000013', 'bench000014', 'bench000010',
                    'bench000011']


def test_status_server_decodes(rdict):
    auth = random.Random(4).randbytes(16)
    raw = loadgen.build_status_server(200, auth, SECRET, nas_attr=_nas())
    pkt = packet.AcctPacket(packet=raw, secret=SECRET, dict=rdict)
    assert pkt.code == packet.StatusServer
    assert pkt.id == 200
    assert pkt.authenticator == auth
    assert pkt.verify_message_authenticator()
    assert pkt.VerifyAcctRequest()          # pyrad checks the MA for these


def test_accounting_request_authenticator_verifies(rdict):
    attrs = (loadgen.attr_int(loadgen.ACCT_STATUS_TYPE, 1)
             + loadgen.attr(loadgen.ACCT_SESSION_ID, 'S1')
             + loadgen.attr(loadgen.USER_NAME, 'bench000001'))
    raw = loadgen.build_accounting_request(9, SECRET, attrs)
    pkt = packet.AcctPacket(packet=raw, secret=SECRET, dict=rdict)
    assert pkt.code == packet.AccountingRequest
    assert pkt.VerifyAcctRequest()
    assert not packet.AcctPacket(packet=raw, secret=b'x',
                                 dict=rdict).VerifyAcctRequest()


def test_verify_response_against_pyrad_reply(rdict):
    auth = random.Random(5).randbytes(16)
    raw = loadgen.build_access_request(
        3, auth, SECRET, 'u', 'p', nas_attr=_nas(), nas_port=1)
    req = packet.AuthPacket(packet=raw, secret=SECRET, dict=rdict)
    reply = req.CreateReply().ReplyPacket()
    assert loadgen.verify_response(reply, auth, SECRET)
    assert not loadgen.verify_response(reply, bytes(16), SECRET)
    assert not loadgen.verify_response(reply, auth, b'other')
    assert not loadgen.verify_response(reply[:19], auth, SECRET)
    # padding after the Length field is ignored
    assert loadgen.verify_response(reply + b'\0\0', auth, SECRET)


def _session(heavy, interims=3, seed=6):
    return loadgen.AcctSession(
        'ABCD-00000001', 'bench000001', nas_attr=_nas(), nas_port=1,
        framed_ip=0x0A000002, calling_station_id='02-00-00-00-00-01',
        interims=interims, interval=300, rng=random.Random(seed),
        heavy=heavy, now=1_700_000_000)


def _decode_session(rdict, session):
    packets = []
    ident = 0
    while not session.done:
        raw = loadgen.build_accounting_request(ident, SECRET,
                                               session.attributes())
        pkt = packet.AcctPacket(packet=raw, secret=SECRET, dict=rdict)
        assert pkt.VerifyAcctRequest()
        packets.append(pkt)
        session.advance()
        ident += 1
    return packets


@pytest.mark.parametrize('interims', [3, 0, 7])
def test_heavy_session_sequence(rdict, interims):
    packets = _decode_session(rdict, _session(True, interims))
    assert [p['Acct-Status-Type'][0] for p in packets] == \
        ['Start'] + ['Interim-Update'] * interims + ['Stop']
    for p in packets:
        assert p['Acct-Session-Id'] == ['ABCD-00000001']
        assert p['User-Name'] == ['bench000001']
        assert p['NAS-IP-Address'] == ['192.0.2.7']
        assert p['NAS-Port'] == [1]
        assert p['Framed-IP-Address'] == ['10.0.0.2']
        assert p['Calling-Station-Id'] == ['02-00-00-00-00-01']
    start, updates = packets[0], packets[1:]
    assert 'Acct-Session-Time' not in start
    assert 'Acct-Terminate-Cause' not in start
    assert start['Event-Timestamp'][0] == 1_700_000_000 - (interims + 1) * 300

    def total(p, direction):
        gw = p.get(f'Acct-{direction}-Gigawords', [0])[0]
        return (gw << 32) | p[f'Acct-{direction}-Octets'][0]

    previous = (0, 0, 0, start['Event-Timestamp'][0])
    for p in updates:
        current = (p['Acct-Session-Time'][0], total(p, 'Input'),
                   total(p, 'Output'), p['Event-Timestamp'][0])
        assert all(c > prev for c, prev in zip(current, previous, strict=False)), \
            (previous, current)
        assert current[3] == start['Event-Timestamp'][0] + current[0]
        previous = current
    stop = packets[-1]
    assert stop['Acct-Terminate-Cause'] == ['User-Request']
    assert all('Acct-Terminate-Cause' not in p for p in packets[:-1])
    # the totals crossed 2**32 both ways, so Gigawords were sent
    assert stop['Acct-Input-Gigawords'][0] >= 1
    assert stop['Acct-Output-Gigawords'][0] >= 1
    assert total(stop, 'Input') > 2**32 and total(stop, 'Output') > 2**32
    # Gigawords appear only once a total is past 2**32
    for p in updates:
        assert ('Acct-Input-Gigawords' in p) == (total(p, 'Input') > 2**32)


def test_light_session_has_no_gigawords(rdict):
    packets = _decode_session(rdict, _session(False))
    assert len(packets) == 5
    assert all('Acct-Input-Gigawords' not in p and
               'Acct-Output-Gigawords' not in p for p in packets)
    octets = [p['Acct-Input-Octets'][0] for p in packets[1:]]
    assert octets == sorted(octets) and len(set(octets)) == len(octets)


# --------------------------------------------------------------------------
# end to end against a pyrad responder

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


@pytest.mark.parametrize('argv', [
    [],                                            # no secret
    ['--secret', 's', '--window', '0'],
    ['--secret', 's', '--mode', 'bogus'],
    ['--secret', 's', '--requests', '5', '--duration', '1'],
    ['--secret', 's', '--user-format', 'user{j}'],
    ['--secret', 's', '--nas-ip', 'not-an-ip'],
    ['--secret', 's', '--timeout', '0'],
    ['--secret', 's', '--secret-file', '/nonexistent'],
    ['--secret-file', '/nonexistent/secret'],
])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        loadgen.main(argv)
    assert exc.value.code == 2


def test_defaults_and_secret_file(tmp_path):
    path = tmp_path / 'secret'
    path.write_bytes(b'from-file\n')
    cfg = loadgen.parse_args(['--secret-file', str(path), '--mode', 'acct'])
    assert cfg.secret == b'from-file'
    assert cfg.port == 1813
    assert cfg.requests == 20000 and cfg.window == 64
    assert cfg.timeout == 2.0 and cfg.retries == 2
    cfg = loadgen.parse_args(['--secret', 's'])
    assert cfg.port == 1812 and cfg.auth == 'pap' and cfg.users == 1000
