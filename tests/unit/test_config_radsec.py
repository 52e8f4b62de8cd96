"""The ``radsec:`` section of the configuration (aaad/config/loader.py, RFC 6614)."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from aaad.config import ConfigError, RadSecClientConfig, RadSecConfig, load_config, parse_config

FP = "sha256:" + ":".join(["AB"] * 32)
SECTION = """
radsec:
  bind: 0.0.0.0
  port: 2083
  certificate: tls/server.pem
  key: /etc/aaad/tls/server.key
  ca: tls/nas-ca.pem
  handshake_timeout: 5s
  clients:
    - name: bras-3
      certificate_name: BRAS-3.nas.example.net
      address: 198.51.100.0/24
      type: mikrotik
      tenant: acme
      require_message_authenticator: true
    - name: edge
      certificate_name: ["*.edge.example.net", 192.0.2.007]
      certificate_fingerprint: "{fp}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aaad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_absent_section_is_off() -> None:
    assert parse_config({}).radsec == RadSecConfig(enabled=False)


def test_full_section_with_paths_beside_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SECTION.format(fp=FP))).radsec
    assert cfg.enabled and (cfg.bind, cfg.port, cfg.handshake_timeout_s) == ("0.0.0.0", 2083, 5)
    assert cfg.certificate == tmp_path / "tls" / "server.pem"
    assert cfg.key == Path("/etc/aaad/tls/server.key")
    assert cfg.ca == tmp_path / "tls" / "nas-ca.pem"
    assert cfg.clients == (
        RadSecClientConfig(name="bras-3", certificate_names=("bras-3.nas.example.net",),
                           networks=(ipaddress.ip_network("198.51.100.0/24"),),
                           type="mikrotik", tenant="acme",
                           require_message_authenticator=True),
        # 192.0.2.007 is not an address; as written it stays a (lowercase) name
        RadSecClientConfig(name="edge", certificate_names=("*.edge.example.net",
                                                           "192.0.2.007"),
                           certificate_fingerprints=(bytes([0xAB]) * 32,)),
    )


def test_ip_names_are_normalised() -> None:
    cfg = parse_config({"radsec": {"certificate": "a", "key": "b", "ca": "c", "clients": [
        {"name": "v6", "certificate_name": "2001:DB8::0:1"}]}}).radsec
    assert cfg.clients[0].certificate_names == ("2001:db8::1",)


def test_enabled_false_keeps_the_section_but_turns_it_off() -> None:
    cfg = parse_config({"radsec": {"enabled": False, "certificate": "a", "key": "b",
                                   "ca": "c"}}).radsec
    assert not cfg.enabled


BASE = {"certificate": "a.pem", "key": "a.key", "ca": "ca.pem"}
ONE = [{"name": "n1", "certificate_name": "n1.example.net"}]


@pytest.mark.parametrize(("section", "message"), [
    ({**BASE, "clients": ONE, "certificate": None}, "radsec.certificate: is required"),
    ({**BASE, "clients": ONE, "key": ""}, "radsec.key: is required"),
    ({"certificate": "a", "key": "b", "clients": ONE}, "radsec.ca: is required"),
    ({**BASE}, "radsec.clients: list at least one client"),
    ({**BASE, "clients": ONE, "port": 70000}, "radsec.port: must be a port number 0-65535"),
    ({**BASE, "clients": ONE, "listen": "x"}, "radsec.listen: unknown key"),
    ({**BASE, "clients": [{"name": "n1"}]},
     "radsec.clients[0].certificate_name: give certificate_name or certificate_fingerprint"),
    ({**BASE, "clients": [{"name": "n1", "certificate_fingerprint": "AB:CD"}]},
     "radsec.clients[0].certificate_fingerprint: must be a SHA-256 fingerprint"),
    ({**BASE, "clients": [{"name": "n1", "certificate_name": "a b"}]},
     "radsec.clients[0].certificate_name: 'a b' is not a host name"),
    ({**BASE, "clients": [{"name": "n1", "certificate_name": "x.*.net"}]},
     "radsec.clients[0].certificate_name: 'x.*.net' is not a host name"),
    ({**BASE, "clients": [{"name": "n1", "certificate_name": []}]},
     "radsec.clients[0].certificate_name: must not be an empty list"),
    ({**BASE, "clients": [*ONE, {"name": "n1", "certificate_name": "z"}]},
     "radsec.clients[1].name: duplicate radsec client name 'n1'"),
    ({**BASE, "clients": [{"name": "udp", "certificate_name": "z"}]},
     "radsec.clients[0].name: 'udp' is already a client in clients"),
    ({**BASE, "clients": [{"name": "n1", "certificate_name": "z", "secret": "x"}]},
     "radsec.clients[0].secret: unknown key"),
    ({**BASE, "clients": [{"name": "n1", "certificate_name": "z", "address": "nowhere"}]},
     "radsec.clients[0].address: not an IP address or CIDR network: 'nowhere'"),
])
def test_errors_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"clients": [{"name": "udp", "address": "10.0.0.1", "secret": "s"}],
                      "radsec": section})
    assert str(e.value).startswith(message), str(e.value)


def test_the_daemon_table_of_radsec_clients() -> None:
    from aaad.daemon.radsec import radsec_clients
    from aaad.radius.tls import CertificateNames
    cfg = parse_config({"radsec": {"certificate": "a", "key": "b", "ca": "c", "clients": [
        {"name": "pop", "certificate_name": "*.pop.example.net", "tenant": "acme",
         "address": ["203.0.113.0/24"], "type": "cisco"},
        {"name": "fp", "certificate_fingerprint": FP}]}}).radsec
    table = radsec_clients(cfg)
    assert table.tenants == {"pop": "acme"}
    hit = table.match(CertificateNames(b"\0" * 32, (), ("nas7.pop.example.net",), ()))
    assert hit is not None and hit.allows("203.0.113.9") and not hit.allows("192.0.2.1")
    assert (hit.client.name, hit.client.secret, hit.client.type, hit.client.tenant) == \
        ("pop", b"radsec", "cisco", "acme")
    assert repr(hit.client).count("radsec") == 0       # the secret never shows
    by_fp = table.match(CertificateNames(bytes([0xAB]) * 32, ("x",), (), ()))
    assert by_fp is not None and by_fp.client.name == "fp" and by_fp.allows("198.51.100.1")
