"""The authentication handler: Access-Request → PAP/CHAP check → Accept/Reject.

User rows are read in batches on the reader thread (one query for every
request that arrived while the previous query ran). Hashed passwords are
verified on a separate hash pool, behind the verify cache. Every failed
check costs one argon2 verification, whether the user is unknown, has a
cleartext password, or has a hash: a reject takes the same time for all,
so response timing does not tell which user names exist.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any, Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from aaad.credentials import VerifyCache, dummy_hash, verify_hash
from aaad.daemon.batch import GroupCommit, QueueFull
from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.radius.auth import chap_matches, decrypt_password
from aaad.radius.codec import Request, attribute_bytes, attribute_text
from aaad.radius.framing import ACCESS_ACCEPT, ACCESS_REJECT
from aaad.radius.protocol import Reply
from aaad.store import queries
from aaad.store.database import Database

__all__ = ["AuthHandler", "Credentials"]

log = logging.getLogger(__name__)

USER_NAME, USER_PASSWORD, CHAP_PASSWORD, CHAP_CHALLENGE = 1, 2, 3, 60
FAILED = "Authentication failed"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the NAS sent: a PAP password, or a CHAP response and challenge."""

    name: str
    password: bytes | None = None
    chap: bytes | None = None
    challenge: bytes | None = None

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, method={'pap' if self.password is not None else 'chap'})"


def reject(message: str, reason: str) -> Reply:
    return Reply(ACCESS_REJECT, (("Reply-Message", message),), reason=reason)


class AuthHandler:
    """Implements radius.protocol.Handler for the auth port."""

    def __init__(self, *, db: Database, reader: Executor, hasher: Executor,
                 reactor: IReactorTime, metrics: Metrics, cache: VerifyCache,
                 max_batch: int = 256, max_queue: int = 8192, max_hash_pending: int = 64) -> None:
        self._db = db
        self._hasher = hasher
        self._metrics = metrics
        self.cache = cache
        self._max_hash_pending = max_hash_pending
        self._hash_pending = 0
        self._lookups: GroupCommit[str, Any] = GroupCommit(
            executor=reader, process=self._find, max_batch=max_batch, max_queue=max_queue,
            clock=reactor.seconds, on_batch=self._batch_done)

    def handle(self, req: Request) -> "Deferred[Reply]":
        try:
            creds = self._credentials(req)
            if isinstance(creds, Reply):
                return succeed(creds)
            d = self._lookups.submit(creds.name)
        except Exception:
            return fail()
        return d.addCallback(self._decide, creds)

    @staticmethod
    def _credentials(req: Request) -> Credentials | Reply:
        p = req.packet
        name = attribute_text(p, USER_NAME)
        if not name:
            return reject("User-Name is missing", "no_user_name")
        hidden = attribute_bytes(p, USER_PASSWORD)
        if hidden is not None:
            password = decrypt_password(hidden, req.client.secret, req.authenticator)
            return Credentials(name, password=password)
        chap = attribute_bytes(p, CHAP_PASSWORD)
        if chap is not None:
            challenge = attribute_bytes(p, CHAP_CHALLENGE) or req.authenticator
            return Credentials(name, chap=chap, challenge=challenge)
        return reject("Only PAP and CHAP are supported", "unsupported_method")

    def _find(self, names: Sequence[str]) -> list[Any]:
        """Runs on the reader thread: one query for the whole batch."""
        try:
            with self._db.reader.connect() as conn:
                rows = queries.find_users(conn, names)
        except Exception:
            self._metrics.db_errors.labels("auth").inc()
            raise
        return [rows.get(n) for n in names]

    def _batch_done(self, size: int, seconds: float) -> None:
        self._metrics.db_batch_size.labels("auth").observe(size)
        self._metrics.db_batch_seconds.labels("auth").observe(seconds)

    def _decide(self, user: Any, creds: Credentials) -> "Deferred[Reply] | Reply":
        if user is None:
            return self._fail_evenly("unknown_user")
        if creds.chap is not None:
            if user.password_cleartext is None:
                return self._fail_evenly("chap_needs_cleartext",
                                         "CHAP needs a cleartext password on this account")
            ok = chap_matches(creds.chap, creds.challenge or b"",
                              user.password_cleartext.encode("utf-8"))
            return self._verdict(user) if ok else self._fail_evenly("bad_password")
        assert creds.password is not None
        if user.password_cleartext is not None:
            ok = hmac.compare_digest(creds.password, user.password_cleartext.encode("utf-8"))
            return self._verdict(user) if ok else self._fail_evenly("bad_password")
        if user.password_hash is None:
            return self._fail_evenly("no_password")
        if self.cache.hit(creds.name, creds.password, user.password_hash):
            self._metrics.verify_cache.labels("cache_hit").inc()
            return self._verdict(user)
        d = self._hash(verify_hash, user.password_hash, creds.password)

        def verified(ok: bool) -> Reply:
            self._metrics.verify_cache.labels("ok" if ok else "mismatch").inc()
            if not ok:
                return reject(FAILED, "bad_password")
            self.cache.add(creds.name, creds.password or b"", user.password_hash)
            return self._verdict(user)
        return d.addCallback(verified)

    def _verdict(self, user: Any) -> Reply:
        if not user.enabled:
            return reject("Account disabled", "disabled")
        return Reply(ACCESS_ACCEPT)

    def _fail_evenly(self, reason: str, message: str = FAILED) -> "Deferred[Reply]":
        """Reject after the same argon2 work a hashed user's check costs."""
        d = self._hash(verify_hash, dummy_hash(), b"")
        return d.addCallback(lambda _: reject(message, reason))

    def _hash(self, fn: Any, *args: Any) -> "Deferred[bool]":
        if self._hash_pending >= self._max_hash_pending:
            raise QueueFull(f"{self._hash_pending} password verifications pending")
        self._hash_pending += 1

        def done(result: Any) -> Any:
            self._hash_pending -= 1
            return result
        d: Deferred[bool] = self._hasher.run(fn, *args)
        return d.addBoth(done)
