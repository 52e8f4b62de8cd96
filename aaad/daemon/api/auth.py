"""Who may use the API: one bearer token from the config (``api.token``).

The one place that decides: :func:`authorise` maps the ``Authorization``
header to a :class:`Principal` whose ``scope`` keys what it may see and its
idempotency keys. Per-tenant tokens replace this function and nothing else.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

__all__ = ["Principal", "authorise", "DEFAULT_SCOPE"]

DEFAULT_SCOPE = "default"


@dataclass(frozen=True, slots=True)
class Principal:
    scope: str


def authorise(header: bytes | None, token: bytes) -> Principal | None:
    """The principal a ``Bearer`` token stands for (compared in constant
    time), or None."""
    scheme, _, given = (header or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"),
                                                            token):
        return None
    return Principal(DEFAULT_SCOPE)
