"""``aaad tenant`` and ``--tenant`` on users and plans, through the real CLI on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import error, migrated_config, ok, run


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return migrated_config(tmp_path)


def test_tenant_add_list_show_delete(config: Path) -> None:
    assert ok(config, "tenant", "add", "acme", "--description", "Acme ISP").output \
        == "added tenant acme\n"
    ok(config, "tenant", "add", "beta.net")
    listed = json.loads(ok(config, "tenant", "list", "--json").output)
    assert [(t["name"], t["description"]) for t in listed] \
        == [("acme", "Acme ISP"), ("beta.net", None)]
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    shown = json.loads(ok(config, "tenant", "show", "acme", "--json").output)
    assert shown["owns"] == {"users": 1, "plans": 0, "rate_tables": 0, "vouchers": 0}
    assert "owns:         1 users, 0 plans" in ok(config, "tenant", "show", "acme").output
    assert error(config, "tenant", "delete", "acme", "--yes") \
        == "error: tenant 'acme' still owns 1 users; delete or move them first"
    ok(config, "user", "delete", "bob", "--tenant", "acme", "--yes")
    assert ok(config, "tenant", "delete", "acme", "--yes").output == "deleted tenant acme\n"
    assert error(config, "tenant", "show", "acme") \
        == "error: no tenant 'acme' (see 'aaad tenant list')"


def test_tenant_errors(config: Path) -> None:
    r = run(config, "tenant", "add", "Acme ISP")
    assert r.exit_code == 2 and "bad tenant name 'Acme ISP'" in r.stderr
    ok(config, "tenant", "add", "acme")
    assert error(config, "tenant", "add", "acme") == "error: tenant 'acme' already exists"
    r = run(config, "tenant", "delete", "acme")
    assert r.exit_code == 2 and "without --yes" in r.stderr
    assert error(config, "user", "add", "bob", "--password", "pw", "--tenant", "nope") \
        == "error: no tenant 'nope' (see 'aaad tenant list')"
    assert error(config, "user", "list", "--tenant", "nope") \
        == "error: no tenant 'nope' (see 'aaad tenant list')"


def test_the_same_user_name_in_two_tenants(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "tenant", "add", "beta")
    assert ok(config, "user", "add", "bob", "--password", "pw").output \
        == "added user bob (hashed password)\n"
    assert ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme").output \
        == "added user bob (tenant acme) (hashed password)\n"
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "beta")
    ok(config, "user", "add", "carol", "--password", "pw", "--tenant", "beta")
    assert error(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme") \
        == "error: user 'bob' already exists in tenant acme"
    names = [u["name"] for u in json.loads(ok(config, "user", "list", "--json",
                                              "--tenant", "beta").output)]
    assert names == ["bob", "carol"]
    assert [u["name"] for u in json.loads(ok(config, "user", "list", "--json").output)] \
        == ["bob"]
    assert error(config, "user", "show", "carol") == "error: no user carol"
    assert error(config, "user", "show", "carol", "--tenant", "acme") \
        == "error: no user carol (tenant acme)"
    ok(config, "user", "set", "bob", "--tenant", "acme", "--password", "new")
    ok(config, "user", "enable", "bob", "--tenant", "beta")
    shown = json.loads(ok(config, "user", "show", "bob", "--tenant", "beta", "--json").output)
    assert (shown["name"], shown["tenant"]) == ("bob", "beta")


def test_tenant_plans(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "tenant", "add", "beta")
    ok(config, "plan", "add", "gold", "--max-sessions", "1")
    assert ok(config, "plan", "add", "gold", "--tenant", "acme", "--max-sessions", "2").output \
        == "added plan acme/gold\n"
    ok(config, "plan", "add", "silver", "--tenant", "beta")
    r = run(config, "plan", "add", "x/y")
    assert r.exit_code == 2 and "cannot contain '/'" in r.stderr
    assert [p["name"] for p in json.loads(ok(config, "plan", "list", "--json",
                                             "--tenant", "acme").output)] \
        == ["acme/gold", "gold"]
    assert [p["name"] for p in json.loads(ok(config, "plan", "list", "--json").output)] \
        == ["gold"]
    assert json.loads(ok(config, "plan", "show", "gold", "--tenant", "acme",
                         "--json").output)["max_sessions"] == 2
    assert error(config, "plan", "show", "silver", "--tenant", "acme") \
        == "error: no plan 'silver' of tenant acme"
    # a tenant's user: its own tenant's plan of that name, else the operator's
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme", "--plan", "gold")
    ok(config, "user", "add", "eve", "--password", "pw", "--tenant", "beta", "--plan", "gold")
    plan_of = {t: json.loads(ok(config, "user", "show", n, "--tenant", t, "--json").output)
               ["plan"] for n, t in (("bob", "acme"), ("eve", "beta"))}
    assert plan_of == {"acme": "acme/gold", "beta": "gold"}
    # never another tenant's plan, and the operator's users never a tenant's
    assert error(config, "user", "set", "bob", "--tenant", "acme", "--plan", "silver") \
        == "error: no plan 'silver' of tenant acme or the operator " \
           "(see 'aaad plan list --tenant acme')"
    assert error(config, "user", "set", "bob", "--tenant", "acme", "--plan", "beta/silver") \
        .startswith("error: no plan 'beta/silver'")
    ok(config, "user", "add", "op", "--password", "pw")
    assert error(config, "user", "set", "op", "--plan", "acme/gold") \
        == "error: no plan 'acme/gold' (see 'aaad plan list')"
    assert error(config, "plan", "delete", "gold", "--tenant", "acme") \
        == "error: 1 user is on plan 'acme/gold'"
    ok(config, "user", "set", "bob", "--tenant", "acme", "--plan", "")
    assert ok(config, "plan", "delete", "gold", "--tenant", "acme").output \
        == "deleted plan acme/gold\n"


RATES = """\
prefix,description,price,connection_fee,increment,band
49,Germany,0.10,0.05,60/6,
"""


def test_tenant_rate_tables(config: Path, tmp_path: Path) -> None:
    ok(config, "tenant", "add", "acme")
    (tmp_path / "r.csv").write_text(RATES)
    assert ok(config, "rates", "import", str(tmp_path / "r.csv"), "--table", "intl",
              "--tenant", "acme").output == "rate table acme/intl: 1 rates imported\n"
    ok(config, "rates", "import", str(tmp_path / "r.csv"), "--table", "intl")
    assert [t["name"] for t in json.loads(ok(config, "rates", "list", "--json",
                                             "--tenant", "acme").output)] == ["acme/intl"]
    assert [t["name"] for t in json.loads(ok(config, "rates", "list", "--json").output)] \
        == ["acme/intl", "intl"]
    assert json.loads(ok(config, "rates", "lookup", "intl", "4930", "--tenant", "acme",
                         "--json").output)["prefix"] == "49"
    # the operator cannot write into a tenant's namespace
    assert error(config, "rates", "import", str(tmp_path / "r.csv"), "--table", "acme/intl") \
        == "error: rate table 'acme/intl' is not the operator's"
    r = run(config, "rates", "import", str(tmp_path / "r.csv"), "--table", "x/y")
    assert r.exit_code == 2 and "cannot contain '/'" in r.stderr
    assert error(config, "rates", "delete", "acme/intl") == "error: no rate table 'acme/intl'"
    assert ok(config, "rates", "delete", "intl", "--tenant", "acme").output \
        == "rate table acme/intl deleted\n"


def test_tenant_vouchers_are_redeemed_by_its_users_only(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    [code] = json.loads(ok(config, "voucher", "create", "--count", "1", "--value", "5",
                           "--tenant", "acme", "--json").output)["codes"]
    [own] = json.loads(ok(config, "voucher", "create", "--count", "1", "--value", "7",
                          "--json").output)["codes"]
    # the operator's bob does not know acme's voucher, nor acme's bob the operator's
    assert error(config, "voucher", "redeem", code, "bob") == "error: unknown voucher code"
    assert error(config, "voucher", "redeem", own, "bob", "--tenant", "acme") \
        == "error: unknown voucher code"
    redeemed = ok(config, "voucher", "redeem", code, "bob", "--tenant", "acme").output
    assert "for bob (tenant acme): +5.00; balance 5.00" in redeemed
    assert "for bob: +7.00; balance 7.00" in ok(config, "voucher", "redeem", own, "bob").output
    listed = json.loads(ok(config, "voucher", "list", "--json", "--tenant", "acme").output)
    assert [(v["value"], v["state"]) for v in listed] == [("5.00", "redeemed")]
    assert error(config, "voucher", "redeem", code, "nobody", "--tenant", "acme") \
        == "error: no user nobody (tenant acme)"


def test_disable_suspend_and_resume_a_tenants_user(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")

    def state(*tenant: str) -> tuple[bool, object]:
        u = json.loads(ok(config, "user", "show", "bob", "--json", *tenant).output)
        return u["enabled"], u["suspended_by_hand"] and u["suspended_by_hand"]["reason"]
    assert ok(config, "user", "suspend", "bob", "--tenant", "acme", "--reason", "unpaid",
              "--no-disconnect").output == "suspended user bob (tenant acme) by hand " \
                                           "(reason: unpaid)\n"
    ok(config, "user", "disable", "bob", "--tenant", "acme")   # no open session to cut
    assert (state("--tenant", "acme"), state()) == ((False, "unpaid"), (True, None))
    assert ok(config, "user", "resume", "bob", "--tenant", "acme").output.startswith(
        "resumed user bob (tenant acme): lifted the suspension by hand")
    assert error(config, "disconnect", "bob", "--tenant", "acme") \
        == "error: no open session of 'bob' in tenant acme"
    assert error(config, "disconnect", "carol", "--tenant", "acme") \
        == "error: no user carol (tenant acme)"


def test_credit_of_a_tenants_user(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    assert ok(config, "credit", "topup", "bob", "12.50", "--tenant", "acme", "--ref", "p1") \
        .output == "topped up bob (tenant acme) by 12.50 (ref p1); balance 12.50, " \
                   "available 12.50\n"
    # a tenant's references are its own (as over the API): the operator's p1 is another
    ok(config, "credit", "topup", "bob", "1.00", "--ref", "p1")
    assert ok(config, "credit", "topup", "bob", "12.50", "--tenant", "acme", "--ref", "p1") \
        .output.startswith("top-up p1 was posted already; nothing changed")
    shown = json.loads(ok(config, "credit", "show", "bob", "--tenant", "acme",
                          "--json").output)
    assert (shown["tenant"], shown["balance"], [r["ref"] for r in shown["ledger"]]) \
        == ("acme", "12.50", ["topup:p1"])
    assert json.loads(ok(config, "credit", "show", "bob", "--json").output)["balance"] \
        == "1.00"
    assert error(config, "credit", "topup", "carol", "1", "--tenant", "acme") \
        == "error: no user carol (tenant acme)"
    # limit, promise, block sales and reversals act on the tenant's bob, not the operator's
    assert ok(config, "credit", "limit", "bob", "5", "--tenant", "acme").output \
        == "credit limit of bob (tenant acme): 5.00; balance 12.50, available 17.50\n"
    assert ok(config, "credit", "promise", "bob", "3", "--days", "2", "--tenant", "acme") \
        .output.startswith("promised payment of 3.00 for bob (tenant acme) until ")
    assert ok(config, "block", "add", "bob", "--hours", "2", "--valid-days", "30", "--price",
              "2", "--ref", "b1", "--tenant", "acme").output \
        == "sold 2h valid 30 days to bob (tenant acme) for 2.00\n"
    assert ok(config, "block", "add", "bob", "--hours", "2", "--valid-days", "30",
              "--ref", "b1", "--tenant", "acme").output \
        == "block b1 was sold already; nothing changed\n"
    assert ok(config, "block", "add", "bob", "--hours", "2", "--valid-days", "30",
              "--ref", "b1").output == "sold 2h valid 30 days to bob\n"   # another sale
    shown = json.loads(ok(config, "credit", "show", "bob", "--tenant", "acme",
                          "--json").output)
    assert (shown["credit_limit"], shown["promise"]["amount"], shown["balance"]) \
        == ("5.00", "3.00", "12.50")
    operator = json.loads(ok(config, "credit", "show", "bob", "--json").output)
    assert (operator["credit_limit"], operator["promise"], operator["balance"]) \
        == ("0.00", None, "1.00")
    assert error(config, "credit", "reverse", "acme/p1") == "error: no top-up with ref 'acme/p1'"
    assert ok(config, "credit", "reverse", "p1", "--tenant", "acme").output \
        == "reversed top-up p1: -12.50 for bob; balance 0.00, available 5.00\n"
    assert ok(config, "credit", "reverse", "p1").output \
        == "reversed top-up p1: -1.00 for bob; balance 0.00, available 0.00\n"
    ok(config, "tenant", "add", "beta")
    assert error(config, "credit", "reverse", "p1", "--tenant", "beta") \
        == "error: no top-up with ref 'p1' of tenant beta"
    assert error(config, "credit", "limit", "carol", "1", "--tenant", "acme") \
        == "error: no user carol (tenant acme)"


def test_usage_of_a_tenants_user(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    shown = json.loads(ok(config, "usage", "show", "bob", "--tenant", "acme", "--json").output)
    assert (shown["user"], shown["session_s"], shown["billing"]["mode"]) \
        == ("bob", 0, "postpaid")
    assert error(config, "usage", "show", "bob") == "error: no user bob"
    assert error(config, "usage", "show", "eve", "--tenant", "acme") \
        == "error: no user eve (tenant acme)"


def test_events_of_a_tenant(config: Path) -> None:
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    ok(config, "user", "suspend", "bob", "--tenant", "acme", "--reason", "unpaid",
       "--no-disconnect")
    ok(config, "user", "suspend", "bob", "--no-disconnect")

    def events(*args: str) -> list[tuple[str, str]]:
        return [(e["kind"], e["detail"]) for e in
                json.loads(ok(config, "events", "list", "--json", *args).output)]
    assert events("--tenant", "acme") == [("suspended", "by hand: unpaid")]
    assert events("--tenant", "acme", "--user", "bob") == [("suspended", "by hand: unpaid")]
    assert len(events()) == 2                      # the operator sees every event
    assert error(config, "events", "list", "--tenant", "acme", "--user", "carol") \
        == "error: no user carol (tenant acme)"
    assert error(config, "events", "list", "--tenant", "beta") \
        == "error: no tenant 'beta' (see 'aaad tenant list')"


def test_lists_of_a_tenants_user(config: Path, tmp_path: Path) -> None:
    """``charges list``, ``session list`` and ``calls list`` take --tenant: its users'
    rows only, and a name is its user of the name."""
    ok(config, "tenant", "add", "acme")
    ok(config, "user", "add", "bob", "--password", "pw")
    ok(config, "user", "add", "bob", "--password", "pw", "--tenant", "acme")
    f = tmp_path / "charges.csv"
    f.write_text("id,user,amount,description,date,tenant\n"
                 "c1,bob,3.00,router,2026-11-03,acme\nc1,bob,4.00,cable,2026-11-03,\n",
                 encoding="utf-8")
    ok(config, "charges", "import", str(f))

    def charges(*args: str) -> list[tuple[str, str]]:
        return [(r["amount"], r["description"]) for r in
                json.loads(ok(config, "charges", "list", "--json", *args).output)]
    assert charges("--tenant", "acme") == [("3.00", "router")]
    assert charges("--tenant", "acme", "--user", "bob") == [("3.00", "router")]
    assert charges("--user", "bob") == [("4.00", "cable")]
    assert sorted(charges()) == [("3.00", "router"), ("4.00", "cable")]
    for what in (("session", "list"), ("calls", "list")):      # bob of acme has none
        assert json.loads(ok(config, *what, "--tenant", "acme", "--user", "bob",
                             "--json").output) == []
    for what in (("charges", "list"), ("session", "list"), ("calls", "list")):
        assert error(config, *what, "--tenant", "acme", "--user", "eve") \
            == "error: no user eve (tenant acme)"
        assert error(config, *what, "--tenant", "beta") \
            == "error: no tenant 'beta' (see 'aaad tenant list')"
