"""Tests of benchmarks/loadgen.py, the standalone RADIUS load generator.

The packets it builds by hand are decoded and verified with pyrad; its argument
parsing. tests/e2e/test_loadgen_loopback.py runs the whole generator against a
small pyrad-based responder on loopback.
"""

from __future__ import annotations

import random

import pytest
from pyrad import packet

from tests.support.loadgen import SECRET, dictionary, loadgen


@pytest.fixture(scope='module')
def rdict():
    return dictionary()


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
