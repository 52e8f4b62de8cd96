"""The store functions the API adds, on SQLite, PostgreSQL and MariaDB: idempotency
keys (claim, save, repeat, expiry), a charge posted in the import's id namespace
(with earlier ``api:`` refs), users by page and filter, the event feed by cursor."""

from __future__ import annotations

import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from aaad.store import billing, idempotency
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import charges

UTC = ZoneInfo("UTC")
DAY = 86400
T0 = 1_800_000_000


def add(db: Database, name: str, **kw: object) -> int:
    with db.writer.begin() as conn:
        return user_store.add_user(conn, name, password_hash=None, password_cleartext="pw",
                                   plan=None, enabled=bool(kw.get("enabled", True)), now=T0)


def test_a_key_is_claimed_once_and_answers_its_response(db: Database) -> None:
    claim = {"scope": "default", "key": "k-1", "request_hash": "a" * 64}
    with db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim, now=T0) is None
        idempotency.save(conn, scope="default", key="k-1", status=201, response='{"ok": 1}')
    with db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim, now=T0 + 60) == idempotency.Stored(
            "a" * 64, 201, '{"ok": 1}')
        # Another scope (another tenant's token) has keys of its own.
        assert idempotency.claim(conn, scope="other", key="k-1", request_hash="b" * 64,
                                 now=T0 + 60) is None


def test_a_rolled_back_claim_and_an_expired_key_are_free_again(db: Database) -> None:
    claim = {"scope": "default", "key": "k-2", "request_hash": "a" * 64}
    with pytest.raises(RuntimeError), db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim, now=T0) is None
        raise RuntimeError("the write failed")
    with db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim, now=T0) is None
        idempotency.save(conn, scope="default", key="k-2", status=200, response="{}")
    with db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim, now=T0 + DAY - 1) is not None
    with db.writer.begin() as conn:         # a day later it is taken afresh
        assert idempotency.claim(conn, **{**claim, "request_hash": "c" * 64},
                                 now=T0 + DAY + 1) is None
        idempotency.save(conn, scope="default", key="k-2", status=201, response="{}")
        assert idempotency.claim(conn, scope="default", key="k-3", request_hash="d" * 64,
                                 now=T0) is None
    with db.writer.begin() as conn:         # the sweep deletes what is past its day
        assert idempotency.purge(conn, T0 + DAY + 10) == 1
        assert idempotency.claim(conn, **claim, now=T0 + DAY + 10) == idempotency.Stored(
            "c" * 64, 201, "{}")


def test_a_concurrent_second_claim_waits_and_finds_the_first(db: Database) -> None:
    """Two nodes get the same key at once: the second answers the first's response."""
    claim = {"scope": "default", "key": "k-race", "request_hash": "a" * 64, "now": T0}
    claimed, found = threading.Event(), []

    def second() -> None:
        claimed.wait(5)
        with db.writer.begin() as conn:
            found.append(idempotency.claim(conn, **claim))
    other = threading.Thread(target=second)
    other.start()
    with db.writer.begin() as conn:
        assert idempotency.claim(conn, **claim) is None
        claimed.set()
        idempotency.save(conn, scope="default", key="k-race", status=201, response='{"n": 1}')
    other.join(10)
    assert found == [idempotency.Stored("a" * 64, 201, '{"n": 1}')]


def line(charge_id: str, amount: int, *, at: int = T0, user: str = "ann") -> billing.ImportLine:
    return billing.ImportLine(0, charge_id, user, "external", amount, 0, "rental", at)


def test_a_charge_is_recorded_once_per_id_in_the_import_namespace(db: Database) -> None:
    add(db, "ann")
    with db.writer.begin() as conn:
        assert billing.post_charge(conn, line("inv-1", 125000), T0, dated=True) is True
        assert billing.post_charge(conn, line("inv-1", 125000), T0 + 5, dated=True) is False
        # Undated: a repeat later (dated "now" again) is the same charge.
        assert billing.post_charge(conn, line("inv-1", 125000, at=T0 + 9), T0 + 9,
                                   dated=False) is False
        with pytest.raises(billing.ChargeConflict):
            billing.post_charge(conn, line("inv-1", 130000), T0, dated=True)
        with pytest.raises(billing.ChargeConflict):         # another date, given
            billing.post_charge(conn, line("inv-1", 125000, at=T0 + 9), T0, dated=True)
        assert billing.post_charge(conn, line("cn-1", -25000), T0, dated=True) is True
        with pytest.raises(user_store.NoSuchUser):
            billing.post_charge(conn, line("inv-2", 1, user="nobody"), T0, dated=True)
        # The CSV import finds the API's charge under the same id: billed once.
        assert billing.import_charges(conn, [line("inv-1", 125000)], T0) == \
            billing.ImportResult(imported=0, present=1)
        rows = ledger_store.list_charges(conn, user="ann")
    assert sorted((r["ref"], r["amount"]) for r in rows) == [("import:cn-1", -25000),
                                                             ("import:inv-1", 125000)]


def test_charges_an_earlier_api_stored_as_api_refs_count_under_their_id(db: Database) -> None:
    uid = add(db, "ann")
    with db.writer.begin() as conn:
        conn.execute(insert(charges).values(
            user_id=uid, user_name="ann", kind="external", ref="api:old-7", period_start=T0,
            amount=50000, quantity=0, description="rental", created_at=T0))
        assert billing.post_charge(conn, line("old-7", 50000), T0, dated=False) is False
        with pytest.raises(billing.ChargeConflict) as e:
            billing.post_charge(conn, line("old-7", 60000), T0, dated=False)
        assert e.value.ref == "api:old-7"
        assert billing.import_charges(conn, [line("old-7", 50000)], T0).present == 1
        with pytest.raises(billing.ImportProblem):
            billing.import_charges(conn, [line("old-7", 1)], T0)
        assert conn.execute(select(charges.c.ref)).scalars().all() == ["api:old-7"]


def test_users_list_by_page_and_filter(db: Database) -> None:
    for name in ("a1", "a2", "a3", "b1"):
        add(db, name)
    with db.writer.begin() as conn:
        user_store.update_user(conn, "a2", now=T0, enabled=False)
        ledger_store.set_billing(conn, user_store.user_ids(conn, ["a3"])["a3"], "a3",
                                 "prepaid", T0)
        user_store.hold(conn, user_store.user_ids(conn, ["b1"])["b1"], None, T0)
    with db.reader.connect() as conn:
        def names(**kw: object) -> list[str]:
            return [u.name for u in user_store.list_users(conn, **kw)]  # type: ignore[arg-type]
        assert names(limit=2) == ["a1", "a2"]
        assert names(limit=2, after="a2") == ["a3", "b1"]
        assert names(enabled=False) == ["a2"]
        assert names(billing="prepaid") == ["a3"]
        assert names(suspended=True) == ["b1"]
        assert names(suspended=False, enabled=True) == ["a1", "a3"]


def test_the_event_feed_reads_from_a_cursor(db: Database) -> None:
    with db.writer.begin() as conn:
        for i, kind in enumerate(("suspended", "disconnect", "resumed")):
            event_store.record_event(conn, at=T0 - i, kind=kind, result="ok", user_name="ann")
        event_store.record_event(conn, at=T0, kind="rollover", result="ok")
    with db.reader.connect() as conn:
        page = event_store.events_after(conn, 0, limit=2)
        assert [e["kind"] for e in page] == ["suspended", "disconnect"]     # by id, not time
        rest = event_store.events_after(conn, page[-1]["id"], limit=10)
        assert [e["kind"] for e in rest] == ["resumed", "rollover"]
        assert event_store.events_after(conn, rest[-1]["id"], limit=10) == []
        assert [e["kind"] for e in event_store.events_after(
            conn, 0, limit=10, user="ann", kinds=["resumed", "suspended"])] == [
            "suspended", "resumed"]
