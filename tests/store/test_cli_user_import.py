"""``aaad user import`` through the CLI, on the three databases."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aaad.cli import cli
from aaad.cli.user_import import POOL_FROM, _Progress
from aaad.credentials import verify_hash
from aaad.store import tables
from aaad.store.database import Database, open_database
from tests.support.cli import Cli, one_line_error, write_config


def test_import_then_the_users_log_in_with_their_balances(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = Cli(write_config(tmp_path, db.url, extra="taxes: [{name: VAT, percent: '19'}]\n"),
               monkeypatch)
    aaad.ok("plan", "add", "basic", "--time-limit", "10h")
    users = tmp_path / "users.jsonl"
    users.write_text('{"name": "ann", "password": "ann-pw", "plan": "basic", '
                     '"billing": "prepaid", "balance": "20.00", "tax_exempt": ["VAT"]}\n'
                     '{"name": "bob", "password": "bob-pw", "credit_limit": 5}\n')
    out = aaad.ok("user", "import", str(users), "--cleartext").stdout
    assert out.startswith(f"{users}: imported 2 users (2 with a balance or credit limit; "
                          "1 opening balances in the ledger) in ")
    listed = {u["name"]: u for u in aaad.json("user", "list")}
    assert {n: (u["plan"], u["credential"], u["billing"], u["tax_exempt"])
            for n, u in listed.items()} == {"ann": ("basic", "cleartext", "prepaid", ["VAT"]),
                                            "bob": (None, "cleartext", "postpaid", [])}
    ann = aaad.json("credit", "show", "ann")
    assert (ann["balance"], ann["available"]) == ("20.00", "20.00")
    assert [(x["kind"], x["amount"]) for x in ann["ledger"]] == [("opening", "20.00")]
    bob = aaad.json("credit", "show", "bob")
    assert (bob["balance"], bob["credit_limit"], bob["ledger"]) == ("0.00", "5.00", [])
    # The same file again: the names exist now; nothing changes.
    r = aaad.run("user", "import", str(users), "--cleartext")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"error: {users}: line 1: name: user 'ann' exists; nothing is updated by an import "
        "('aaad user set' changes users)",
        f"error: {users}: line 2: name: user 'bob' exists; nothing is updated by an import "
        "('aaad user set' changes users)",
        f"error: {users}: 2 problems; nothing imported"]
    assert aaad.json("credit", "show", "ann")["balance"] == "20.00"


def test_a_bad_file_imports_nothing_and_says_why(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    aaad = Cli(write_config(tmp_path), monkeypatch)
    aaad.ok("db", "upgrade")
    users = tmp_path / "users.csv"
    users.write_text("name,password,balance\nann,pw,1.00\nbob,pw,lots\ncid,,\n")
    r = aaad.run("user", "import", str(users))
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        f"error: {users}: line 3: balance: must be a decimal with at most 4 places such as "
        "12.50 or -3.20, got 'lots'",
        f"error: {users}: line 4: password: give exactly one of password, password_hash and "
        "nt_hash",
        f"error: {users}: 2 problems; nothing imported"]
    assert aaad.json("user", "list") == []
    assert one_line_error(aaad.run("user", "import", str(tmp_path / "none.csv")), 1) == \
        f"error: {tmp_path / 'none.csv'}: cannot read: No such file or directory"
    (tmp_path / "users.txt").write_text("x")
    assert one_line_error(aaad.run("user", "import", str(tmp_path / "users.txt")), 2) == (
        f"error: {tmp_path / 'users.txt'}: cannot tell the format from the name: use a .csv "
        "or .jsonl file, or give --format")
    assert one_line_error(aaad.run("user", "import", "-"), 2) == \
        "error: reading stdin needs --format csv or --format jsonl"
    (tmp_path / "latin1.csv").write_bytes(b"name,password\nj\xf6rg,pw\n")
    assert one_line_error(aaad.run("user", "import", str(tmp_path / "latin1.csv")), 1) == \
        f"error: {tmp_path / 'latin1.csv'}: not UTF-8 text (at byte 15)"


@pytest.mark.parametrize("count", [2, POOL_FROM])
def test_passwords_are_hashed_unless_cleartext(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               count: int) -> None:
    """As 'user add': argon2id by default; from POOL_FROM passwords on, on worker
    processes."""
    aaad = Cli(write_config(tmp_path), monkeypatch)
    aaad.ok("db", "upgrade")
    users = tmp_path / "users.csv"
    users.write_text("name,password\n" + "".join(f"u{i:03d},pw-{i}\n" for i in range(count)))
    aaad.ok("user", "import", str(users))
    database = open_database(f"sqlite:///{tmp_path / 'aaad.sqlite3'}")
    try:
        with database.reader.connect() as conn:
            rows = conn.execute(select(tables.users.c.name, tables.users.c.password_hash,
                                       tables.users.c.password_cleartext)
                                .order_by(tables.users.c.name)).all()
    finally:
        database.dispose()
    assert len(rows) == count
    assert all(r.password_cleartext is None and r.password_hash.startswith("$argon2id$")
               for r in rows)
    assert [verify_hash(r.password_hash, f"pw-{i}".encode()) for i, r in enumerate(rows)] == \
        [True] * count


def test_stdin_with_a_format(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    r = runner.invoke(cli, ["--config", str(config), "user", "import", "-", "--format", "csv"],
                      input="name,password_hash\n"
                            '"ann","$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$'
                            'aGFzaGhhc2hoYXNoaGFzaGhhc2g"\n')
    assert (r.exit_code, r.stdout.split(" in ")[0]) == (0, "-: imported 1 user"), r.output
    listed = runner.invoke(cli, ["--config", str(config), "user", "list", "--json"])
    assert '"credential": "hashed"' in listed.stdout


def test_progress_is_rewritten_in_place_at_most_once_a_second() -> None:
    out = io.StringIO()
    now = [100.0]
    show = _Progress(out, clock=lambda: now[0])
    now[0] += 0.5
    show("read", 10_000)                    # a new phase: shown at once
    now[0] += 0.5
    show("read", 20_000)                    # within the second: not shown
    now[0] += 1.0
    show("read", 40_000)
    now[0] += 0.2
    show("write", 2_000)                    # a new phase, from the last call on
    show.end()
    show.end()                              # nothing more to end
    assert out.getvalue() == ("\rread 10000 lines (20,000/s)\x1b[K"
                              "\rread 40000 lines (20,000/s)\x1b[K"
                              "\rwrote 2000 users (10,000/s)\x1b[K\n")


def test_a_tenants_import(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        r = runner.invoke(cli, ["--config", str(config), *args], input=stdin)
        return r.exit_code, r.output
    assert run("db", "upgrade")[0] == 0
    assert run("tenant", "add", "imp-acme")[0] == 0
    assert run("plan", "add", "gold", "--tenant", "imp-acme")[0] == 0
    assert run("user", "add", "ann", "--password", "op-pw-1234")[0] == 0   # the operator's
    code, out = run("user", "import", "-", "--format", "csv", "--tenant", "imp-acme",
                    "--cleartext", stdin="name,password,plan\nann,pw,gold\n")
    assert (code, out.split(" in ")[0]) == (0, "-: imported 1 user"), out
    code, out = run("user", "show", "ann", "--tenant", "imp-acme", "--json")
    assert code == 0 and '"plan": "imp-acme/gold"' in out, out
    code, out = run("user", "import", "-", "--format", "csv", "--tenant", "nope",
                    stdin="name,password\nbob,pw\n")
    assert (code, out.strip().splitlines()[-1]) == (
        1, "error: no tenant 'nope' (see 'aaad tenant list')"), out
