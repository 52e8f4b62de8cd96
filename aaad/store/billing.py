"""Charges in and out: the CSV import of external charges and the monthly export.

Import (``aaad charges import``): one charge per CSV line, stored in ``charges``
with ref ``import:<id>`` (``import:<tenant>/<id>`` for a line of a tenant's
user: each tenant's ids are its own), so a line is imported once however
often the file is loaded; the API's charges share these refs. A file is all
or nothing: :func:`parse_import` checks every line before anything is
written and :func:`import_charges` checks users and earlier
imports inside the caller's transaction; the first problem raises
:class:`ImportProblem` with its line number.

Export (``aaad charges export``): per-user lines for one calendar month in the
configured time zone, from ``usage_counters`` (periods starting in the month),
``calls`` (started in the month) and ``charges`` (periods starting in the
month; charges of the lifetime period by the time they were made), with what
the balance paid of each charge (:func:`paid_from_balance`, from the ledger).
Amounts stay integers in 1/10,000 units here; :func:`money4` renders them.
Lines are per user id, named as the rows were written: a deleted user's usage
shows under the name it had, apart from a new user of the same name. Taxes,
adjustments and the per-user totals are store.closing's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, or_, select

from aaad.core.accounting.periods import LIFETIME_START
from aaad.core.accounting.realms import OPERATOR
from aaad.core.billing.taxes import Tax, tax_lines, tax_ref
from aaad.core.billing.wholesale_usage import UsagePrices, describe, usage_amount
from aaad.core.quotas.plan import format_money, parse_money
from aaad.store.ledger import PAY_PREFIX, list_charges, settle
from aaad.store.sql import insert_ignore
from aaad.store.tables import calls, charges, ledger, usage, users
from aaad.store.tenants import qualify, tenant_ids, tenant_names, wholesale_usage_prices
from aaad.store.users import NoSuchUser, exempt_names, user_filter, user_ids

__all__ = ["IMPORT_COLUMNS", "REQUIRED_COLUMNS", "EXPORT_COLUMNS", "ImportLine", "ImportProblem",
           "ImportResult", "Export", "parse_import", "import_charges", "export_lines",
           "paid_from_balance", "money4", "charge_line", "post_charge", "ChargeConflict",
           "charge_list", "wholesale_lines", "wholesale_usage_lines", "WHOLESALE",
           "WHOLESALE_USAGE", "TENANT_PREFIX", "EVERYONE"]

IMPORT_COLUMNS = ("id", "user", "kind", "amount", "quantity", "description", "date", "tenant")
REQUIRED_COLUMNS = ("id", "user", "amount", "date")
DEFAULT_KIND = "import"
REF_PREFIX = "import:"
LEGACY_API_PREFIX = "api:"     # charges the API posted before it used REF_PREFIX
MAX_ID = 120            # charges.ref is 128 characters, "import:" included; a
                        # tenant's ids count its "<tenant>/" too
MAX_DESCRIPTION = 255
MAX_AMOUNT = 10**15         # 100 billion units: far inside 64 bits
EXPORT_COLUMNS = ("period", "user", "item", "kind", "ref", "count", "seconds", "in_octets",
                  "out_octets", "quantity", "amount", "description")
_CHUNK = 500


class ImportProblem(ValueError):
    """A line that makes the whole file unacceptable."""

    def __init__(self, line: int, message: str, field: str | None = None) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message
        self.field = field          # the column at fault, when one is


@dataclass(frozen=True, slots=True)
class ImportLine:
    line: int
    id: str
    user: str
    kind: str
    amount: int         # signed, 1/10,000 units
    quantity: int
    description: str
    at: int             # POSIX seconds; stored as the charge's period_start
    tenant: str | None = None   # the user is this tenant's customer; None: the operator's

    @property
    def ref(self) -> str:
        """``import:<id>``, or ``import:<tenant>/<id>`` for a tenant's line."""
        return REF_PREFIX + qualify(self.tenant, self.id)


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int
    present: int


def parse_import(text: str, tz: ZoneInfo) -> list[ImportLine]:
    """Parse and check a whole charges CSV (header line first).

    Raises:
        ImportProblem: the first bad line, numbered from 1 (the header).
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportProblem(1, "the file is empty; expected a header line "
                                + ",".join(IMPORT_COLUMNS))
        columns = [h.strip().lower() for h in header]
        for name in columns:
            if name not in IMPORT_COLUMNS:
                raise ImportProblem(1, f"unknown column {name!r} (columns: "
                                    f"{', '.join(IMPORT_COLUMNS)})")
            if columns.count(name) > 1:
                raise ImportProblem(1, f"column {name!r} appears twice")
        for name in REQUIRED_COLUMNS:
            if name not in columns:
                raise ImportProblem(1, f"missing column {name!r}")
        out: list[ImportLine] = []
        seen: dict[str, int] = {}       # ref -> line: one id per tenant
        for fields in reader:
            n = reader.line_num
            if not any(f.strip() for f in fields):
                continue                        # blank line
            if len(fields) != len(columns):
                raise ImportProblem(n, f"expected {len(columns)} fields, got {len(fields)}")
            item = _line(n, dict(zip(columns, fields, strict=False)), tz)
            if item.ref in seen:
                raise ImportProblem(n, f"id {item.id!r} appears twice in the file "
                                    f"(first on line {seen[item.ref]})")
            seen[item.ref] = n
            out.append(item)
    except csv.Error as e:
        raise ImportProblem(reader.line_num, f"not valid CSV: {e}") from None
    return out


def import_charges(conn: Connection, lines: Sequence[ImportLine], now: int) -> ImportResult:
    """Store the lines not imported before. The caller owns the transaction.

    Raises:
        ImportProblem: a line's user does not exist, or its id was imported
            before with other values.
    """
    tids = tenant_ids(conn) if any(x.tenant is not None for x in lines) else {}
    for x in lines:
        if x.tenant is not None and x.tenant not in tids:
            raise ImportProblem(x.line, f"no tenant {x.tenant!r}", "tenant")
    known: dict[tuple[str | None, str], int] = {}
    for t in sorted({x.tenant for x in lines}, key=lambda t: t or ""):
        names = sorted({x.user for x in lines if x.tenant == t})
        for part in _chunks(names):
            known.update(((t, n), i) for n, i in user_ids(
                conn, part, tenant=OPERATOR if t is None else tids[t]).items())
    accounts: set[int] = set()
    for part in _chunks(sorted(set(known.values()))):
        accounts.update(conn.execute(select(users.c.id).where(
            and_(users.c.id.in_(part), users.c.account.is_(True)))).scalars())
    for x in lines:
        if known.get((x.tenant, x.user)) not in accounts:
            raise ImportProblem(x.line, f"no user {x.user!r}" + (
                f" of tenant {x.tenant!r}" if x.tenant is not None else ""))
    existing = _existing(conn, lines)
    new = []
    for x in lines:
        old = existing.get(x.ref)
        if old is None:
            new.append(x)
        elif not _same(old, x, dated=True) or old.user_id != known[(x.tenant, x.user)]:
            raise ImportProblem(x.line, f"id {x.id!r} was imported before with other values")
    for part in _chunks(new):
        conn.execute(insert_ignore(conn, charges), [
            {"user_id": known[(x.tenant, x.user)], "user_name": x.user, "kind": x.kind,
             "ref": x.ref, "period_start": x.at,
             "amount": x.amount, "quantity": x.quantity, "description": x.description,
             "created_at": now} for x in part])
    for key in sorted({(x.tenant or "", x.user, known[(x.tenant, x.user)]) for x in new}):
        settle(conn, key[2], key[1], now)   # prepaid users pay them now, or owe them
    return ImportResult(imported=len(new), present=len(lines) - len(new))


class ChargeConflict(Exception):
    """A charge id recorded before with other values."""

    def __init__(self, charge_id: str, ref: str) -> None:
        super().__init__(charge_id)
        self.id, self.ref = charge_id, ref


def post_charge(conn: Connection, line: ImportLine, now: int, *, dated: bool,
                tenant: int = OPERATOR) -> bool:
    """Record one charge (the API's) in the import's id namespace: False if its
    id was recorded before (imported, or posted by the API) with the same user,
    kind, amount, quantity, description and, when ``dated``, date. The user
    is ``tenant``'s (``line.tenant`` names it, for the ref). The caller owns
    the transaction; a prepaid user's balance pays it now, or it is due.

    Raises:
        store.users.NoSuchUser: no such account of ``tenant``.
        ChargeConflict: the id was recorded before with other values.
    """
    uid = user_ids(conn, [line.user], tenant=tenant).get(line.user)
    old = _existing(conn, [line]).get(line.ref)
    if old is not None:
        # Another user of the name (an operator's id "acme/r1" is tenant
        # acme's "r1") is other values too.
        if not _same(old, line, dated=dated) or (uid is not None and old.user_id != uid):
            raise ChargeConflict(line.id, old.ref)
        return False
    if uid is None or not conn.execute(select(users.c.account).where(users.c.id == uid)).scalar():
        raise NoSuchUser(line.user)
    conn.execute(insert_ignore(conn, charges), [
        {"user_id": uid, "user_name": line.user, "kind": line.kind, "ref": line.ref,
         "period_start": line.at, "amount": line.amount, "quantity": line.quantity,
         "description": line.description, "created_at": now}])
    settle(conn, uid, line.user, now)
    return True


def charge_list(conn: Connection, *, user: str | None, period_start: int | None,
                taxes: Sequence[Tax], tenant: int | None = None) -> list[dict[str, Any]]:
    """Charges as listed (``aaad charges list``, ``GET /v1/charges``): amounts as
    exact decimals, each charge followed by its taxes as the export computes
    them (one line per tax). With ``tenant``: only its users' charges, and
    ``user`` is its user of the name; without, every charge (``user`` is the
    operator's)."""
    if tenant is None:
        rows = list_charges(conn, user=user, period_start=period_start)
    else:
        stmt = select(charges).where(charges.c.user_id.in_(
            select(users.c.id).where(users.c.tenant_id == tenant)))
        if user is not None:
            stmt = stmt.where(user_filter(conn, charges, user, tenant=tenant))
        if period_start is not None:
            stmt = stmt.where(charges.c.period_start == period_start)
        rows = [dict(r._mapping) for r in conn.execute(
            stmt.order_by(charges.c.created_at, charges.c.id))]
    exempt = _exemptions(conn) if taxes else {}
    out: list[dict[str, Any]] = []
    for r in rows:
        line = {"ref": r["ref"], "user": r["user_name"], "kind": r["kind"],
                "period_start": _iso(r["period_start"]), "amount": format_money(r["amount"]),
                "quantity": r["quantity"], "description": r["description"],
                "created_at": _iso(r["created_at"])}
        out.append(line)
        out.extend({**line, "ref": tax_ref(r["ref"], x.tax), "kind": "tax",
                    "amount": format_money(x.amount), "quantity": 0,
                    "description": f"{x.tax} on {r['ref']}"}
                   for x in tax_lines(r["amount"], r["kind"], taxes,
                                      exempt.get(r["user_id"], frozenset())))
    return out


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _exemptions(conn: Connection) -> dict[int, frozenset[str]]:
    """User id → the taxes it does not pay (by id: tenants' users share names)."""
    return {r.id: frozenset(exempt_names(r.tax_exempt)) for r in conn.execute(
        select(users.c.id, users.c.tax_exempt).where(users.c.tax_exempt.is_not(None)))}


def _existing(conn: Connection, lines: Sequence[ImportLine]) -> dict[str, Any]:
    """A line's ref → the charge row recorded under it, or, for the operator's
    lines, under the ``api:<id>`` that the API used before it shared the
    import's namespace (tenants' charges never had one)."""
    found: dict[str, Any] = {}
    legacy = {LEGACY_API_PREFIX + x.id: x.ref for x in lines if x.tenant is None}
    for part in _chunks([x.ref for x in lines] + sorted(legacy)):
        for r in conn.execute(select(charges).where(charges.c.ref.in_(part))):
            ref = legacy.get(r.ref, r.ref)
            if ref not in found or r.ref == ref:
                found[ref] = r
    return found


def _same(old: Any, x: ImportLine, *, dated: bool) -> bool:
    return ((old.user_name, old.kind, old.amount, old.quantity, old.description)
            == (x.user, x.kind, x.amount, x.quantity, x.description)
            and (not dated or old.period_start == x.at))


@dataclass(frozen=True, slots=True)
class Export:
    """A month's live export lines, one group per user (by name, then id), without
    totals, and what the balance paid of each charge in them (ref → 1/10,000
    units; a charge it paid nothing of is left out)."""

    groups: list[list[dict[str, Any]]]
    paid: dict[str, int]

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [x for g in self.groups for x in g]


def export_lines(conn: Connection, *, label: str, start: int, end: int,
                 tenant: int = OPERATOR,
                 usage_prices: Mapping[int, UsagePrices] | None = None) -> Export:
    """Per-user billing lines for ``[start, end)`` of ``tenant``'s users (0: the
    operator's), in a fixed order.

    Per user (by name, then id): ``usage`` (time and octets), ``calls``
    (count, seconds, billed seconds as quantity, cost), one ``charge`` line
    per charge (by kind, time, ref); a tenant's customer then has its
    ``wholesale`` lines (:func:`wholesale_lines`). The operator's export ends
    with the reseller's bills: per tenant, a group of user ``tenant:<name>``
    with its customers' wholesale lines summed. Amounts are integers in
    1/10,000 units. The totals are store.closing's, once the adjustments and
    taxes are in.

    ``usage_prices``: tenant id → the wholesale usage prices to price the
    month's usage at (:func:`wholesale_usage_lines`); None: those the tenants
    have now.
    """
    mine = _owned_by(tenant)
    everyone = tenant == EVERYONE
    out: dict[int, list[dict[str, Any]]] = {}
    named: dict[int, str] = {}

    def line(user_id: int, name: str, item: str, **values: Any) -> None:
        name = named.setdefault(user_id, name)
        row = {"period": label, "user": name, "item": item, "kind": "", "ref": "", "count": 0,
               "seconds": 0, "in_octets": 0, "out_octets": 0, "quantity": 0, "amount": 0,
               "description": ""}
        row.update(values)
        out.setdefault(user_id, []).append(row)

    for r in conn.execute(
            select(usage.c.user_id, func.max(usage.c.user_name), func.count(),
                   func.sum(usage.c.session_s), func.sum(usage.c.in_octets),
                   func.sum(usage.c.out_octets))
            .where(and_(usage.c.period_start >= start, usage.c.period_start < end,
                        mine(usage.c.user_id)))
            .group_by(usage.c.user_id)):
        line(r[0], r[1], "usage", count=int(r[2]), seconds=int(r[3]), in_octets=int(r[4]),
             out_octets=int(r[5]))
    for r in conn.execute(
            select(calls.c.user_id, func.max(calls.c.user_name), func.count(),
                   func.sum(calls.c.duration_s), func.sum(calls.c.billed_s),
                   func.sum(calls.c.cost))
            .where(and_(calls.c.started_at >= start, calls.c.started_at < end,
                        mine(calls.c.user_id)))
            .group_by(calls.c.user_id)):
        line(r[0], r[1], "calls", kind="call", count=int(r[2]), seconds=int(r[3]),
             quantity=int(r[4]), amount=int(r[5]))
    rows = conn.execute(select(charges).where(and_(mine(charges.c.user_id), or_(
        and_(charges.c.period_start >= start, charges.c.period_start < end),
        and_(charges.c.period_start == LIFETIME_START, charges.c.created_at >= start,
             charges.c.created_at < end))))).all()
    for r in sorted(rows, key=lambda r: (r.user_id, r.kind, r.period_start, r.created_at,
                                         r.ref)):
        line(r.user_id, r.user_name, "charge", kind=r.kind, ref=r.ref, count=1,
             quantity=r.quantity, amount=r.amount, description=r.description)
    resold: dict[str, list[dict[str, Any]]] = {}
    if usage_prices is None:
        usage_prices = wholesale_usage_prices(conn)
    resold_lines = [] if everyone else (
        wholesale_lines(conn, start=start, end=end, tenant=tenant)
        + wholesale_usage_lines(conn, start=start, end=end, tenant=tenant,
                                prices=usage_prices))
    for user_id, name, kind, w in resold_lines:
        if tenant not in (OPERATOR, EVERYONE):
            line(user_id, name, WHOLESALE, kind=kind, **w)
            continue
        total = resold.setdefault(name, [])       # name: the tenant's, for its bill
        for x in total:
            if x["kind"] == kind:
                for k in ("count", "seconds", "amount"):
                    x[k] += w[k]
                break
        else:
            total.append({"period": label, "user": TENANT_PREFIX + name, "item": WHOLESALE,
                          "kind": kind, "ref": "", "count": w["count"],
                          "seconds": w["seconds"], "in_octets": w.get("in_octets", 0),
                          "out_octets": w.get("out_octets", 0),
                          "quantity": 0, "amount": w["amount"],
                          "description": w["description"]})
    if tenant not in (OPERATOR, EVERYONE) and out:
        # Rows keep the User-Name as sent (bob@acme, routed by realm): a
        # tenant's bill names its customers as the tenant does.
        for part in _chunks(sorted(out)):
            for uid, name in conn.execute(select(users.c.id, users.c.name)
                                          .where(users.c.id.in_(part))):
                named[uid] = name
                for x in out[uid]:
                    x["user"] = name
    order = ("usage", "calls", "charge", WHOLESALE)
    groups = [sorted(out[u], key=lambda x: (order.index(x["item"]),
                                            x["kind"] if x["item"] == WHOLESALE else ""))
              for u in sorted(out, key=lambda u: (named[u], u))]
    groups += [sorted(resold[t], key=lambda x: x["kind"]) for t in sorted(resold)]
    return Export(groups, paid_from_balance(conn, rows))


WHOLESALE = "wholesale"
EVERYONE = -1
"""export_lines' tenant for every user's lines and no wholesale: what the export
was before tenants had their own (months closed before migration 0019)."""
TENANT_PREFIX = "tenant:"
WHOLESALE_UNRATED = "unrated"


def wholesale_lines(conn: Connection, *, start: int, end: int, tenant: int = OPERATOR
                    ) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The wholesale side of the calls started in ``[start, end)`` of tenants'
    customers (all tenants' for the operator, else ``tenant``'s), per user:
    ``(user id, name, kind, values)`` where the name is the user's for a
    tenant and the tenant's for the operator. Kind ``call``: the calls rated
    at the tenant's wholesale table (count, seconds, amount: their wholesale
    cost); kind ``unrated``: calls with no wholesale cost (the tenant had no
    wholesale table then, or no rate of it matched), amount 0."""
    owner = users.c.tenant_id if tenant == OPERATOR else None
    query = (select(calls.c.user_id, func.max(calls.c.user_name), users.c.tenant_id,
                    calls.c.wholesale_cost.is_(None), func.count(),
                    func.sum(calls.c.duration_s), func.sum(calls.c.wholesale_cost))
             .join(users, users.c.id == calls.c.user_id)
             .where(and_(calls.c.started_at >= start, calls.c.started_at < end,
                         users.c.tenant_id != OPERATOR if owner is not None
                         else users.c.tenant_id == tenant))
             .group_by(calls.c.user_id, users.c.tenant_id, calls.c.wholesale_cost.is_(None)))
    rows = conn.execute(query).all()
    names = tenant_names(conn, {int(r[2]) for r in rows}) if owner is not None else {}
    out = []
    for r in rows:
        unrated = bool(r[3])
        kind = WHOLESALE_UNRATED if unrated else "call"
        out.append((int(r[0]), names.get(int(r[2]), str(r[2])) if owner is not None else r[1],
                    kind, {"count": int(r[4]), "seconds": int(r[5]),
                           "amount": 0 if unrated else int(r[6]),
                           "description": "calls not rated wholesale" if unrated else ""}))
    return sorted(out, key=lambda x: (x[1], x[0], x[2]))


WHOLESALE_USAGE = "usage"


def wholesale_usage_lines(conn: Connection, *, start: int, end: int, prices: Mapping[
        int, UsagePrices], tenant: int = OPERATOR) -> list[tuple[int, str, str, dict[str, Any]]]:
    """The wholesale side of the usage rows of periods starting in ``[start, end)``
    (as the export's ``usage`` lines count them) of the customers of the tenants
    with ``prices``: kind ``usage``, count (rows), seconds, in and out octets and
    the amount (core.billing.wholesale_usage: rounded once per line), the prices
    in the description. The operator's: one per tenant, ``(tenant id, tenant
    name, …)``, priced on the tenant's sums; a tenant's: one per customer,
    ``(user id, name as the row has it, …)``, as :func:`wholesale_lines`."""
    wanted = sorted(t for t, p in prices.items() if p.any and tenant in (OPERATOR, t))
    if not wanted:
        return []
    key = users.c.tenant_id if tenant == OPERATOR else usage.c.user_id
    rows = conn.execute(
        select(key, users.c.tenant_id, func.max(usage.c.user_name), func.count(),
               func.sum(usage.c.session_s), func.sum(usage.c.in_octets),
               func.sum(usage.c.out_octets))
        .join(users, users.c.id == usage.c.user_id)
        .where(and_(usage.c.period_start >= start, usage.c.period_start < end,
                    users.c.tenant_id.in_(wanted)))
        .group_by(key, users.c.tenant_id)).all()
    names = tenant_names(conn, {int(r[1]) for r in rows}) if tenant == OPERATOR else {}
    out = []
    for r in rows:
        p = prices[int(r[1])]
        seconds, in_octets, out_octets = int(r[4]), int(r[5]), int(r[6])
        out.append((int(r[0]), names[int(r[1])] if tenant == OPERATOR else r[2],
                    WHOLESALE_USAGE, {
                        "count": int(r[3]), "seconds": seconds, "in_octets": in_octets,
                        "out_octets": out_octets,
                        "amount": usage_amount(seconds, in_octets + out_octets, p),
                        "description": describe(p)}))
    return sorted(out, key=lambda x: (x[1], x[0]))


def _owned_by(tenant: int) -> Any:
    """user id column → the condition that the user is ``tenant``'s. The
    operator's: every id that is not a tenant's user (a deleted user's rows
    stay the operator's, as the export always had them)."""
    theirs = select(users.c.id).where(users.c.tenant_id != OPERATOR)
    if tenant == EVERYONE:
        return lambda column: column.is_not(None)
    if tenant == OPERATOR:
        return lambda column: column.not_in(theirs)
    return lambda column: column.in_(select(users.c.id).where(users.c.tenant_id == tenant))


def paid_from_balance(conn: Connection, rows: Sequence[Any]) -> dict[str, int]:
    """What the balance paid of each charge (rows of ``charges``), by ref: the sum
    of its ledger debits ``pay:<ref>:<amount>`` (store.ledger.settle), negated.

    The ledger says it, not ``charges.paid``: that also counts as paid what was
    billed postpaid before a user became prepaid, and the charges before
    migration 0009, none of which the balance paid. Only charges with ``paid``
    set can have debits, and none is older than its charge, so the ledger is
    read by its (user, time) index from the oldest of them on.
    """
    payable = [r for r in rows if r.paid]
    if not payable:
        return {}
    wanted = {r.ref for r in payable}
    since = min(r.created_at for r in payable)
    out: dict[str, int] = {}
    for part in _chunks(sorted({r.user_id for r in payable})):
        for ref, amount in conn.execute(
                select(ledger.c.ref, ledger.c.amount).where(and_(
                    ledger.c.user_id.in_(part), ledger.c.kind == "charge",
                    ledger.c.created_at >= since))):
            # pay:<charge ref>:<charge amount then>; a charge ref may hold ':'.
            charge_ref = ref[len(PAY_PREFIX):].rpartition(":")[0]
            if ref.startswith(PAY_PREFIX) and charge_ref in wanted:
                out[charge_ref] = out.get(charge_ref, 0) - amount
    return out


def money4(amount: int) -> str:
    """12000 → ``"1.2000"``: exact, always 4 places."""
    return f"{Decimal(amount).scaleb(-4):.4f}"


# -- helpers ----------------------------------------------------------------------

def charge_line(n: int, f: dict[str, str], tz: ZoneInfo, *,
                default_at: int | None = None) -> ImportLine:
    """One charge from its text fields (a CSV line's, or the API's); ``date``
    may be left out when ``default_at`` is given.

    Raises:
        ImportProblem: with the field at fault.
    """
    return _line(n, f, tz, default_at=default_at)


def _line(n: int, f: dict[str, str], tz: ZoneInfo, *,
          default_at: int | None = None) -> ImportLine:
    ident = f["id"].strip()
    tenant = f.get("tenant", "").strip() or None
    most = MAX_ID - (0 if tenant is None else len(tenant) + 1)
    if not ident or len(ident) > most or not ident.isprintable():
        raise ImportProblem(n, f"id must be 1-{most} printable characters" + (
            "" if tenant is None else f" (tenant {tenant}'s ids count '{tenant}/')"), "id")
    user = f["user"].strip()
    if not user or len(user.encode("utf-8")) > 253:
        raise ImportProblem(n, "user must be a name of 1-253 octets", "user")
    kind = f.get("kind", "").strip() or DEFAULT_KIND
    if len(kind) > 32 or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in kind):
        raise ImportProblem(n, f"kind must be at most 32 letters, digits, '_' or '-', "
                            f"got {kind!r}", "kind")
    try:
        amount = parse_money(f["amount"], signed=True)
    except ValueError:
        raise ImportProblem(n, f"amount must be a decimal with at most 4 places such as "
                            f"12.50 or -3.20, got {f['amount']!r}", "amount") from None
    if abs(amount) >= MAX_AMOUNT:
        raise ImportProblem(n, "amount is too large", "amount")
    raw_q = f.get("quantity", "").strip() or "0"
    if not raw_q.isascii() or not raw_q.isdigit() or len(raw_q) > 18:
        raise ImportProblem(n, f"quantity must be a whole number ≥ 0, got {raw_q!r}",
                            "quantity")
    description = f.get("description", "")
    if len(description) > MAX_DESCRIPTION:
        raise ImportProblem(n, f"description is longer than {MAX_DESCRIPTION} characters",
                            "description")
    date_text = f.get("date", "").strip()
    at = default_at if default_at is not None and not date_text else _instant(n, date_text, tz)
    return ImportLine(n, ident, user, kind, amount, int(raw_q), description, at, tenant)


def _instant(n: int, text: str, tz: ZoneInfo) -> int:
    """``YYYY-MM-DD`` (local midnight) or an ISO 8601 time (local if it has no offset)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            at = datetime(d.year, d.month, d.day, tzinfo=tz)
        else:
            at = datetime.fromisoformat(text)
            if at.tzinfo is None:
                at = at.replace(tzinfo=tz)
    except ValueError:
        raise ImportProblem(n, f"date must be YYYY-MM-DD or an ISO 8601 time such as "
                            f"2026-03-05T14:00:00Z, got {text!r}", "date") from None
    if at.year < 2000:
        raise ImportProblem(n, f"date {text!r} is before 2000", "date")
    return int(at.timestamp())


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]
