"""Tenants: which namespace a User-Name is looked up in (docs/design.md "Tenants").

A tenant (reseller) owns its users; user names are unique per tenant, and the
operator's own users are the namespace of tenant id 0 (:data:`OPERATOR`).
Access-Request and accounting route a User-Name the same way:

1. From a NAS client configured with ``tenant: T``: the name is looked up in
   T only. A suffix ``@T`` is stripped (``alice@t`` and ``alice`` are the same
   user there); any other name is looked up as sent, in T. If T is not a
   tenant (the configuration names one the database does not have), the
   route is :attr:`Route.unknown`: logins are rejected, and accounting is
   counted under the name ``<name>@T`` in the operator's namespace, as the
   realm rule would for a client without a tenant.
2. From a client without a tenant: ``user@realm`` where ``realm`` is a
   tenant's name (compared case-insensitively; tenant names are lowercase) is
   looked up as ``user`` in that tenant. The split is at the last ``@``.
3. Anything else is looked up as sent in the operator's namespace.

So a login routed to tenant A never reads a user of tenant B or of the
operator. The User-Name as sent stays what sessions record and what a
Disconnect-Request names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OPERATOR", "Route", "route", "needs_tenants", "valid_tenant_name", "TENANT_NAME_RE"]

OPERATOR = 0
"""The tenant id of the operator's own users, plans and rate tables."""

# A tenant's name is its realm: DNS-like, lowercase, so that the realm match
# needs no collation and "ACME" and "acme" cannot be two tenants.
TENANT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?")


def valid_tenant_name(name: str) -> bool:
    """Lowercase letters, digits, dots and hyphens, 1-64 long, not starting or
    ending with a dot or hyphen."""
    return TENANT_NAME_RE.fullmatch(name) is not None


# Not frozen: one per login and per new session (see Request in
# radius/codec.py); nothing assigns to one after route().
@dataclass(slots=True)
class Route:
    """Where one User-Name is looked up: a tenant id and the name within it."""

    tenant_id: int
    name: str
    # The client's tenant is not in the database: no login succeeds.
    unknown: bool = False


def route(user_name: str, client_tenant: str | None, tenants: Mapping[str, int]) -> Route:
    """The namespace and name a User-Name is looked up under.

    Args:
        user_name: the User-Name as sent.
        client_tenant: the tenant of the NAS client it came from (None: none).
        tenants: tenant name → id, every tenant there is (lowercase names).
    """
    if client_tenant is not None:
        local, at, realm = user_name.rpartition("@")
        if at and local and realm.lower() == client_tenant:
            user_name = local
        tid = tenants.get(client_tenant)
        if tid is None:
            return Route(OPERATOR, f"{user_name}@{client_tenant}", unknown=True)
        return Route(tid, user_name)
    local, at, realm = user_name.rpartition("@")
    if at and local:
        tid = tenants.get(realm.lower())
        if tid is not None:
            return Route(tid, local)
    return Route(OPERATOR, user_name)


def needs_tenants(user_name: str, client_tenant: str | None) -> bool:
    """Whether :func:`route` could answer anything but the operator's name as
    sent: only then does the caller need the tenant list."""
    return client_tenant is not None or "@" in user_name
