"""Who may use the API, and what they may do.

A request carries ``Authorization: Bearer <token>``. The token is either

* ``api.token`` from the config: the operator's, with every right (named
  ``config`` in the logs); or
* a token made with ``aaad token create`` (store/tokens.py: only its SHA-256
  is stored), with its name, its scopes and, for a reseller, its tenant.

A ``GET`` needs the ``read`` scope, any other method ``write``, and
``/v1/debug`` ``admin`` (each scope allows what the ones before it allow).
A token found in the database is remembered for :data:`CACHE_S` seconds, so
a busy front-end costs one lookup per token every few seconds, and a revoked
token stops working within that time. A tenant's token works in its tenant's
namespace only (its users, plans, vouchers ...; docs/design.md "Tenants");
a token whose tenant was deleted opens nothing. :class:`Principal.scope` keys the
idempotency keys a token's writes share: the operator's and each tenant's
are apart.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.core.accounting.realms import OPERATOR
from aaad.daemon.executor import Executor
from aaad.store import tenants as tenant_store
from aaad.store import tokens as token_store
from aaad.store.database import Database

__all__ = ["Principal", "Authoriser", "DEFAULT_SCOPE", "CACHE_S", "needed"]

DEFAULT_SCOPE = "default"
CACHE_S = 5.0
_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: the token's name, tenant (None: the operator's),
    scopes and the tenant's id (0: the operator's), the namespace every
    handler works in."""

    name: str
    tenant: str | None
    scopes: tuple[str, ...]
    tenant_id: int = OPERATOR

    @property
    def scope(self) -> str:
        """The idempotency keys' namespace."""
        return DEFAULT_SCOPE if self.tenant is None else f"tenant:{self.tenant}"

    def allows(self, needs: str) -> bool:
        return any(token_store.SCOPES.index(s) >= token_store.SCOPES.index(needs)
                   for s in self.scopes if s in token_store.SCOPES)


CONFIG = Principal("config", None, ("admin",))


def needed(method: str, pattern: str) -> str:
    """The scope a request needs: read for GET, admin under /v1/debug, else write."""
    if pattern.startswith("/v1/debug"):
        return "admin"
    return "read" if method in ("GET", "HEAD") else "write"


class Authoriser:
    """Maps an ``Authorization`` header to a :class:`Principal` (or None)."""

    def __init__(self, *, config_token: bytes | None, db: Database, writer: Executor,
                 reactor: IReactorTime) -> None:
        self._config_token = config_token
        self._db, self._writer, self._reactor = db, writer, reactor
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def authorise(self, header: bytes | None) -> Deferred[Principal | None]:
        scheme, _, given_text = (header or b"").decode("latin-1").partition(" ")
        given = given_text.strip()
        if scheme.lower() != "bearer" or not given:
            return succeed(None)
        if self._config_token is not None and hmac.compare_digest(
                given.encode("latin-1"), self._config_token):
            return succeed(CONFIG)
        if not given.startswith(token_store.PREFIX) or len(given) > token_store.MAX_PRESENTED:
            return succeed(None)
        key = hashlib.sha256(given.encode("latin-1")).hexdigest()
        now = self._reactor.seconds()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return succeed(hit[1])
        # The writer: a lookup records the token's last use (at most once a minute).
        d = self._writer.run(self._lookup, given, int(now))

        def remember(p: Principal | None) -> Principal | None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (self._reactor.seconds() + CACHE_S, p)
            return p
        return d.addCallback(remember)

    def _lookup(self, presented: str, now: int) -> Principal | None:
        with self._db.writer.begin() as conn:
            t = token_store.authenticate(conn, presented, now=now)
            if t is None:
                return None
            try:
                tid = tenant_store.tenant_id(conn, t.tenant)
            except tenant_store.NoSuchTenant:
                return None         # its tenant was deleted: the token opens nothing
        return Principal(t.name, t.tenant, t.scopes, tid)
