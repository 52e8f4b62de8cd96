"""Suspension by hand with the real daemon, on SQLite, PostgreSQL and MariaDB:
``aaad user suspend`` refuses the logins with the reason and disconnects the open
session at a fake NAS (RFC 5176), a top-up does not lift it, ``aaad user resume``
does and the next login is accepted."""

from __future__ import annotations

import json
import time

import pytest
from pyrad.packet import AccessAccept, AccessReject
from sqlalchemy import delete

from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store.tables import charges, events, ledger, sessions, users
from tests.support.daemon import acct, start_daemon
from tests.support.databases import migrated
from tests.support.nas import FakeNas

PASSWORD = "Held-pw-12345"
REASON = "unpaid invoice 42"



@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_suspend_by_hand_then_resume(dialect: str, server_urls: dict[str, object],
                                     tmp_path_factory: pytest.TempPathFactory) -> None:
    db = migrated(server_urls, dialect)
    name = f"held-{dialect}"
    now = int(time.time())
    with db.writer.begin() as conn:
        for table in (charges, ledger, sessions):
            conn.execute(delete(table).where(table.c.user_name == name))
        conn.execute(delete(events).where(events.c.user_name == name))
        conn.execute(delete(users).where(users.c.name == name))
        uid = user_store.add_user(conn, name, password_hash=None, password_cleartext=PASSWORD,
                                  plan=None, enabled=True, now=now)
        ledger_store.set_billing(conn, uid, name, "prepaid", now)
        ledger_store.post(conn, user_name=name, amount=100000, kind="topup",
                          ref=f"topup:{name}-1", description="", now=now)
    nas = FakeNas()
    d = start_daemon(tmp_path_factory.mktemp(f"suspend-{dialect}"), db.url,
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n")
    try:
        assert d.login(name, PASSWORD) == (AccessAccept, "")
        acct(d, name, "s-open", "Start")
        out = d.cli("user", "suspend", name, "--reason", REASON)
        assert out.stdout.splitlines() == [f"suspended user {name} by hand (reason: {REASON})",
                                           "s-open on loopback: ack"]
        [cut] = nas.wait(name)
        assert cut.attrs["Acct-Session-Id"] == ["s-open"] and cut.request_authenticator_ok
        assert d.login(name, PASSWORD) == (AccessReject, f"Account suspended: {REASON}")

        d.cli("credit", "topup", name, "20.00", "--ref", f"{name}-2")
        assert d.login(name, PASSWORD) == (AccessReject, f"Account suspended: {REASON}")

        assert d.cli("user", "resume", name).stdout == (
            f"resumed user {name}: lifted the suspension by hand (reason was: {REASON})\n")
        assert d.login(name, PASSWORD) == (AccessAccept, "")
        logged = json.loads(d.cli("events", "list", "--user", name, "--json").stdout)
        assert [(e["kind"], e["detail"]) for e in logged if e["kind"] != "disconnect"] == [
            ("resumed", f"by hand (was: {REASON})"), ("suspended", f"by hand: {REASON}")]
        assert [e["result"] for e in logged if e["kind"] == "disconnect"] == ["ack"]
    finally:
        d.stop()
        nas.close()
