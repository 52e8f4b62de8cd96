"""Posting once per reference, on SQLite, PostgreSQL and MariaDB: the ledger,
charges and block sales report honestly whether a row went in."""

from __future__ import annotations

from sqlalchemy import func, select

from aaad.store import blocks as block_store
from aaad.store import ledger as ledger_store
from aaad.store.database import Database
from aaad.store.tables import blocks, charges, ledger


def test_a_ref_posts_once_and_the_second_post_says_so(db: Database) -> None:
    for expected in (True, False):
        with db.writer.begin() as conn:
            assert ledger_store.post(conn, user_name="ann", amount=12_500, kind="topup",
                                     ref="topup:p1", description="", now=100) is expected
            assert ledger_store.post(conn, user_name="ann", amount=-2_500, kind="call",
                                     ref="call:s1", description="", now=101) is expected
    with db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, "ann") == ledger_store.Balance(10_000, 0)
        assert conn.execute(select(func.count()).select_from(ledger)).scalar_one() == 2
        assert ledger_store.balance_of(conn, "nobody") == ledger_store.Balance()


def test_charges_and_blocks_report_a_repeated_ref(db: Database) -> None:
    for expected in (True, False):
        with db.writer.begin() as conn:
            assert ledger_store.add_charge(conn, user_name="ann", kind="block", ref="block:s",
                                           period_start=0, amount=5, quantity=1,
                                           description="", now=1) is expected
            assert block_store.add_block(conn, "ann", seconds=3600, purchased_at=1,
                                         expires_at=99, ref="s") is expected
    with db.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(charges)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(blocks)).scalar_one() == 1
