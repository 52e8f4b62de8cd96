"""Which user a SIP Call-ID belongs to: remembered at authorisation, read at accounting.

Kamailio's acc_radius sends no User-Name, Called- or Calling-Station-Id: only
the Call-ID (Acct-Session-Id). When auth_radius sends the Call-ID too
(``auth_extra "Acct-Session-Id=$ci"``), the Access-Accept that let the call
through says whose call it is and what number was dialled; the accounting
handler reads that back for the call's Start (and Failed) records. A Stop
needs nothing: its session is the Start's (keyed by the Call-ID alone).

The index is per process and bounded (oldest entries dropped first, and
entries older than ``ttl_s``). A record whose Call-ID is not in it (a
restart between authorisation and Start, or no Call-ID in the
Access-Request) is stored as ``(unattributed)``, counted and logged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Authorised", "CallIndex"]


@dataclass(frozen=True, slots=True)
class Authorised:
    """What an Access-Accept of a call said: whose it is, who called, what number."""

    user_name: str
    dialled: str
    caller: str
    at: float
    timeout_s: int | None = None    # the Session-Timeout it allowed


class CallIndex:
    """Call-ID (per client) → the authorisation that let the call through."""

    def __init__(self, *, now: Callable[[], float], max_entries: int = 100_000,
                 ttl_s: float = 86400.0) -> None:
        self._now = now
        self._max = max_entries
        self._ttl = ttl_s
        self._entries: OrderedDict[tuple[str, str], Authorised] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, client: str, call_id: str, *, user_name: str, dialled: str,
            caller: str, timeout_s: int | None = None) -> None:
        """Remember an authorised call (the reactor thread only)."""
        key = (client, call_id)
        self._entries.pop(key, None)
        self._entries[key] = Authorised(user_name, dialled, caller, self._now(), timeout_s)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def get(self, client: str, call_id: str) -> Authorised | None:
        """The authorisation of this call, if it is remembered and not too old."""
        found = self._entries.get((client, call_id))
        if found is None:
            return None
        if self._now() - found.at > self._ttl:
            del self._entries[(client, call_id)]
            return None
        return found
