"""benchmarks/fuzz.py's packet generator, without a daemon: the same seed gives the
same packets, re-signed packets verify, and the zone the daemon run uses."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aaad.radius.authenticators import request_authenticator
from aaad.radius.codec import load_dictionary
from tests.support.fuzz import fuzz, zone_where_it_is_afternoon


def test_the_zone_puts_every_hour_of_the_day_at_fourteen_local() -> None:
    base = datetime(2026, 12, 3, 0, 40, tzinfo=UTC).timestamp()
    for hour in range(24):
        t = base + hour * 3600
        assert datetime.fromtimestamp(t, ZoneInfo(zone_where_it_is_afternoon(t))).hour == 14


def test_the_same_seed_gives_the_same_packets() -> None:
    def packets(seed: int) -> list[tuple[str, str, str, bytes]]:
        g = fuzz.Generator(seed, load_dictionary(), 1_800_000_000)
        return [(p.kind, p.port, p.source, p.data) for p in (g.next() for _ in range(3000))]
    assert packets(5) == packets(5)
    assert packets(5) != packets(6)


def test_resigned_accounting_packets_carry_a_valid_request_authenticator() -> None:
    # The point of mutated_signed: the mutation happens before signing, so
    # the packet passes the Request Authenticator check and reaches the core.
    g = fuzz.Generator(3, load_dictionary(), 1_800_000_000)
    for _ in range(500):
        data = g.mutated_signed("acct", fuzz.PLAIN)
        assert data[4:20] == request_authenticator(data, fuzz.SECRET)
