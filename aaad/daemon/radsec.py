"""The RadSec listener of the daemon: configuration to TLS port, and SIGHUP (RFC 6614).

:class:`RadSecListener` owns what RadSec adds to the daemon: the server TLS
context (re-read on SIGHUP for new connections; a file that does not load
keeps the old context and logs an error naming its key), the certificate →
client table, and two :class:`~aaad.radius.protocol.RadiusPort` processors
(``radsec_auth``, ``radsec_acct``) that use the daemon's own auth and
accounting handlers. Config errors at start raise
:class:`~aaad.config.ConfigError` with the key path (``radsec.key: …``).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.protocols.tls import TLSMemoryBIOFactory

from aaad.config import ConfigError, RadSecConfig
from aaad.daemon.metrics import Metrics
from aaad.radius.clients import Client
from aaad.radius.codec import ACCT_CODES, AUTH_CODES
from aaad.radius.protocol import Handler, RadiusPort
from aaad.radius.radsec import RADSEC_SECRET, RadSecClient, RadSecClients, RadSecFactory
from aaad.radius.tls import ReloadableServerTls, ServerTls, TlsFileError, TlsFiles, load_server_tls

__all__ = ["RadSecListener", "radsec_clients", "load_tls"]

log = logging.getLogger(__name__)

_ANY = ipaddress.ip_network("0.0.0.0/0")


def radsec_clients(cfg: RadSecConfig) -> RadSecClients:
    """The certificate → client table of ``cfg.clients``; each secret is ``radsec``."""
    return RadSecClients(
        RadSecClient(
            client=Client(name=c.name, network=c.networks[0] if c.networks else _ANY,
                          secret=RADSEC_SECRET, type=c.type,
                          require_message_authenticator=c.require_message_authenticator,
                          call_direction=c.call_direction, tenant=c.tenant),
            names=c.certificate_names, fingerprints=c.certificate_fingerprints,
            networks=c.networks)
        for c in cfg.clients)


def load_tls(cfg: RadSecConfig, source: str | None = None) -> ServerTls:
    """The server TLS context of ``cfg``.

    Raises:
        ConfigError: at ``radsec.certificate``, ``radsec.key`` or ``radsec.ca``.
    """
    try:
        return load_server_tls(TlsFiles(cfg.certificate, cfg.key, cfg.ca))
    except TlsFileError as e:
        raise ConfigError(f"radsec.{e.key}", e.message, source) from None


class RadSecListener:
    """The RadSec port: built with the service, listening from :meth:`start`."""

    def __init__(self, cfg: RadSecConfig, *, source: str | None, reactor: Any,
                 metrics: Metrics, auth: Handler, accounting: Handler,
                 port_args: dict[str, Any]) -> None:
        self.config = cfg
        self._source = source
        self._reactor = reactor
        self._metrics = metrics
        self.tls = ReloadableServerTls(load_tls(cfg, source))
        self.auth_port = RadiusPort(name="radsec_auth", allowed=AUTH_CODES, handler=auth,
                                    **port_args)
        self.acct_port = RadiusPort(name="radsec_acct", allowed=ACCT_CODES,
                                    handler=accounting, **port_args)
        self.factory = RadSecFactory(auth_port=self.auth_port, acct_port=self.acct_port,
                                     clients=radsec_clients(cfg), metrics=metrics,
                                     port_metrics=metrics, reactor=reactor,
                                     handshake_timeout_s=cfg.handshake_timeout_s)
        self.listening: Any = None
        self._check_expiry(self.tls.current)

    @property
    def clients(self) -> RadSecClients:
        return self.factory.clients

    def start(self) -> int:
        """Listen; returns the bound port (``port: 0`` lets the kernel choose)."""
        cfg = self.config
        self.listening = self._reactor.listenTCP(
            cfg.port, TLSMemoryBIOFactory(self.tls, False, self.factory), interface=cfg.bind)
        port = int(self.listening.getHost().port)
        t = self.tls.current
        log.info("RadSec (RADIUS over TLS) on %s:%d for %d clients; certificate %s, "
                 "valid until %s; %d CA certificates", cfg.bind, port, len(self.clients),
                 t.subject, t.not_after.isoformat(), t.cas)
        return port

    def reload(self, cfg: RadSecConfig, source: str | None) -> list[str]:
        """Apply a new ``radsec:`` section (SIGHUP); returns what needs a restart.

        The client table is replaced; the certificate, key and CA files are
        read again for new connections. If they do not load, the old ones
        stay and an error names the key.
        """
        if not cfg.enabled:
            return ["radsec (now disabled)"]
        self.factory.clients = radsec_clients(cfg)
        try:
            tls = load_tls(cfg, source)
        except ConfigError as e:
            self._metrics.radsec_tls_reloads.labels("failed").inc()
            log.error("radsec: keeping the certificate, key and CA loaded before: %s", e)
        else:
            self.tls.current = tls
            self._metrics.radsec_tls_reloads.labels("ok").inc()
            log.info("radsec: certificate %s (valid until %s) and %d CA certificates loaded "
                     "for new connections", tls.subject, tls.not_after.isoformat(), tls.cas)
            self._check_expiry(tls)
        old = self.config
        restart = [k for k, a, b in (("radsec bind", old.bind, cfg.bind),
                                     ("radsec port", old.port, cfg.port),
                                     ("radsec handshake_timeout", old.handshake_timeout_s,
                                      cfg.handshake_timeout_s)) if a != b]
        self.config = cfg if not restart else old
        return restart

    def _check_expiry(self, tls: ServerTls) -> None:
        now = datetime.fromtimestamp(self._reactor.seconds(), UTC)
        if tls.not_after <= now:
            log.error("radsec: the server certificate %s expired on %s: NASes will refuse "
                      "it", tls.subject, tls.not_after.isoformat())

    def stop_reading(self) -> Deferred[Any]:
        return DeferredList([self.auth_port.stop_reading(), self.acct_port.stop_reading()])

    def close(self) -> Deferred[Any] | None:
        """Stop listening and close the open connections (after stop_reading)."""
        for conn in list(self.factory.open):
            if conn.transport is not None:
                conn.transport.loseConnection()
        if self.listening is None:
            return None
        d: Deferred[Any] | None = self.listening.stopListening()
        return d
