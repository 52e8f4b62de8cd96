"""Why a datagram is dropped without a reply (DESIGN §1).

Each error has a stable ``reason``: it is the ``reason`` label of
``aaad_packets_dropped_total`` and the word in the rate-limited log line.
Messages never contain a secret or a password.

:class:`NoReply` is any request dropped without an answer (the NAS retries),
whoever decides it: the daemon's full queues derive from it directly.
:class:`WireError` is the kind found in the datagram itself; only those are
raised while decoding.
"""

from __future__ import annotations

__all__ = [
    "NoReply",
    "WireError",
    "Malformed",
    "UnknownClient",
    "BadAuthenticator",
    "BadMessageAuthenticator",
    "MissingMessageAuthenticator",
    "UnexpectedCode",
    "UndecodablePassword",
]


class NoReply(Exception):
    """A request dropped without an answer; ``reason`` is a metric label."""

    reason = "error"


class WireError(NoReply):
    """A datagram that gets no reply for what it contains (or who sent it)."""

    reason = "error"


class Malformed(WireError):
    """Short, wrong length, attribute overrun, or a required attribute missing."""

    reason = "malformed"


class UnexpectedCode(WireError):
    """A code this port does not serve (e.g. an Access-Accept sent to us)."""

    reason = "unexpected_code"


class UnknownClient(WireError):
    """The source address is not a configured client."""

    reason = "unknown_client"


class BadAuthenticator(WireError):
    """The Request Authenticator of an accounting packet does not verify."""

    reason = "bad_authenticator"


class BadMessageAuthenticator(WireError):
    """A Message-Authenticator (RFC 3579 §3.2) is present and wrong."""

    reason = "bad_message_authenticator"


class MissingMessageAuthenticator(WireError):
    """The client requires a Message-Authenticator and the packet has none."""

    reason = "missing_message_authenticator"


class UndecodablePassword(WireError):
    """User-Password decrypts to bytes that are not text: almost surely a wrong secret.

    An Access-Request without Message-Authenticator carries no integrity
    check, so this is the only sign of a mismatched secret. With the wrong
    secret the decrypted value is random: NUL octets inside it, or invalid
    UTF-8, in all but about 1 in 10,000 cases. Stored passwords are UTF-8, so
    such a password could never have matched anyway.
    """

    reason = "undecodable_password"
