"""A prepaid user with the real daemon, on SQLite, PostgreSQL and MariaDB: fees the
balance cannot pay suspend the login with the reason and cut a live session of a
disconnect plan; a top-up that covers them pays each once and the next login is
accepted."""

from __future__ import annotations

import time

import pytest
from pyrad.packet import AccessAccept, AccessReject
from sqlalchemy import delete, select

from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.plans import plan_to_json
from aaad.store.tables import charges, ledger, plans, users
from tests.support.daemon import acct, poll, start_daemon
from tests.support.databases import migrated
from tests.support.nas import FakeNas

PASSWORD = "Prepaid-pw-12345"



@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_a_prepaid_user_is_suspended_and_resumed_by_a_top_up(
        dialect: str, server_urls: dict[str, object],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    db = migrated(server_urls, dialect)
    name, plan = f"pre-{dialect}", f"pre-home-{dialect}"
    now = int(time.time())
    with db.writer.begin() as conn:
        conn.execute(delete(charges).where(charges.c.user_name == name))
        conn.execute(delete(ledger).where(ledger.c.user_name == name))
        conn.execute(delete(users).where(users.c.name == name))
        conn.execute(delete(plans).where(plans.c.name == plan))
        # The setup fee alone is more than the balance, whatever the day of the month.
        p = parse_plan({"name": plan, "fee": "29.90", "setup_fee": "29.90",
                        "over_limit": "disconnect"})
        plan_store.save_plan(conn, plan, plan_to_json(p), now - 86400)
        uid = user_store.add_user(conn, name, password_hash=None, password_cleartext=PASSWORD,
                                  plan=None, enabled=True, now=now)
        ledger_store.set_billing(conn, uid, name, "prepaid", now)
        ledger_store.post(conn, user_name=name, amount=100000, kind="topup",
                          ref=f"topup:{name}-1", description="", now=now)
        user_store.update_user(conn, name, now=now, plan=plan)   # the fee is due at once
    nas = FakeNas()
    d = start_daemon(tmp_path_factory.mktemp(f"prepaid-{dialect}"), db.url,
                     radius_yaml="  coa_timeouts: [0.2, 0.4]\n",
                     clients_yaml=f"    coa_port: {nas.port}\n",
                     extra_yaml="accounting:\n  sweep_interval: 1s\n")
    try:
        _, message = poll(lambda: (r := d.login(name, PASSWORD))[0] == AccessReject and r,
                          timeout=20)
        assert message.startswith("Account suspended: ") and message.endswith(" due")
        # A live session (the NAS let it in before): the next billing turn cuts it.
        acct(d, name, "s-live", "Start")
        [cut] = nas.wait(name, timeout=10)[:1]
        assert cut.attrs["Acct-Session-Id"] == ["s-live"]
        shown = d.cli("credit", "show", name, "--json")
        assert '"suspended_at": "' in shown.stdout
        d.cli("credit", "topup", name, "60.00", "--ref", f"{name}-2")   # covers both fees
        assert d.login(name, PASSWORD) == (AccessAccept, "")
        with db.reader.connect() as conn:
            pays = conn.execute(select(ledger.c.amount).where(
                (ledger.c.user_name == name) & (ledger.c.kind == "charge"))).scalars().all()
            balance = ledger_store.balance_of(conn, name).balance
            billed = conn.execute(select(charges.c.amount)
                                  .where(charges.c.user_name == name)).scalars().all()
        assert sorted(-p for p in pays) == sorted(billed)          # each charge paid once
        assert balance == 100000 + 600000 - sum(billed)
    finally:
        d.stop()
        nas.close()
