"""The duplicate-request cache (RFC 5080 §2.2.2).

A request is identified by (source address, source port, identifier, Request
Authenticator). Within the TTL a duplicate gets the cached reply again; while
the first copy is still being processed a duplicate is dropped (the NAS will
retransmit). Entries expire in arrival order, and the size is bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ReplyCache", "IN_FLIGHT"]

Key = tuple[str, int, int, bytes]
IN_FLIGHT = b""


class ReplyCache:
    """Maps a request key to its reply bytes, or to IN_FLIGHT while processed."""

    def __init__(self, *, ttl_s: float, now: Callable[[], float],
                 max_entries: int = 200_000) -> None:
        self._ttl_s = ttl_s
        self._now = now
        self._max = max_entries
        self._entries: OrderedDict[Key, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Key) -> bytes | None:
        """The cached reply, IN_FLIGHT, or None if the request is new."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] + self._ttl_s < self._now():
            del self._entries[key]
            return None
        return hit[1]

    def begin(self, key: Key) -> None:
        """Mark a new request as being processed."""
        self._expire()
        self._entries[key] = (self._now(), IN_FLIGHT)
        self._entries.move_to_end(key)

    def complete(self, key: Key, reply: bytes) -> None:
        """Remember the reply, keeping the request's arrival time for the TTL."""
        hit = self._entries.get(key)
        if hit is not None:
            self._entries[key] = (hit[0], reply)

    def forget(self, key: Key) -> None:
        """Drop a request that got no reply, so its retransmit is processed."""
        self._entries.pop(key, None)

    def _expire(self) -> None:
        limit = self._now() - self._ttl_s
        entries = self._entries
        while entries:
            key, (seen, _) = next(iter(entries.items()))
            if seen >= limit and len(entries) < self._max:
                break
            del entries[key]
