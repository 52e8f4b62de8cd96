"""Acting on limits: Disconnect- and CoA-Requests (RFC 5176) and the rollover job.

The accounting transaction reports sessions that crossed a ``disconnect``
limit; after its commit, :class:`Enforcer` sends each one Disconnect-Request
to the NAS (retried with backoff by the CoA client) and records the ACK, NAK
or timeout in the events table (``aaad events list``). A session is not sent
another request while one is in flight or for ``repeat_after_s`` after it.

Sessions of ``over_limit: throttle`` plans that crossed the cap get one
CoA-Request with the plan's throttle attributes instead, and sessions under
the cap again (at the period rollover) one with the full-speed attributes
(store/jobs/throttle.py); ``throttle_by: disconnect`` clients get a
Disconnect-Request for both.

The access handler reports the sessions a login replaced (``on_max_sessions:
replace-oldest``), already closed in the database; :meth:`Enforcer.replaced`
sends each the same Disconnect-Request.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.radius.clients import Client, ClientTable
from aaad.radius.coa import CoAClient, CoAResult
from aaad.store import events as event_store
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import OverLimit
from aaad.store.sessions import Replaced

__all__ = ["Enforcer", "disconnect_attributes"]


def _shown(attrs: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{n}={v}" for n, v in attrs) or "no attributes"

log = logging.getLogger(__name__)


def disconnect_attributes(*, user_name: str, acct_session_id: str, nas_key: str,
                          framed_ip: str | None) -> list[tuple[str, Any]]:
    """What identifies a session to the NAS: User-Name, Acct-Session-Id, NAS address."""
    attrs: list[tuple[str, Any]] = [("User-Name", user_name), ("Acct-Session-Id", acct_session_id)]
    ip, _, ident = nas_key.partition("|")
    try:
        addr = ipaddress.ip_address(ip)
        attrs.append(("NAS-IP-Address" if addr.version == 4 else "NAS-IPv6-Address", str(addr)))
    except ValueError:
        pass
    if ident:
        attrs.append(("NAS-Identifier", ident))
    if framed_ip:
        attrs.append(("Framed-IP-Address", framed_ip))
    return attrs


class Enforcer:
    """Sends Disconnect-Requests for sessions over a limit and records the outcome."""

    def __init__(self, *, coa: CoAClient, clients: Callable[[], ClientTable], db: Database,
                 writer: Executor, reactor: IReactorTime, metrics: Metrics,
                 repeat_after_s: float = 300.0,
                 timeouts: Sequence[float] = (1.0, 2.0, 4.0)) -> None:
        self._coa = coa
        self._clients = clients
        self._db = db
        self._writer = writer
        self._reactor = reactor
        self._metrics = metrics
        self._repeat_after_s = repeat_after_s
        self._recent: dict[str, float] = {}
        self._timeouts = tuple(timeouts)

    def over_limit(self, items: Sequence[OverLimit]) -> None:
        """Disconnect each session (reactor thread), at most once per ``repeat_after_s``.

        The accounting handler's ``on_over_limit``. Each outcome (ACK, NAK,
        timeout, error) is recorded by :meth:`disconnect`; nothing waits for it.
        """
        now = self._reactor.seconds()
        self._recent = {k: t for k, t in self._recent.items() if now - t < self._repeat_after_s}
        for item in items:
            if item.action != "disconnect":
                self.change(item)      # sessions.throttled already makes it once
                continue
            if item.session_key in self._recent:
                continue
            self._recent[item.session_key] = now
            log.info("disconnecting %s session %s on %s: %s", item.user_name,
                     item.acct_session_id, item.client, item.message)
            self._note(item.user_name, item.session_key, "over_limit", item.message)
            self.disconnect(
                client_name=item.client, nas_address=item.nas_address, user_name=item.user_name,
                session_key=item.session_key, acct_session_id=item.acct_session_id,
                nas_key=item.nas_key, framed_ip=item.framed_ip, why=item.reason)

    def replaced(self, items: Sequence[Replaced]) -> None:
        """Disconnect sessions a new login replaced (reactor thread); the access
        handler's ``on_replaced``. They are closed in the database already (and
        a ``replaced`` event recorded): this tells the NAS. Each outcome is
        recorded by :meth:`disconnect`; nothing waits for it."""
        now = self._reactor.seconds()
        for item in items:
            self._recent[item.key] = now      # no over-limit request on top of this one
            self.disconnect(
                client_name=item.client, nas_address=item.nas_address,
                user_name=item.user_name, session_key=item.key,
                acct_session_id=item.acct_session_id, nas_key=item.nas_key,
                framed_ip=item.framed_ip, why="replaced by a new login")

    def disconnect(self, *, client_name: str, nas_address: str, user_name: str,
                   session_key: str, acct_session_id: str, nas_key: str,
                   framed_ip: str | None, why: str) -> Deferred[CoAResult | None]:
        client = self._client(client_name)
        if client is None:
            # A RadSec client is not in the UDP table: Disconnect-Requests
            # go over UDP only (README "RadSec": not done).
            log.warning("cannot disconnect %s: client %s is no longer configured, or is a "
                        "RadSec client (no Disconnect-Requests over TLS)",
                        user_name, client_name)
            return self._record(None, user_name, session_key, why, "no_client")
        attrs = disconnect_attributes(user_name=user_name, acct_session_id=acct_session_id,
                                      nas_key=nas_key, framed_ip=framed_ip)
        try:
            d = self._coa.disconnect(client, address=nas_address, attributes=attrs,
                                     timeouts=self._timeouts)
        except (ValueError, RuntimeError) as e:
            # E.g. a User-Name that became longer than 253 octets when its
            # undecodable octets were replaced: no request can carry it.
            log.warning("cannot disconnect %s session %s: %s", user_name, acct_session_id, e)
            return self._record(None, user_name, session_key, why, f"error: {e}")
        recorded: Deferred[CoAResult | None] = d.addCallback(
            lambda r: self._record(r, user_name, session_key, why, r.status))
        recorded.addErrback(lambda f: self._record(None, user_name, session_key, why,
                                                   f"error: {f.getErrorMessage()}"))
        return recorded

    def change(self, item: OverLimit) -> Deferred[CoAResult | None]:
        """Throttle a live session or restore it: a CoA-Request (RFC 5176 §2.3)
        with the session's identification and ``item.attributes``, or, for a
        client with ``throttle_by: disconnect``, a Disconnect-Request. The
        outcome is an event of kind ``item.action`` and a metric."""
        action = item.action
        client = self._client(item.client)
        if client is None:
            log.warning("cannot %s %s: client %s is no longer configured", action,
                        item.user_name, item.client)
            return self._record_change(None, item, "no_client")
        if client.throttle_by == "disconnect":
            log.info("%s %s session %s on %s by Disconnect-Request (throttle_by: disconnect)",
                     action, item.user_name, item.acct_session_id, item.client)
            return self.disconnect(
                client_name=item.client, nas_address=item.nas_address,
                user_name=item.user_name, session_key=item.session_key,
                acct_session_id=item.acct_session_id, nas_key=item.nas_key,
                framed_ip=item.framed_ip, why=f"{action}: {item.message}")
        if not item.attributes:
            log.warning("cannot %s %s session %s: no attributes to send", action,
                        item.user_name, item.acct_session_id)
            return self._record_change(None, item, "no_attributes")
        attrs = disconnect_attributes(user_name=item.user_name,
                                      acct_session_id=item.acct_session_id,
                                      nas_key=item.nas_key, framed_ip=item.framed_ip)
        attrs += list(item.attributes)
        log.info("%s %s session %s on %s: CoA-Request with %s", action, item.user_name,
                 item.acct_session_id, item.client, _shown(item.attributes))
        try:
            d = self._coa.change(client, address=item.nas_address, attributes=attrs,
                                 timeouts=self._timeouts)
        except (ValueError, RuntimeError) as e:
            log.warning("cannot %s %s session %s: %s", action, item.user_name,
                        item.acct_session_id, e)
            return self._record_change(None, item, f"error: {e}")
        recorded: Deferred[CoAResult | None] = d.addCallback(
            lambda r: self._record_change(r, item, r.status))
        recorded.addErrback(lambda f: self._record_change(None, item,
                                                          f"error: {f.getErrorMessage()}"))
        return recorded

    def _record_change(self, result: CoAResult | None, item: OverLimit,
                       status: str) -> Deferred[CoAResult | None]:
        label = status if status in ("ack", "nak", "timeout", "no_client",
                                     "no_attributes") else "error"
        self._metrics.coa_requests.labels(item.action, label).inc()
        detail = f"{item.message}; {_shown(item.attributes)}{_outcome(result)}"
        d = self._event(item.action, status, item.user_name, item.session_key, detail[:255])
        return d.addCallback(lambda _: result)

    def _note(self, user_name: str, session_key: str, kind: str, detail: str) -> None:
        """Record an event on the writer; nothing waits for it."""
        self._event(kind, "ok", user_name, session_key, detail)

    def _event(self, kind: str, status: str, user_name: str, session_key: str,
               detail: str) -> Deferred[None]:
        """Record an event on the writer, now; a failure is logged, never raised."""
        at = int(self._reactor.seconds())

        def write() -> None:
            with self._db.writer.begin() as conn:
                event_store.record_event(conn, at=at, kind=kind, result=status[:32],
                                         user_name=user_name, session_id=session_key,
                                         detail=detail)
        d: Deferred[None] = self._writer.run(write)
        d.addErrback(lambda f: log.warning("cannot record %s of %s: %s", kind, user_name,
                                           f.getErrorMessage()))
        return d

    def _client(self, name: str) -> Client | None:
        return next((c for c in self._clients() if c.name == name), None)

    def _record(self, result: CoAResult | None, user_name: str, session_key: str, why: str,
                status: str) -> Deferred[CoAResult | None]:
        label = status if status in ("ack", "nak", "timeout", "no_client") else "error"
        self._metrics.disconnects.labels(label).inc()
        d = self._event("disconnect", status, user_name, session_key, why + _outcome(result))
        return d.addCallback(lambda _: result)


def _outcome(result: CoAResult | None) -> str:
    """What an event's detail adds of a NAS's answer: its Error-Cause and the attempts."""
    if result is None:
        return ""
    cause = f"; Error-Cause {result.error_cause}" if result.error_cause is not None else ""
    return f"{cause}; {result.attempts} attempts"
