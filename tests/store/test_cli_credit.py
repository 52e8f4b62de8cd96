"""Credit, vouchers and charges import/export through the real CLI (click's
CliRunner) against real, migrated SQLite, PostgreSQL and MariaDB databases. The
concurrent redeem by two processes: tests/e2e/test_cli_processes.py."""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, update

from aaad.store import ledger as ledger_store
from aaad.store import users as user_store
from aaad.store import vouchers as voucher_store
from aaad.store.database import Database
from aaad.store.tables import balances, calls, charges, ledger, usage, vouchers
from tests.support.cli import Cli, credit_cli

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())  # type: ignore[misc]


@pytest.fixture
def aaad_(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return credit_cli(db.url, tmp_path, monkeypatch)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.reader.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t)))
                for t in (balances, ledger, vouchers, charges)}


# -- credit ----------------------------------------------------------------------------

def test_topup_is_idempotent_on_its_ref(aaad_: Cli, db: Database) -> None:
    assert aaad_.ok("credit", "topup", "alice", "12.5", "--ref", "pay-1",
                    "--description", "bank transfer").stdout.strip() == (
        "topped up alice by 12.50 (ref pay-1); balance 12.50, available 12.50")
    before = snapshot(db)
    assert aaad_.ok("credit", "topup", "alice", "12.5", "--ref", "pay-1").stdout.strip() == (
        "top-up pay-1 was posted already; nothing changed (balance 12.50, available 12.50)")
    assert snapshot(db) == before
    # the same ref for another amount or user is a mistake, not a second top-up
    assert aaad_.error("credit", "topup", "bob", "12.5", "--ref", "pay-1") == (
        "error: ref 'pay-1' was used for a top-up of 12.50 to 'alice'; nothing changed")
    assert aaad_.error("credit", "topup", "alice", "3", "--ref", "pay-1").startswith(
        "error: ref 'pay-1' was used")
    assert snapshot(db) == before
    # without --ref every run is a new top-up with a ref of its own
    first = aaad_.ok("credit", "topup", "alice", "0.0001").stdout
    second = aaad_.ok("credit", "topup", "alice", "0.0001").stdout
    assert first.split("(ref ")[1][:12] != second.split("(ref ")[1][:12]
    shown = aaad_.json("credit", "show", "alice")
    assert (shown["balance"], shown["credit_limit"], shown["available"]) == (
        "12.5002", "0.00", "12.5002")
    assert [(r["kind"], r["amount"]) for r in shown["ledger"]] == [
        ("topup", "0.0001"), ("topup", "0.0001"), ("topup", "12.50")]
    assert shown["ledger"][-1]["ref"] == "topup:pay-1"
    assert shown["ledger"][-1]["description"] == "bank transfer"


@pytest.mark.parametrize("args, message", [
    (["credit", "topup", "nobody", "5"], "error: no user nobody"),
    (["credit", "topup", "alice", "0"], "error: AMOUNT must be more than 0"),
    (["credit", "topup", "alice", "1.23456"],
     "error: AMOUNT must be a decimal with at most 4 places such as 12.50, got '1.23456'"),
    (["credit", "topup", "alice", "--", "-5"],
     "error: AMOUNT must be a decimal with at most 4 places such as 12.50, got '-5'"),
    (["credit", "topup", "alice", "1,50"],
     "error: AMOUNT must be a decimal with at most 4 places such as 12.50, got '1,50'"),
    (["credit", "topup", "alice", "5", "--ref", " x"],
     "error: --ref must be 1-128 printable characters without surrounding spaces"),
    (["credit", "topup", "alice", "10000000000000"], "error: AMOUNT is too large"),
    (["credit", "show", "nobody"], "error: no user nobody"),
    (["credit", "limit", "nobody", "5"], "error: no user nobody"),
    (["credit", "limit", "alice", "lots"],
     "error: the credit limit must be a decimal with at most 4 places such as 12.50, "
     "got 'lots'"),
    (["credit", "reverse", "never-used"], "error: no top-up with ref 'never-used'"),
])
def test_bad_credit_input_changes_nothing(aaad_: Cli, db: Database, args: list[str],
                                          message: str) -> None:
    aaad_.ok("credit", "topup", "alice", "1", "--ref", "seed")
    before = snapshot(db)
    assert aaad_.error(*args) == message
    assert snapshot(db) == before


def test_reverse_posts_the_negated_amount_once(aaad_: Cli, db: Database) -> None:
    aaad_.ok("credit", "topup", "bob", "20", "--ref", "pay-7")
    aaad_.ok("credit", "topup", "bob", "5", "--ref", "pay-8")
    assert aaad_.ok("credit", "reverse", "pay-7").stdout.strip() == (
        "reversed top-up pay-7: -20.00 for bob; balance 5.00, available 5.00")
    before = snapshot(db)
    assert aaad_.ok("credit", "reverse", "pay-7").stdout.strip() == (
        "top-up pay-7 was reversed already; nothing changed")
    assert aaad_.ok("credit", "reverse", "topup:pay-7").stdout.strip() == (
        "top-up pay-7 was reversed already; nothing changed")
    assert snapshot(db) == before
    with db.reader.connect() as conn:
        assert ledger_store.ledger_entry(conn, "reverse:pay-7")["amount"] == -200_000  # type: ignore
        assert ledger_store.balance_of(conn, "bob") == ledger_store.Balance(50_000, 0)


def test_credit_limit_lets_a_postpaid_user_go_below_zero(aaad_: Cli, db: Database) -> None:
    aaad_.ok("credit", "topup", "alice", "3", "--ref", "p")
    assert aaad_.ok("credit", "limit", "alice", "25.5").stdout.strip() == (
        "credit limit of alice: 25.50; balance 3.00, available 28.50")
    # a reversal may take the balance below zero; the limit is what is available
    aaad_.ok("credit", "topup", "alice", "10", "--ref", "q")
    with db.writer.begin() as conn:
        ledger_store.post(conn, user_name="alice", amount=-300_000, kind="call", ref="call:s1",
                          description="rated call", now=local(2026, 3, 1))
    shown = aaad_.json("credit", "show", "alice")
    assert (shown["balance"], shown["credit_limit"], shown["available"]) == (
        "-17.00", "25.50", "8.50")
    r = aaad_.ok("credit", "reverse", "q")
    assert "balance -27.00, available -1.50" in r.stdout
    assert r.stderr.strip() == "warning: alice is now below the credit limit"
    assert aaad_.ok("credit", "limit", "alice", "0").stdout.strip() == (
        "credit limit of alice: 0.00; balance -27.00, available -27.00")
    text_out = aaad_.ok("credit", "show", "alice").stdout.splitlines()
    assert text_out[:4] == ["user:         alice", "balance:      -27.00",
                            "credit limit: 0.00", "available:    -27.00"]
    assert text_out[4].split() == ["AT", "KIND", "AMOUNT", "REF", "DESCRIPTION"]


# -- vouchers --------------------------------------------------------------------------

def test_codes_are_random_grouped_and_only_their_hash_is_stored(aaad_: Cli,
                                                                db: Database) -> None:
    assert voucher_store.CODE_CHARS * math.log2(len(set(voucher_store.ALPHABET))) >= 80 + \
        voucher_store.HINT_CHARS * 5     # ≥ 80 bits stay unknown after the hint
    assert not set("01IO") & set(voucher_store.ALPHABET)
    r = aaad_.ok("voucher", "create", "--count", "50", "--value", "10", "--batch", "spring")
    codes = r.stdout.split()
    assert r.stderr.strip() == "created 50 vouchers of 10.00 in batch spring"
    assert len(set(codes)) == 50
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [5, 5, 5, 5]
        assert set("".join(groups)) <= set(voucher_store.ALPHABET)
    stored = json.dumps(snapshot(db)["vouchers"])
    listed = aaad_.ok("voucher", "list").stdout + json.dumps(aaad_.json("voucher", "list"))
    for code in codes:
        flat = code.replace("-", "")
        for where in (stored, listed):
            assert code not in where and flat not in where and flat[:8] not in where
    assert {v["hint"] for v in aaad_.json("voucher", "list", "--batch", "spring")} == {
        c[-4:] for c in codes}


def test_a_voucher_credits_once(aaad_: Cli, db: Database) -> None:
    code = aaad_.ok("voucher", "create", "--count", "1", "--value", "7.25").stdout.strip()
    messy = " " + code.lower().replace("-", " ") + " "
    out = aaad_.ok("voucher", "redeem", messy, "alice").stdout.strip()
    assert out.startswith("redeemed voucher ") and out.endswith(
        " for alice: +7.25; balance 7.25, available 7.25")
    before = snapshot(db)
    for who in ("alice", "bob"):
        assert aaad_.error("voucher", "redeem", code, who) == (
            "error: this voucher was redeemed already")
    assert snapshot(db) == before
    [v] = aaad_.json("voucher", "list")
    assert (v["state"], v["redeemed_by"], v["value"]) == ("redeemed", "alice", "7.25")
    assert [(r["kind"], r["ref"]) for r in aaad_.json("credit", "show", "alice")["ledger"]] == [
        ("voucher", f"voucher:{v['id']}")]


def test_expired_unknown_and_malformed_codes(aaad_: Cli, db: Database) -> None:
    codes = aaad_.ok("voucher", "create", "--count", "2", "--value", "5",
                     "--expires", "2099-12-31", "--batch", "b").stdout.split()
    with db.writer.begin() as conn:     # the first one's day has passed
        conn.execute(update(vouchers).where(vouchers.c.hint == codes[0][-4:])
                     .values(expires_at=local(2026, 1, 1)))
    before = snapshot(db)
    assert aaad_.error("voucher", "redeem", codes[0], "alice") == (
        "error: this voucher expired at 2025-12-31T23:00:00Z")
    unknown = "".join(reversed(codes[1].replace("-", "")))
    assert aaad_.error("voucher", "redeem", unknown, "alice") == "error: unknown voucher code"
    bad = aaad_.error("voucher", "redeem", codes[1][:-1] + "0", "alice")
    assert bad.startswith("error: not a voucher code: expected 20 characters")
    assert codes[1][:-1] not in bad
    assert aaad_.error("voucher", "redeem", codes[1], "nobody") == "error: no user nobody"
    assert snapshot(db) == before
    assert [v["state"] for v in aaad_.json("voucher", "list", "--batch", "b")] == [
        "expired", "unused"]
    assert aaad_.json("voucher", "list", "--batch", "other") == []
    assert aaad_.error("voucher", "create", "--count", "1", "--value", "1",
                       "--expires", "2020-02-30") == (
        "error: --expires must be a date YYYY-MM-DD, got '2020-02-30'")
    assert aaad_.error("voucher", "create", "--count", "1", "--value", "1",
                       "--expires", "2020-02-01") == "error: --expires 2020-02-01 is in the past"
    assert aaad_.error("voucher", "create", "--count", "1", "--value", "0") == (
        "error: --value must be more than 0")
    assert snapshot(db) == before


def test_two_threads_redeeming_one_code_credit_once(aaad_: Cli, db: Database) -> None:
    code = aaad_.ok("voucher", "create", "--count", "1", "--value", "3").stdout.strip()
    start = threading.Barrier(2)
    results: list[str] = []

    def redeem(user: str) -> None:
        start.wait()
        try:
            with db.writer.begin() as conn:
                voucher_store.redeem(conn, code, user, local(2026, 3, 1))
            results.append("ok")
        except voucher_store.AlreadyRedeemed:
            results.append("taken")
    threads = [threading.Thread(target=redeem, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["ok", "taken"]
    with db.reader.connect() as conn:
        total = conn.execute(select(func.sum(balances.c.balance))).scalar_one()
        posts = conn.execute(select(func.count()).select_from(ledger)).scalar_one()
    assert (int(total), posts) == (30_000, 1)


# -- charges import --------------------------------------------------------------------

GOOD_CSV = """\
id,user,kind,amount,quantity,description,date
cdr-1,alice,call,0.1234,60,"call to +4930123, 1 min",2026-03-05
fee-1,bob,,5,,setup fee,2026-03-31T23:30:00
refund-1,alice,refund,-1.5,0,goodwill,2026-04-01T00:30:00+02:00
"""


def write(tmp_path: Path, body: str, name: str = "charges.csv") -> str:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return str(path)


def test_import_then_reimport_changes_nothing(aaad_: Cli, db: Database, tmp_path: Path) -> None:
    f = write(tmp_path, GOOD_CSV)
    assert aaad_.ok("charges", "import", f).stdout.strip() == f"{f}: imported 3 charges"
    before = snapshot(db)
    assert aaad_.ok("charges", "import", f).stdout.strip() == (
        f"{f}: nothing new; all 3 lines were imported before")
    assert snapshot(db) == before
    listed = aaad_.json("charges", "list")
    assert [(c["ref"], c["user"], c["kind"], c["amount"], c["quantity"], c["description"],
             c["period_start"]) for c in listed] == [
        ("import:cdr-1", "alice", "call", "0.1234", 60, "call to +4930123, 1 min",
         "2026-03-04T23:00:00Z"),
        ("import:fee-1", "bob", "import", "5.00", 0, "setup fee", "2026-03-31T21:30:00Z"),
        ("import:refund-1", "alice", "refund", "-1.50", 0, "goodwill",
         "2026-03-31T22:30:00Z")]
    # a longer file: only the new line goes in
    more = write(tmp_path, GOOD_CSV + "fee-2,alice,fee,2,1,extra,2026-03-07\n", "more.csv")
    assert aaad_.ok("charges", "import", more).stdout.strip() == (
        f"{more}: imported 1 charge (3 lines were imported before)")
    # balances are not touched: imports are billed, not debited
    assert snapshot(db)["balances"] == [] and snapshot(db)["ledger"] == []


@pytest.mark.parametrize("body, message", [
    ("", "line 1: the file is empty; expected a header line "
         "id,user,kind,amount,quantity,description,date,tenant"),
    ("id,user,amount\nx,alice,1\n", "line 1: missing column 'date'"),
    ("id,user,amount,date,price\n", "line 1: unknown column 'price' "
                                    "(columns: id, user, kind, amount, quantity, description, "
                                    "date, tenant)"),
    ("id,user,amount,date\nx,alice,1,2026-03-01\ny,carol,1,2026-03-01\n",
     "line 3: no user 'carol'"),
    ("id,user,amount,date\nx,alice,1,2026-03-01\n\ny,alice,1.23456,2026-03-01\n",
     "line 4: amount must be a decimal with at most 4 places such as 12.50 or -3.20, "
     "got '1.23456'"),
    ("id,user,amount,date\nx,alice,1,2026-03-01\ny,alice,1,2026-02-30\n",
     "line 3: date must be YYYY-MM-DD or an ISO 8601 time such as 2026-03-05T14:00:00Z, "
     "got '2026-02-30'"),
    ("id,user,amount,date\nx,alice,1,2026-03-01\ny,bob,2,2026-03-02\nx,bob,3,2026-03-03\n",
     "line 4: id 'x' appears twice in the file (first on line 2)"),
    ("id,user,amount,date\nx,alice,1,2026-03-01\ny,alice,1\n", "line 3: expected 4 fields, got 3"),
    ("id,user,amount,date\n,alice,1,2026-03-01\n", "line 2: id must be 1-120 printable characters"),
    ("id,user,amount,quantity,date\nx,alice,1,-2,2026-03-01\n",
     "line 2: quantity must be a whole number ≥ 0, got '-2'"),
    ("id,user,kind,amount,date\nx,alice,one off,1,2026-03-01\n",
     "line 2: kind must be at most 32 letters, digits, '_' or '-', got 'one off'"),
    ('id,user,amount,date\nx,alice,1,2026-03-01\n"y,alice,1,2026-03-01\n',
     "line 3: not valid CSV: unexpected end of data"),
    ("id,user,amount,date\nfee-1,bob,5.01,2026-03-31T23:30:00\n",
     "line 2: id 'fee-1' was imported before with other values"),
])
def test_a_bad_file_is_rejected_whole_with_its_line_number(
        aaad_: Cli, db: Database, tmp_path: Path, body: str, message: str) -> None:
    aaad_.ok("charges", "import", write(tmp_path, GOOD_CSV, "first.csv"))
    before = snapshot(db)
    f = write(tmp_path, body)
    assert aaad_.error("charges", "import", f) == f"error: {f}: {message}; nothing imported"
    assert snapshot(db) == before


def test_import_of_an_unreadable_file(aaad_: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.csv")
    assert aaad_.error("charges", "import", missing) == (
        f"error: {missing}: cannot read: No such file or directory")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(b"id,user,amount,date\nx,J\xfcrgen,1,2026-03-01\n")
    assert aaad_.error("charges", "import", str(latin)) == f"error: {latin}: not UTF-8 text"


# -- charges export --------------------------------------------------------------------

def _call(session: str, user: str, started_at: int, duration_s: int, billed_s: int,
          cost: int) -> dict[str, Any]:
    return {"session_id": session, "user_name": user, "caller": "+4930111",
            "destination": "+4989222", "prefix": "+4989", "rate_table": "std", "band": "",
            "direction": "out", "started_at": started_at, "duration_s": duration_s,
            "billed_s": billed_s, "free_s": 0, "price": 1900, "connection_fee": 100,
            "cost": cost, "period_start": local(2026, 3, 1), "created_at": started_at}


def test_export_is_exact_to_the_minor_unit(aaad_: Cli, db: Database, tmp_path: Path) -> None:
    march, april = local(2026, 3, 1), local(2026, 4, 1)
    with db.writer.begin() as conn:
        # Rows are keyed by user id: carol, who has no user row, gets a no-account holder.
        ids = user_store.user_ids(conn, ["alice", "bob", "carol"], create=True)
        conn.execute(insert(usage), [
            {"user_id": ids[u], "user_name": u, "period_start": p, "session_s": s,
             "in_octets": i, "out_octets": o, "counted_s": s, "counted_in_octets": i,
             "counted_out_octets": o}
            for u, p, s, i, o in (
                ("alice", march, 7200, 3 * 2**32 + 5, 10**9),
                ("alice", local(2026, 3, 16), 60, 1, 2),       # a second period in March
                ("alice", local(2026, 2, 1), 999, 999, 999),   # February
                ("alice", april, 888, 888, 888),               # April
                ("bob", march, 1, 0, 0))])
        conn.execute(insert(calls), [dict(c, user_id=ids[c["user_name"]]) for c in (
            _call("c1", "alice", march, 61, 66, 2190),                  # first second of March
            _call("c2", "alice", april - 1, 6, 60, 2000),               # last second of March
            _call("c3", "alice", april, 600, 600, 19100),               # April
            _call("c4", "alice", march - 1, 30, 60, 2000),              # February
            _call("c5", "carol", local(2026, 3, 9, 12, 0), 1, 60, 1),   # no user row: still billed
        )])
        ledger_store.add_to_charge(conn, user_name="alice", kind="overage", ref="overage:s1:m",
                                   period_start=march, amount=12345, quantity=3600,
                                   description="1h over the time limit", now=march + 99)
        ledger_store.add_to_charge(conn, user_name="alice", kind="overage", ref="overage:s1:m",
                                   period_start=march, amount=1, quantity=1,
                                   description="1h over the time limit", now=march + 100)
        ledger_store.add_charge(conn, user_name="bob", kind="block", ref="block:lifetime",
                                period_start=0, amount=50_000, quantity=36000,
                                description="10h block", now=local(2026, 3, 20))
        ledger_store.add_charge(conn, user_name="bob", kind="block", ref="block:old",
                                period_start=0, amount=50_000, quantity=36000,
                                description="10h block", now=local(2026, 2, 20))
    aaad_.ok("charges", "import", write(tmp_path, GOOD_CSV))
    expected = """\
period,user,item,kind,ref,count,seconds,in_octets,out_octets,quantity,amount,description
2026-03,alice,usage,,,2,7260,12884901894,1000000002,0,0.0000,
2026-03,alice,calls,call,,2,67,0,0,126,0.4190,
2026-03,alice,charge,call,import:cdr-1,1,0,0,0,60,0.1234,"call to +4930123, 1 min"
2026-03,alice,charge,overage,overage:s1:m,1,0,0,0,3601,1.2346,1h over the time limit
2026-03,alice,total,fees,,0,0,0,0,0,0.0000,plan fees
2026-03,alice,total,usage,,0,0,0,0,0,1.2346,overage and hour blocks
2026-03,alice,total,calls,,0,0,0,0,0,0.5424,calls
2026-03,alice,total,charges,,0,0,0,0,0,0.0000,other charges
2026-03,alice,total,taxes,,0,0,0,0,0,0.0000,taxes
2026-03,alice,total,debited,,0,0,0,0,0,0.4190,prepaid already debited
2026-03,alice,total,due,,0,0,0,0,0,1.3580,amount due
2026-03,alice,total,,,0,0,0,0,0,1.7770,
2026-03,bob,usage,,,1,1,0,0,0,0.0000,
2026-03,bob,charge,block,block:lifetime,1,0,0,0,36000,5.0000,10h block
2026-03,bob,charge,import,import:fee-1,1,0,0,0,0,5.0000,setup fee
2026-03,bob,total,fees,,0,0,0,0,0,0.0000,plan fees
2026-03,bob,total,usage,,0,0,0,0,0,5.0000,overage and hour blocks
2026-03,bob,total,calls,,0,0,0,0,0,0.0000,calls
2026-03,bob,total,charges,,0,0,0,0,0,5.0000,other charges
2026-03,bob,total,taxes,,0,0,0,0,0,0.0000,taxes
2026-03,bob,total,debited,,0,0,0,0,0,0.0000,prepaid already debited
2026-03,bob,total,due,,0,0,0,0,0,10.0000,amount due
2026-03,bob,total,,,0,0,0,0,0,10.0000,
2026-03,carol,calls,call,,1,1,0,0,60,0.0001,
2026-03,carol,total,fees,,0,0,0,0,0,0.0000,plan fees
2026-03,carol,total,usage,,0,0,0,0,0,0.0000,overage and hour blocks
2026-03,carol,total,calls,,0,0,0,0,0,0.0001,calls
2026-03,carol,total,charges,,0,0,0,0,0,0.0000,other charges
2026-03,carol,total,taxes,,0,0,0,0,0,0.0000,taxes
2026-03,carol,total,debited,,0,0,0,0,0,0.0001,prepaid already debited
2026-03,carol,total,due,,0,0,0,0,0,0.0000,amount due
2026-03,carol,total,,,0,0,0,0,0,0.0001,
"""
    assert aaad_.ok("charges", "export", "--period", "2026-03").stdout == expected
    out = tmp_path / "march.csv"
    r = aaad_.ok("charges", "export", "--period", "2026-03", "--format", "csv", "-o", str(out))
    assert (r.stdout, r.stderr) == ("", f"wrote 32 lines for 3 users to {out}\n")
    assert out.read_text() == expected
    doc = json.loads(aaad_.ok("charges", "export", "--period", "2026-03", "--format",
                              "json").stdout)
    assert (doc["period"], doc["timezone"], doc["start"], doc["end"]) == (
        "2026-03", "Europe/Berlin", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
    rows = list(csv.DictReader(io.StringIO(expected)))
    assert [{k: str(v) for k, v in line.items()} for line in doc["lines"]] == rows
    # April: the refund dated in April, the April usage and call
    april_rows = list(csv.DictReader(io.StringIO(
        aaad_.ok("charges", "export", "--period", "2026-04").stdout)))
    assert [(x["user"], x["item"], x["ref"] or x["kind"], x["amount"]) for x in april_rows] == [
        ("alice", "usage", "", "0.0000"), ("alice", "calls", "call", "1.9100"),
        ("alice", "charge", "import:refund-1", "-1.5000"),
        ("alice", "total", "fees", "0.0000"), ("alice", "total", "usage", "0.0000"),
        ("alice", "total", "calls", "1.9100"), ("alice", "total", "charges", "-1.5000"),
        ("alice", "total", "taxes", "0.0000"),
        ("alice", "total", "debited", "1.9100"),     # calls: debited from the balance
        ("alice", "total", "due", "-1.5000"),        # a postpaid credit note: off the invoice
        ("alice", "total", "", "0.4100")]
    assert aaad_.ok("charges", "export", "--period", "2025-01").stdout == expected.splitlines(
        keepends=True)[0]


@pytest.mark.parametrize("args, message", [
    (["--period", "2026-3"], "error: --period must look like YYYY-MM, got '2026-3'"),
    (["--period", "2026-13"], "error: period must look like YYYY-MM, got '2026-13'"),
])
def test_export_refuses_a_bad_period(aaad_: Cli, args: list[str], message: str) -> None:
    assert aaad_.error("charges", "export", *args) == message
