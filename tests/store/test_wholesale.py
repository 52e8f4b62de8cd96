"""Wholesale rating and tenants' exports on the three databases: a tenant's
customers' calls rated at retail (their plan's table) and at the tenant's
wholesale table, exactly; the operator's export with each tenant's bill after
its own lines, unchanged otherwise; a tenant's export; a closed month frozen
for tenants too; a tenant user's imported and posted charges, each tenant's
ids its own; wholesale usage (hour and GB
prices) per tenant and per customer, frozen when closed, late usage priced as
its month was."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select, update

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.sessions import Status, Totals
from aaad.core.billing.taxes import Tax
from aaad.core.billing.wholesale_usage import UsagePrices
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.rate_table import parse_rates_csv
from aaad.store import billing
from aaad.store import plans as plan_store
from aaad.store import rates as rate_store
from aaad.store import tenants as tenant_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.closing import close_period, export_period
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.plans import plan_to_json
from aaad.store.tables import calls, charges, closed_periods, users
from tests.support.billing import BERLIN, at, bounds
from tests.support.records import acct_record

RULES = CallRules(emergency_numbers=("112",))
T = at(2026, 11, 10, 12)
DEC = at(2026, 12, 1)
HEADER = "prefix,description,price,connection_fee,increment"


def rates(conn: Any, name: str, line: str, tenant: int = 0) -> None:
    rate_store.import_rates(conn, name, parse_rates_csv([HEADER, line]), T, tenant=tenant)


def plan(conn: Any, name: str, table: str, tenant: int, **extra: Any) -> None:
    p = parse_plan({"name": name, "rate_table": table, **extra})
    plan_store.save_plan(conn, name, plan_to_json(p), T, tenant=tenant)


def user(conn: Any, name: str, plan_name: str | None, tenant: int = 0) -> int:
    return user_store.add_user(conn, name, password_hash=None, password_cleartext="pw",
                               plan=plan_name, enabled=True, now=T, tenant=tenant)


@pytest.fixture
def world(db: Database) -> dict[str, int]:
    """Operator bob; acme (own retail table, wholesale at the operator's ``wh``)
    with bob; beta (retail with a free minute, wholesale ``wh2``) with bob and
    carol; gamma without a wholesale table, with dave."""
    with db.writer.begin() as conn:
        ids = {t: tenant_store.add_tenant(conn, t, description=None, now=T)
               for t in ("acme", "beta", "gamma")}
        rates(conn, "retail", "4930,Berlin,0.30,0,60/60")
        rates(conn, "wh", "4930,Berlin,0.06,0,60/60")
        rates(conn, "wh2", "4930,Berlin,0.09,0,1/1")
        rates(conn, "acme/retail", "4930,Berlin,0.10,0.05,60/6", ids["acme"])
        rates(conn, "beta/retail", "4930,Berlin,0.20,0,60/60", ids["beta"])
        plan(conn, "calls", "retail", 0)
        plan(conn, "acme/calls", "acme/retail", ids["acme"])
        plan(conn, "beta/calls", "beta/retail", ids["beta"], free_minutes={"minutes": 1})
        plan(conn, "gamma/calls", "retail", ids["gamma"])
        tenant_store.set_wholesale_rate_table(conn, "acme", "wh")
        tenant_store.set_wholesale_rate_table(conn, "beta", "wh2")
        ids.update({"bob": user(conn, "bob", "calls"),
                    "acme:bob": user(conn, "bob", "acme/calls", ids["acme"]),
                    "beta:bob": user(conn, "bob", "beta/calls", ids["beta"]),
                    "beta:carol": user(conn, "carol", "beta/calls", ids["beta"]),
                    "gamma:dave": user(conn, "dave", "gamma/calls", ids["gamma"])})
    return ids


def call(db: Database, name: str, sid: str, start: int, seconds: int,
         number: str = "4930123") -> None:
    records = [acct_record(status, at_, Totals(s, 0, 0), user_name=name, acct_session_id=sid,
                           nas_key="192.0.2.1", client="gw", nas_address="192.0.2.1",
                           called_station_id=number, calling_station_id="4940999",
                           terminate_cause="User-Request" if status is Status.STOP else None)
               for status, at_, s in ((Status.START, start, 0),
                                      (Status.STOP, start + seconds, seconds))]
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=PeriodSpec("monthly"), tz=BERLIN,
                          now=start + seconds, calls=RULES)


def cdrs(db: Database) -> dict[int, tuple[int, int, int | None]]:
    with db.reader.connect() as conn:
        return {r.user_id: (r.billed_s, r.cost, r.wholesale_cost)
                for r in conn.execute(select(calls))}


def export(db: Database, label: str, tenant: str | None = None) -> list[dict[str, Any]]:
    with db.reader.connect() as conn:
        return export_period(conn, label, bounds, tenant=tenant)


def short(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(user, item, kind, count, seconds, quantity, amount, description) of each
    line but the per-user category totals."""
    return [(x["user"], x["item"], x["kind"], x["count"], x["seconds"], x["quantity"],
             x["amount"], x["description"]) for x in lines
            if x["item"] != "total" or x["kind"] == ""]


def calls_of_the_month(db: Database) -> None:
    call(db, "bob", "op1", T, 61)                       # the operator's: no wholesale
    call(db, "bob@acme", "a1", T + 100, 61)
    call(db, "bob@beta", "b1", T + 200, 90)
    call(db, "carol@beta", "b2", T + 300, 30, number="4420777")     # no rate anywhere
    call(db, "dave@gamma", "g1", T + 400, 60)          # gamma: no wholesale table


def test_calls_are_rated_retail_and_wholesale(db: Database, world: dict[str, int]) -> None:
    calls_of_the_month(db)
    assert cdrs(db) == {
        world["bob"]: (120, 6000, None),          # 61 s at 60/60
        # retail 60/6: 66 s at 0.10 + 0.05; wholesale 60/60: 120 s at 0.06
        world["acme:bob"]: (66, 1600, 1200),
        # retail 120 s, the free minute off: 60 s at 0.20; wholesale 90 s at 0.09, no free
        world["beta:bob"]: (120, 2000, 1350),
        world["beta:carol"]: (0, 0, None),
        world["gamma:dave"]: (60, 3000, None)}


def test_operator_export_adds_each_tenants_bill_after_its_own_lines(
        db: Database, world: dict[str, int]) -> None:
    call(db, "bob", "op1", T, 61)
    before = export(db, "2026-11")
    calls_of_the_month(db)
    lines = export(db, "2026-11")
    assert lines[:len(before)] == before             # the operator's lines as they were
    assert {x["user"] for x in before} == {"bob"}
    assert short(lines[len(before):]) == [
        ("tenant:acme", "wholesale", "call", 1, 61, 0, 1200, ""),
        ("tenant:acme", "total", "", 0, 0, 0, 1200, "wholesale total"),
        ("tenant:beta", "wholesale", "call", 1, 90, 0, 1350, ""),
        ("tenant:beta", "wholesale", "unrated", 1, 30, 0, 0, "calls not rated wholesale"),
        ("tenant:beta", "total", "", 0, 0, 0, 1350, "wholesale total"),
        ("tenant:gamma", "wholesale", "unrated", 1, 60, 0, 0, "calls not rated wholesale"),
        ("tenant:gamma", "total", "", 0, 0, 0, 0, "wholesale total")]


def test_tenant_export_has_its_customers_retail_and_wholesale_lines(
        db: Database, world: dict[str, int]) -> None:
    calls_of_the_month(db)
    assert short(export(db, "2026-11", "beta")) == [
        ("bob", "usage", "", 1, 90, 0, 0, ""),           # named as beta names them
        ("bob", "calls", "call", 1, 90, 120, 2000, ""),
        ("bob", "wholesale", "call", 1, 90, 0, 1350, ""),
        ("bob", "total", "", 0, 0, 0, 2000, ""),          # retail only: wholesale is apart
        ("carol", "usage", "", 1, 30, 0, 0, ""),
        ("carol", "calls", "call", 1, 30, 0, 0, ""),
        ("carol", "wholesale", "unrated", 1, 30, 0, 0, "calls not rated wholesale"),
        ("carol", "total", "", 0, 0, 0, 0, "")]
    acme = export(db, "2026-11", "acme")
    assert [x["amount"] for x in acme if x["item"] == "total"] \
        == [0, 0, 1600, 0, 0, 1600, 0, 1600]              # fees … debited, due, total
    with db.reader.connect() as conn, pytest.raises(tenant_store.NoSuchTenant):
        export_period(conn, "2026-11", bounds, tenant="nobody")


def test_closed_month_is_frozen_for_tenants_and_late_calls_are_adjustments(
        db: Database, world: dict[str, int]) -> None:
    calls_of_the_month(db)
    operator, acme = export(db, "2026-11"), export(db, "2026-11", "acme")
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-11", bounds, now=DEC + 60)
    call(db, "bob@acme", "a2", T + 1000, 120)            # a late Stop of a November call
    with db.writer.begin() as conn:
        tenant_store.set_wholesale_rate_table(conn, "acme", None)
    assert export(db, "2026-11") == operator
    assert export(db, "2026-11", "acme") == acme
    # rated (retail 0.05 + 120 s at 0.10; wholesale 120 s at 0.06) before the table went
    assert short(export(db, "2026-12", "acme")) == [
        ("bob", "calls", "call", 1, 120, 120, 2500, "adjustment for 2026-11"),
        ("bob", "usage", "", 0, 120, 0, 0, "adjustment for 2026-11"),
        ("bob", "wholesale", "call", 1, 120, 0, 1200, "adjustment for 2026-11"),
        ("bob", "total", "", 0, 0, 0, 2500, "")]
    assert short(export(db, "2026-12"))[-2:] == [
        ("tenant:acme", "wholesale", "call", 1, 120, 0, 1200, "adjustment for 2026-11"),
        ("tenant:acme", "total", "", 0, 0, 0, 1200, "wholesale total")]
    call(db, "bob@acme", "a3", DEC + 100, 60)            # December, no wholesale table now
    with db.reader.connect() as conn:
        assert conn.execute(select(calls.c.cost, calls.c.wholesale_cost)
                            .order_by(calls.c.started_at.desc())).first() == (1500, None)


def test_import_names_a_tenants_user_by_the_tenant_column(
        db: Database, world: dict[str, int]) -> None:
    text = ("id,user,amount,date,tenant\n"
            "x1,bob,5.00,2026-11-05,acme\n"
            "x2,bob,2.00,2026-11-05,\n")
    lines = billing.parse_import(text, BERLIN)
    with db.writer.begin() as conn:
        assert billing.import_charges(conn, lines, T).imported == 2
    with db.reader.connect() as conn:
        owners = dict(conn.execute(select(charges.c.ref, charges.c.user_id)).all())
    assert owners == {"import:acme/x1": world["acme:bob"], "import:x2": world["bob"]}
    assert [(x["user"], x["amount"]) for x in export(db, "2026-11", "acme")
            if x["item"] == "charge"] == [("bob", 50000)]
    assert [(x["user"], x["amount"]) for x in export(db, "2026-11")
            if x["item"] == "charge"] == [("bob", 20000)]
    for bad, message in (("y1,bob,1.00,2026-11-05,nowhere\n", "line 2: no tenant 'nowhere'"),
                         ("y2,zed,1.00,2026-11-05,acme\n",
                          "line 2: no user 'zed' of tenant 'acme'")):
        with db.writer.begin() as conn, pytest.raises(billing.ImportProblem) as e:
            billing.import_charges(conn, billing.parse_import(
                "id,user,amount,date,tenant\n" + bad, BERLIN), T)
        assert str(e.value) == message


def charge(x_id: str, user: str, amount: str, tenant: str | None = None) -> billing.ImportLine:
    return billing.charge_line(1, {"id": x_id, "user": user, "amount": amount, "date": "",
                                   "tenant": tenant or ""}, BERLIN, default_at=T)


def test_each_tenant_has_its_own_charge_ids(db: Database, world: dict[str, int]) -> None:
    """One id in the operator's, acme's and beta's namespace: three charges. A
    tenant's id sent by the import and by the API (post_charge) is billed
    once; the API finds only the tenant's own users."""
    text = ("id,user,amount,date,tenant\n"
            "r1,bob,5.00,2026-11-10T12:00:00Z,acme\n"
            "r1,bob,2.00,2026-11-10T12:00:00Z,\n")
    with db.writer.begin() as conn:
        assert billing.import_charges(conn, billing.parse_import(text, BERLIN), T).imported == 2
        assert billing.post_charge(conn, charge("r1", "bob", "5.00", "acme"), T, dated=False,
                                   tenant=world["acme"]) is False      # the import's
        assert billing.post_charge(conn, charge("r1", "bob", "2.00"), T, dated=False) is False
        assert billing.post_charge(conn, charge("r1", "bob", "7.00", "beta"), T, dated=False,
                                   tenant=world["beta"]) is True
        with pytest.raises(billing.ChargeConflict) as e:
            billing.post_charge(conn, charge("r1", "bob", "6.00", "acme"), T, dated=False,
                                tenant=world["acme"])
        assert e.value.ref == "import:acme/r1"
        for name in ("dave", "nobody"):     # gamma's user, and no one's: the same
            with pytest.raises(user_store.NoSuchUser):
                billing.post_charge(conn, charge("r2", name, "1.00", "acme"), T, dated=False,
                                    tenant=world["acme"])
        # The operator's id "acme/r1" is stored as acme's r1 is: another user's, refused.
        with pytest.raises(billing.ChargeConflict):
            billing.post_charge(conn, charge("acme/r1", "bob", "5.00"), T, dated=False)
        assert billing.import_charges(conn, billing.parse_import(text, BERLIN), T).present == 2
    with db.reader.connect() as conn:
        owners = dict(conn.execute(select(charges.c.ref, charges.c.user_id)).all())
        assert owners == {"import:acme/r1": world["acme:bob"], "import:r1": world["bob"],
                          "import:beta/r1": world["beta:bob"]}
        listed = {t: [(x["ref"], x["user"], x["amount"]) for x in billing.charge_list(
            conn, user=None, period_start=None, taxes=(), tenant=world.get(t))]
            for t in ("acme", "beta", "gamma")}
        assert listed == {"acme": [("import:acme/r1", "bob", "5.00")],
                          "beta": [("import:beta/r1", "bob", "7.00")], "gamma": []}
        assert [x["ref"] for x in billing.charge_list(
            conn, user="bob", period_start=None, taxes=(), tenant=world["beta"])] \
            == ["import:beta/r1"]
        assert billing.charge_list(conn, user="carol", period_start=None, taxes=(),
                                   tenant=world["acme"]) == []
        assert sorted(x["ref"] for x in billing.charge_list(
            conn, user=None, period_start=None, taxes=())) \
            == ["import:acme/r1", "import:beta/r1", "import:r1"]     # the operator's: all


def test_a_tenants_charge_ids_count_its_name(db: Database, world: dict[str, int]) -> None:
    longest = "x" * (billing.MAX_ID - len("acme/"))
    assert charge(longest, "bob", "1.00", "acme").ref == "import:acme/" + longest
    with pytest.raises(billing.ImportProblem) as e:
        charge(longest + "x", "bob", "1.00", "acme")
    assert e.value.message == "id must be 1-115 printable characters " \
        "(tenant acme's ids count 'acme/')"
    assert charge(longest + "xxxxx", "bob", "1.00").ref == "import:" + longest + "xxxxx"


def test_listed_taxes_follow_the_users_own_exemption(
        db: Database, world: dict[str, int]) -> None:
    """Exemptions are by user: the operator's exempt bob does not exempt acme's."""
    vat = Tax("VAT", percent=Fraction(20))
    with db.writer.begin() as conn:
        conn.execute(update(users).where(users.c.id == world["bob"]).values(tax_exempt="VAT"))
        billing.post_charge(conn, charge("t1", "bob", "10.00", "acme"), T, dated=False,
                            tenant=world["acme"])
        billing.post_charge(conn, charge("t1", "bob", "10.00"), T, dated=False)
    with db.reader.connect() as conn:
        lines = billing.charge_list(conn, user=None, period_start=None, taxes=[vat])
    assert [(x["ref"], x["kind"]) for x in lines] == [
        ("import:acme/t1", "import"), ("tax:import:acme/t1:VAT", "tax"), ("import:t1", "import")]


def test_wholesale_table_must_be_the_operators(db: Database, world: dict[str, int]) -> None:
    with db.writer.begin() as conn:
        for table in ("acme/retail", "missing"):
            with pytest.raises(tenant_store.NoSuchRateTable):
                tenant_store.set_wholesale_rate_table(conn, "beta", table)
        with pytest.raises(tenant_store.NoSuchTenant):
            tenant_store.set_wholesale_rate_table(conn, "nobody", "wh")
    with db.reader.connect() as conn:
        assert tenant_store.get_tenant(conn, "beta").wholesale_rate_table == "wh2"


def test_a_month_closed_before_tenant_exports_adds_no_adjustment(
        db: Database, world: dict[str, int]) -> None:
    """A month closed before migration 0019 stored every user's lines (tenants'
    customers too, by the names in the rows) and no wholesale: upgrading must
    not turn its calls into adjustments, and its tenant exports are empty."""
    calls_of_the_month(db)
    start, end = bounds("2026-11")
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-11", bounds, now=DEC + 60)
        old = billing.export_lines(conn, label="2026-11", start=start, end=end,
                                   tenant=billing.EVERYONE).lines
        assert {x["user"] for x in old} == {"bob", "bob@acme", "bob@beta", "carol@beta",
                                            "dave@gamma"}
        assert all(x["item"] != "wholesale" for x in old)
        conn.execute(update(closed_periods).values(
            lines=json.dumps(old, separators=(",", ":")), tenant_lines=None))
    assert export(db, "2026-11", "acme") == []
    assert export(db, "2026-12") == export(db, "2026-12", "acme") == []


def session(db: Database, name: str, sid: str, start: int, seconds: int, in_octets: int,
            out_octets: int) -> None:
    """A session of usage (the world's plans have rate tables: it is an unrated
    call too, which has no wholesale cost)."""
    records = [acct_record(status, at_, totals, user_name=name, acct_session_id=sid,
                           nas_key="192.0.2.9", client="bras", nas_address="192.0.2.9",
                           terminate_cause="User-Request" if status is Status.STOP else None)
               for status, at_, totals in (
                   (Status.START, start, Totals(0, 0, 0)),
                   (Status.STOP, start + seconds, Totals(seconds, in_octets, out_octets)))]
    with db.writer.begin() as conn:
        record_accounting(conn, records, period=PeriodSpec("monthly"), tz=BERLIN,
                          now=start + seconds)


def usage_prices(db: Database, name: str, hour: int | None, gb: int | None) -> None:
    with db.writer.begin() as conn:
        tenant_store.set_wholesale_usage(conn, name, UsagePrices(hour, gb))


def wusage(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(user, count, seconds, in, out, amount, description) of the wholesale usage lines."""
    return [(x["user"], x["count"], x["seconds"], x["in_octets"], x["out_octets"],
             x["amount"], x["description"]) for x in lines
            if x["item"] == "wholesale" and x["kind"] == "usage"]


ACME_PRICES = "usage at 1.0000 per hour, 0.5000 per GB"


def usage_of_the_month(db: Database) -> None:
    """acme: 1 h 30 min and 1.5 GB (bob), 1 s and 1 octet (a second bob session);
    beta: 20 min, 2 GB out (carol); the operator's bob and gamma's dave too."""
    usage_prices(db, "acme", 10_000, 5_000)      # 1.00 per hour, 0.50 per GB
    usage_prices(db, "beta", None, 1)            # 0.0001 per GB only
    session(db, "bob@acme", "d1", T, 5400, 10**9, 5 * 10**8)
    session(db, "bob@acme", "d2", T + 9000, 1, 1, 0)
    session(db, "carol@beta", "d3", T + 100, 1200, 0, 2 * 10**9)
    session(db, "bob", "d4", T, 3600, 10**9, 10**9)
    session(db, "dave@gamma", "d5", T, 3600, 10**9, 10**9)


def test_usage_is_billed_wholesale_at_the_tenants_prices(
        db: Database, world: dict[str, int]) -> None:
    usage_of_the_month(db)
    with db.reader.connect() as conn:
        acme = tenant_store.get_tenant(conn, "acme")
    assert (acme.wholesale_hour_money, acme.wholesale_gb_money) == (10_000, 5_000)
    lines = export(db, "2026-11")
    # 5401 s: 1.500277… h = 15002.77…; 1.500000001 GB × 0.50 = 7500.000…: 22502.78 → 22503
    assert wusage(lines) == [
        ("tenant:acme", 1, 5401, 10**9 + 1, 5 * 10**8, 22503, ACME_PRICES),
        ("tenant:beta", 1, 1200, 0, 2 * 10**9, 2, "usage at - per hour, 0.0001 per GB")]
    assert short(lines)[-8:] == [
        ("tenant:acme", "wholesale", "unrated", 2, 5401, 0, 0, "calls not rated wholesale"),
        ("tenant:acme", "wholesale", "usage", 1, 5401, 0, 22503, ACME_PRICES),
        ("tenant:acme", "total", "", 0, 0, 0, 22503, "wholesale total"),
        ("tenant:beta", "wholesale", "unrated", 1, 1200, 0, 0, "calls not rated wholesale"),
        ("tenant:beta", "wholesale", "usage", 1, 1200, 0, 2,
         "usage at - per hour, 0.0001 per GB"),
        ("tenant:beta", "total", "", 0, 0, 0, 2, "wholesale total"),
        ("tenant:gamma", "wholesale", "unrated", 1, 3600, 0, 0, "calls not rated wholesale"),
        ("tenant:gamma", "total", "", 0, 0, 0, 0, "wholesale total")]   # gamma: no prices
    acme_lines = export(db, "2026-11", "acme")
    # per customer: bob's two sessions are one usage row, one line, rounded once
    assert wusage(acme_lines) == [("bob", 1, 5401, 10**9 + 1, 5 * 10**8, 22503, ACME_PRICES)]
    assert [x["amount"] for x in acme_lines if x["item"] == "total"][-1] == 0   # not retail
    assert wusage(export(db, "2026-11", "gamma")) == []


def test_wholesale_usage_total_counts_calls_and_usage(
        db: Database, world: dict[str, int]) -> None:
    calls_of_the_month(db)                       # acme: one call, 1200 wholesale, 61 s of usage
    before = export(db, "2026-11")
    usage_prices(db, "acme", 36_000, None)       # 3.60 per hour: 61 s = 610
    after = export(db, "2026-11")
    assert [x for x in after if x["user"] != "tenant:acme"] \
        == [x for x in before if x["user"] != "tenant:acme"]      # nothing else changes
    acme = [x for x in short(export(db, "2026-11")) if x[0] == "tenant:acme"]
    assert acme == [
        ("tenant:acme", "wholesale", "call", 1, 61, 0, 1200, ""),
        ("tenant:acme", "wholesale", "usage", 1, 61, 0, 610,
         "usage at 3.6000 per hour, - per GB"),
        ("tenant:acme", "total", "", 0, 0, 0, 1810, "wholesale total")]
    with db.writer.begin() as conn:
        tenant_store.set_wholesale_usage(conn, "acme", UsagePrices(None, None))
        assert tenant_store.wholesale_usage_prices(conn) == {}
    assert [x[2] for x in short(export(db, "2026-11")) if x[0] == "tenant:acme"] \
        == ["call", ""]
    with db.writer.begin() as conn, pytest.raises(tenant_store.NoSuchTenant):
        tenant_store.set_wholesale_usage(conn, "nobody", UsagePrices(1, 1))


def test_closed_month_usage_is_frozen_and_late_usage_is_an_adjustment_at_its_prices(
        db: Database, world: dict[str, int]) -> None:
    usage_of_the_month(db)
    operator, acme = export(db, "2026-11"), export(db, "2026-11", "acme")
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-11", bounds, now=DEC + 60)
    usage_prices(db, "acme", 20_000, None)       # new prices: December's, not November's
    assert export(db, "2026-11") == operator
    assert export(db, "2026-11", "acme") == acme
    assert wusage(export(db, "2026-12")) == []   # a price change alone adjusts nothing
    # a late Stop of a November session: 1 h more, 10^9 octets more, at November's
    # prices: 5401 + 3600 s, 2.500000001 GB → 25002.77… + 12500.0… = 37503; 22503 reported
    session(db, "bob@acme", "d6", T + 20_000, 3600, 6 * 10**8, 4 * 10**8)
    adjustment = ("bob", 0, 3600, 6 * 10**8, 4 * 10**8, 15000, "adjustment for 2026-11")
    assert wusage(export(db, "2026-12", "acme")) == [adjustment]
    assert wusage(export(db, "2026-12")) == [("tenant:acme", *adjustment[1:])]
    assert short(export(db, "2026-12"))[-1] \
        == ("tenant:acme", "total", "", 0, 0, 0, 15000, "wholesale total")
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-12", bounds, now=at(2027, 1, 1) + 60)
    # reported once: nothing left for January; a later late Stop adds only itself
    assert wusage(export(db, "2027-01")) == []
    session(db, "bob@acme", "d7", T + 30_000, 1, 0, 0)
    assert wusage(export(db, "2027-01", "acme")) == [
        # 9002 s and 2.500000001 GB: 37505.56 → 37506, 3 more than reported so far
        ("bob", 0, 1, 0, 0, 3, "adjustment for 2026-11")]


def test_late_usage_of_a_month_closed_without_prices_is_not_billed_wholesale(
        db: Database, world: dict[str, int]) -> None:
    session(db, "bob@acme", "d1", T, 3600, 0, 0)
    with db.writer.begin() as conn:
        assert close_period(conn, "2026-11", bounds, now=DEC + 60)
    usage_prices(db, "acme", 10_000, None)       # set in December
    session(db, "bob@acme", "d2", T + 5000, 3600, 0, 0)
    assert wusage(export(db, "2026-12")) == wusage(export(db, "2026-12", "acme")) == []
    assert "usage" in [x["item"] for x in export(db, "2026-12", "acme")]   # retail: late
    session(db, "bob@acme", "d3", DEC + 100, 1800, 0, 0)   # December's own: priced
    assert wusage(export(db, "2026-12", "acme")) == [
        ("bob", 1, 1800, 0, 0, 5000, "usage at 1.0000 per hour, - per GB")]
