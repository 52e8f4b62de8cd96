"""``aaad user import`` through the CLI, on the three databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from aaad.cli import cli
from aaad.store.database import Database
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
    out = aaad.ok("user", "import", str(users)).stdout
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
    r = aaad.run("user", "import", str(users))
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
        f"error: {users}: line 4: password: give exactly one of password and password_hash",
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
