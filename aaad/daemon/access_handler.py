"""The authentication handler: Access-Request → PAP/CHAP/MS-CHAP/SIP Digest check → Accept/Reject.

SIP Digest (RFC 5090, draft-sterman: what Kamailio's and OpenSIPS's
auth_radius send) is checked against a cleartext password (HA1 computed
with the request's realm) or a stored HA1 (``user add --password-hash ha1
--realm R``; a different realm is a bad password). A call's Access-Accept
to a ``type: sip`` client carries the allowed call time twice: as
Session-Timeout and as the SIP-AVP ``aaad_call_time#<seconds>``, since
auth_radius imports only SIP-AVP attributes. An accepted request that names
its Call-ID (Acct-Session-Id) is remembered in the CallIndex, for the
accounting records that name no user.

User rows are read in batches on the reader thread (one query for every
request that arrived while the previous query ran). Hashed passwords are
verified on a separate hash pool, behind the verify cache. Every failed
check costs one argon2 verification, whether the user is unknown, has a
cleartext password, or has a hash: a reject takes the same time for all,
so response timing does not tell which user names exist. For the same
reason every failed credential check (unknown user, wrong password, CHAP on
an account with no cleartext, MS-CHAP on one with only an argon2id hash)
gets the same Reply-Message, ``FAILED`` (and, for MS-CHAP, the same
MS-CHAP-Error ``E=691``); the distinct reason goes only to the metric and
the log.

Which stored form serves which method (aaad.credentials): PAP any of the
three; CHAP the cleartext; MS-CHAP v1 and v2 (aaad.radius.mschap) the
cleartext or the NT hash. An MS-CHAP accept carries MS-CHAP2-Success (v2),
the MPPE keys (MS-MPPE-Send-Key and -Recv-Key for v2, MS-CHAP-MPPE-Keys for
v1), MS-MPPE-Encryption-Policy and MS-MPPE-Encryption-Types.

Every Access-Reject is logged at INFO (user name, client, reason,
Reply-Message; never a password or CHAP response), at most one line per user
name per ``reject_log_interval_s``, with a count of the rejects held back.

An Accept that must write first, a hotspot ticket's first login (its
validity clock starts) or a login that replaces the user's oldest sessions
(``on_max_sessions: replace-oldest``), runs store.jobs.login.start_login on
the writer and is sent after its commit; the sessions it closed get a
Disconnect-Request (``on_replaced``). If that write fails, no reply is sent
(the NAS retries).

When the database is unreachable, ``outage_policy`` decides: ``reject``
answers Access-Reject, ``accept-cached`` decides with the last state read
for that user (a bounded LRU; a user not in it is rejected), ``no-reply``
sends nothing, so the NAS retries or fails over to another server.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from pyrad.dictionary import Dictionary
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from aaad.config import TelephonyConfig
from aaad.core.accounting.periods import PeriodSpec, period_bounds
from aaad.core.accounting.realms import OPERATOR
from aaad.core.quotas.bands import band_at, split_by_band
from aaad.core.quotas.decide import Accept, Decision, Reject, decide
from aaad.core.quotas.plan import PEAK, Plan
from aaad.core.quotas.reply import configured_reply, with_computed
from aaad.core.quotas.tickets import expires_at, starts_clock
from aaad.core.telephony.rating import AHEAD_S, INBOUND, CallAccept, authorise_call
from aaad.credentials import (
    VerifyCache,
    dummy_hash,
    needs_rehash,
    rehash,
    verify_hash,
    verify_nt_hash,
)
from aaad.daemon.batch import GroupCommit, PassEnd, QueueFull
from aaad.daemon.call_index import CallIndex
from aaad.daemon.executor import Executor
from aaad.daemon.metrics import Metrics
from aaad.daemon.outage import Availability
from aaad.radius import mschap
from aaad.radius.authenticators import chap_matches, digest_ha1, digest_matches, stored_ha1
from aaad.radius.call_attributes import CISCO_ACCEPTED, cisco_accept, cisco_reject
from aaad.radius.codec import Access, Request, load_dictionary
from aaad.radius.framing import ACCESS_ACCEPT, ACCESS_REJECT
from aaad.radius.protocol import RateLimitedLog, Reply
from aaad.radius.reply_check import ReplyFilter
from aaad.radius.sip import CALL_TIME_AVP
from aaad.store.calls import CallRules
from aaad.store.database import Database, is_unavailable, was_disconnected
from aaad.store.jobs.login import CallState, Started, UserState, read_logins, start_login
from aaad.store.sessions import KnownUser, Replaced
from aaad.store.users import replace_password_hash

__all__ = ["AuthHandler", "LastKnownUsers", "Lookup", "OUTAGE"]

log = logging.getLogger(__name__)

# Re-hashes of old-parameter password hashes in flight at most (see
# AuthHandler._maybe_rehash).
_MAX_REHASHES = 2

LoginKey: TypeAlias = "tuple[str | None, str]"
"""(the client's tenant, the User-Name as sent): one login lookup."""
UTC_ZONE = ZoneInfo("UTC")

FAILED = "Authentication failed"
UNAVAILABLE = "Service temporarily unavailable"
MPPE_POLICIES = {"allowed": 1, "required": 2}           # RFC 2548 §2.4.4
MPPE_TYPES = {"40-or-128": 6, "128": 4}                 # RFC 2548 §2.4.5: bits 0x2, 0x4


class _Outage:
    """The lookup result for every name of a batch that found the database away."""

    def __repr__(self) -> str:
        return "OUTAGE"


OUTAGE = _Outage()


def reject(message: str, reason: str) -> Reply:
    return Reply(ACCESS_REJECT, (("Reply-Message", message),), reason=reason)


# Remaining-data attributes by client type and the plan's octets_direction:
# (octets attribute, gigawords attribute). Mikrotik "Recv" is what the NAS
# receives from the user (Acct-Input), "Xmit" what it sends (Acct-Output).
DATA_LIMIT_ATTRIBUTES = {
    ("mikrotik", "total"): ("Mikrotik-Total-Limit", "Mikrotik-Total-Limit-Gigawords"),
    ("mikrotik", "in"): ("Mikrotik-Recv-Limit", "Mikrotik-Recv-Limit-Gigawords"),
    ("mikrotik", "out"): ("Mikrotik-Xmit-Limit", "Mikrotik-Xmit-Limit-Gigawords"),
    ("chillispot", "total"): ("ChilliSpot-Max-Total-Octets", "ChilliSpot-Max-Total-Gigawords"),
    ("chillispot", "in"): ("ChilliSpot-Max-Input-Octets", "ChilliSpot-Max-Input-Gigawords"),
    ("chillispot", "out"): ("ChilliSpot-Max-Output-Octets", "ChilliSpot-Max-Output-Gigawords"),
}


def accept_attributes(decision: Accept, plan: Plan | None,
                      client_type: str) -> tuple[tuple[str, Any], ...]:
    """Session-Timeout and, for client types that have them, data-limit VSAs."""
    attrs: list[tuple[str, Any]] = []
    if decision.session_timeout_s is not None:
        attrs.append(("Session-Timeout", max(1, min(decision.session_timeout_s, 2**32 - 1))))
    if decision.octets_left is not None and plan is not None:
        names = DATA_LIMIT_ATTRIBUTES.get((client_type, plan.octets_direction))
        if names is not None:
            left = min(decision.octets_left, 2**64 - 1)
            attrs.append((names[0], left % 2**32))
            if left >= 2**32:
                attrs.append((names[1], left >> 32))
    return tuple(attrs)


# Not frozen: one per login (see Request in radius/codec.py).
@dataclass(slots=True)
class Lookup:
    """What a batch read found for one name, and the time it read at.

    The verdict is reached at the same ``now`` as the usage it was read
    with: one clock read per batch.
    """

    user: UserState | _Outage | None
    now: int


class LastKnownUsers:
    """The newest UserState read per user, the least recently read dropped first."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[LoginKey, UserState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def update(self, states: Sequence[UserState | None], names: Sequence[LoginKey]) -> None:
        with self._lock:
            for name, state in zip(names, states, strict=False):
                if state is None:
                    self._entries.pop(name, None)    # deleted since: not known any more
                    continue
                self._entries[name] = state
                self._entries.move_to_end(name)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def get(self, name: LoginKey) -> UserState | None:
        with self._lock:
            return self._entries.get(name)


class AuthHandler:
    """Implements radius.protocol.Handler for the auth port."""

    def __init__(self, *, db: Database, reader: Executor, hasher: Executor,
                 reactor: IReactorTime, metrics: Metrics, cache: VerifyCache,
                 tz: ZoneInfo = UTC_ZONE, call_rules: CallRules | None = None,
                 max_batch: int = 256, max_queue: int = 8192, max_hash_pending: int = 64,
                 outage_policy: str = "reject", outage_cache_size: int = 100_000,
                 availability: Availability | None = None,
                 reject_log_interval_s: float = 60.0, reject_log_users: int = 10_000,
                 grace_s: int = 0, dictionary: Dictionary | None = None,
                 mppe_policy: str = "allowed", mppe_types: str = "40-or-128",
                 writer: Executor | None = None,
                 on_replaced: Callable[[Sequence[Replaced]], None] | None = None,
                 call_index: CallIndex | None = None, reader_inline: bool = False,
                 pass_end: PassEnd | None = None,
                 on_users: Callable[[list[tuple[str, KnownUser]]], None] | None = None
                 ) -> None:
        """``reader_inline``: ``reader`` runs on the reactor thread; lookups
        are then batched per read pass of the ports (``pass_end``, see
        daemon.batch). ``on_users`` is told, on the reader's thread, the
        operator's users each batch read (name, id and plan definition): the
        accounting handler's hint for their sessions' first Start
        (AccountingHandler.learn_users)."""
        self._db = db
        self._on_users = on_users
        self.call_index = call_index
        self._replies = ReplyFilter(dictionary or load_dictionary())
        self._mppe = (("MS-MPPE-Encryption-Policy", MPPE_POLICIES[mppe_policy]),
                      ("MS-MPPE-Encryption-Types", MPPE_TYPES[mppe_types]))
        # Accepts that write first (start_login); the daemon passes its writer.
        self._writer = writer or reader
        self._on_replaced = on_replaced
        self.grace_s = grace_s
        self.outage_policy = outage_policy
        self.last_known = LastKnownUsers(outage_cache_size) \
            if outage_policy == "accept-cached" else None
        self.availability = availability or Availability(
            metrics=metrics, reactor=reactor, url=db.url)
        self._hasher = hasher
        self._metrics = metrics
        self.cache = cache
        self.tz = tz
        if call_rules is None:
            default = TelephonyConfig()
            call_rules = CallRules(numbers=default.numbers,
                                   emergency_numbers=default.emergency_numbers)
        self._call_rules = call_rules
        self._clock = reactor.seconds
        self._specs: set[PeriodSpec] = {PeriodSpec("monthly")}
        self._starts_cache: dict[tuple[int, int], tuple[int, ...]] = {}
        self._held = threading.local()      # each reader thread's connection
        self._max_hash_pending = max_hash_pending
        self._hash_pending = 0
        self._rehash_pending = 0
        self._lookups: GroupCommit[LoginKey, Lookup] = GroupCommit(
            executor=reader, process=self._find, max_batch=max_batch, max_queue=max_queue,
            clock=reactor.seconds, on_batch=self._batch_done,
            call_soon=(pass_end or PassEnd(reactor)).call if reader_inline else None)
        self._reject_log = RateLimitedLog(
            log, reactor=reactor, interval_s=reject_log_interval_s, level=logging.INFO,
            max_keys=reject_log_users, closing="Access-Reject: %r: %d more not logged")

    def handle(self, req: Request[Access]) -> Deferred[Reply]:
        creds = req.body
        if not creds.user_name:
            return succeed(self._finish(reject("User-Name is missing", "no_user_name"), req))
        if creds.method == "none":
            return succeed(self._finish(reject(
                "Only PAP, CHAP, MS-CHAP v1/v2 and SIP Digest are supported",
                "unsupported_method"), req))
        try:
            # Keyed by the client's tenant too: the same User-Name from a
            # tenant's NAS is another user (core.accounting.realms).
            d = self._lookups.submit((req.client.tenant, creds.user_name))
        except Exception:  # noqa: BLE001  (becomes the Deferred's failure)
            return fail()
        return d.addCallback(self._answer, creds, req)

    def _answer(self, found: Lookup, creds: Access,
                req: Request[Access]) -> Deferred[Reply] | Reply:
        # One callback per login, not three: Twisted's callback machinery
        # was a tenth of a login's CPU at window 64.
        reply = self._decide(found, creds, req)
        if isinstance(reply, Deferred):     # a password hash verified on a thread
            return reply.addCallback(self._finish, req)
        return self._finish(reply, req)

    def _finish(self, reply: Reply, req: Request[Access]) -> Reply:
        return self._log_reject(self._sip_reply(reply, req), req)

    def _sip_reply(self, reply: Reply, req: Request[Access]) -> Reply:
        """A ``sip`` client's Accept: the call time as a SIP-AVP too; the Call-ID remembered."""
        if reply.code != ACCESS_ACCEPT:
            return reply
        creds = req.body
        timeout = next((v for n, v in reply.attributes if n == "Session-Timeout"), None)
        if creds.call_id and self.call_index is not None:
            self.call_index.add(req.client.name, creds.call_id, user_name=creds.user_name,
                                dialled=creds.called_station_id,
                                caller=creds.caller or creds.user_name,
                                timeout_s=None if timeout is None else int(timeout))
        if req.client.type == "sip" and timeout is not None:
            return Reply(reply.code, (*reply.attributes,
                                      ("SIP-AVP", f"{CALL_TIME_AVP}#{timeout}")),
                         reason=reply.reason)
        return reply

    def _log_reject(self, reply: Reply, req: Request[Access]) -> Reply:
        if reply.code == ACCESS_REJECT:
            user = req.body.user_name
            message = next((v for n, v in reply.attributes if n == "Reply-Message"), None)
            self._reject_log.log(user, "Access-Reject: %r from %s (%s): %s, Reply-Message %r",
                                 user, req.client.name, req.source[0], reply.reason, message)
        return reply

    def _find(self, names: Sequence[LoginKey]) -> list[Lookup]:
        now = int(self._clock())     # one read per batch: its lookup and its verdicts
        try:
            states = self._read_users(names, now)
        except Exception as e:
            if self.outage_policy == "no-reply" or not is_unavailable(e):
                raise
            self.availability.down("auth", e)
            return [Lookup(OUTAGE, now)] * len(names)
        self.availability.up("auth")
        if self.last_known is not None:
            self.last_known.update(states, names)
        if self._on_users is not None:
            self._on_users([(st.row.name, KnownUser(st.row.id, st.row.definition))
                            for st in states
                            if st is not None and st.row.tenant_id == OPERATOR])
        return [Lookup(state, now) for state in states]

    def _read_users(self, names: Sequence[LoginKey], now: int) -> list[UserState | None]:
        """Runs on the reader thread: one indexed query for the whole batch.

        Users, their plans, open sessions and this period's counted usage
        come in one statement (blocks in a second, only for block plans):
        the cost does not grow with stored history. A connection found dead
        (the server restarted since it was pooled) is replaced once.
        """
        try:
            return self._read_users_once(names, now)
        except Exception as e:
            if not was_disconnected(e):
                raise
            return self._read_users_once(names, now)

    def _read_users_once(self, names: Sequence[LoginKey], now: int) -> list[UserState | None]:
        # Each reader thread keeps its connection from one batch to the next:
        # taking one from the pool and giving it back cost 15-20 µs a batch
        # (more at one login at a time, with cold caches). After every batch
        # its transaction, if a statement began one, is ended, so a SQLite
        # reader never holds a snapshot (or the WAL) between batches.
        conn = getattr(self._held, "conn", None)
        if conn is None:
            conn = self._held.conn = self._db.reader.connect()
        try:
            batch = read_logins(conn, names, now=now, tz=self.tz,
                                period_starts=self._period_starts(now),
                                call_rules=self._call_rules, grace_s=self.grace_s)
            if conn.in_transaction():
                conn.rollback()
        except Exception:
            self._metrics.db_errors.labels("auth").inc()
            # A connection that failed is not kept: the next batch (or the
            # retry of a lost connection) takes a new one from the pool.
            self._held.conn = None
            try:
                conn.close()
            except Exception:      # already broken: its own error was raised
                log.debug("closing a failed reader connection", exc_info=True)
            raise
        self._specs.update(batch.new_periods)
        return batch.states

    def _period_starts(self, now: int) -> tuple[int, ...]:
        """The current period start of every period kind seen so far (cached per second)."""
        key = (now, len(self._specs))
        hit = self._starts_cache.get(key)
        if hit is None:
            hit = tuple(sorted({period_bounds(s, self.tz, now)[0] for s in self._specs}))
            self._starts_cache = {key: hit}
        return hit

    def _batch_done(self, size: int, seconds: float) -> None:
        self._metrics.db_batch_size.labels("auth").observe(size)
        self._metrics.db_batch_seconds.labels("auth").observe(seconds)

    def _decide(self, found: Lookup, creds: Access,
                req: Request[Access]) -> Deferred[Reply] | Reply:
        user, now = found.user, found.now
        live = not isinstance(user, _Outage)   # a cached state (outage) writes nothing
        if isinstance(user, _Outage):
            known = self.last_known
            cached = (known.get((req.client.tenant, creds.user_name)) if known is not None
                      else None)
            if cached is None:
                decision = "reject" if self.last_known is None else "unknown_reject"
                self._metrics.auth_outage.labels(decision).inc()
                return reject(UNAVAILABLE, "database_unavailable")
            self._metrics.auth_outage.labels("cached").inc()
            user = cached
        if user is None:
            return self._fail_evenly("unknown_user", _ms_chap_error(creds))
        if creds.ms_chap is not None:
            return self._ms_chap(user, creds, req, now, live)
        if creds.digest is not None:
            digest = creds.digest
            if user.password_cleartext is not None:
                ha1 = digest_ha1(digest.username, digest.realm, user.password_cleartext)
            elif (kept := stored_ha1(user.password_hash)) is not None:
                if kept[0] != digest.realm:    # said only in the metric and the log
                    return self._fail_evenly("digest_realm_mismatch")
                ha1 = kept[1]
            else:
                return self._fail_evenly("digest_needs_cleartext_or_ha1")
            ok = digest_matches(digest, ha1)
            return (self._verdict(user, req, now, live) if ok
                    else self._fail_evenly("bad_password"))
        if creds.chap is not None:
            if user.password_cleartext is None:     # said only in the metric and the log
                return self._fail_evenly("chap_needs_cleartext")
            ok = chap_matches(creds.chap, creds.challenge or b"",
                              user.password_cleartext.encode("utf-8"))
            return self._verdict(user, req, now, live) if ok else self._fail_evenly("bad_password")
        assert creds.password is not None
        if user.password_cleartext is not None:
            ok = hmac.compare_digest(creds.password, user.password_cleartext.encode("utf-8"))
            return self._verdict(user, req, now, live) if ok else self._fail_evenly("bad_password")
        if user.password_nt_hash is not None:   # one MD4: no pool, no cache needed
            ok = verify_nt_hash(user.password_nt_hash, creds.password)
            return self._verdict(user, req, now, live) if ok else self._fail_evenly("bad_password")
        if user.password_hash is None:
            return self._fail_evenly("no_password")
        if (ha1_kept := stored_ha1(user.password_hash)) is not None:   # PAP against an HA1
            ok = hmac.compare_digest(ha1_kept[1], digest_ha1(
                creds.user_name, ha1_kept[0], creds.password.decode("utf-8")))
            return (self._verdict(user, req, now, live) if ok
                    else self._fail_evenly("bad_password"))
        stored = user.password_hash
        if self.cache.hit(creds.user_name, creds.password, stored):
            self._metrics.verify_cache.labels("cache_hit").inc()
            if live:
                self._maybe_rehash(user, creds.user_name, creds.password, stored)
            return self._verdict(user, req, now, live)
        d = self._hash(verify_hash, stored, creds.password)

        def verified(ok: bool) -> Reply | Deferred[Reply]:
            self._metrics.verify_cache.labels("ok" if ok else "mismatch").inc()
            if not ok:
                return reject(FAILED, "bad_password")
            self.cache.add(creds.user_name, creds.password or b"", stored)
            if live:
                self._maybe_rehash(user, creds.user_name, creds.password or b"", stored)
            return self._verdict(user, req, now, live)
        return d.addCallback(verified)

    def _maybe_rehash(self, user: UserState, name: str, password: bytes, stored: str) -> None:
        """A hash made with older argon2 parameters is re-hashed with today's
        once the password checked out, in the background: the Accept does not
        wait. Only while no verification waits for the pool, and a few at a
        time, so a login storm is never slowed by it (the next login of the
        user tries again)."""
        if (self._rehash_pending >= _MAX_REHASHES or self._hash_pending
                or not needs_rehash(stored)):
            return
        self._rehash_pending += 1
        user_id = user.user_id

        def store(new: str) -> Deferred[None]:
            def write() -> bool:
                with self._db.writer.begin() as conn:
                    return replace_password_hash(conn, user_id, stored, new)

            def written(replaced: bool) -> None:
                if replaced:
                    self.cache.add(name, password, new)
                self._metrics.rehashes.labels("ok" if replaced else "changed").inc()
            d: Deferred[bool] = self._writer.run(write)
            return d.addCallback(written)

        def failed(f: Failure) -> None:
            self._metrics.rehashes.labels("error").inc()
            log.warning("re-hashing the password of %r failed: %s", name, f.getErrorMessage())

        def done(result: Any) -> Any:
            self._rehash_pending -= 1
            return result
        self._hasher.run(rehash, password).addCallback(store).addErrback(failed).addBoth(done)

    def _ms_chap(self, user: UserState, creds: Access, req: Request[Access],
                 now: int, live: bool = True) -> Deferred[Reply] | Reply:
        """MS-CHAP v1 (RFC 2433) or v2 (RFC 2759) against the NT hash, stored
        or computed from the cleartext; an argon2id hash cannot serve it."""
        response, challenge = creds.ms_chap, creds.challenge or b""
        assert response is not None
        error = _ms_chap_error(creds)
        nt_hash: bytes | None
        if user.password_nt_hash is not None:
            nt_hash = _nt_hash_octets(user.password_nt_hash)
            if nt_hash is None:                  # said only in the metric and the log
                return self._fail_evenly("corrupt_nt_hash", error)
        elif user.password_cleartext is not None:
            nt_hash = mschap.nt_password_hash(user.password_cleartext)
        else:
            return self._fail_evenly("mschap_needs_nt_hash_or_cleartext", error)
        if isinstance(response, mschap.MsChap2Response):
            ok = mschap.verify_v2(challenge, response, creds.name_octets, nt_hash)
        else:
            ok = mschap.verify_v1(challenge, response, nt_hash)
        if not ok:
            return self._fail_evenly("bad_password", error)
        key = nt_hash

        def finish(reply: Reply) -> Reply:
            if reply.code != ACCESS_ACCEPT:      # the password was right; the account says no
                return Reply(reply.code, (*reply.attributes, *_ms_chap_error(creds, 649)),
                             reason=reply.reason)
            extra = mschap.accept_attributes(response, challenge, key, creds.name_octets,
                                             req.client.secret, req.authenticator, _salts())
            return Reply(ACCESS_ACCEPT, (*reply.attributes, *extra, *self._mppe),
                         reason=reply.reason)
        verdict = self._verdict(user, req, now, live)
        # An Accept that writes first (start_login) comes as a Deferred.
        return verdict.addCallback(finish) if isinstance(verdict, Deferred) else finish(verdict)

    def _verdict(self, user: UserState, req: Request[Access], now: int,
                 live: bool = True) -> Reply | Deferred[Reply]:
        """The password matched: apply the account state and the plan at ``now``.

        ``live``: ``user`` was read now (not the outage cache), so an Accept
        may write first (a ticket's first login, replaced sessions)."""
        decision = decide(user.plan, enabled=user.enabled, used=user.used,
                          open_sessions=user.open_sessions, blocks=user.blocks,
                          now=now, tz=self.tz, due_money=user.due_money, held=user.held,
                          expires_at=expires_at(user.validity, now))
        if user.call is not None and user.plan is not None:
            return self._call_verdict(user, user.plan, user.call, decision, req, now)
        if not isinstance(decision, Accept):
            return reject(decision.message, decision.reason)
        accept = Reply(ACCESS_ACCEPT, self._with_reply(
            user, decision, accept_attributes(decision, user.plan, req.client.type)))
        first = starts_clock(user.validity)
        if not live or (not first and decision.replace_sessions == 0):
            return accept
        return self._start(user, req, now, first=first,
                           replace=decision.replace_sessions > 0).addCallback(lambda _: accept)

    def _start(self, user: UserState, req: Request[Access], now: int, *, first: bool,
               replace: bool) -> Deferred[Started]:
        """Write what the Accept needs (store.jobs.login.start_login) on the writer;
        once committed, send the replaced sessions their Disconnect-Requests."""
        max_sessions = user.plan.max_sessions if replace and user.plan is not None else None
        client = req.client.name

        def write() -> Started:
            with self._db.writer.begin() as conn:
                return start_login(conn, user_id=user.user_id, user_name=req.body.user_name,
                                   now=now, first_login=first, max_sessions=max_sessions,
                                   client=client)

        def written(started: Started) -> Started:
            for r in started.replaced:
                log.info("login of %r from %s replaced session %s on %s", req.body.user_name,
                         client, r.acct_session_id, r.client)
            if started.replaced and self._on_replaced is not None:
                self._on_replaced(started.replaced)
            return started

        def failed(f: Any) -> Any:
            self._metrics.db_errors.labels("auth").inc()
            return f
        d: Deferred[Started] = self._writer.run(write)
        return d.addCallbacks(written, failed)

    def _with_reply(self, user: UserState, decision: Accept,
                    computed: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
        """The plan's and the user's reply attributes, the throttle's when
        throttled, then what aaad computed (core.quotas.reply)."""
        configured = configured_reply(user.plan, user.reply, throttled=decision.throttled)
        if not configured:
            return computed
        return with_computed(self._replies.usable(configured), computed)

    def _call_verdict(self, user: UserState, plan: Plan, call: CallState,
                      decision: Decision, req: Request[Access], now: int) -> Reply:
        """A call: a number that is exactly an emergency number always passes
        (core.telephony.emergency), whatever the account says, and is logged;
        otherwise the plan's limits, then the rate, credit, free minutes and
        concurrent calls decide."""
        cisco = req.client.type == "cisco"
        dialled = req.body.called_station_id
        rules = self._call_rules
        entry = rules.emergency(dialled)
        if entry is not None:
            state = ("account enabled" if isinstance(decision, Accept)
                     else f"passed over {decision.reason}" if user.enabled
                     else f"passed over {decision.reason} (disabled account)")
            self._metrics.calls_emergency.inc()
            log.warning("emergency call: %r from %s (%s) to %r (emergency number %s) accepted "
                        "without limits, %s", req.body.user_name, req.client.name,
                        req.source[0], dialled, entry, state)
            return Reply(ACCESS_ACCEPT, (CISCO_ACCEPTED,) if cisco else ())
        if isinstance(decision, Accept):
            ahead = (split_by_band(now, now + AHEAD_S, plan.bands, self.tz)
                     if plan.bands and req.body.direction != INBOUND else None)
            verdict = authorise_call(
                plan, number=rules.numbers.normalise(dialled),
                direction=req.body.direction, emergency=False, table=call.table,
                band=ahead[0][0] if ahead else band_at(now, plan.bands, self.tz)
                if plan.bands else PEAK,
                money=call.money, free_left_s=call.free_left_s, open_in=call.open_in,
                open_out=call.open_out, ahead=ahead)
        else:
            verdict = decision
        if not isinstance(verdict, CallAccept):
            assert isinstance(verdict, Reject)
            r = reject(verdict.message, verdict.reason)
            if cisco:
                r = Reply(r.code, (*r.attributes, *cisco_reject(verdict.reason)),
                          reason=r.reason)
            return r
        assert isinstance(decision, Accept)
        limits = [t for t in (decision.session_timeout_s, verdict.session_timeout_s)
                  if t is not None]
        combined = replace(verdict, session_timeout_s=min(limits) if limits else None,
                           octets_left=decision.octets_left)
        attrs = self._with_reply(user, decision,
                                 accept_attributes(combined, plan, req.client.type))
        if cisco:
            attrs += cisco_accept(combined)
        return Reply(ACCESS_ACCEPT, attrs)

    def _fail_evenly(self, reason: str,
                     extra: tuple[tuple[str, Any], ...] = ()) -> Deferred[Reply]:
        """Reject after the same argon2 work a hashed user's check costs.

        The Reply-Message is always ``FAILED`` (``extra``: the MS-CHAP-Error
        of an MS-CHAP request, the same for every reason): which check failed
        would tell whether the user name exists.
        """
        d = self._hash(verify_hash, dummy_hash(), b"")
        return d.addCallback(lambda _: Reply(
            ACCESS_REJECT, (("Reply-Message", FAILED), *extra), reason=reason))

    def _hash(self, fn: Any, *args: Any) -> Deferred[bool]:
        if self._hash_pending >= self._max_hash_pending:
            raise QueueFull(f"{self._hash_pending} password verifications pending")
        self._hash_pending += 1

        def done(result: Any) -> Any:
            self._hash_pending -= 1
            return result
        d: Deferred[bool] = self._hasher.run(fn, *args)
        return d.addBoth(done)


def _ms_chap_error(creds: Access, code: int = 691) -> tuple[tuple[str, Any], ...]:
    """The MS-CHAP-Error of a reject (RFC 2548 §2.1.5): 691 is a wrong password
    (or an unknown user), 649 an account that may not log in now; none for
    other methods."""
    return mschap.error_attributes(creds.ms_chap, creds.challenge or b"", code)


def _salts() -> tuple[bytes, bytes]:
    """Two different random salts with the top bit set (RFC 2548 §2.4.2)."""
    first = os.urandom(2)
    first = bytes((first[0] | 0x80, first[1]))
    second = bytes((first[0], first[1] ^ 1))
    return first, second


def _nt_hash_octets(stored: str) -> bytes | None:
    """The 16 octets of a stored NT hash; None for a corrupt value (not 32 hex
    digits: written around aaad), which no response may match."""
    try:
        octets = bytes.fromhex(stored)
    except ValueError:
        return None
    return octets if len(octets) == 16 else None
