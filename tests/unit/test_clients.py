"""The NAS client table (aaad/radius/clients.py): source address → client."""

from __future__ import annotations

import pytest

from aaad.radius.clients import ClientTable
from aaad.radius.errors import UnknownClient
from tests.support.radius_packets import make_client

WIDE = make_client("wide", "10.0.0.0/8", b"wide-secret")
SITE = make_client("site", "10.20.0.0/16", b"site-secret")
ONE = make_client("one", "10.20.30.40/32", b"one-secret")
V6 = make_client("v6", "2001:db8::/32", b"v6-secret")
V6HOST = make_client("v6host", "2001:db8::7/128", b"v6host-secret")
TABLE = ClientTable([WIDE, ONE, V6, SITE, V6HOST])     # order of configuration does not matter


@pytest.mark.parametrize("address, name", [
    ("10.1.2.3", "wide"),
    ("10.20.1.1", "site"),
    ("10.20.30.40", "one"),
    ("10.20.30.41", "site"),
    ("2001:db8::1", "v6"),
    ("2001:db8::7", "v6host"),
    ("2001:0db8:0000::0007", "v6host"),
    ("::ffff:10.20.30.40", "one"),                      # IPv4-mapped, from a dual-stack socket
    ("::ffff:10.9.9.9", "wide"),
    ("fe80::1%eth0", None),
    ("2001:db8::1%eth0", "v6"),
    ("192.0.2.1", None),
    ("11.0.0.0", None),
    ("::ffff:192.0.2.1", None),
    ("::a14:1e28", None),                               # IPv4-compatible is not IPv4-mapped
    ("not an address", None),
    ("", None),
])
def test_longest_prefix_match(address: str, name: str | None) -> None:
    if name is None:
        with pytest.raises(UnknownClient) as e:
            TABLE.match(address)
        assert e.value.reason == "unknown_client"
    else:
        assert TABLE.match(address).name == name


def test_repeated_lookups_agree_with_the_first() -> None:
    # The second lookup of each address comes from the per-address cache.
    for _ in range(2):
        assert TABLE.match("10.20.30.40") is ONE
        with pytest.raises(UnknownClient):
            TABLE.match("192.0.2.1")


def test_cache_overflow_does_not_change_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    table = ClientTable([WIDE, SITE])
    monkeypatch.setattr(table, "_CACHE_MAX", 4)
    for i in range(50):
        assert table.match(f"10.20.0.{i}") is SITE
        assert table.match(f"10.30.0.{i}") is WIDE
    assert len(table._cache) <= 4


def test_empty_table() -> None:
    with pytest.raises(UnknownClient):
        ClientTable([]).match("10.0.0.1")


def test_iteration_and_length() -> None:
    assert len(TABLE) == 5
    assert set(TABLE) == {WIDE, SITE, ONE, V6, V6HOST}


def test_repr_has_no_secret() -> None:
    text = repr(ONE) + str(ONE) + repr(TABLE.match("10.20.30.40")) + repr([ONE])
    assert "one-secret" not in text and "b'" not in text
    assert "one" in repr(ONE) and "10.20.30.40/32" in repr(ONE)


def test_unknown_client_message_has_only_the_address() -> None:
    with pytest.raises(UnknownClient) as e:
        TABLE.match("192.0.2.1")
    assert "192.0.2.1" in str(e.value)
    assert "secret" not in str(e.value)
