"""The TLS side of RadSec: the server context, reloadable, and client certificates (RFC 6614 §2.3).

:func:`load_server_tls` reads the server certificate (with its chain), its
key and the CA bundle that signs NAS certificates into one OpenSSL context:
TLS 1.2 at least (RFC 6614 §2.3 asks for 1.2 and RFC 9765 for 1.3; OpenSSL
picks 1.3 when the NAS offers it), forward-secret AEAD ciphers only for 1.2,
no compression or renegotiation, and a client certificate that must be sent
and must verify against the CA bundle (RFC 6614 §2.3 item 2). Each file is
read and checked on its own, so an error names the file and what is wrong
with it (:class:`TlsFileError`, whose ``key`` is the configuration key).

:class:`ReloadableServerTls` hands each new connection the context current
at that moment: SIGHUP swaps in a new one, connections already open keep
theirs.

:class:`CertificateNames` is what a verified peer certificate says: its
SHA-256 fingerprint, subject CN and DNS/IP subjectAltNames, matched against
the configured clients by aaad.radius.radsec.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from OpenSSL.crypto import X509
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

__all__ = ["TlsFiles", "TlsFileError", "ServerTls", "load_server_tls", "ReloadableServerTls",
           "CertificateNames", "certificate_names", "format_fingerprint", "ssl_reason",
           "parse_fingerprint"]

# TLS 1.2 suites with forward secrecy and an AEAD cipher (RFC 9325 §4.2);
# TLS 1.3 suites are all of that kind and are OpenSSL's defaults.
_TLS12_CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"
_SESSION_ID_CONTEXT = b"aaad-radsec"


class TlsFileError(Exception):
    """A certificate, key or CA file that cannot be used; ``key`` names its setting."""

    def __init__(self, key: str, message: str) -> None:
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the server's certificate chain, its key and the NAS CA bundle are (PEM)."""

    certificate: Path
    key: Path
    ca: Path


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A loaded context and what the log says about it."""

    context: SSL.Context
    subject: str                # the server certificate's subject, RFC 4514
    not_after: datetime         # aware UTC
    cas: int                    # certificates in the CA bundle


def load_server_tls(files: TlsFiles) -> ServerTls:
    """Build the server context from ``files``; nothing is kept open.

    Raises:
        TlsFileError: a file is missing or unreadable, holds no PEM
            certificate (or key), the key is encrypted or does not match the
            certificate. Its ``key`` is ``certificate``, ``key`` or ``ca``.
    """
    chain = _certificates(files.certificate, "certificate")
    cas = _certificates(files.ca, "ca")
    key_pem = _read(files.key, "key")
    try:
        serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TlsFileError("key", f"{files.key} is encrypted: aaad needs it without a "
                                  "pass phrase (keep it readable by aaad only)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsFileError("key", f"{files.key} holds no PEM private key") from None
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
                    | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.set_cipher_list(_TLS12_CIPHERS)
    try:
        ctx.use_certificate_chain_file(str(files.certificate))
    except SSL.Error as e:
        raise TlsFileError("certificate", f"{files.certificate}: {ssl_reason(e)}") from None
    try:
        ctx.use_privatekey_file(str(files.key))
        ctx.check_privatekey()
    except SSL.Error as e:
        raise TlsFileError("key", f"{files.key} does not go with {files.certificate}: "
                                  f"{ssl_reason(e)}") from None
    try:
        ctx.load_verify_locations(str(files.ca))
    except SSL.Error as e:
        raise TlsFileError("ca", f"{files.ca}: {ssl_reason(e)}") from None
    for ca in cas:
        # Named in the CertificateRequest, so a NAS with several
        # certificates knows which one to send.
        try:
            ctx.add_client_ca(ca)
        except TypeError:   # pyOpenSSL before 24.3 takes only its own X509
            ctx.add_client_ca(X509.from_cryptography(ca))
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT | SSL.VERIFY_CLIENT_ONCE)
    ctx.set_verify_depth(9)
    ctx.set_session_id(_SESSION_ID_CONTEXT)
    leaf = chain[0]
    return ServerTls(ctx, leaf.subject.rfc4514_string(), leaf.not_valid_after_utc, len(cas))


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TlsFileError(key, f"cannot read {path}: {e.strerror}") from None


def _certificates(path: Path, key: str) -> list[x509.Certificate]:
    data = _read(path, key)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TlsFileError(key, f"{path} holds no PEM certificate")
    return certs


def ssl_reason(e: SSL.Error) -> str:
    """OpenSSL's reason strings, without its library and function names."""
    errors = e.args[0] if e.args and isinstance(e.args[0], list) else []
    reasons = [str(err[-1]) for err in errors if isinstance(err, tuple) and err]
    return "; ".join(reasons) or str(e)


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTls:
    """Gives each new TLS connection the context current when it arrives."""

    def __init__(self, tls: ServerTls) -> None:
        self.current = tls

    def serverConnectionForTLS(self, tlsProtocol: TLSMemoryBIOProtocol) -> SSL.Connection:
        return SSL.Connection(self.current.context, None)


@dataclass(frozen=True, slots=True)
class CertificateNames:
    """What identifies a peer certificate: fingerprint and names (lowercase)."""

    sha256: bytes
    common_names: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]

    def describe(self) -> str:
        names = self.dns_names or self.common_names or self.ip_addresses
        return f"{', '.join(names) or 'no name'} ({format_fingerprint(self.sha256)})"


def certificate_names(cert: x509.Certificate) -> CertificateNames:
    """The fingerprint, subject CNs and DNS/IP subjectAltNames of ``cert``."""
    cns = tuple(str(a.value).lower() for a in
                cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    der = cert.public_bytes(serialization.Encoding.DER)
    return CertificateNames(hashlib.sha256(der).digest(), cns, dns, ips)


def format_fingerprint(digest: bytes) -> str:
    """``sha256:AB:CD:…``, as ``openssl x509 -fingerprint -sha256`` prints it."""
    return "sha256:" + ":".join(f"{b:02X}" for b in digest)


def parse_fingerprint(text: str) -> bytes:
    """A SHA-256 fingerprint as written by openssl (``AB:CD:…``), with or without
    ``sha256:`` and colons.

    Raises:
        ValueError: not 32 hex octets.
    """
    s = text.strip()
    if s.lower().startswith("sha256:"):
        s = s[7:]
    elif s.lower().startswith("sha256 fingerprint="):
        s = s[19:]
    s = s.replace(":", "").replace(" ", "")
    try:
        digest = bytes.fromhex(s)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise ValueError("must be a SHA-256 fingerprint: 32 hex octets such as "
                         "sha256:3A:9F:… (openssl x509 -noout -fingerprint -sha256)")
    return digest

