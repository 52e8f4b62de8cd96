"""User credentials: argon2id hashes, cleartext for CHAP, and the verify cache.

A slow hash must not cap throughput, so successful PAP verifications are
remembered for a while. The cache holds only a keyed digest,
HMAC-SHA256(per-process random key, name ‖ password ‖ stored hash), never a
password. Because the stored hash is part of the digest, changing a password
makes the old entries unreachable at once; they age out by TTL and LRU.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "verify_hash", "VerifyCache", "dummy_hash", "HASHER"]

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~15 ms a verify here,
# so a cold cache after a restart re-verifies thousands of users in seconds.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def hash_password(password: str) -> str:
    """An argon2id hash string (parameters and salt included)."""
    return HASHER.hash(password)


def verify_hash(stored_hash: str, password: bytes) -> bool:
    """True if ``password`` matches ``stored_hash``; a corrupt hash is a mismatch."""
    try:
        return HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY: list[str] = []


def dummy_hash() -> str:
    """A hash of a random password, verified for unknown users to equalise cost."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(24)))
    return _DUMMY[0]


class VerifyCache:
    """Bounded, expiring set of recent successful (user, password, hash) checks."""

    def __init__(self, *, max_entries: int, ttl_s: float, now: Callable[[], float]) -> None:
        self._key = secrets.token_bytes(32)
        self._max = max_entries
        self._ttl_s = ttl_s
        self._now = now
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _digest(self, name: str, password: bytes, stored_hash: str) -> bytes:
        msg = b"\x00".join((name.encode("utf-8", "surrogateescape"), password,
                            stored_hash.encode("ascii", "replace")))
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def hit(self, name: str, password: bytes, stored_hash: str) -> bool:
        d = self._digest(name, password, stored_hash)
        expires = self._entries.get(d)
        if expires is None:
            return False
        if expires < self._now():
            del self._entries[d]
            return False
        self._entries.move_to_end(d)
        return True

    def add(self, name: str, password: bytes, stored_hash: str) -> None:
        if self._max <= 0 or self._ttl_s <= 0:
            return
        d = self._digest(name, password, stored_hash)
        self._entries[d] = self._now() + self._ttl_s
        self._entries.move_to_end(d)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
