"""End to end: tenants on the wire. The real ``aaad serve`` with two NAS
clients, one of them tenant acme's, driven by pyrad from two loopback
addresses: logins and accounting go to the user of the client's tenant, or of
the realm of ``user@tenant``, and never to another tenant's user of the name."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from pyrad.packet import AccessAccept, AccessReject, Packet

from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.database import Database
from tests.support.daemon import SECRET, Daemon, acct, exchange, poll, start_daemon
from tests.support.databases import migrated

ACME_NAS = "127.0.0.3"          # the tenant's client; 127.0.0.1 is the operator's
USERS = {("tbob", None): "Op-bob-pw-123", ("tbob", "e2e-acme"): "Acme-bob-pw-123",
         ("tcarol", "e2e-beta"): "Beta-carol-pw-123"}


@dataclass
class Served:
    d: Daemon
    db: Database


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def served(request: pytest.FixtureRequest, server_urls: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = migrated(server_urls, str(request.param))
    tmp = tmp_path_factory.mktemp(f"e2e-tenants-{request.param}")
    d = start_daemon(tmp, db.url, clients_yaml=(
        f"  - name: acme-nas\n"
        f"    address: {ACME_NAS}/32\n"
        f"    secret: \"{SECRET}\"\n"
        f"    tenant: e2e-acme\n"))
    try:
        for tenant in ("e2e-acme", "e2e-beta"):
            d.cli("tenant", "add", tenant)
        for (name, tenant), password in USERS.items():
            d.cli("user", "add", name, "--password", password,
                  *(["--tenant", tenant] if tenant else []))
        yield Served(d, db)
    finally:
        code = d.stop()
        with db.writer.begin() as conn:
            for (name, tenant) in USERS:
                with contextlib.suppress(user_store.NoSuchUser, tenant_store.NoSuchTenant):
                    user_store.delete_user(conn, name,
                                           tenant=tenant_store.tenant_id(conn, tenant))
            for tenant in ("e2e-acme", "e2e-beta"):
                with contextlib.suppress(tenant_store.NoSuchTenant):
                    tenant_store.delete_tenant(conn, tenant)
    assert code == 0, d.logs()


def login(d: Daemon, user: str, password: str, source: str) -> int:
    req = d.client().CreateAuthPacket(User_Name=user)
    req["User-Password"] = req.PwCrypt(password)
    req.add_message_authenticator()
    reply: Packet = exchange(d, req, port=d.auth_port, source=source)
    return int(reply.code)


def test_logins_go_to_the_clients_tenant_or_the_realm(served: Served) -> None:
    d = served.d
    op_pw, acme_pw, beta_pw = USERS.values()
    cases = [
        # the operator's client: the operator's bob, or a tenant's by realm
        ("tbob", op_pw, "127.0.0.1", AccessAccept),
        ("tbob", acme_pw, "127.0.0.1", AccessReject),
        ("tbob@e2e-acme", acme_pw, "127.0.0.1", AccessAccept),
        ("tbob@e2e-acme", op_pw, "127.0.0.1", AccessReject),
        ("tcarol@e2e-beta", beta_pw, "127.0.0.1", AccessAccept),
        # acme's client: acme's users only, whatever the realm
        ("tbob", acme_pw, ACME_NAS, AccessAccept),
        ("tbob@e2e-acme", acme_pw, ACME_NAS, AccessAccept),
        ("tbob", op_pw, ACME_NAS, AccessReject),
        ("tcarol", beta_pw, ACME_NAS, AccessReject),
        ("tcarol@e2e-beta", beta_pw, ACME_NAS, AccessReject),
    ]
    got = [(u, src, login(d, u, pw, src)) for u, pw, src, _ in cases]
    assert got == [(u, src, want) for u, _, src, want in cases]
    assert "Access-Reject: 'tcarol' from acme-nas" in d.logs()
    # The tenants were added after the start, which warned about the client's:
    # routing reads them per batch, no restart needed.
    assert "client acme-nas: no tenant 'e2e-acme' in the database" in d.logs()


def test_accounting_counts_for_the_routed_user(served: Served) -> None:
    d, db = served.d, served.db
    acct(d, "tbob", "t-acme-1", "Start", source=ACME_NAS)
    acct(d, "tbob", "t-acme-1", "Interim-Update", t=60, source=ACME_NAS)
    acct(d, "tbob@e2e-acme", "t-realm-1", "Start")
    acct(d, "tbob@e2e-acme", "t-realm-1", "Interim-Update", t=30)
    acct(d, "tbob", "t-op-1", "Start")
    acct(d, "tbob", "t-op-1", "Interim-Update", t=7)
    start = period_bounds(parse_period_spec("monthly", 1), UTC,
                          int(datetime.now(UTC).timestamp()))[0]

    def used() -> tuple[int, int]:
        with db.reader.connect() as conn:
            acme = tenant_store.tenant_id(conn, "e2e-acme")
            ids = (user_store.user_ids(conn, ["tbob"])["tbob"],
                   user_store.user_ids(conn, ["tbob"], tenant=acme)["tbob"])
            return tuple(usage_store.get_usage(conn, i, start).session_s  # type: ignore[return-value]
                         for i in ids)
    assert poll(lambda: used() == (7, 90) and used())
    shown = json.loads(d.cli("usage", "show", "tbob", "--tenant", "e2e-acme", "--json").stdout)
    assert (shown["user"], shown["session_s"]) == ("tbob", 90)
    assert json.loads(d.cli("usage", "show", "tbob", "--json").stdout)["session_s"] == 7
    with db.reader.connect() as conn:
        rows = {s["acct_session_id"]: s["user"]
                for s in session_store.list_sessions(conn, limit=100_000)
                if s["acct_session_id"] in ("t-acme-1", "t-realm-1", "t-op-1")}
    # the session keeps the User-Name as the NAS sent it (what a Disconnect-Request names)
    assert rows == {"t-acme-1": "tbob", "t-realm-1": "tbob@e2e-acme", "t-op-1": "tbob"}
