"""The NAS client table: source address → client (name, secret, type, CoA port).

Longest-prefix match over the configured addresses and CIDR networks, with a
bounded per-address cache so the hot path is one dict lookup.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from aaad.radius.errors import UnknownClient

__all__ = ["Client", "ClientTable"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Client:
    """One configured NAS. ``secret`` is bytes; never log it."""

    name: str
    network: Network
    secret: bytes
    coa_port: int = 3799
    type: str = "generic"
    require_message_authenticator: bool = False
    call_direction: str = "out"     # calls with no direction attribute: in | out
    tenant: str | None = None       # its users are this tenant's (core.accounting.realms)
    interims: str = "expected"      # "none": sends no Interim-Updates (never stale)
    throttle_by: str = "coa"        # coa | disconnect (a NAS without CoA support)

    def __repr__(self) -> str:
        return (f"Client(name={self.name!r}, network={str(self.network)!r}, type={self.type!r}, "
                f"tenant={self.tenant!r})")


class ClientTable:
    """Matches a source IP to the most specific configured client."""

    _CACHE_MAX = 65536

    def __init__(self, clients: Iterable[Client]) -> None:
        self._clients = sorted(clients, key=lambda c: -c.network.prefixlen)
        self._cache: dict[str, Client | None] = {}
        # client name → tenant, for accounting records (which carry the name).
        self.tenants: dict[str, str] = {c.name: c.tenant for c in self._clients
                                        if c.tenant is not None}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    def match(self, address: str) -> Client:
        """The client for ``address``.

        Raises:
            UnknownClient: no configured address or network contains it.
        """
        try:
            hit = self._cache[address]
        except KeyError:
            hit = self._lookup(address)
            if len(self._cache) >= self._CACHE_MAX:
                self._cache.clear()
            self._cache[address] = hit
        if hit is None:
            raise UnknownClient(f"{address} is not a configured client")
        return hit

    def _lookup(self, address: str) -> Client | None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for client in self._clients:
            if ip.version == client.network.version and ip in client.network:
                return client
        return None
