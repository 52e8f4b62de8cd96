"""Bulk user import (store/user_import.py): reading and checking files, and writing
them all or nothing on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from aaad.core.quotas.plan_parse import parse_plan
from aaad.credentials import hash_password, nt_hash, verify_hash
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import tenants as tenant_store
from aaad.store import user_import as store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.tables import balances, ledger, usage, users
from tests.support.billing import at, bill, lines, save

NOW = at(2027, 1, 15, 12)
HASH = hash_password("hashed-pw")

GOOD_CSV = f"""\
name,password,password_hash,plan,billing,balance,credit_limit,enabled,tax_exempt
ann,ann-pw,,fiber,prepaid,12.5,5,,VAT
bob,,"{HASH}",,postpaid,-3.2001,,false,
cid,cid-pw,,,,,,yes,"LEVY, VAT"
"""

GOOD_JSONL = (
    '{"name": "ann", "password": "ann-pw", "plan": "fiber", "billing": "prepaid", '
    '"balance": 12.5, "credit_limit": "5", "tax_exempt": ["VAT"]}\n'
    "\n"
    f'{{"name": "bob", "password_hash": "{HASH}", "balance": "-3.2001", "enabled": false}}\n'
    '{"name": "cid", "password": "cid-pw", "enabled": "yes", "tax_exempt": "LEVY, VAT", '
    '"plan": null}\n')

TAXES = ("VAT", "LEVY")


def read(text: str, fmt: str = "csv") -> list[store.NewUser]:
    return store.read_users(io.StringIO(text, newline=""), fmt, taxes=TAXES)


def problems(text: str, fmt: str = "csv") -> list[str]:
    with pytest.raises(store.ImportFailed) as e:
        read(text, fmt)
    return [str(p) for p in e.value.problems]


def write(db: Database, new: list[store.NewUser], **kw: Any) -> store.ImportResult:
    with db.writer.begin() as conn:
        return store.import_users(conn, new, now=NOW, **kw)


def snapshot(db: Database) -> tuple[Any, ...]:
    with db.reader.connect() as conn:
        return tuple(sorted(tuple(r) for r in conn.execute(select(t)))
                     for t in (users, balances, ledger))


def test_both_formats_read_the_same_users() -> None:
    csv_users, jsonl_users = read(GOOD_CSV), read(GOOD_JSONL, "jsonl")
    assert [u.line for u in csv_users] == [2, 3, 4]
    assert [u.line for u in jsonl_users] == [1, 3, 4]
    strip = [(u.name, u.password_cleartext, u.password_hash, u.plan, u.billing, u.balance,
              u.credit_limit, u.enabled, u.tax_exempt) for u in csv_users]
    assert strip == [(u.name, u.password_cleartext, u.password_hash, u.plan, u.billing,
                      u.balance, u.credit_limit, u.enabled, u.tax_exempt) for u in jsonl_users]
    assert strip == [
        ("ann", "ann-pw", None, "fiber", "prepaid", 125000, 50000, True, "VAT"),
        ("bob", None, HASH, None, "postpaid", -32001, 0, False, None),
        ("cid", "cid-pw", None, None, "postpaid", 0, 0, True, "LEVY,VAT")]


@pytest.mark.parametrize(("text", "expected"), [
    ("", ["line 1: the file is empty; expected a header line such as name,password,plan"]),
    ("name,pasword\n", ["line 1: unknown column 'pasword' (columns: name, password, "
                        "password_hash, nt_hash, plan, billing, balance, credit_limit, "
                        "enabled, tax_exempt)",
                        "line 1: missing column 'password', 'password_hash' or 'nt_hash'"]),
    ("name,password,name\n", ["line 1: column 'name' appears twice"]),
    ("password\nx\n", ["line 1: missing column 'name'"]),
    ("name,password\nann\n", ["line 2: expected 2 fields, got 1"]),
    ("name,password\n,pw\n", ["line 2: name: missing"]),
    ("name,password\n" + "a" * 254 + ",pw\n",
     ["line 2: name: longer than 253 octets (RFC 2865 §5.1)"]),
    ("name,password\n ann,pw\n", ["line 2: name: ' ann' has spaces at an end or control "
                                  "characters"]),
    ("name,password,password_hash\nann,pw,\"" + HASH + "\"\n",
     ["line 2: password: give exactly one of password, password_hash and nt_hash"]),
    ("name,password\nann,\n", ["line 2: password: give exactly one of password, "
                               "password_hash and nt_hash"]),
    ("name,password,nt_hash\nann,pw," + "a" * 32 + "\n",
     ["line 2: password: give exactly one of password, password_hash and nt_hash"]),
    ("name,nt_hash\nann," + "g" * 32 + "\n",
     ["line 2: nt_hash: not an NT hash (32 hex digits, MD4 of the UTF-16LE password)"]),
    ("name,nt_hash\nann," + "a" * 31 + "\n",
     ["line 2: nt_hash: not an NT hash (32 hex digits, MD4 of the UTF-16LE password)"]),
    ("name,password\nann," + "p" * 129 + "\n",
     ["line 2: password: longer than 128 octets (RFC 2865 §5.2)"]),
    ('name,password_hash\nann,"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"\n',
     ["line 2: password_hash: not an argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"]),
    ("name,password_hash\nann," + HASH + "\n",
     ["line 2: expected 2 fields, got 4 (quote a field that holds a comma, such as an "
      "argon2 hash)"]),
    ("name,password_hash\nann,8846F7EAEE8FB117AD06BDD830B7586C\n",
     ["line 2: password_hash: not an argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash)"]),
    ("name,password,billing\nann,pw,monthly\n",
     ["line 2: billing: must be prepaid or postpaid, got 'monthly'"]),
    ("name,password,balance\nann,pw,1.23456\n",
     ["line 2: balance: must be a decimal with at most 4 places such as 12.50 or -3.20, "
      "got '1.23456'"]),
    ("name,password,balance\nann,pw,1e3\n",
     ["line 2: balance: must be a decimal with at most 4 places such as 12.50 or -3.20, "
      "got '1e3'"]),
    ("name,password,balance\nann,pw,100000000000\n", ["line 2: balance: too large"]),
    ("name,password,credit_limit\nann,pw,-5\n",
     ["line 2: credit_limit: must be a decimal with at most 4 places such as 12.50, got '-5'"]),
    ("name,password,enabled\nann,pw,maybe\n",
     ["line 2: enabled: must be true or false (yes/no, 1/0), got 'maybe'"]),
    ("name,password,tax_exempt\nann,pw,GST\n",
     ["line 2: tax_exempt: no tax 'GST' in the configuration (taxes: LEVY, VAT)"]),
    ("name,password,plan\nann,pw," + "p" * 65 + "\n", ["line 2: plan: longer than 64 characters"]),
    ("name,password\nann,pw\nbob,pw\nann,pw2\n",
     ["line 4: name: 'ann' appears twice in the file (first on line 2)"]),
    ('name,password\n"ann,pw\n', ["line 2: not valid CSV: unexpected end of data"]),
])
def test_each_bad_csv_line_is_reported_with_its_line_and_field(text: str,
                                                                 expected: list[str]) -> None:
    assert problems(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ('{"name": "ann", "password": "pw"\n', ["line 1: not valid JSON: Expecting ',' delimiter: "
                                            "line 2 column 1 (char 33)"]),
    ('["ann", "pw"]\n', ['line 1: expected a JSON object such as {"name": "alice", '
                         '"password": "…"}']),
    ('{"name": "ann", "passwd": "pw"}\n', ["line 1: passwd: unknown field (fields: name, "
                                           "password, password_hash, nt_hash, plan, billing, "
                                           "balance, credit_limit, enabled, tax_exempt)"]),
    ('{"name": 7, "password": "pw"}\n', ["line 1: name: expected text, got int 7"]),
    ('{"name": "ann", "password": 123456}\n', ["line 1: password: expected text, got int"]),
    ('{"name": "ann", "nt_hash": 123456}\n', ["line 1: nt_hash: expected text, got int"]),
    ('{"name": "ann", "password": "pw", "balance": 1.00001}\n',
     ["line 1: balance: must be a decimal with at most 4 places such as 12.50 or -3.20, "
      "got Decimal('1.00001')"]),
    ('{"name": "ann", "password": "pw", "balance": true}\n',
     ["line 1: balance: must be a decimal with at most 4 places such as 12.50 or -3.20, "
      "got True"]),
    ('{"name": "ann", "password": "pw", "tax_exempt": [1]}\n',
     ["line 1: tax_exempt: expected tax names: a list, or comma-separated text"]),
])
def test_each_bad_json_line_is_reported_with_its_line_and_field(text: str,
                                                                  expected: list[str]) -> None:
    assert problems(text, "jsonl") == expected


def test_every_bad_line_is_counted_and_the_first_ones_are_shown() -> None:
    text = "name,password\n" + "".join(f"u{i},\n" for i in range(50)) + "ok,pw\n"
    with pytest.raises(store.ImportFailed) as e:
        read(text)
    assert e.value.count == 50
    assert [p.line for p in e.value.problems] == list(range(2, 2 + store.MAX_PROBLEMS))
    assert str(e.value).endswith(f"(and {50 - store.MAX_PROBLEMS} more)")


def test_a_valid_file_writes_users_balances_and_opening_ledger_lines(db: Database) -> None:
    save(db, {"name": "fiber", "fee": "29.90"}, NOW - 86400)
    result = write(db, read(GOOD_CSV))
    assert result == store.ImportResult(users=3, balances=2, opening_lines=2, holders_replaced=0)
    with db.reader.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(users))}
        ids = {n: r.id for n, r in rows.items()}
        assert [(n, r.password_cleartext, r.password_hash, r.plan, r.enabled, r.billing,
                 r.tax_exempt, r.account, r.created_at) for n, r in sorted(rows.items())] == [
            ("ann", "ann-pw", None, "fiber", True, "prepaid", "VAT", True, NOW),
            ("bob", None, HASH, None, False, "postpaid", None, True, NOW),
            ("cid", "cid-pw", None, None, True, "postpaid", "LEVY,VAT", True, NOW)]
        # As add_user: a plan starts now, its fee and free credit are due now.
        assert (rows["ann"].plan_since, rows["ann"].next_fee_at, rows["ann"].next_free_at) == \
            (NOW, NOW, NOW)
        assert (rows["bob"].plan_since, rows["bob"].next_fee_at) == (None, None)
        assert ledger_store.balance_of(conn, "ann") == ledger_store.Balance(125000, 50000)
        assert ledger_store.balance_of(conn, "bob") == ledger_store.Balance(-32001, 0)
        assert "cid" not in ledger_store.balances_for(conn, ["cid"])
        assert sorted((r["ref"], r["kind"], r["amount"]) for n in ("ann", "bob")
                      for r in ledger_store.ledger_for(conn, n)) == sorted([
            (f"opening:{ids['ann']}", "opening", 125000),
            (f"opening:{ids['bob']}", "opening", -32001)])
        # The ledger explains every balance.
        sums = dict(conn.execute(select(ledger.c.user_id, func.sum(ledger.c.amount))
                                 .group_by(ledger.c.user_id)).all())
        assert sums == {r.user_id: r.balance for r in conn.execute(select(balances))
                        if r.balance}
    assert verify_hash(HASH, b"hashed-pw")
    # Fees work for imported users: the first cycle is billed at once.
    assert bill(db, NOW) == 1
    assert [ref for ref, _ in lines(db, "ann")] == ["fee"]


def test_a_jsonl_file_writes_the_same_as_its_csv(db: Database) -> None:
    save(db, {"name": "fiber"}, NOW)
    write(db, read(GOOD_JSONL, "jsonl"))
    jsonl = snapshot(db)
    from tests.support.databases import empty_tables
    empty_tables(db)
    save(db, {"name": "fiber"}, NOW)
    write(db, read(GOOD_CSV))
    csv = snapshot(db)

    def no_ids(snap: tuple[Any, ...]) -> list[Any]:     # ids differ between the two runs
        return [sorted(r[1:] for r in rows) for rows in snap[:2]] + \
            [sorted((r[2], r[3], r[5]) for r in snap[2])]
    assert no_ids(jsonl) == no_ids(csv)


@pytest.mark.parametrize("problem", ["plan", "exists"])
def test_a_line_the_database_refuses_leaves_nothing_written(db: Database, problem: str) -> None:
    save(db, {"name": "fiber"}, NOW)
    with db.writer.begin() as conn:
        user_store.add_user(conn, "old", password_hash=None, password_cleartext="pw",
                            plan=None, enabled=True, now=NOW)
    before = snapshot(db)
    bad = "zed,pw,nope\n" if problem == "plan" else "old,pw,\n"
    new = read("name,password,plan\nann,pw,fiber\nbob,pw,\n" + bad)
    with pytest.raises(store.ImportFailed) as e:
        write(db, new)
    assert [str(p) for p in e.value.problems] == [
        "line 4: plan: no plan 'nope' (see 'aaad plan list')" if problem == "plan" else
        "line 4: name: user 'old' exists; nothing is updated by an import "
        "('aaad user set' changes users)"]
    assert snapshot(db) == before


def test_a_failure_while_writing_rolls_the_whole_file_back(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user added between the checks and the writes (here by the progress hook,
    on the import's own connection) fails an INSERT after others went in."""
    monkeypatch.setattr(store, "CHUNK", 2)
    new = read("name,password,balance\n" + "".join(f"u{i},pw,1\n" for i in range(6)))
    before = snapshot(db)
    conns: list[Any] = []

    def sneak(phase: str, done: int) -> None:
        if phase == "write" and done == 2:
            conns[0].execute(insert(users).values(name="u4", account=True, created_at=0,
                                                  updated_at=0))
    with pytest.raises(Exception) as e, db.writer.begin() as conn:
        conns.append(conn)
        store.import_users(conn, new, now=NOW, progress=sneak)
    assert "u4" in str(e.value)
    assert snapshot(db) == before


def test_a_name_accounting_saw_gets_its_account_and_the_history_stays(db: Database) -> None:
    with db.writer.begin() as conn:
        holder = user_store.user_ids(conn, ["walk-in"], create=True, now=NOW)["walk-in"]
        conn.execute(insert(usage).values(user_id=holder, period_start=0, user_name="walk-in",
                                          session_s=60, in_octets=1, out_octets=2))
    result = write(db, read("name,password\nwalk-in,pw\n"))
    assert result.holders_replaced == 1
    with db.reader.connect() as conn:
        account = conn.execute(select(users).where(users.c.name == "walk-in")).one()
        assert account.account and account.id != holder
        assert conn.execute(select(usage.c.user_id)).scalars().all() == [holder]


def test_progress_reports_each_phase(db: Database) -> None:
    seen: list[tuple[str, int]] = []
    new = store.read_users(io.StringIO("name,password,balance\na,pw,1\nb,pw,\n"), "csv",
                           progress=lambda p, n: seen.append((p, n)))
    write(db, new, progress=lambda p, n: seen.append((p, n)))
    assert seen == [("read", 2), ("check", 2), ("write", 2), ("balances", 1), ("ledger", 1)]


def test_names_mariadb_takes_for_one_are_refused_there(db: Database) -> None:
    new = read("name,password\nAnn,pw\nann,pw\n")
    if db.dialect not in ("mysql", "mariadb"):
        assert write(db, new).users == 2
        return
    with pytest.raises(store.ImportFailed) as e:
        write(db, new)
    assert [str(p) for p in e.value.problems] == [
        "line 3: name: 'ann' is the same name as 'Ann' (line 2) to MariaDB, which ignores case"]


def test_file_format_by_name() -> None:
    assert [store.file_format(n) for n in ("a.csv", "B.JSONL", "c.ndjson", "d.txt")] == \
        ["csv", "jsonl", "jsonl", None]


def test_a_tenants_import_has_its_own_names_and_its_own_or_the_operators_plans(
        db: Database) -> None:
    save(db, {"name": "fiber"}, NOW)                    # the operator's
    with db.writer.begin() as conn:
        acme = tenant_store.add_tenant(conn, "imp-acme", description=None, now=NOW)
        beta = tenant_store.add_tenant(conn, "imp-beta", description=None, now=NOW)
        for tid, tenant in ((acme, "imp-acme"), (beta, "imp-beta")):
            p = parse_plan({"name": f"{tenant}/gold"})
            plan_store.save_plan(conn, p.name, plan_store.plan_to_json(p), NOW, tenant=tid)
        p = parse_plan({"name": "imp-beta/silver"})
        plan_store.save_plan(conn, p.name, plan_store.plan_to_json(p), NOW, tenant=beta)
        user_store.add_user(conn, "ann", password_hash=None, password_cleartext="pw",
                            plan=None, enabled=True, now=NOW)        # the operator's ann
    result = write(db, read("name,password,plan\nann,pw,gold\nbob,pw,fiber\n"), tenant=acme)
    assert result.users == 2
    with db.reader.connect() as conn:
        assert sorted((r.name, r.tenant_id, r.plan) for r in conn.execute(select(users))) == [
            ("ann", 0, None), ("ann", acme, "imp-acme/gold"), ("bob", acme, "fiber")]
    before = snapshot(db)
    with pytest.raises(store.ImportFailed) as e:       # another tenant's plan is no plan
        write(db, read("name,password,plan\ncid,pw,silver\ndan,pw,imp-beta/gold\n"),
              tenant=acme)
    assert [str(p) for p in e.value.problems] == [
        "line 2: plan: no plan 'silver' (see 'aaad plan list')",
        "line 3: plan: no plan 'imp-beta/gold' (see 'aaad plan list')"]
    with pytest.raises(store.ImportFailed) as e:       # names are unique per tenant
        write(db, read("name,password\nbob,pw\n"), tenant=acme)
    assert [str(p) for p in e.value.problems] == [
        "line 2: name: user 'bob' exists; nothing is updated by an import "
        "('aaad user set' changes users)"]
    assert snapshot(db) == before


def test_nt_hashes_are_imported_as_given_in_lower_case(db: Database) -> None:
    nt = nt_hash("dan-pw")
    new = read(f"name,nt_hash,password\ndan,{nt.upper()},\neve,,eve-pw\n")
    assert "dan-pw" not in repr(new) and nt not in repr(new).lower()    # never in a repr
    write(db, new)
    with db.reader.connect() as conn:
        rows = {r.name: r for r in conn.execute(select(users))}
        user = user_store.get_user(conn, "dan")
    assert (rows["dan"].password_nt_hash, rows["dan"].password_hash,
            rows["dan"].password_cleartext) == (nt, None, None)
    assert rows["eve"].password_nt_hash is None
    assert user.credential == "nt-hash"
