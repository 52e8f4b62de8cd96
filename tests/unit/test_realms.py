"""The tenant routing rule (aaad.core.accounting.realms): which namespace a User-Name reads."""

from __future__ import annotations

import pytest

from aaad.core.accounting.realms import OPERATOR, Route, needs_tenants, route, valid_tenant_name

TENANTS = {"acme": 7, "beta.net": 9}


@pytest.mark.parametrize(("user_name", "client_tenant", "expected"), [
    # A client without a tenant: a realm that is a tenant's name routes there.
    ("alice", None, Route(OPERATOR, "alice")),
    ("alice@acme", None, Route(7, "alice")),
    ("alice@ACME", None, Route(7, "alice")),
    ("alice@beta.net", None, Route(9, "alice")),
    ("a@b@acme", None, Route(7, "a@b")),            # the last @ splits
    ("alice@example.com", None, Route(OPERATOR, "alice@example.com")),
    ("@acme", None, Route(OPERATOR, "@acme")),       # no local part: as sent
    ("alice@", None, Route(OPERATOR, "alice@")),
    # A client with a tenant: that tenant only, whatever the realm says.
    ("alice", "acme", Route(7, "alice")),
    ("alice@acme", "acme", Route(7, "alice")),
    ("alice@beta.net", "acme", Route(7, "alice@beta.net")),
    ("alice@example.com", "acme", Route(7, "alice@example.com")),
    # A client whose tenant the database does not have.
    ("alice", "gone", Route(OPERATOR, "alice@gone", unknown=True)),
    ("alice@gone", "gone", Route(OPERATOR, "alice@gone", unknown=True)),
])
def test_route(user_name: str, client_tenant: str | None, expected: Route) -> None:
    assert route(user_name, client_tenant, TENANTS) == expected


def test_tenant_a_never_reads_tenant_b() -> None:
    for name in ("bob", "bob@beta.net", "bob@acme", "bob@"):
        assert route(name, "acme", TENANTS).tenant_id == 7


def test_needs_tenants_only_for_realms_and_tenant_clients() -> None:
    assert not needs_tenants("alice", None)
    assert needs_tenants("alice@acme", None)
    assert needs_tenants("alice", "acme")
    # Without the tenant list the answer would be the same: the operator's name as sent.
    assert route("alice", None, {}) == Route(OPERATOR, "alice")


@pytest.mark.parametrize(("name", "ok"), [
    ("acme", True), ("beta.net", True), ("a", True), ("x-1", True), ("a" * 64, True),
    ("a" * 65, False), ("", False), ("Acme", False), ("-a", False), ("a.", False),
    ("a b", False), ("a@b", False), ("a/b", False),
])
def test_valid_tenant_name(name: str, ok: bool) -> None:
    assert valid_tenant_name(name) is ok
