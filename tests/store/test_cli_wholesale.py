"""``aaad tenant set --wholesale-rate-table`` and its usage prices, ``aaad charges
export --tenant`` and the charges import's ``tenant`` column, through the real CLI
on SQLite."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aaad.core.accounting.sessions import Totals
from aaad.store.calls import record_call
from aaad.store.database import open_database
from aaad.store.usage import add_usage
from aaad.store.users import user_ids
from tests.support.cli import error, migrated_config, ok, run

T = int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp())


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = migrated_config(tmp_path)
    (tmp_path / "wh.csv").write_text("prefix,description,price,connection_fee,increment\n"
                                     "4930,Berlin,0.06,0,60/60\n")
    ok(path, "rates", "import", str(tmp_path / "wh.csv"), "--table", "wh")
    ok(path, "tenant", "add", "acme")
    ok(path, "user", "add", "bob", "--password", "pw")
    ok(path, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    return path


def rows(text: str) -> list[tuple[str, str, str, str]]:
    return [(r["user"], r["item"], r["kind"], r["amount"])
            for r in csv.DictReader(io.StringIO(text)) if r["item"] != "total" or not r["kind"]]


def test_tenant_set_wholesale_rate_table(config: Path) -> None:
    assert ok(config, "tenant", "set", "acme", "--wholesale-rate-table", "wh").output \
        == "tenant acme: wholesale rate table wh\n"
    assert "wholesale:    wh" in ok(config, "tenant", "show", "acme").output
    r = run(config, "tenant", "set", "acme", "--wholesale-rate-table", "nope")
    assert r.exit_code == 2
    assert error(config, "tenant", "set", "acme", "--wholesale-rate-table", "nope") \
        == "error: no operator rate table 'nope' (see 'aaad rates list')"
    assert error(config, "tenant", "set", "nobody", "--wholesale-rate-table", "wh") \
        == "error: no tenant 'nobody' (see 'aaad tenant list')"
    assert run(config, "tenant", "set", "acme").exit_code == 2
    assert ok(config, "tenant", "set", "acme", "--no-wholesale").output \
        == "tenant acme: wholesale rate table none\n"


def test_import_and_export_by_tenant(config: Path, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("id,user,amount,date,tenant\n"
                                    "x1,bob,5.00,2026-11-05,acme\n"
                                    "x2,bob,2.00,2026-11-05,\n")
    assert ok(config, "charges", "import", str(tmp_path / "c.csv")).output \
        == f"{tmp_path / 'c.csv'}: imported 2 charges\n"
    url = f"sqlite:///{tmp_path / 'aaad.sqlite3'}"
    database = open_database(url)
    try:
        with database.writer.begin() as conn:
            uid = user_ids(conn, ["bob"], tenant=1)["bob"]
            assert record_call(conn, {
                "session_id": "c1", "user_id": uid, "user_name": "bob@acme", "caller": "1",
                "destination": "4930123", "prefix": "4930", "rate_table": "acme/r",
                "band": "peak", "direction": "out", "started_at": T, "duration_s": 61,
                "billed_s": 66, "free_s": 0, "price": 1000, "connection_fee": 500,
                "cost": 1600, "period_start": T, "wholesale_cost": 1200}, now=T + 61)
    finally:
        database.dispose()
    operator = ok(config, "charges", "export", "--period", "2026-11").output
    assert rows(operator) == [("bob", "charge", "import", "2.0000"),
                              ("bob", "total", "", "2.0000"),
                              ("tenant:acme", "wholesale", "call", "0.1200"),
                              ("tenant:acme", "total", "", "0.1200")]
    acme = ok(config, "charges", "export", "--period", "2026-11", "--tenant", "acme").output
    assert rows(acme) == [("bob", "calls", "call", "0.1600"),
                          ("bob", "charge", "import", "5.0000"),
                          ("bob", "wholesale", "call", "0.1200"),
                          ("bob", "total", "", "5.1600")]
    assert ok(config, "period", "close", "2026-11").output == "closed period 2026-11\n"
    assert ok(config, "charges", "export", "--period", "2026-11").output == operator
    assert ok(config, "charges", "export", "--period", "2026-11", "--tenant", "acme").output \
        == acme
    r = run(config, "charges", "export", "--period", "2026-11", "--tenant", "nobody")
    assert r.exit_code == 2 and "no tenant 'nobody'" in r.stderr


def test_tenant_set_wholesale_usage_prices(config: Path) -> None:
    assert ok(config, "tenant", "set", "acme", "--wholesale-hour", "1.5",
              "--wholesale-gb", "0.25").output \
        == "tenant acme: wholesale usage 1.50 per hour, 0.25 per GB\n"
    assert "usage price:  1.50 per hour, 0.25 per GB" in ok(
        config, "tenant", "show", "acme").output
    shown = ok(config, "tenant", "show", "acme", "--json").output
    assert '"wholesale_hour_money": 15000' in shown and '"wholesale_gb_money": 2500' in shown
    assert "1.50 per hour, 0.25 per GB" in ok(config, "tenant", "list").output
    # the prices given replace both: one left out is not billed
    assert ok(config, "tenant", "set", "acme", "--wholesale-gb", "0.0001").output \
        == "tenant acme: wholesale usage 0.0001 per GB\n"
    assert ok(config, "tenant", "set", "acme", "--wholesale-rate-table", "wh",
              "--wholesale-hour", "2").output \
        == "tenant acme: wholesale rate table wh\ntenant acme: wholesale usage 2.00 per hour\n"
    for args, message in (
            (("--wholesale-hour", "1.23456"), "error: --wholesale-hour must be a decimal with "
             "at most 4 places such as 1.50, got '1.23456'"),
            (("--wholesale-gb", "-1"), "error: --wholesale-gb must be a decimal with at most "
             "4 places such as 1.50, got '-1'"),
            (("--wholesale-gb", "1" * 13), "error: --wholesale-gb is too large"),
            (("--wholesale-hour", "1", "--no-wholesale-usage"),
             "error: give --wholesale-hour/--wholesale-gb or --no-wholesale-usage, not both"),
            (("--wholesale-rate-table", "wh", "--no-wholesale"),
             "error: give only one of --wholesale-rate-table TABLE or --no-wholesale")):
        assert run(config, "tenant", "set", "acme", *args).exit_code == 2
        assert error(config, "tenant", "set", "acme", *args) == message
    assert error(config, "tenant", "set", "nobody", "--wholesale-hour", "1") \
        == "error: no tenant 'nobody' (see 'aaad tenant list')"
    assert "2.00 per hour" in ok(config, "tenant", "show", "acme").output   # unchanged
    assert ok(config, "tenant", "set", "acme", "--no-wholesale-usage").output \
        == "tenant acme: wholesale usage none\n"
    assert "usage price:  none" in ok(config, "tenant", "show", "acme").output
    assert "wholesale:    wh" in ok(config, "tenant", "show", "acme").output


def test_export_has_wholesale_usage_lines(config: Path, tmp_path: Path) -> None:
    ok(config, "tenant", "set", "acme", "--wholesale-hour", "1.00", "--wholesale-gb", "0.50")
    url = f"sqlite:///{tmp_path / 'aaad.sqlite3'}"
    database = open_database(url)
    try:
        with database.writer.begin() as conn:
            uid = user_ids(conn, ["bob"], tenant=1)["bob"]
            add_usage(conn, {(uid, T): (Totals(5400, 10**9, 5 * 10**8),) * 2},
                      names={uid: "bob@acme"})
    finally:
        database.dispose()
    operator = ok(config, "charges", "export", "--period", "2026-11").output
    # 1.5 h at 1.00 + 1.5 GB at 0.50
    assert rows(operator) == [("tenant:acme", "wholesale", "usage", "2.2500"),
                              ("tenant:acme", "total", "", "2.2500")]
    assert "usage at 1.0000 per hour, 0.5000 per GB" in operator
    acme = ok(config, "charges", "export", "--period", "2026-11", "--tenant", "acme").output
    assert rows(acme) == [("bob", "usage", "", "0.0000"),
                          ("bob", "wholesale", "usage", "2.2500"),
                          ("bob", "total", "", "0.0000")]


def test_tax_exemption_is_the_tenants_users_own(config: Path, tmp_path: Path) -> None:
    """The operator's bob is exempt from VAT; acme's bob, another user of the same
    name, pays it (exemptions are read per tenant), and the reseller's wholesale
    bill stays net."""
    config.write_text(config.read_text() + 'taxes:\n  - {name: VAT, percent: "20"}\n')
    ok(config, "user", "set", "bob", "--tax-exempt", "VAT")
    (tmp_path / "c.csv").write_text("id,user,amount,date,tenant\n"
                                    "x1,bob,5.00,2026-11-05,acme\n"
                                    "x2,bob,2.00,2026-11-05,\n")
    ok(config, "charges", "import", str(tmp_path / "c.csv"))
    operator = ok(config, "charges", "export", "--period", "2026-11").output
    assert [r for r in rows(operator) if r[1] == "tax"] == []
    acme = ok(config, "charges", "export", "--period", "2026-11", "--tenant", "acme").output
    assert [r for r in rows(acme) if r[1] in ("charge", "tax")] \
        == [("bob", "charge", "import", "5.0000"), ("bob", "tax", "VAT", "1.0000")]
    listed = ok(config, "charges", "list", "--tenant", "acme", "--json").output
    assert '"VAT"' not in listed and '"kind": "tax"' in listed
