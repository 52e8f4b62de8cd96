"""The duplicate-request cache (aaad/radius/dedup.py, RFC 5080 §2.2.2), on an injected clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from aaad.radius.dedup import IN_FLIGHT, ReplyCache

A = ("192.0.2.1", 1812, 7, b"a" * 16)
B = ("192.0.2.1", 1812, 8, b"b" * 16)
REPLY = b"\x02\x07\x00\x14" + bytes(16)


def cache(ttl_s: float = 30, max_entries: int = 1000) -> tuple[ReplyCache, Clock]:
    clock = Clock()
    return ReplyCache(ttl_s=ttl_s, now=clock.seconds, max_entries=max_entries), clock


def test_new_request_is_unknown() -> None:
    c, _ = cache()
    assert c.lookup(A) is None
    assert len(c) == 0


def test_in_flight_then_reply() -> None:
    c, clock = cache()
    c.begin(A)
    assert c.lookup(A) == IN_FLIGHT
    clock.advance(1)
    c.complete(A, REPLY)
    assert c.lookup(A) == REPLY
    assert c.lookup(B) is None


def test_every_part_of_the_key_counts() -> None:
    c, _ = cache()
    c.begin(A)
    c.complete(A, REPLY)
    for other in [("192.0.2.2", *A[1:]), (A[0], 1813, *A[2:]), (*A[:2], 8, A[3]),
                  (*A[:3], b"x" * 16)]:
        assert c.lookup(other) is None


def test_ttl_counts_from_arrival_not_from_reply() -> None:
    c, clock = cache(ttl_s=30)
    c.begin(A)
    clock.advance(20)
    c.complete(A, REPLY)
    clock.advance(10)
    assert c.lookup(A) == REPLY        # exactly at the TTL: still a duplicate
    clock.advance(0.5)
    assert c.lookup(A) is None         # past it: a new request
    assert len(c) == 0


def test_expired_entries_are_swept_on_begin() -> None:
    c, clock = cache(ttl_s=30)
    c.begin(A)
    c.complete(A, REPLY)
    clock.advance(31)
    c.begin(B)
    assert len(c) == 1
    assert c.lookup(B) == IN_FLIGHT


def test_forget_lets_the_retransmit_through() -> None:
    c, _ = cache()
    c.begin(A)
    c.forget(A)
    assert c.lookup(A) is None
    c.forget(A)                        # idempotent
    c.complete(A, REPLY)               # a late reply for a forgotten request is not cached
    assert c.lookup(A) is None


def test_begin_again_restarts_the_ttl() -> None:
    c, clock = cache(ttl_s=30)
    c.begin(A)
    c.forget(A)
    clock.advance(25)
    c.begin(A)
    c.complete(A, REPLY)
    clock.advance(25)
    assert c.lookup(A) == REPLY


def test_size_is_bounded_oldest_first() -> None:
    c, clock = cache(max_entries=3)
    keys = [("192.0.2.1", 1000, i, bytes(16)) for i in range(5)]
    for k in keys:
        c.begin(k)
        c.complete(k, REPLY)
        clock.advance(1)
    assert len(c) == 3
    assert [c.lookup(k) for k in keys] == [None, None, REPLY, REPLY, REPLY]


def test_bound_holds_under_many_requests() -> None:
    c, clock = cache(ttl_s=30, max_entries=100)
    for i in range(10_000):
        c.begin(("192.0.2.1", i, i % 256, bytes(16)))
        clock.advance(0.001)
        assert len(c) <= 100
