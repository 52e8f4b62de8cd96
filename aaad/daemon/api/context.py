"""What the API's handlers share: the database and its executors, the clock,
the config values they need, and the one way to run a write once per
``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from pyrad.dictionary import Dictionary
from sqlalchemy import Connection
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.realms import OPERATOR
from aaad.core.billing.taxes import Tax
from aaad.daemon.api.http import ApiRequest, Problem, Reply
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import Executor
from aaad.radius.trace import Tracer
from aaad.store import idempotency
from aaad.store import users as user_store
from aaad.store.database import Database

__all__ = ["ApiContext", "request_hash", "require_user", "account_id", "no_user",
           "REPLAYED_HEADER"]

REPLAYED_HEADER = "Idempotent-Replayed"

T = TypeVar("T")


@dataclass
class ApiContext:
    db: Database
    reader: Executor
    writer: Executor
    hasher: Executor            # password hashing (argon2id), off the reader and writer
    enforcer: Enforcer
    reactor: IReactorTime
    period: PeriodSpec
    tz: ZoneInfo
    taxes: Callable[[], Sequence[Tax]]
    tracer: Tracer | None = None
    # The RADIUS dictionary reply attributes are checked against (None: the bundled one).
    dictionary: Dictionary | None = None

    def now(self) -> int:
        return int(self.reactor.seconds())

    def read(self, fn: Callable[[Connection], T]) -> Deferred[T]:
        """Run ``fn`` on the reader executor in one connection."""
        def run() -> T:
            with self.db.reader.connect() as conn:
                return fn(conn)
        return self.reader.run(run)

    def write(self, req: ApiRequest, fn: Callable[[Connection], Reply], *,
              after: Callable[[Reply], object] | None = None) -> Deferred[Reply]:
        """Run ``fn`` in one writer transaction, once per Idempotency-Key.

        With a key the transaction first claims it: a key used before with the
        same request answers the stored response (header Idempotent-Replayed)
        and ``fn`` does not run; with another request it is a 409. ``fn``'s
        reply is stored with the key in the same transaction, and a Problem it
        raises rolls both back. ``after`` runs once the write committed (not
        for a replay): the Disconnect-Requests of a suspension, say.
        """
        key, now, digest = req.idempotency_key, self.now(), request_hash(req)

        def run() -> tuple[Reply, bool]:
            with self.db.writer.begin() as conn:
                if key is not None:
                    stored = idempotency.claim(conn, scope=req.scope, key=key,
                                               request_hash=digest, now=now)
                    if stored is not None:
                        if stored.request_hash != digest or stored.status == 0:
                            raise Problem(409, "idempotency-key-reused",
                                          "this Idempotency-Key was used for another request",
                                          field="Idempotency-Key")
                        body = json.loads(stored.response) if stored.response else None
                        return Reply(stored.status, body), False
                reply = fn(conn)
                if key is not None:
                    idempotency.save(conn, scope=req.scope, key=key, status=reply.status,
                                     response="" if reply.body is None
                                     else json.dumps(reply.body, sort_keys=True))
                return reply, True

        def done(result: tuple[Reply, bool]) -> Reply:
            reply, fresh = result
            if not fresh:
                return Reply(reply.status, reply.body, {REPLAYED_HEADER: "true"})
            if after is not None:
                after(reply)
            return reply
        return self.writer.run(run).addCallback(done)


    def purge_keys(self) -> Deferred[int]:
        """Delete the Idempotency-Keys past their day (a writer task)."""
        now = self.now()

        def run() -> int:
            with self.db.writer.begin() as conn:
                return idempotency.purge(conn, now)
        return self.writer.run(run)


def request_hash(req: ApiRequest) -> str:
    """sha256 of the method, the path and the body (JSON canonicalised: the same
    members in another order or spacing, or no body and ``{}``, are the same
    request)."""
    try:
        body = json.dumps(json.loads(req.raw_body) if req.raw_body.strip() else {},
                          sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = req.raw_body
    h = hashlib.sha256()
    for part in (req.method.encode(), req.path.encode(), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def require_user(conn: Connection, name: str, tenant: int = OPERATOR) -> user_store.User:
    """``tenant``'s account ``name``, or a 404 problem (another tenant's user is
    answered exactly as a missing one)."""
    try:
        return user_store.get_user(conn, name, tenant=tenant)
    except user_store.NoSuchUser:
        raise no_user(name) from None


def account_id(conn: Connection, name: str, tenant: int = OPERATOR) -> int:
    """The id of ``tenant``'s account ``name``, or a 404 problem."""
    require_user(conn, name, tenant)
    return user_store.user_ids(conn, [name], tenant=tenant)[name]


def no_user(name: str) -> Problem:
    return Problem(404, "no-such-user", f"no user {name!r}")
