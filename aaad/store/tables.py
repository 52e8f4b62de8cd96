"""The schema, as SQLAlchemy Core tables with a constraint naming convention.

Times are integer POSIX seconds (``*_at`` columns): exact, the same on SQLite,
PostgreSQL and MariaDB, and cheap to compare. Counters are 64-bit integers.
Alembic migrations in ``aaad/migrations/`` create exactly these tables; a test
compares the two.

Per-user state and history are keyed by ``users.id`` (``user_id``), never by
the name (migration 0004): a deleted user's rows stay as history under its
id, and a new user with the same name gets a new id and starts clean. Ids are
never reused (SQLite ``AUTOINCREMENT``; PostgreSQL sequences and MariaDB's
``AUTO_INCREMENT``, persisted since 10.2.4, never go back). Rows keep
``user_name``, the name they were written under, so history reads without a
join to a user who may be gone. A ``users`` row with ``account`` false is the holder of a name that
accounting (or the store) saw without an account: it owns that name's usage
until an account takes the name, and can never log in.
"""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
                        false,
                        text,
                        true,
)

__all__ = ["metadata", "tenants", "users", "sessions", "usage", "usage_bands", "plans", "blocks",
           "charges",
           "events", "balances", "ledger", "vouchers", "rates", "rate_tables", "calls",
           "free_minutes", "api_tokens", "idempotency_keys", "NAMING_CONVENTION"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# RFC 2865 allows 253 octets of User-Name; decoded text may be longer when
# undecodable octets are escaped, so leave room.
NAME_LEN = 320

# Tenants (resellers, migration 0016): each owns users, plans, rate tables and
# vouchers, and optionally NAS clients (config). The operator's own objects
# have tenant_id 0, which no row here has (ids start at 1): a NOT NULL key
# keeps (name, tenant_id) unique on every database, where NULLs never collide.
tenants = Table(
    "tenants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Lowercase, DNS-like: also the realm of user@realm (core.accounting.realms).
    Column("name", String(64), nullable=False, unique=True),
    Column("description", String(255), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Migration 0019: the operator's rate table this tenant's customers' calls
    # are also rated at, for the reseller's bill (NULL: no wholesale rating).
    Column("wholesale_rate_table", String(64), nullable=True),
    # Migration 0021: money per hour of session time and per GB (10^9 octets,
    # in + out) of its customers' usage, for the reseller's bill (NULL: none).
    Column("wholesale_hour_money", BigInteger, nullable=True),
    Column("wholesale_gb_money", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Unique per tenant among the rows that exist: an account, or the
    # no-account holder of a name (``account`` false). Deleting removes the row.
    Column("name", String(NAME_LEN), nullable=False),
    # The tenant that owns the user (migration 0016); 0 = the operator. No
    # index of its own: one on tenant_id alone (nearly every user the
    # operator's) tempts PostgreSQL to scan it for the owner lookup of new
    # sessions, which the unique key below answers by (name, tenant_id).
    Column("tenant_id", Integer, nullable=False, server_default=text("0")),
    # At most one of the three credentials is set: an argon2id hash (PAP
    # only), the cleartext (PAP, CHAP, MS-CHAP) or the NT hash (migration
    # 0022: MD4 of the UTF-16LE password, 32 lower-case hex digits; PAP and
    # MS-CHAP). None: no password (no login).
    Column("password_hash", String(255), nullable=True),
    Column("password_cleartext", String(255), nullable=True),
    Column("password_nt_hash", String(32), nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("plan", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("account", Boolean, nullable=False, server_default=true()),
    # Plan fees (migration 0005): when the current plan was assigned (the
    # anchor of its fee cycles), and the next fee instant not billed yet.
    Column("plan_since", BigInteger, nullable=True),
    Column("next_fee_at", BigInteger, nullable=True, index=True),
    # Taxes the user does not pay (migration 0008): names, comma-separated.
    Column("tax_exempt", String(255), nullable=True),
    # Migration 0009: prepaid users pay every charge from their balance; one
    # that the balance cannot pay is due and suspends them until a top-up.
    Column("billing", String(8), nullable=False, server_default=text("'postpaid'")),
    Column("suspended_at", BigInteger, nullable=True, index=True),
    # Free credit (migration 0012): the next renewal not granted yet (the
    # assignment first), NULL when the plan grants none.
    Column("next_free_at", BigInteger, nullable=True, index=True),
    # Migration 0011: a suspension by hand (aaad user suspend), apart from the
    # one for non-payment: no top-up lifts it, only aaad user resume.
    Column("held_at", BigInteger, nullable=True),
    Column("held_reason", String(255), nullable=True),
    # Migration 0017: the account credited a share of this one's charges of
    # each closed month (core/billing/affiliate.py), and the share in percent.
    Column("affiliate_id", Integer, nullable=True),
    Column("affiliate_percent", String(16), nullable=True),
    # Migration 0023: the user's own reply attributes (core.quotas.reply),
    # canonical JSON [[name, value], ...] in name order; NULL: none.
    Column("reply_attributes", Text, nullable=True),
    # Migration 0024: hotspot tickets (core/quotas/tickets.py). The batch a
    # ticket was made in (NULL: an ordinary user), its validity from the first
    # login and when that was, and the instant it stops logging in: a fixed
    # end, which the first login lowers to first_login_at + valid_s if sooner.
    Column("ticket_batch", String(32), nullable=True, index=True),
    Column("valid_s", BigInteger, nullable=True),
    Column("first_login_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True, index=True),
    # Name first: a lookup by name alone (any tenant) still uses the index.
    UniqueConstraint("name", "tenant_id"),
    sqlite_autoincrement=True,
)

sessions = Table(
    "sessions", metadata,
    Column("id", String(32), primary_key=True),    # accounting.sessions.session_key
    # The User-Name the NAS sent (part of the session key, and what a
    # Disconnect-Request names).
    Column("user_name", String(NAME_LEN), nullable=False),
    # The user the session belongs to: the holder of the name when the
    # session began, for the session's whole life. Set in the transaction
    # that creates the row (NULL only inside it).
    Column("user_id", Integer, nullable=True),
    Column("nas_key", String(320), nullable=False),
    Column("client", String(64), nullable=False),
    Column("nas_address", String(45), nullable=False),
    Column("acct_session_id", String(320), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("packets", Integer, nullable=False, server_default=text("0")),
    Column("started_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
    Column("terminate_cause", String(32), nullable=True),
    Column("session_s", BigInteger, nullable=False, server_default=text("0")),
    Column("in_octets", BigInteger, nullable=False, server_default=text("0")),
    Column("out_octets", BigInteger, nullable=False, server_default=text("0")),
    Column("framed_ip", String(45), nullable=True),
    Column("calling_station_id", String(128), nullable=True),
    Column("called_station_id", String(128), nullable=True),
    Column("nas_port", BigInteger, nullable=True),
    Column("nas_port_id", String(128), nullable=True),
    Column("interim_interval_s", Integer, nullable=True),
    # Calls: "in" or "out" (telephony.direction), for concurrent-call limits.
    Column("direction", String(8), nullable=True),
    # Migration 0016: where the session's user is looked up when the row is
    # created (core.accounting.realms.route): the tenant, and the name within
    # it when that is not user_name (a realm stripped off).
    Column("tenant_id", Integer, nullable=False, server_default=text("0")),
    Column("login", String(NAME_LEN), nullable=True),
    # Migration 0023: the throttle attributes of an ``over_limit: throttle``
    # plan were sent (CoA) or the session began throttled.
    Column("throttled", Boolean, nullable=False, server_default=false()),
    # Migration 0026: the call time (s) the session's Access-Accept allowed
    # (a SIP proxy's call, through the Call-ID); a client without interims
    # has its call closed after it (accounting_batch.sweep_stale).
    Column("authorised_s", BigInteger, nullable=True),
    Index("ix_sessions_user_id_active", "user_id", "active"),
    Index("ix_sessions_nas_key_active", "nas_key", "active"),
    # Migration 0027: ``active`` alone (was with last_seen, which every
    # Interim-Update changes): what the stale sweep reads it by.
    Index("ix_sessions_active", "active"),
)

usage = Table(
    "usage_counters", metadata,
    Column("user_id", Integer, primary_key=True),
    Column("period_start", BigInteger, primary_key=True),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("session_s", BigInteger, nullable=False),
    Column("in_octets", BigInteger, nullable=False),
    Column("out_octets", BigInteger, nullable=False),
    # What counts against the plan's caps: usage weighted by band (0 = free).
    Column("counted_s", BigInteger, nullable=False, server_default=text("0")),
    Column("counted_in_octets", BigInteger, nullable=False, server_default=text("0")),
    Column("counted_out_octets", BigInteger, nullable=False, server_default=text("0")),
)

usage_bands = Table(
    "usage_bands", metadata,
    Column("user_id", Integer, primary_key=True),
    Column("period_start", BigInteger, primary_key=True),
    Column("band", String(64), primary_key=True),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("session_s", BigInteger, nullable=False),
    Column("in_octets", BigInteger, nullable=False),
    Column("out_octets", BigInteger, nullable=False),
)

plans = Table(
    "plans", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # A tenant's plan is stored as "<tenant>/<name>" (migration 0016), so a
    # user's ``plan`` names one plan whichever tenant owns it.
    Column("name", String(64), nullable=False, unique=True),
    Column("tenant_id", Integer, nullable=False, server_default=text("0"), index=True),
    # The plan as canonical JSON of exact integers (seconds, octets, money in
    # 1/10,000 units, weights as fractions): see aaad.core.quotas.plan.
    Column("definition", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # When the plan got its current fee terms: no earlier cycle is billed.
    Column("fee_since", BigInteger, nullable=True),
)

blocks = Table(
    "blocks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("seconds_total", BigInteger, nullable=False),
    Column("seconds_used", BigInteger, nullable=False, server_default=text("0")),
    Column("purchased_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("ref", String(128), nullable=False, unique=True),
    Index("ix_blocks_user_id_expires_at", "user_id", "expires_at"),
)

charges = Table(
    "charges", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("kind", String(32), nullable=False),         # overage, block, ...
    Column("ref", String(128), nullable=False, unique=True),   # makes replays charge once
    Column("period_start", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),       # 1/10,000 of the currency unit
    Column("quantity", BigInteger, nullable=False, server_default=text("0")),
    Column("description", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # What of amount a prepaid user's balance has paid (migration 0009).
    Column("paid", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_charges_user_id_period_start", "user_id", "period_start"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),         # disconnect, rollover, block_expired, ...
    # An audit log: the name as it was, no user id (nothing decides on it).
    Column("user_name", String(NAME_LEN), nullable=True),
    Column("session_id", String(32), nullable=True),
    Column("result", String(32), nullable=False),
    Column("detail", String(255), nullable=False, server_default=text("''")),
    # The tenant of the user or session (0: the operator's), for a tenant's
    # feed: the name alone does not say whose (0020).
    Column("tenant_id", Integer, nullable=False, server_default=text("0")),
    Index("ix_events_at", "at"),
    Index("ix_events_tenant_id_id", "tenant_id", "id"),
)


# -- prepaid credit and telephony (0003) -----------------------------------------

balances = Table(
    "balances", metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("balance", BigInteger, nullable=False, server_default=text("0")),   # 1/10,000 units
    # How far below zero the balance may go (postpaid); 0 = prepaid only.
    Column("credit_limit", BigInteger, nullable=False, server_default=text("0")),
    # A promised payment (migration 0010): credit until it expires or top-ups pay it.
    Column("promise_amount", BigInteger, nullable=False, server_default=text("0")),
    Column("promise_expires_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    # Free credit left in the balance (migration 0012): debits take from it
    # first; renewals expire or carry it (core/billing/allowance.py).
    Column("free_credit", BigInteger, nullable=False, server_default=text("0")),
)

# Every change of a balance is one row here, once per ``ref`` (topup:REF,
# voucher:ID, call:SESSION, reverse:REF): replays and re-runs never post twice.
ledger = Table(
    "ledger", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("kind", String(32), nullable=False),         # topup, voucher, call, reversal, ...
    Column("ref", String(160), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),       # signed, 1/10,000 units
    Column("description", String(255), nullable=False, server_default=text("''")),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_user_id_created_at", "user_id", "created_at"),
)

vouchers = Table(
    "vouchers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # SHA-256 of the normalised code: a copy of the database redeems nothing.
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("hint", String(8), nullable=False),          # the code's last characters
    Column("value", BigInteger, nullable=False),        # 1/10,000 units
    Column("batch", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # Who redeemed it, by name, as an audit record; the money it moved is the
    # ledger row voucher:<id>, which carries the user id.
    Column("redeemed_by", String(NAME_LEN), nullable=True),
    Column("redeemed_at", BigInteger, nullable=True),
    # Migration 0016: only users of this tenant (0 = the operator's) redeem it.
    Column("tenant_id", Integer, nullable=False, server_default=text("0")),
)

rate_tables = Table(
    "rate_tables", metadata,
    Column("name", String(64), primary_key=True),
    Column("version", Integer, nullable=False),         # bumped by every import
    Column("rates", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Migration 0016: a tenant's table is named "<tenant>/<name>", like its plans.
    Column("tenant_id", Integer, nullable=False, server_default=text("0")),
)

rates = Table(
    "rates", metadata,
    Column("rate_table", String(64), primary_key=True),
    Column("prefix", String(32), primary_key=True),
    Column("band", String(64), primary_key=True),       # '' = any time
    Column("description", String(128), nullable=False),
    Column("price", BigInteger, nullable=False),        # per unit, 1/10,000 units
    Column("connection_fee", BigInteger, nullable=False),
    Column("first_s", Integer, nullable=False),         # increment 60/6: first 60 s,
    Column("next_s", Integer, nullable=False),          # then per 6 s
    # Migration 0025: the price is per minute (min) or per second (s).
    Column("unit", String(8), nullable=False, server_default="min"),
)

# One CDR per rated call, keyed by the session: rated once, at Stop.
calls = Table(
    "calls", metadata,
    Column("session_id", String(32), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("caller", String(128), nullable=False),
    Column("destination", String(128), nullable=False),
    Column("prefix", String(32), nullable=True),
    Column("rate_table", String(64), nullable=True),
    Column("band", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_s", BigInteger, nullable=False),
    Column("billed_s", BigInteger, nullable=False),
    Column("free_s", BigInteger, nullable=False),
    Column("price", BigInteger, nullable=False),        # per minute, 1/10,000 units
    Column("connection_fee", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),         # 1/10,000 units
    Column("period_start", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # Migration 0019: the call at the tenant's wholesale table (1/10,000 units);
    # NULL when the user's tenant has none, or no rate of it matches.
    Column("wholesale_cost", BigInteger, nullable=True),
    # Migration 0025: the billed seconds per band ("peak:600,offpeak:600"; the
    # seconds used for an unrated call), the unit of ``price`` (min | s) and
    # why a call has no price (core.telephony.rating.UNRATED_REASONS); NULL in
    # CDRs stored before, and unit/unrated NULL as the case may be.
    Column("bands", Text, nullable=True),
    Column("unit", String(8), nullable=True),
    Column("unrated", String(32), nullable=True),
    # Migration 0026: "missed" for a call that never connected (an
    # Acct-Status-Type = Failed record: busy, no answer); NULL: answered.
    Column("disposition", String(16), nullable=True),
    Index("ix_calls_user_id_started_at", "user_id", "started_at"),
    Index("ix_calls_period_start", "period_start"),
)

# Free minutes used per plan period, and what rolled over into it.
free_minutes = Table(
    "free_minutes", metadata,
    Column("user_id", Integer, primary_key=True),
    Column("period_start", BigInteger, primary_key=True),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("used_s", BigInteger, nullable=False, server_default=text("0")),
    Column("carried_in_s", BigInteger, nullable=False, server_default=text("0")),
)

# Scheduled custom charges (migration 0006): "set and forget" charges on a
# user, once or every month, quarter or year from a local date, optionally
# until one. next_at is the next occurrence not billed yet (NULL: none left).
scheduled_charges = Table(
    "scheduled_charges", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("amount", BigInteger, nullable=False),      # signed, 1/10,000 units
    Column("description", String(255), nullable=False),
    Column("every", String(16), nullable=False),       # once | monthly | quarterly | yearly
    Column("start_date", String(10), nullable=False),  # local date, YYYY-MM-DD
    Column("until_date", String(10), nullable=True),   # inclusive
    Column("next_at", BigInteger, nullable=True, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled_at", BigInteger, nullable=True),
    Index("ix_scheduled_charges_user_id", "user_id"),
)

# Plan changes scheduled for a later instant (migration 0006); done_at is set
# when the change was made, cancelled_at when it was called off.
plan_changes = Table(
    "plan_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, nullable=False),
    Column("user_name", String(NAME_LEN), nullable=False),
    Column("plan", String(64), nullable=True),         # NULL: remove the plan
    Column("at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("done_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Index("ix_plan_changes_at", "at"),
    Index("ix_plan_changes_user_id", "user_id"),
)

# Closed billing periods (migration 0007): a closed month's export is frozen
# here, as it was at closing; anything of that month that arrives later goes
# to the first open month's export as an adjustment line (store/billing.py).
closed_periods = Table(
    "closed_periods", metadata,
    Column("label", String(7), primary_key=True),      # YYYY-MM
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("closed_at", BigInteger, nullable=False),
    Column("lines", Text, nullable=False),             # the export lines, JSON
    # Migration 0019: each tenant's export at closing, JSON {tenant: lines}.
    Column("tenant_lines", Text, nullable=True),
)


# API tokens (migration 0015): the SHA-256 of each token, never the token,
# which is shown once when it is made (store/tokens.py). A revoked token's
# row stays, name and all, as a record of who could do what when.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_sha256", String(64), nullable=False, unique=True),   # hex
    Column("tenant", String(64), nullable=True),        # NULL: not a tenant's (all)
    Column("scopes", String(64), nullable=False),       # "read,write", sorted
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)


# Idempotency keys of API writes (migration 0014): the first response to a
# key is kept, with a hash of the request, for a day (store/idempotency.py).
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("scope", String(64), primary_key=True),     # who sent it (the token's tenant)
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # sha256 hex of method, path, body
    Column("status", Integer, nullable=False),
    Column("response", Text, nullable=False),          # the JSON body sent
    Column("created_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)
