"""Bulk import of users (``aaad user import``): read and check a file, then write it.

Two formats, one user a line: CSV with a header line (``.csv``), or JSON Lines
(``.jsonl``, ``.ndjson``: one object a line). The fields are :data:`COLUMNS`;
only ``name`` and one credential are required.

A file is all or nothing. :func:`read_users` checks every line (pure, no
database) and :func:`import_users` checks the plans and the names against the
database before it writes a row; either raises :class:`ImportFailed` with the
problems found (line number and field, the first :data:`MAX_PROBLEMS` of
them). Then the users go in as multi-row INSERTs (``RETURNING`` their ids),
their balances and credit limits likewise, and each non-zero opening balance
as a ledger line ``opening:<user id>`` (kind ``opening``), all in the caller's
transaction: the statements per file grow with its size / :data:`CHUNK`, never
one per user. A name that already has an account is a problem (there is no
update mode: ``aaad user set`` changes users); a name that accounting saw
without an account gets the account, as :func:`aaad.store.users.add_user`
does, and its history stays with the old holder's id.

Users with a plan start it at the import (``plan_since``, ``next_fee_at`` and
``next_free_at`` = now, as ``add_user`` sets them), so the next billing turn
bills their setup fee and first cycle.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Integer,
    String,
    Table,
    TextClause,
    delete,
    insert,
    select,
    text,
)

from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.plan import parse_money
from aaad.store.sql import json_param
from aaad.store.tables import balances, ledger, plans, users
from aaad.store.tenants import SEPARATOR, tenant_names

__all__ = ["COLUMNS", "FORMATS", "MAX_PROBLEMS", "CHUNK", "OPENING_KIND", "OPENING_PREFIX",
           "Problem", "ImportFailed", "NewUser", "ImportResult", "Progress", "file_format",
           "read_users", "import_users"]

COLUMNS = ("name", "password", "password_hash", "nt_hash", "plan", "billing", "balance",
           "credit_limit", "enabled", "tax_exempt")
SECRET_FIELDS = frozenset({"password", "password_hash", "nt_hash"})
"""Fields whose value no message shows."""
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_PROBLEMS = 20           # problems reported; all are counted
CHUNK = 2000                # rows per INSERT (users: 15 columns, inside every bind limit)
OPENING_KIND = "opening"
OPENING_PREFIX = "opening:"     # ledger ref opening:<user id>: posted once per user
MAX_MONEY = 10**15          # as aaad.cli.common.MAX_MONEY
MAX_NAME_OCTETS = 253       # RFC 2865 §5.1
MAX_PASSWORD_OCTETS = 128   # RFC 2865 §5.2
MAX_PLAN = 64               # plans.name
MAX_TAX_EXEMPT = 255        # users.tax_exempt
PROGRESS_EVERY = 10_000     # rows between progress calls

# An argon2id PHC string as argon2-cffi writes it (and aaad.credentials checks at login).
_ARGON2ID = re.compile(r"^\$argon2id\$v=19\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}"
                       r"\$[A-Za-z0-9+/]{8,}\$[A-Za-z0-9+/]{16,}$")
# An NT hash (RFC 2759 §8.3): 32 hex digits, stored in lower case.
_NT_HASH = re.compile(r"^[0-9a-fA-F]{32}$")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})

Progress = Callable[[str, int], None]
"""Called with a phase (``read``, ``check``, ``write``, ``balances``, ``ledger``) and the
rows done in it so far."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the file is refused: its line (1 = the first), field and what is wrong."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: " + (f"{self.field}: " if self.field else "") + self.message


class ImportFailed(ValueError):
    """The file is refused; nothing was written (or the caller's transaction rolls it back)."""

    def __init__(self, problems: Sequence[Problem], count: int | None = None) -> None:
        self.problems = list(problems)[:MAX_PROBLEMS]
        self.count = len(problems) if count is None else count
        more = f" (and {self.count - len(self.problems)} more)" \
            if self.count > len(self.problems) else ""
        super().__init__("; ".join(str(p) for p in self.problems[:3]) + more)


@dataclass(frozen=True, slots=True)
class NewUser:
    """One checked line: a user to add. Money in 1/10,000 units."""

    line: int
    name: str
    password_cleartext: str | None
    password_hash: str | None
    plan: str | None
    billing: str = "postpaid"
    balance: int = 0
    credit_limit: int = 0
    enabled: bool = True
    tax_exempt: str | None = None       # names, sorted, comma-separated
    password_nt_hash: str | None = None  # 32 lower-case hex digits

    def __repr__(self) -> str:
        return f"NewUser(line={self.line}, name={self.name!r}, plan={self.plan!r})"


@dataclass(frozen=True, slots=True)
class ImportResult:
    users: int
    balances: int           # users given a balance row (a balance or a credit limit)
    opening_lines: int      # ledger lines of opening balances
    holders_replaced: int   # names accounting had seen without an account


def file_format(path: str) -> str | None:
    """``csv`` or ``jsonl`` by the file name's ending; None for any other."""
    lower = path.lower()
    return next((fmt for ext, fmt in FORMATS.items() if lower.endswith(ext)), None)


def read_users(lines: Iterable[str], fmt: str, *, taxes: Collection[str] = (),
               progress: Progress | None = None) -> list[NewUser]:
    """Read and check a whole file: its lines as read from a file opened with
    ``newline=""``. ``taxes``: the configured tax names ``tax_exempt`` may name.

    Raises:
        ImportFailed: any bad line, a name twice, a bad CSV header.
    """
    problems = _Problems()
    out: list[NewUser] = []
    first: dict[str, int] = {}
    known = frozenset(taxes)
    for n, raw in (_csv_rows(lines) if fmt == "csv" else _jsonl_rows(lines)):
        try:
            if isinstance(raw, Problem):
                raise _Bad(raw.field, raw.message)
            user = _user(n, raw, known)
        except _Bad as e:
            problems.add(n, e.field, e.message)
            continue
        if user.name in first:
            problems.add(n, "name", f"{user.name!r} appears twice in the file "
                         f"(first on line {first[user.name]})")
            continue
        first[user.name] = n
        out.append(user)
        if progress is not None and len(out) % PROGRESS_EVERY == 0:
            progress("read", len(out))
    problems.raise_any()
    if progress is not None:
        progress("read", len(out))
    return out


def import_users(conn: Connection, new: Sequence[NewUser], *, now: int,
                 progress: Progress | None = None, tenant: int = OPERATOR) -> ImportResult:
    """Add the users read by :func:`read_users` as ``tenant``'s (0: the
    operator's; names are unique per tenant). A plan is the tenant's own of
    that name, else the operator's (store.plans.plan_for_user's rule). The
    caller owns the transaction: on :class:`ImportFailed` (raised before
    anything is written) or any database error, it rolls back and nothing is
    imported.

    Raises:
        ImportFailed: a plan that does not exist, a name that has an account
            (or, on MariaDB, names that its collation takes for one).
    """
    problems = _Problems()
    new = _stored_plans(conn, new, tenant, problems)
    if conn.dialect.name in ("mysql", "mariadb"):
        _same_to_mariadb(new, problems)
    holders = _existing(conn, new, problems, progress, tenant)
    problems.raise_any()
    for part in _chunks(holders):
        # As add_user: the holder's usage stays under its id; the account starts clean.
        conn.execute(delete(users).where(users.c.id.in_(part)))
    pg = conn.dialect.name == "postgresql"
    ids: dict[str, int] = {}
    for part in _chunks(new):
        rows = [_user_row(u, now, tenant) for u in part]
        found = (conn.execute(_PG_USERS, {"rows": json_param(rows)}) if pg
                 else conn.execute(insert(users).returning(users.c.id, users.c.name), rows))
        ids.update((r.name, r.id) for r in found)
        if progress is not None:
            progress("write", len(ids))
    funded = [u for u in new if u.balance or u.credit_limit]
    for n, part in enumerate(_chunks(funded), 1):
        _insert(conn, balances, [
            {"user_id": ids[u.name], "user_name": u.name, "balance": u.balance,
             "credit_limit": u.credit_limit, "updated_at": now} for u in part])
        if progress is not None:
            progress("balances", min(n * CHUNK, len(funded)))
    opening = [u for u in funded if u.balance]
    for n, part in enumerate(_chunks(opening), 1):
        _insert(conn, ledger, [
            {"user_id": ids[u.name], "user_name": u.name, "kind": OPENING_KIND,
             "ref": f"{OPENING_PREFIX}{ids[u.name]}", "amount": u.balance,
             "description": "opening balance (user import)", "created_at": now}
            for u in part])
        if progress is not None:
            progress("ledger", min(n * CHUNK, len(opening)))
    return ImportResult(len(ids), len(funded), len(opening), len(holders))


# -- reading ----------------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class _Problems:
    """Problems found so far: the first MAX_PROBLEMS kept, all counted."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.count = 0

    def add(self, line: int, field: str | None, message: str) -> None:
        self.count += 1
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(Problem(line, field, message))

    def raise_any(self) -> None:
        if self.count:
            raise ImportFailed(sorted(self.kept, key=lambda p: p.line), self.count)


def _csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    reader = csv.reader(iter(lines), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFailed([Problem(1, None, "the file is empty; expected a header line "
                                        "such as name,password,plan")])
        columns = [h.strip().lower() for h in header]
        bad = [Problem(1, None, f"unknown column {c!r} (columns: {', '.join(COLUMNS)})")
               for c in columns if c not in COLUMNS]
        bad += [Problem(1, None, f"column {c!r} appears twice")
                for c in sorted(set(columns)) if columns.count(c) > 1]
        if "name" not in columns:
            bad.append(Problem(1, None, "missing column 'name'"))
        if not {"password", "password_hash", "nt_hash"} & set(columns):
            bad.append(Problem(1, None, "missing column 'password', 'password_hash' or "
                               "'nt_hash'"))
        if bad:
            raise ImportFailed(bad)
        width = len(columns)
        for fields in reader:
            n = reader.line_num
            if len(fields) != width:
                if not any(f.strip() for f in fields):
                    continue                    # a blank line
                hint = (" (quote a field that holds a comma, such as an argon2 hash)"
                        if len(fields) > width else "")
                yield n, Problem(n, None, f"expected {width} fields, got {len(fields)}{hint}")
                continue
            yield n, {c: f for c, f in zip(columns, fields, strict=True) if f != ""}
    except csv.Error as e:
        raise ImportFailed([Problem(reader.line_num, None, f"not valid CSV: {e}")]) from None


def _jsonl_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_float=Decimal)
        except ValueError as e:
            yield n, Problem(n, None, f"not valid JSON: {e}")
            continue
        if not isinstance(obj, dict):
            yield n, Problem(n, None, "expected a JSON object such as "
                             '{"name": "alice", "password": "…"}')
            continue
        unknown = sorted(k for k in obj if k not in COLUMNS)
        if unknown:
            yield n, Problem(n, unknown[0], f"unknown field (fields: {', '.join(COLUMNS)})")
            continue
        yield n, {k: v for k, v in obj.items() if v is not None}


def _user(n: int, f: dict[str, Any], taxes: frozenset[str]) -> NewUser:
    name = _text(f, "name")
    if name is None:
        raise _Bad("name", "missing")
    if len(name.encode("utf-8")) > MAX_NAME_OCTETS:
        raise _Bad("name", f"longer than {MAX_NAME_OCTETS} octets (RFC 2865 §5.1)")
    if name != name.strip() or not name.isprintable():
        raise _Bad("name", f"{name!r} has spaces at an end or control characters")
    password, hashed = _text(f, "password"), _text(f, "password_hash")
    nt_hash = _text(f, "nt_hash")
    if sum(x is not None for x in (password, hashed, nt_hash)) != 1:
        raise _Bad("password", "give exactly one of password, password_hash and nt_hash")
    if password is not None and len(password.encode("utf-8")) > MAX_PASSWORD_OCTETS:
        raise _Bad("password", f"longer than {MAX_PASSWORD_OCTETS} octets (RFC 2865 §5.2)")
    if hashed is not None and not _ARGON2ID.match(hashed):
        raise _Bad("password_hash", "not an argon2id hash ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
    if nt_hash is not None and not _NT_HASH.match(nt_hash):
        raise _Bad("nt_hash", "not an NT hash (32 hex digits, MD4 of the UTF-16LE password)")
    plan = _text(f, "plan")
    if plan is not None and len(plan) > MAX_PLAN:
        raise _Bad("plan", f"longer than {MAX_PLAN} characters")
    billing = _text(f, "billing") or "postpaid"
    if billing not in ("prepaid", "postpaid"):
        raise _Bad("billing", f"must be prepaid or postpaid, got {billing!r}")
    balance = _money(f, "balance", signed=True)
    credit_limit = _money(f, "credit_limit", signed=False)
    return NewUser(n, name, password, hashed, plan, billing, balance, credit_limit,
                   _flag(f), _exempt(f, taxes),
                   None if nt_hash is None else nt_hash.lower())


def _text(f: dict[str, Any], field: str) -> str | None:
    value = f.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        # Never a password's value in a message.
        shown = "" if field in SECRET_FIELDS else " " + json.dumps(value, default=str)
        raise _Bad(field, f"expected text, got {type(value).__name__}{shown}")
    return value or None


def _money(f: dict[str, Any], field: str, *, signed: bool) -> int:
    value = f.get(field)
    if value is None:
        return 0
    shown = value
    if isinstance(value, Decimal):      # a JSON number, read exactly
        value = format(value, "f")
    try:
        amount = parse_money(value, signed=signed)
    except ValueError:
        example = "12.50 or -3.20" if signed else "12.50"
        raise _Bad(field, f"must be a decimal with at most 4 places such as {example}, "
                   f"got {shown!r}") from None
    if abs(amount) >= MAX_MONEY:
        raise _Bad(field, "too large")
    return amount


def _flag(f: dict[str, Any]) -> bool:
    value = f.get("enabled", True)
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Bad("enabled", f"must be true or false (yes/no, 1/0), got {value!r}")


def _exempt(f: dict[str, Any], taxes: frozenset[str]) -> str | None:
    value = f.get("tax_exempt")
    if value is None:
        return None
    if isinstance(value, str):
        names = [x.strip() for x in value.split(",")]
    elif isinstance(value, list) and all(isinstance(x, str) for x in value):
        names = [x.strip() for x in value]
    else:
        raise _Bad("tax_exempt", "expected tax names: a list, or comma-separated text")
    wanted = sorted({x for x in names if x})
    for x in wanted:
        if x not in taxes:
            known = f" (taxes: {', '.join(sorted(taxes))})" if taxes else " (it has none)"
            raise _Bad("tax_exempt", f"no tax {x!r} in the configuration{known}")
    text = ",".join(wanted) or None
    if text is not None and len(text) > MAX_TAX_EXEMPT:
        raise _Bad("tax_exempt", f"longer than {MAX_TAX_EXEMPT} characters")
    return text


# -- writing ----------------------------------------------------------------------


def _stored_plans(conn: Connection, new: Sequence[NewUser], tenant: int,
                  problems: _Problems) -> list[NewUser]:
    """The users with their plans' stored names (a tenant's ``gold`` is
    ``acme/gold`` if acme has one, else the operator's ``gold``)."""
    owners = dict(conn.execute(select(plans.c.name, plans.c.tenant_id)
                               .where(plans.c.tenant_id.in_({tenant, OPERATOR}))).all())
    prefix = ""
    if tenant != OPERATOR:
        prefix = tenant_names(conn, {tenant}).get(tenant, "") + SEPARATOR
    out = []
    for u in new:
        if u.plan is not None:
            own = prefix + u.plan if prefix else None
            if own is not None and owners.get(own) == tenant:
                u = dataclasses.replace(u, plan=own)
            elif owners.get(u.plan) != OPERATOR:
                problems.add(u.line, "plan", f"no plan {u.plan!r} (see 'aaad plan list')")
        out.append(u)
    return out


def _user_row(u: NewUser, now: int, tenant: int) -> dict[str, Any]:
    since = now if u.plan is not None else None
    return {"name": u.name, "tenant_id": tenant, "password_hash": u.password_hash,
            "password_cleartext": u.password_cleartext,
            "password_nt_hash": u.password_nt_hash, "enabled": u.enabled, "plan": u.plan,
            "created_at": now, "updated_at": now, "account": True, "plan_since": since,
            "next_fee_at": since, "next_free_at": since, "tax_exempt": u.tax_exempt,
            "billing": u.billing}


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT: on PostgreSQL the rows travel as one JSON parameter
    (SQLAlchemy's multi-row VALUES costs five times the CPU there)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_INSERTS[table.name], {"rows": json_param(rows)})
    else:
        conn.execute(insert(table), rows)


def _pg_insert(table: Table, columns: Sequence[str], returning: str = "") -> TextClause:
    types = ", ".join(f"{c} {_PG_TYPES[type(table.c[c].type)]}" for c in columns)
    return text(f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {', '.join(columns)} "
                f"FROM json_to_recordset(CAST(:rows AS json)) AS v({types}){returning}")


_PG_TYPES = {String: "varchar", BigInteger: "bigint", Integer: "integer", Boolean: "boolean"}
_PG_USERS = _pg_insert(users, ("name", "tenant_id", "password_hash", "password_cleartext",
                               "password_nt_hash", "enabled", "plan", "created_at",
                               "updated_at", "account", "plan_since", "next_fee_at",
                               "next_free_at", "tax_exempt", "billing"),
                       " RETURNING id, name")
_PG_INSERTS = {
    "balances": _pg_insert(balances, ("user_id", "user_name", "balance", "credit_limit",
                                      "updated_at")),
    "ledger": _pg_insert(ledger, ("user_id", "user_name", "kind", "ref", "amount",
                                  "description", "created_at"))}


def _existing(conn: Connection, new: Sequence[NewUser], problems: _Problems,
              progress: Progress | None, tenant: int) -> list[int]:
    """Report the names that have an account in ``tenant``; return the ids of
    no-account holders of the others there (accounting saw the name), which
    the accounts replace."""
    holders: list[int] = []
    done = 0
    for part in _chunks(new):
        by_name = {u.name: u for u in part}
        folded: dict[str, NewUser] | None = None
        for r in conn.execute(select(users.c.id, users.c.name, users.c.account)
                              .where(users.c.name.in_(list(by_name)),
                                     users.c.tenant_id == tenant)):
            u = by_name.get(r.name)
            if u is None:
                # MariaDB's collation matched a name spelled otherwise.
                if folded is None:
                    folded = {_fold(x.name): x for x in part}
                u = folded.get(_fold(r.name))
            if not r.account:
                holders.append(r.id)
            elif u is not None:
                same = "" if r.name == u.name else f" (as {r.name!r}, the same to the database)"
                problems.add(u.line, "name", f"user {u.name!r} exists{same}; nothing is "
                             "updated by an import ('aaad user set' changes users)")
            else:
                problems.add(part[0].line, "name", f"user {r.name!r} exists and the "
                             "database takes a name of lines "
                             f"{part[0].line}-{part[-1].line} for it")
        done += len(part)
        if progress is not None:
            progress("check", done)
    return holders


def _same_to_mariadb(new: Sequence[NewUser], problems: _Problems) -> None:
    """Names that differ only in case or trailing spaces: one name to MariaDB."""
    first: dict[str, NewUser] = {}
    for u in new:
        key = _fold(u.name)
        other = first.setdefault(key, u)
        if other is not u:
            problems.add(u.line, "name", f"{u.name!r} is the same name as {other.name!r} "
                         f"(line {other.line}) to MariaDB, which ignores case")


def _fold(name: str) -> str:
    return name.casefold().rstrip(" ")


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]
