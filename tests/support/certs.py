"""Throw-away X.509 certificates for the RadSec tests, made at test time.

Nothing here is committed as a file: each test run makes its own CA, server
and client keys (EC P-256, fast to generate) in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A fixed instant, so the tests do not read the clock: certificates valid
# from 2020 to 2100 are valid whenever the tests run.
NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, and where they were written (PEM)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def sha256(self) -> bytes:
        return self.cert.fingerprint(hashes.SHA256())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aaad tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(directory: Path, stem: str, cert: x509.Certificate,
           key: ec.EllipticCurvePrivateKey, chain: tuple[x509.Certificate, ...] = ()) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                   for c in (cert, *chain)))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return Issued(cert, key, cert_path, key_path)


def make_ca(directory: Path, name: str = "aaad test CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return _write(directory, name.replace(" ", "-"), cert, key)


def issue(ca: Issued, directory: Path, stem: str, *, cn: str, dns: tuple[str, ...] = (),
          ips: tuple[str, ...] = (), server: bool = False,
          not_after: dt.datetime = NOT_AFTER) -> Issued:
    """A leaf certificate signed by ``ca`` (client or server use)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn)).issuer_name(ca.cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOT_BEFORE).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server
                    else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return _write(directory, stem, cert, key)


@dataclass(frozen=True)
class RadSecPki:
    """A CA, a server certificate for 127.0.0.1/localhost, and NAS certificates."""

    ca: Issued
    server: Issued
    nas: Issued            # CN bras-1.nas.example.net, DNS SAN the same
    other_nas: Issued      # signed by the CA, named by no client
    foreign_ca: Issued     # another CA ...
    foreign_nas: Issued    # ... and a NAS certificate it signed, with a configured name


def make_pki(directory: Path) -> RadSecPki:
    ca = make_ca(directory / "ca")
    server = issue(ca, directory / "server", "server", cn="aaad.test", dns=("localhost",),
                   ips=("127.0.0.1",), server=True)
    nas = issue(ca, directory / "nas", "bras-1", cn="bras-1.nas.example.net",
                dns=("bras-1.nas.example.net",))
    other = issue(ca, directory / "nas", "stranger", cn="stranger.example.org")
    foreign_ca = make_ca(directory / "foreign", "foreign CA")
    foreign = issue(foreign_ca, directory / "foreign", "bras-1-forged",
                    cn="bras-1.nas.example.net", dns=("bras-1.nas.example.net",))
    return RadSecPki(ca, server, nas, other, foreign_ca, foreign)
