"""The accounting batch: load → pure core → write, in one ``Connection``.

The caller opens the transaction (``with db.writer.begin() as conn``), so a
whole group-commit batch is one commit: its Accounting-Responses go out only
after that commit returns. Plans are applied here too: usage is weighted by
band, hour blocks are consumed, overage is charged, and sessions that crossed
a ``disconnect`` limit are returned to the caller, who sends the
Disconnect-Requests after the commit. What each rule decides lives in the
core (aaad.core.accounting, aaad.core.quotas.charging,
aaad.core.telephony.cdr); this module loads what they need and writes what
they decided.

Everything per user is keyed by the user id the session belongs to (the
holder of its User-Name when it began; see sessions.claim_sessions), read in
the statement that loads the sessions: no statement per record resolves a
name. A User-Name nobody holds gets a no-account holder the first time it is
seen, so its usage is still counted (and exported) as before, and an account
created later with that name starts clean.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from aaad.core.accounting.lifecycle import Action
from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.realms import OPERATOR, Route, needs_tenants, route
from aaad.core.accounting.sessions import (
    UNATTRIBUTED,
    ZERO,
    AcctRecord,
    Cause,
    SessionState,
    Status,
    Totals,
    apply_record,
)
from aaad.core.accounting.usage import UsagePart, split_usage_timed
from aaad.core.quotas.bands import weighted_usage
from aaad.core.quotas.charging import (
    acts_in_accounting,
    disconnect_verdict,
    overage_charge,
    usage_steps,
    use_blocks,
)
from aaad.core.quotas.decide import (
    Block,
    over_cap,
    seconds_beyond_cap,
)
from aaad.core.quotas.plan import Plan, format_money
from aaad.core.telephony.cdr import (
    FinishedCall,
    FreeMinutesLeft,
    build_cdr,
    call_pieces,
    over_credit,
    take_free,
    wholesale_cost,
)
from aaad.core.telephony.rate_table import RateTable
from aaad.core.telephony.rating import INBOUND, NO_CREDIT, OUTBOUND
from aaad.store import blocks as block_store
from aaad.store import calls as call_store
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import sessions as session_store
from aaad.store import tenants as tenant_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.jobs import throttle as throttle_store
from aaad.store.jobs.throttle import THROTTLE
from aaad.store.plans import load_plans, plan_from_json

__all__ = ["OverLimit", "BatchOutcome", "Unrated", "RatingTally", "record_accounting",
           "KnownPlan", "plan_known", "sweep_stale", "UTC_ZONE"]


_DEFAULT_RULES = CallRules()
# How long after its authorised call time a call of a client without interims
# waits for its Stop before aaad closes it at that time.
AUTHORISED_GRACE_S = 60
_NO_TENANTS: Mapping[str, str] = {}


UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class OverLimit:
    """A live session whose user crossed a limit of a ``disconnect`` plan, or
    one to throttle or restore (``over_limit: throttle``)."""

    user_name: str
    session_key: str
    acct_session_id: str
    client: str
    nas_address: str
    nas_key: str
    framed_ip: str | None
    reason: str
    message: str
    # What to do: "disconnect" (Disconnect-Request), "throttle" or
    # "unthrottle" (CoA-Request with ``attributes``; store/jobs/throttle.py).
    action: str = "disconnect"
    attributes: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Unrated:
    """A call stored with no price, and why (core.telephony.rating.UNRATED_REASONS)."""

    reason: str
    session_key: str
    user_name: str
    number: str
    duration_s: int


@dataclass
class RatingTally:
    """What rating finished calls did: money debited, calls priced, calls left unrated."""

    money: int = 0
    rated: int = 0
    unrated: list[Unrated] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What one accounting batch did, for metrics, logs and enforcement."""

    records: int
    added: Totals
    sessions_created: int
    sessions_closed_by_nas: int
    over_limit: tuple[OverLimit, ...] = ()
    charged_money: int = 0
    calls_rated: int = 0
    calls_unrated: tuple[Unrated, ...] = ()
    # Sessions created by this batch with no user to attribute them to (a
    # SIP proxy's record without User-Name whose Call-ID was never
    # authorised here): stored under UNATTRIBUTED, counted and logged.
    unattributed: tuple[str, ...] = ()
    calls_missed: int = 0
    calls_corrected: int = 0
    # The open sessions as this batch wrote them (where the statement that
    # loaded them read their plans: PostgreSQL), for a KnownSessions once
    # the batch is committed.
    saved: tuple[session_store.Known, ...] = ()
    # The operator's holders of the names of sessions this batch created.
    users: tuple[tuple[str, session_store.KnownUser], ...] = ()
    # Sessions a KnownSessions remembered wrongly (another writer changed
    # them): to be forgotten, unless ``saved`` has them again.
    forgotten: tuple[str, ...] = ()


@dataclass
class _Segment:
    added: Totals = ZERO
    created: int = 0
    over_limit: list[OverLimit] = field(default_factory=list)
    charged_money: int = 0
    calls_rated: int = 0
    calls_unrated: list[Unrated] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)
    calls_missed: int = 0
    calls_corrected: int = 0
    saved: list[session_store.Known] = field(default_factory=list)
    users: list[tuple[str, session_store.KnownUser]] = field(default_factory=list)


# SQLite writes a batch's known sessions one statement each; past this many
# records, the claim's one read and the executemany of the usual way cost
# less, and keeping the memory up to date costs more than it saves: such a
# batch is done the usual way, and its sessions are forgotten (accounting at
# window 64 ran at 0.91 of the rate without the memory).
SQLITE_KNOWN_RECORDS = 8


def _remembers(conn: Connection, records: int) -> bool:
    """Whether a batch of this many records uses and keeps the KnownSessions."""
    dialect = conn.dialect.name
    return dialect == "postgresql" or (dialect == "sqlite" and records <= SQLITE_KNOWN_RECORDS)


def record_accounting(conn: Connection, records: Sequence[AcctRecord], *,
                      period: PeriodSpec, tz: ZoneInfo, now: int | None = None,
                      calls: CallRules | None = None,
                      client_tenants: Mapping[str, str] | None = None,
                      known: session_store.KnownSessions | None = None) -> BatchOutcome:
    """Apply a batch of accounting records in arrival order.

    Accounting-On/Off split the batch: what came before them is applied
    first, then the NAS's open sessions are closed, then the rest. ``period``
    is the default for users without a plan; ``now`` (default: the newest
    record's arrival) dates charges, blocks and limit checks.
    ``client_tenants`` (client name → tenant name) routes the users of new
    sessions (core.accounting.realms.route).

    ``known`` (PostgreSQL, SQLite): the sessions this node wrote last and
    the users of their names. The records of known sessions, and of new
    sessions of known users, under plans that only count, are written
    without reading them first (session_store.save_known: on PostgreSQL one
    statement, one round trip, committed on its own; on SQLite a guarded
    write per session in this transaction); a session another writer
    changed meanwhile (or created, for a new one) is not written by it, and
    its records are done the usual way with the rest. The caller gives the
    outcome's ``saved`` and ``users`` to ``known`` once the transaction is
    committed.
    """
    tenancy = client_tenants or _NO_TENANTS
    count = len(records)
    total = _Segment()
    forgotten: tuple[str, ...] = ()
    if known is not None:
        done = _known_batch(conn, records, known, period, tz, tenancy)
        if done is not None:
            total, records, forgotten = done
        elif not _remembers(conn, len(records)):
            forgotten = tuple(rec.key for rec in records)   # what it knew goes stale
    if now is None:
        now = max((r.arrival for r in records), default=0)
    rules = calls if calls is not None else _DEFAULT_RULES
    closed = 0
    segment: list[AcctRecord] = []
    for rec in records:
        if rec.status in (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF):
            _merge(total, _apply_sessions(conn, segment, period, tz, now, rules, tenancy))
            segment = []
            closing = (session_store.nas_session_ids(conn, rec.nas_key, rec.at)
                       if _any_call_plan(conn) else [])
            closed += session_store.close_nas_sessions(conn, rec.nas_key, rec.at, Cause.NAS_REBOOT)
            if closing:
                _add_rated(total, _rate_closed_sessions(conn, closing, tz, now, rules))
        else:
            segment.append(rec)
    _merge(total, _apply_sessions(conn, segment, period, tz, now, rules, tenancy))
    return BatchOutcome(count, total.added, total.created, closed,
                        tuple(total.over_limit), total.charged_money, total.calls_rated,
                        tuple(total.calls_unrated), tuple(total.unattributed),
                        total.calls_missed, total.calls_corrected, tuple(total.saved),
                        tuple(total.users), forgotten)


def _known_batch(conn: Connection, records: Sequence[AcctRecord],
                 known: session_store.KnownSessions, default_period: PeriodSpec,
                 tz: ZoneInfo, tenancy: Mapping[str, str]
                 ) -> tuple[_Segment, list[AcctRecord], tuple[str, ...]] | None:
    """Write what one statement can (session_store.save_known): what it did,
    the records left for the usual way (of the other sessions, and of those
    the statement did not write) and the sessions ``known`` had wrong. None
    when it can write nothing (see :func:`plan_known`)."""
    if not _remembers(conn, len(records)):
        return None
    plan = plan_known(records, known, default_period, tz, tenancy)
    if plan is None:
        return None
    return plan.done(session_store.save_known(conn, plan.changes, plan.usage_rows))


@dataclass(frozen=True, slots=True)
class KnownPlan:
    """A batch's records that save_known's one statement can write, computed
    from what KnownSessions remembers (:func:`plan_known`): the statement's
    changes and usage rows, and what to make of the keys it returns
    (:meth:`done`)."""

    records: Sequence[AcctRecord]
    keys: frozenset[str]            # the sessions planned
    changes: list[session_store.Change]
    usage_rows: list[dict[str, Any]]
    added: dict[str, Totals]
    created: frozenset[str]

    def done(self, written: Collection[str]
             ) -> tuple[_Segment, list[AcctRecord], tuple[str, ...]]:
        """What the statement did, given the keys it wrote; the records left
        for the usual way; the sessions planned and not written (what the
        KnownSessions had wrong)."""
        out = _Segment()
        for c in self.changes:
            key = c.state.key
            if key not in written:
                continue
            out.added = out.added + self.added.get(key, ZERO)
            out.created += key in self.created
            before = c.was.packets if c.was is not None else 0
            out.saved.append(session_store.Known(c.state, before + c.packets, c.owner,
                                                 c.definition))
        return (out, [rec for rec in self.records if rec.key not in written],
                tuple(key for key in self.keys if key not in written))

    def outcome(self, written: Collection[str]) -> tuple[BatchOutcome, list[AcctRecord]]:
        """:meth:`done` as the outcome of the records written, and the rest."""
        out, rest, forgotten = self.done(written)
        return BatchOutcome(len(self.records) - len(rest), out.added, out.created, 0,
                            saved=tuple(out.saved), forgotten=forgotten), rest


def plan_known(records: Sequence[AcctRecord], known: session_store.KnownSessions,
               default_period: PeriodSpec, tz: ZoneInfo,
               tenancy: Mapping[str, str] = _NO_TENANTS) -> KnownPlan | None:
    """The sessions of ``records`` that save_known can write (PostgreSQL): the
    sessions known, and the new ones of users known, whose plans only count
    (core.quotas.charging.acts_in_accounting), with their new states and
    usage. None when there is none, or the batch has an Accounting-On/Off
    (it closes sessions: the usual way)."""
    if any(rec.status in (Status.ACCOUNTING_ON, Status.ACCOUNTING_OFF) for rec in records):
        return None
    start: dict[str, tuple[session_store.Known | None, int, str | None]] = {}
    skipped: set[str] = set()
    for rec in records:
        key = rec.key
        if key in start or key in skipped:
            continue
        k = known.get(key)
        if k is not None:
            begin: tuple[session_store.Known | None, int, str | None] = (k, k.owner,
                                                                         k.definition)
        elif (rec.user_name != UNATTRIBUTED
              and not needs_tenants(rec.user_name, tenancy.get(rec.client))
              and (u := known.user(rec.user_name)) is not None):
            begin = (None, u.owner, u.definition)
        else:
            skipped.add(key)
            continue
        if acts_in_accounting(_plan(begin[2])):
            skipped.add(key)
            continue
        start[key] = begin
    if not start:
        return None
    states: dict[str, SessionState | None] = {
        key: (k.state if k is not None else None) for key, (k, _, _) in start.items()}
    counts: dict[str, int] = {}
    newest: dict[str, AcctRecord] = {}
    added: dict[str, Totals] = {}
    created: set[str] = set()
    parts: dict[tuple[str, int, int], Totals] = {}
    for rec in records:
        key = rec.key
        if key not in start:
            continue
        applied = apply_record(states[key], rec)
        states[key] = applied.state
        counts[key] = counts.get(key, 0) + 1
        newest[key] = rec
        if applied.created:
            created.add(key)
        if applied.delta.is_zero():
            continue
        added[key] = added.get(key, ZERO) + applied.delta
        _, owner, definition = start[key]
        plan = _plan(definition)
        for part in split_usage_timed(applied.delta, applied.t0, applied.t1,
                                      plan.period if plan is not None else default_period, tz):
            pkey = (key, owner, part.period_start)
            parts[pkey] = parts.get(pkey, ZERO) + part.usage
    changes = [session_store.Change(k, state, counts[key], newest[key], owner, definition)
               for key, (k, owner, definition) in start.items()
               if (state := states[key]) is not None]
    names = {c.owner: c.state.user_name for c in changes}
    return KnownPlan(records, frozenset(start), changes,
                     usage_store.session_counter_rows(parts, names), added,
                     frozenset(created))


def _plan(definition: str | None) -> Plan | None:
    """A stored plan definition as a Plan (plan_from_json caches them by text)."""
    return plan_from_json(definition) if definition is not None else None


def _merge(total: _Segment, part: _Segment) -> None:
    total.added = total.added + part.added
    total.created += part.created
    total.over_limit.extend(part.over_limit)
    total.charged_money += part.charged_money
    total.calls_rated += part.calls_rated
    total.calls_unrated.extend(part.calls_unrated)
    total.unattributed.extend(part.unattributed)
    total.calls_missed += part.calls_missed
    total.calls_corrected += part.calls_corrected
    total.saved.extend(part.saved)
    total.users.extend(part.users)


def _add_rated(out: _Segment, rated: RatingTally) -> None:
    out.charged_money += rated.money
    out.calls_rated += rated.rated
    out.calls_unrated.extend(rated.unrated)


def _apply_sessions(conn: Connection, records: list[AcctRecord], default_period: PeriodSpec,
                    tz: ZoneInfo, now: int, rules: CallRules,
                    tenancy: Mapping[str, str]) -> _Segment:
    out = _Segment()
    if not records:
        return out
    first: dict[str, AcctRecord] = {}
    for rec in records:
        first.setdefault(rec.key, rec)
    routes = _routes(conn, first, tenancy)
    loaded, definitions = session_store.claim_sessions(conn, list(first.values()), routes)
    # A placeholder (0 packets counted) is a session seen for the first time.
    states: dict[str, SessionState | None] = {
        k: (s if n else None) for k, (s, n, _) in loaded.items()}
    owners = _owners(conn, loaded, first, routes, now)
    # The session's own name: a record keyed by its Call-ID may name the
    # callee, or nobody, for a call that is the caller's.
    names = {owners[k]: loaded[k][0].user_name for k in first}
    out.unattributed.extend(sorted(
        rec.acct_session_id for k, rec in first.items()
        if not loaded[k][1] and loaded[k][0].user_name == UNATTRIBUTED))
    user_plans = (load_plans(conn, set(owners.values())) if definitions is None
                  else {u: plan_from_json(d) for u, d in definitions.items()})
    counts: dict[str, int] = {}
    newest: dict[str, AcctRecord] = {}
    pieces: list[tuple[AcctRecord, int, UsagePart]] = []
    stopped: dict[str, AcctRecord] = {}
    reclosed: set[str] = set()      # closed by aaad before; this Stop corrects the CDR
    for rec in records:
        prev = states[rec.key]
        applied = apply_record(prev, rec)
        if applied.action is Action.CLOSE:      # this Stop closed the call: rate it
            stopped[rec.key] = rec
            if prev is not None and not prev.open and prev.terminate_cause in Cause.INFERRED:
                reclosed.add(rec.key)
        states[rec.key] = applied.state
        counts[rec.key] = counts.get(rec.key, 0) + 1
        newest[rec.key] = rec
        out.created += applied.created
        if applied.delta.is_zero():
            continue
        out.added = out.added + applied.delta
        owner = owners[rec.key]
        plan = user_plans.get(owner)
        spec = plan.period if plan is not None else default_period
        pieces.extend((rec, owner, part) for part in
                      split_usage_timed(applied.delta, applied.t0, applied.t1, spec, tz))
    # Rows that existed with their user, in the same phase (open or closed)
    # after the batch as before it: their ``active`` and user are left alone.
    settled = {k for k, (was, n, owner) in loaded.items()
               if n and owner is not None and (s := states[k]) is not None
               and s.open == was.open}
    session_store.save_sessions(conn, [(s, counts[k], newest[k], owners[k])
                                       for k, s in states.items()
                                       if s is not None and k in counts], settled)
    if definitions is not None and _remembers(conn, len(records)):     # for KnownSessions
        out.saved.extend(session_store.Known(s, loaded[k][1] + counts[k], owners[k],
                                             definitions.get(owners[k]))
                         for k, s in states.items() if s is not None and k in counts)
        out.users.extend((rec.user_name, session_store.KnownUser(
                              owners[k], definitions.get(owners[k])))
                         for k, rec in first.items()     # created here: owner = holder
                         if not loaded[k][1] and k not in routes
                         and rec.user_name != UNATTRIBUTED)
    parts, by_session = _count(conn, pieces, user_plans, names, tz)
    usage_store.add_usage(conn, parts, names)
    # Plans that only count (a cap that refuses the next login) need no
    # period totals read back: nothing to charge, take, rate or disconnect.
    acting = {u: p for u, p in user_plans.items() if acts_in_accounting(p)}
    if acting:
        _enforce(conn, out, newest, states, owners, names, acting,
                 {k: t for k, t in by_session.items() if k[0] in acting}, tz, now)
        if any(p.rate_table is not None for p in acting.values()):
            _calls(conn, out, stopped, newest, states, owners, acting, tz, now, rules,
                   reclosed)
    return out


def _routes(conn: Connection, first: dict[str, AcctRecord],
            tenancy: Mapping[str, str]) -> dict[str, Route]:
    """Session key → where its user is looked up, for the records that may
    belong to a tenant (a client with a tenant, or a User-Name with an ``@``).
    The tenant list is read only then: one small query per batch, none for
    an operator without tenants' clients or realms."""
    wanted = {k: (rec.user_name, tenancy.get(rec.client)) for k, rec in first.items()
              if needs_tenants(rec.user_name, tenancy.get(rec.client))}
    if not wanted:
        return {}
    known = tenant_store.tenant_ids(conn)
    return {k: route(name, tenant, known) for k, (name, tenant) in wanted.items()}


def _owners(conn: Connection, loaded: dict[str, session_store.Loaded], first: dict[str, AcctRecord],
            routes: dict[str, Route], now: int) -> dict[str, int]:
    """Session key → the user id it belongs to. Sessions of a User-Name
    nobody holds (first sight) get a new no-account holder in the session's
    tenant: the only case with statements of its own."""
    owners = {k: o for k, (_, _, o) in loaded.items() if o is not None}
    unowned = {k: routes.get(k) or Route(OPERATOR, first[k].user_name)
               for k in loaded if k not in owners}
    by_tenant: dict[int, set[str]] = {}
    for r in unowned.values():
        by_tenant.setdefault(r.tenant_id, set()).add(r.name)
    created = {t: user_store.add_holders(conn, names, now, tenant=t)
               for t, names in sorted(by_tenant.items())}
    owners.update({k: created[r.tenant_id][r.name] for k, r in unowned.items()})
    return owners


def _count(conn: Connection, pieces: list[tuple[AcctRecord, int, UsagePart]],
           user_plans: dict[int, Plan], names: dict[int, str], tz: ZoneInfo
           ) -> tuple[dict[tuple[int, int], tuple[Totals, Totals]],
                      dict[tuple[int, int, str], Totals]]:
    """Raw and band-weighted usage per (user id, period); counted per session too."""
    banded = {(owner, part.period_start) for _, owner, part in pieces
              if (p := user_plans.get(owner)) is not None and p.bands}
    running = usage_store.band_usage_many(conn, banded)
    parts: dict[tuple[int, int], tuple[Totals, Totals]] = {}
    bands: dict[tuple[int, int, str], Totals] = {}
    by_session: dict[tuple[int, int, str], Totals] = {}
    for rec, owner, part in pieces:
        key = (owner, part.period_start)
        plan = user_plans.get(owner)
        if key in banded and plan is not None:
            before = running.setdefault(key, {})
            w = weighted_usage(part.usage, part.t0, part.t1, plan, tz, before=before)
            counted = Totals(w.counted_s, w.counted_in_octets, w.counted_out_octets)
            for band, t in w.per_band.items():
                before[band] = before.get(band, ZERO) + t
                bkey = (owner, part.period_start, band)
                bands[bkey] = bands.get(bkey, ZERO) + t
        else:
            counted = part.usage
        raw, cnt = parts.get(key, (ZERO, ZERO))
        parts[key] = (raw + part.usage, cnt + counted)
        skey = (owner, part.period_start, rec.key)
        by_session[skey] = by_session.get(skey, ZERO) + counted
    usage_store.add_band_usage(conn, bands, names)
    return parts, by_session


def _enforce(conn: Connection, out: _Segment, newest: dict[str, AcctRecord],
             states: dict[str, SessionState | None], owners: dict[str, int],
             names: dict[int, str], user_plans: dict[int, Plan],
             by_session: dict[tuple[int, int, str], Totals], tz: ZoneInfo, now: int) -> None:
    """Blocks, overage charges and over-limit sessions for the users of this batch:
    load the period totals and blocks, let core.quotas.charging decide, write."""
    keys = sorted({(u, p) for u, p, _ in by_session})
    after = {k: Totals(r.counted_s, r.counted_in_octets, r.counted_out_octets)
             for k, r in usage_store.counted_usage(conn, keys).items()}
    block_users = sorted({u for u, _ in keys if u in user_plans
                          and user_plans[u].block is not None})
    blocks = block_store.active_blocks(conn, block_users, now, for_update=True)
    for step in usage_steps(by_session, after):
        plan = user_plans.get(step.user)
        if plan is None:
            continue
        name = names[step.user]
        charge = overage_charge(plan, step.before, step.after)
        if charge is not None:
            ledger_store.add_to_charge(
                conn, user_id=step.user, user_name=name, kind="overage",
                ref=f"overage:{step.session_key}:{step.period_start}",
                period_start=step.period_start, amount=charge.money, quantity=charge.quantity,
                description=charge.description(plan), now=now)
            out.charged_money += charge.money
        beyond = seconds_beyond_cap(plan, step.before.session_s, step.after.session_s)
        if beyond and plan.block is not None:
            _use_blocks(conn, out, step.user, name, plan, blocks, beyond, step.period_start, now)
    throttle: dict[str, tuple[str, Plan]] = {}
    for key, state in states.items():
        if state is None or not state.open:
            continue
        owner = owners[key]
        plan = user_plans.get(owner)
        if plan is None:
            continue
        verdict = disconnect_verdict(
            plan, used=after.get((owner, period_bounds(plan.period, tz, now)[0]), ZERO),
            blocks=blocks.get(owner, []), now=now, tz=tz)
        if verdict is not None:
            out.over_limit.append(_over_limit(newest[key], state.user_name, verdict.reason,
                                              verdict.message))
        elif plan.over_limit == THROTTLE and over_cap(
                plan, after.get((owner, period_bounds(plan.period, tz, now)[0]), ZERO)):
            throttle[key] = (state.user_name, plan)
    _throttle(conn, out, throttle, newest)


def _throttle(conn: Connection, out: _Segment, over: dict[str, tuple[str, Plan]],
              newest: dict[str, AcctRecord]) -> None:
    """Mark the open sessions over a ``throttle`` cap; a CoA for each newly marked one
    (not for a session that just started: its Access-Accept was throttled already)."""
    for key in sorted(throttle_store.mark_throttled(conn, over)):
        rec = newest[key]
        if rec.status is Status.START:
            continue
        user_name, plan = over[key]
        item = _over_limit(rec, user_name, THROTTLE, f"over the cap of plan {plan.name}: "
                           "throttled")
        out.over_limit.append(replace(item, action=THROTTLE, attributes=plan.throttle_reply))


def _over_limit(rec: AcctRecord, user_name: str, reason: str, message: str) -> OverLimit:
    return OverLimit(user_name=user_name, session_key=rec.key,
                     acct_session_id=rec.acct_session_id, client=rec.client,
                     nas_address=rec.nas_address, nas_key=rec.nas_key,
                     framed_ip=rec.framed_ip, reason=reason, message=message)


def _finished(r: Any) -> FinishedCall:
    """A closed call from its session row (call_store.sessions_by_id / open_call_sessions)."""
    return FinishedCall(r.id, r.user_id, r.user_name, r.started_at, r.session_s,
                        r.called_station_id or "", r.calling_station_id or "",
                        r.direction or OUTBOUND)


def _calls(conn: Connection, out: _Segment, stopped: dict[str, AcctRecord],
           newest: dict[str, AcctRecord], states: dict[str, SessionState | None],
           owners: dict[str, int], user_plans: dict[int, Plan], tz: ZoneInfo, now: int,
           rules: CallRules, reclosed: set[str]) -> None:
    """Rate the calls this batch stopped, then find live calls whose users'
    credit no longer pays for them.

    A stopped call is rated from its stored session row, so what the Stop
    lacks (the number dialled, the caller: a SIP proxy sends them only at
    the Start, or only at authorisation) comes from the Start. A Failed
    record is a missed call: a CDR of 0 s that costs nothing.
    """
    call_plans = {u: p for u, p in user_plans.items() if p.rate_table is not None}
    tables = _call_tables(conn, call_plans, rules)
    finished = []
    for row in call_store.sessions_by_id(
            conn, [k for k in stopped if owners[k] in call_plans and states[k] is not None]):
        rec = stopped[row.id]
        # What the Stop says wins; what it lacks comes from the stored session.
        f = replace(_finished(row), dialled=rec.called_station_id or row.called_station_id or "",
                    caller=rec.calling_station_id or row.calling_station_id or "",
                    direction=rec.direction or row.direction or OUTBOUND)
        if rec.status is Status.FAILED:
            plan = call_plans[f.user_id]
            cdr = build_cdr(plan, replace(f, duration_s=0),
                            tables.get(plan.rate_table or ""), None, tz, rules)
            cdr.update(billed_s=0, free_s=0, cost=0, disposition="missed")
            out.calls_missed += call_store.record_call(conn, cdr, now=now)
        else:
            finished.append(f)
    _add_rated(out, _rate_finished(conn, finished, call_plans, tables, tz, now, rules,
                                   reclosed=reclosed, out=out))
    live = {owners[k] for k in newest
            if owners[k] in call_plans and (s := states[k]) is not None and s.open}
    if live:
        _credit_check(conn, out, live, newest, call_plans, tables, tz, now, rules)


def _rate_finished(conn: Connection, finished: list[FinishedCall], call_plans: dict[int, Plan],
                   tables: dict[str, RateTable], tz: ZoneInfo, now: int,
                   rules: CallRules, *, reclosed: Collection[str] = (),
                   out: _Segment | None = None) -> RatingTally:
    """Rate finished calls, once each (the CDR is keyed by the session): the
    money debited, how many calls were priced and which were not, and why.

    A call aaad had closed itself (``reclosed``: stale, NAS reboot, maximum
    duration) and rated then is re-rated on its real Stop: the CDR is
    corrected and the difference posted once (call_store.correct_call).
    A call that costs more than the user's available credit is debited all
    the same and recorded as a ``call_credit_overrun`` event: without
    Interim-Updates the authorised Session-Timeout was the only guard.
    """
    free = call_store.free_minutes_left(
        conn, {f.user_id: (call_plans[f.user_id], f.started_at) for f in finished}, tz)
    wholesale = tenant_store.wholesale_tables(conn, {f.user_id for f in finished})
    at_cost = rules.rates.get(conn, set(wholesale.values()))
    balances = ledger_store.balances_for(conn, {f.user_id for f in finished}) if finished else {}
    available = {u: b.available for u, b in balances.items()}
    tally = RatingTally()
    for f in finished:
        plan = call_plans[f.user_id]
        table = tables.get(plan.rate_table or "")
        inbound = tables.get(plan.inbound_rate_table or "")
        first = call_store.rated_call(conn, f.key) if f.key in reclosed else None
        # A correction is re-rated with the free seconds it was given the first time.
        kept = (free.get(f.user_id) if first is None
                else FreeMinutesLeft(first["period_start"], first["free_s"], 0, True))
        cdr = build_cdr(plan, f, table, kept, tz, rules, inbound_table=inbound)
        if (w := at_cost.get(wholesale.get(f.user_id, ""))) is not None:
            cdr["wholesale_cost"] = wholesale_cost(f, w, call_pieces(plan, f, tz), rules)
        if first is not None:
            change = call_store.correct_call(conn, cdr, first, now=now)
            if change is not None:
                tally.money += change
                available[f.user_id] = available.get(f.user_id, 0) - change
                if out is not None:
                    out.calls_corrected += 1
            continue
        used = take_free(free, f.user_id, cdr)
        if used is not None:
            call_store.ensure_free_period(conn, f.user_name, used.period_start,
                                          used.carried_in_s, user_id=f.user_id)
        if call_store.record_call(conn, cdr, now=now):
            tally.money += cdr["cost"]
            if cdr["unrated"] is None:
                tally.rated += 1
            else:
                tally.unrated.append(Unrated(
                    cdr["unrated"], f.key, f.user_name,
                    f.caller if f.direction == INBOUND else f.dialled, f.duration_s))
            before = available.get(f.user_id, 0)
            available[f.user_id] = before - cdr["cost"]
            if cdr["cost"] and cdr["cost"] > before:
                event_store.record_event(
                    conn, at=now, kind="call_credit_overrun", result="debited",
                    user_name=f.user_name, user_id=f.user_id, session_id=f.key,
                    detail=(f"call to {cdr['destination']} of {f.duration_s} s cost "
                            f"{format_money(cdr['cost'])}, {format_money(before)} available"))
    return tally


def _rate_closed_sessions(conn: Connection, keys: list[str], tz: ZoneInfo, now: int,
                          rules: CallRules,
                          durations: Mapping[str, int] | None = None) -> RatingTally:
    """Rate calls aaad itself closed (NAS reboot, stale, maximum duration): no
    Stop may ever rate them, so they are billed on their last known duration
    (``durations``: at the call time authorised, or the maximum call
    duration). A real Stop arriving later re-rates the call and corrects the
    CDR once (_rate_finished)."""
    rows = [r for r in call_store.sessions_by_id(conn, keys)
            if not r.active and r.user_id is not None]
    call_plans = {u: p for u, p in load_plans(conn, {r.user_id for r in rows}).items()
                  if p.rate_table is not None}
    if not call_plans:
        return RatingTally()
    finished = [_finished(r) for r in rows if r.user_id in call_plans]
    if durations is not None:
        finished = [replace(f, duration_s=durations.get(f.key, f.duration_s)) for f in finished]
    return _rate_finished(conn, finished, call_plans, _call_tables(conn, call_plans, rules),
                          tz, now, rules)


def _call_tables(conn: Connection, call_plans: dict[int, Plan],
                 rules: CallRules) -> dict[str, RateTable]:
    return rules.rates.get(conn, {t for p in call_plans.values()
                                  for t in (p.rate_table, p.inbound_rate_table) if t})


def _credit_check(conn: Connection, out: _Segment, users: set[int],
                  newest: dict[str, AcctRecord], call_plans: dict[int, Plan],
                  tables: dict[str, RateTable], tz: ZoneInfo, now: int,
                  rules: CallRules) -> None:
    """Live outbound calls whose users' running cost exceeds their credit: each
    open call is priced as if it ended now, the way it will be rated."""
    balances = ledger_store.balances_for(conn, users)
    free = call_store.free_minutes_left(conn, {u: (call_plans[u], now) for u in users}, tz)
    spent: dict[int, int] = {}
    paid: dict[int, list[str]] = {}
    for row in call_store.open_call_sessions(conn, users):
        f = _finished(row)
        plan = call_plans[f.user_id]
        cdr = build_cdr(plan, f, tables.get(plan.rate_table or ""), free.get(f.user_id), tz,
                        rules, inbound_table=tables.get(plan.inbound_rate_table or ""))
        if cdr["prefix"] is None:          # unrated: why is in cdr["unrated"]
            continue
        take_free(free, f.user_id, cdr)
        spent[f.user_id] = spent.get(f.user_id, 0) + cdr["cost"]
        paid.setdefault(f.user_id, []).append(f.key)
    available = {u: balances.get(u, ledger_store.Balance()).available for u in spent}
    for user, cost_so_far in over_credit(spent, available).items():
        for key in paid[user]:
            rec = newest.get(key)
            if rec is None or rec.status is Status.STOP:
                continue
            out.over_limit.append(_over_limit(
                rec, rec.user_name, NO_CREDIT,
                f"Credit exhausted: calls in progress cost {format_money(cost_so_far)}, "
                f"{format_money(available[user])} available"))


def _use_blocks(conn: Connection, out: _Segment, user: int, name: str, plan: Plan,
                blocks: dict[Any, list[Block]], seconds: int, period_start: int,
                now: int) -> None:
    """Write what core.quotas.charging.use_blocks decided: seconds taken from the
    user's blocks, and renewed blocks, each charged to the ledger."""
    use = use_blocks(plan, blocks.get(user, []), seconds, now)
    for block_id, taken in use.taken:
        block_store.use_block_seconds(conn, block_id, taken)
    updated = list(use.blocks)
    for renewal in use.renewals:
        assert plan.block is not None
        ref = f"renew:{name}:{now}:{secrets.token_hex(6)}"
        block_store.add_block(conn, name, seconds=renewal.seconds, purchased_at=now,
                              expires_at=renewal.expires_at, ref=ref, user_id=user)
        block_id = block_store.block_id(conn, ref)
        block_store.use_block_seconds(conn, block_id, renewal.take_s)
        updated.append(Block(block_id, renewal.seconds - renewal.take_s, renewal.expires_at))
        ledger_store.add_charge(
            conn, user_id=user, user_name=name, kind="block", ref=f"block:{ref}",
            period_start=period_start, amount=renewal.price_money, quantity=renewal.seconds,
            description=f"{plan.block.hours}h block (renewed), plan {plan.name}", now=now)
        out.charged_money += renewal.price_money
        event_store.record_event(conn, at=now, kind="block_renewed", result="ok",
                                 user_name=name, user_id=user,
                                 detail=f"{plan.block.hours}h block, plan {plan.name}")
    blocks[user] = updated


def sweep_stale(conn: Connection, *, now: int, default_interval_s: int, intervals: int,
                tz: ZoneInfo = UTC_ZONE, calls: CallRules | None = None,
                tally: RatingTally | None = None,
                no_interims: Sequence[str] = (), max_call_duration_s: int | None = None,
                grace_s: int = AUTHORISED_GRACE_S,
                counts: dict[str, int] | None = None) -> int:
    """Close sessions that have been silent too long (rating calls among them); how many.
    What rating the closed calls did is added to ``tally``, for the metrics.

    Sessions of the clients in ``no_interims`` (``interims: none``) are never
    stale. They are closed once they outlive the call time their
    authorisation allowed (plus ``grace_s``: the proxy hung up then, and its
    BYE may not be accounted) or ``max_call_duration_s`` after their start,
    rated at that time, each with a ``call_max_duration`` event. ``counts``,
    when given, receives the ``stale`` and ``max_duration`` sessions closed.
    """
    counted = counts if counts is not None else {}
    rules = calls or _DEFAULT_RULES
    any_calls = _any_call_plan(conn)
    closing = (session_store.stale_session_ids(conn, now, default_interval_s, intervals,
                                               no_interims) if any_calls else [])
    n = session_store.close_stale_sessions(conn, now, default_interval_s, intervals, Cause.STALE,
                                           no_interims)
    counted["stale"] = n
    if closing:
        _add_tally(tally, _rate_closed_sessions(conn, closing, tz, now, rules))
    if no_interims and max_call_duration_s:
        too_long = session_store.too_long_sessions(conn, now, max_call_duration_s,
                                                   no_interims, grace_s)
        closed = session_store.close_too_long_sessions(conn, too_long)
        counted["max_duration"] = closed
        n += closed
        for row in call_store.sessions_by_id(conn, list(too_long)):
            seconds = too_long[row.id]
            why = ("the call time authorised" if seconds < max_call_duration_s
                   else "the maximum call duration")
            event_store.record_event(
                conn, at=now, kind="call_max_duration", result="closed",
                user_name=row.user_name, user_id=row.user_id, session_id=row.id,
                detail=(f"call to {row.called_station_id or '?'} without a Stop past {why}: "
                        f"closed and rated at {seconds} s; a later Stop corrects it"))
        if too_long and any_calls:
            _add_tally(tally, _rate_closed_sessions(conn, list(too_long), tz, now, rules,
                                                    durations=too_long))
    return n


def _add_tally(tally: RatingTally | None, rated: RatingTally) -> None:
    if tally is not None:
        tally.money += rated.money
        tally.rated += rated.rated
        tally.unrated.extend(rated.unrated)


def _any_call_plan(conn: Connection) -> bool:
    return any(plan_from_json(d).rate_table is not None for _, d in plan_store.list_plans(conn))
