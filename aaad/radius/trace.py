"""Per-request debug traces (like ``radiusd -X``) for chosen users or clients.

Switched on at run time (``aaad debug USER|CLIENT``, through the API) for a
limited time. A traced request logs every attribute by dictionary name, with
passwords and secrets masked, then its reply and how long it took.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aaad.radius.codec import Request, attribute_text
from aaad.radius.framing import CODE_NAMES
from aaad.radius.sip import context_name

__all__ = ["Tracer", "describe"]

log = logging.getLogger("aaad.trace")

MASKED = {"User-Password", "CHAP-Password", "Message-Authenticator", "Tunnel-Password",
          "MS-CHAP-Response", "MS-CHAP2-Response", "MS-CHAP-CPW-1", "MS-CHAP-CPW-2",
          "MS-CHAP2-CPW", "MS-CHAP-NT-Enc-PW", "MS-CHAP-LM-Enc-PW", "MS-CHAP-MPPE-Keys",
          "MS-MPPE-Send-Key", "MS-MPPE-Recv-Key", "Digest-Response"}
# The same by key: responses a dictionary could crack, and keys (RFC 2548).
MASKED_KEYS = {2, 3, 80, 69, *((311, t) for t in (1, 3, 4, 5, 6, 12, 16, 17, 25, 27))}
ACCOUNTING_REQUEST = 4


def describe(packet: Any) -> str:
    """The attributes of a pyrad packet as ``Name=value`` pairs, passwords masked."""
    parts = []
    accounting = getattr(packet, "code", None) == ACCOUNTING_REQUEST
    for key in OrderedDict.keys(packet):
        if isinstance(key, int) and (named := context_name(
                accounting, key, (OrderedDict.__getitem__(packet, key) or [b""])[0])) is not None:
            # Kamailio's Sip-* / RFC 5090 Digest-*: named by the packet (radius/sip.py)
            shown = "***" if named[0] in MASKED else repr(named[1])
            parts.append(f"{named[0]}={shown}")
            continue
        try:
            name = packet._DecodeKey(key)
        except Exception:  # noqa: BLE001  (a trace line never breaks a request)
            name = str(key)
        if name in MASKED or key in MASKED_KEYS:
            parts.append(f"{name if isinstance(name, str) else key}=***")
            continue
        try:    # by name, so pyrad decodes the values (by number it gives raw bytes)
            values = packet[name] if isinstance(name, str) else OrderedDict.__getitem__(packet, key)
        except Exception:  # noqa: BLE001  (a trace line never breaks a request)
            values = OrderedDict.__getitem__(packet, key)
        for v in values:
            parts.append(f"{name}={v!r}")
    return " ".join(parts)


class Tracer:
    """Which users and clients are traced, until when."""

    def __init__(self, *, now: Callable[[], float]) -> None:
        self._now = now
        self._users: dict[str, float] = {}
        self._clients: dict[str, float] = {}

    def enable(self, *, user: str | None = None, client: str | None = None,
               seconds: float = 600) -> None:
        until = self._now() + seconds
        if user:
            self._users[user] = until
        if client:
            self._clients[client] = until

    def active(self) -> dict[str, dict[str, float]]:
        now = self._now()
        return {"users": {u: t for u, t in self._users.items() if t > now},
                "clients": {c: t for c, t in self._clients.items() if t > now}}

    def wants(self, req: Request[Any]) -> bool:
        if not self._users and not self._clients:
            return False            # the common case: one dict check per request
        now = self._now()
        if self._clients.get(req.client.name, 0) > now:
            return True
        user = attribute_text(req.packet, 1)
        return user is not None and self._users.get(user, 0) > now

    def request(self, port: str, req: Request[Any]) -> None:
        log.info("trace %s: %s id %d from %s (%s:%d): %s", port,
                 CODE_NAMES.get(req.code, req.code), req.id, req.client.name, *req.source,
                 describe(req.packet))

    def reply(self, port: str, req: Request[Any], code: int, attributes: Any, reason: str | None,
              seconds: float) -> None:
        attrs = " ".join(f"{n}=***" if n in MASKED or n in MASKED_KEYS else f"{n}={v!r}"
                         for n, v in attributes)
        log.info("trace %s: → %s id %d%s in %.1f ms%s", port, CODE_NAMES.get(code, code), req.id,
                 f" ({reason})" if reason else "", seconds * 1000, f": {attrs}" if attrs else "")

    def no_reply(self, port: str, req: Request[Any], why: str) -> None:
        log.info("trace %s: no reply to id %d: %s", port, req.id, why)
