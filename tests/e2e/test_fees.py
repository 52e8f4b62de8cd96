"""Plan fees and free credit with the real daemon: billed and granted at start for
the cycles missed while it was down, each once, also with two nodes on one
PostgreSQL or MariaDB."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import pytest
from pyrad.packet import AccountingResponse
from sqlalchemy import and_, delete, select

from aaad.core.billing.cycles import cycles_started
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import plans as plan_store
from aaad.store import users as user_store
from aaad.store.plans import plan_to_json
from aaad.store.tables import charges, ledger, plans, users
from tests.support.daemon import acct, poll, scrape, start_daemon
from tests.support.databases import migrated

UTC = ZoneInfo("UTC")          # the zone tests/support/daemon.py configures


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_missed_cycles_are_billed_once_at_start(dialect: str, server_urls: dict[str, object],
                                                tmp_path_factory: pytest.TempPathFactory
                                                ) -> None:
    db = migrated(server_urls, dialect)
    name, plan = f"fee-{dialect}", f"fee-fiber-{dialect}"
    joined = int(time.time()) - 70 * 86400          # two or three cycles back
    with db.writer.begin() as conn:
        conn.execute(delete(charges).where(charges.c.user_name == name))
        conn.execute(delete(users).where(users.c.name == name))
        conn.execute(delete(plans).where(plans.c.name == plan))
        p = parse_plan({"name": plan, "fee": "29.90", "setup_fee": "49.00", "billing_day": 5,
                        "free_credit": "5.00"})
        plan_store.save_plan(conn, plan, plan_to_json(p), joined - 86400)
        uid = user_store.add_user(conn, name, password_hash=None,
                                  password_cleartext="Fee-pw-1234567", plan=plan, enabled=True,
                                  now=joined)

    def billed() -> list[str]:
        with db.reader.connect() as conn:
            return sorted(conn.execute(select(charges.c.ref)
                                       .where(charges.c.user_name == name)).scalars())

    count = 2 if dialect != "sqlite" else 1          # two nodes share a server database
    dirs = [tmp_path_factory.mktemp(f"fees-{dialect}-{i}") for i in range(count)]
    with ThreadPoolExecutor(count) as pool:          # the nodes start, and bill, side by side
        nodes = list(pool.map(lambda d: start_daemon(
            d, db.url, extra_yaml="metrics:\n  bind: 127.0.0.1\n  port: 0\n"), dirs))
    try:
        cycles = cycles_started(joined, 5, 1, UTC, after=None, upto=int(time.time()))
        want = 1 + len(cycles)                       # the setup fee and every cycle begun
        assert len(cycles) >= 2
        refs = poll(lambda: (r := billed()) and len(r) >= want and r, timeout=20)
        assert len(refs) == want == len(set(refs))
        assert sum(r.startswith("setup:") for r in refs) == 1
        with db.reader.connect() as conn:               # a grant per cycle, before its fee
            grants = sorted(conn.execute(select(ledger.c.ref).where(and_(
                ledger.c.user_id == uid, ledger.c.kind == "free"))).scalars())
        assert grants == sorted(r.replace("fee:", "free:", 1) for r in refs
                                if r.startswith("fee:"))
        # Each line is counted by the node that billed it, once its turn is over
        # (the lines are visible after each of the turn's transactions).
        poll(lambda: sum(scrape(n.metrics_port).get(("aaad_fee_charges_total", ()), 0)
                         for n in nodes if n.metrics_port is not None) == want, timeout=20)
        for node in nodes:
            node.stop()
        nodes[0].restart()                           # a restart bills nothing again
        assert acct(nodes[0], name, "s1", "Start").code == AccountingResponse
        assert nodes[0].metrics_port is not None
        poll(lambda: scrape(nodes[0].metrics_port).get(     # the start's turn is over
            ("aaad_billing_turns_total", (("result", "ok"),)), 0) >= 1, timeout=20)
        assert billed() == refs
        assert sum("billed" in n.logs() for n in nodes) >= 1
    finally:
        for node in nodes:
            node.stop()
