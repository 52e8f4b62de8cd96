"""User credentials: argon2id hashes, cleartext, NT hashes, and the verify cache.

A password is stored in one of three forms (the ``users`` columns
``password_hash``, ``password_cleartext``, ``password_nt_hash``), and which
form decides which methods can check it: PAP any, CHAP the cleartext,
MS-CHAP v1/v2 the cleartext or the NT hash (MD4 of the UTF-16LE password,
RFC 2759 §8.3; :func:`columns` computes it). An NT hash is as good as the
password to an MS-CHAP peer: it is a secret like one.

A slow hash must not cap throughput, so successful PAP verifications are
remembered for a while. The cache holds only a keyed digest,
HMAC-SHA256(per-process random key, name ‖ password ‖ stored hash), never a
password. Because the stored hash is part of the digest, changing a password
makes the old entries unreachable at once; they age out by TTL and LRU.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from Crypto.Hash import MD4

__all__ = ["hash_password", "verify_hash", "needs_rehash", "rehash", "VerifyCache", "dummy_hash",
           "HASHER",
           "FORMS", "nt_hash", "parse_nt_hash", "verify_nt_hash", "columns"]

FORMS = ("argon2id", "cleartext", "nt")
"""How a password given in full is stored: hashed with argon2id, as it is, or as its NT hash."""
_NT_HEX = re.compile(r"[0-9a-fA-F]{32}")

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


def needs_rehash(stored_hash: str) -> bool:
    """An argon2 hash made with other parameters than :data:`HASHER`'s (an
    older default, or a hash imported from elsewhere): re-hashed at the next
    successful login. Not an argon2 hash: False."""
    if not stored_hash.startswith("$argon2"):
        return False
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return False


def rehash(password: bytes) -> str:
    """The argon2id hash of a password as sent (PAP octets) with today's parameters."""
    return HASHER.hash(password)


def nt_hash(password: str) -> str:
    """The NT hash (RFC 2759 §8.3 NtPasswordHash) as 32 lower-case hex digits."""
    return MD4.new(password.encode("utf-16-le")).hexdigest()


def parse_nt_hash(text: str) -> str | None:
    """An NT hash given in hex (32 digits, either case) in its stored form, or None."""
    text = text.strip()
    return text.lower() if _NT_HEX.fullmatch(text) else None


def verify_nt_hash(stored_nt_hash: str, password: bytes) -> bool:
    """PAP against a stored NT hash: the NT hash of ``password`` (UTF-8) matches.

    A stored value that is not an NT hash is a mismatch, as a corrupt argon2id
    hash is for :func:`verify_hash`.
    """
    try:
        computed = nt_hash(password.decode("utf-8"))
    except UnicodeDecodeError:
        return False
    # bytes: compare_digest refuses a str with non-ASCII (a corrupt stored value)
    return hmac.compare_digest(computed.encode("ascii"),
                               stored_nt_hash.lower().encode("utf-8", "replace"))


def columns(*, password: str | None = None, form: str = "argon2id",
            nt_hash_hex: str | None = None) -> dict[str, str | None]:
    """The three password columns of a user, exactly one of them set.

    Either ``password`` in full, stored as ``form`` (see :data:`FORMS`;
    argon2id hashing is slow: call it off the reactor), or an NT hash the
    caller already has (``nt_hash_hex``, as :func:`parse_nt_hash` returned it).

    Raises:
        ValueError: neither or both given, or an unknown form.
    """
    if (password is None) == (nt_hash_hex is None):
        raise ValueError("give exactly one of a password and an NT hash")
    out: dict[str, str | None] = {"password_hash": None, "password_cleartext": None,
                                  "password_nt_hash": None}
    if nt_hash_hex is not None:
        out["password_nt_hash"] = nt_hash_hex
    elif form == "argon2id":
        out["password_hash"] = hash_password(str(password))
    elif form == "cleartext":
        out["password_cleartext"] = password
    elif form == "nt":
        out["password_nt_hash"] = nt_hash(str(password))
    else:
        raise ValueError(f"unknown password form {form!r} (one of {', '.join(FORMS)})")
    return out


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
