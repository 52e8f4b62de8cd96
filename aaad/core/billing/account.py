"""One user's balance, prepaid or postpaid, and suspension for what is due (DESIGN §7).

Prepaid: a charge is debited when it fits in what is available, else it is
recorded as due and the user is suspended. A top-up (or a promised payment)
that makes everything due affordable debits it all at once and resumes the
user. Postpaid: charges are not debited here; they accumulate in the ledger
for the invoice export, and a postpaid user is never suspended for them.

The rules chosen:

* **Available** is ``balance + credit_limit + unexpired promise − due``: the
  DESIGN §7 formula, less what is already owed, since dues have the first
  claim on any money that comes in. A promise is unexpired while
  ``now < expires_at``.
* **No partial debit.** A charge is debited whole or recorded as due whole,
  never split: a ledger line stays one amount under one reference. While
  anything is due, every new charge is recorded as due too, so charges are
  paid in the order they came.
* **Settle all or nothing.** A top-up settles the dues only when what is then
  available covers all of them; it then debits them together and resumes the
  user. Otherwise it settles nothing and the user stays suspended.
* **A top-up pays a promise first.** A promised payment is credit extended
  against a payment to come, so a top-up reduces the promise by what it
  brings (to nothing at most) before the balance counts it: a user who
  promised 10 and pays 10 has 10 more balance and no promise left, not 20
  to spend.
* **Suspended iff due.** ``suspended_at`` is set exactly when ``due > 0``,
  which only a prepaid account can have; :class:`Account` refuses anything
  else. The expiry of a promise does not by itself suspend anyone; the next
  charge that does not fit does.

Rounding, the one rule of the billing package: amounts reaching this module
are already whole 1/10,000 units (rounded once per line, halves away from
zero, by :mod:`~aaad.core.billing.prorata` and :mod:`~aaad.core.billing.taxes`);
here money is only added and compared, exactly, as integers. Instants are
POSIX seconds passed in as ``now``; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "Account",
    "Promise",
    "TopupOutcome",
    "BILLING_MODES",
    "STATES",
    "available",
    "settle",
    "state",
]

BILLING_MODES = ("prepaid", "postpaid")
STATES = ("active", "grace", "suspended", "revoked")


@dataclass(frozen=True, slots=True)
class Promise:
    """A promised payment: ``amount`` (1/10,000 units) of credit until ``expires_at``."""

    amount: int
    expires_at: int

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError(f"a promise must not be negative, got {self.amount}")

    def active(self, now: int) -> bool:
        """Whether the promise still counts at ``now`` (the expiry second does not)."""
        return now < self.expires_at and self.amount > 0


@dataclass(frozen=True, slots=True)
class Account:
    """A user's money state, in 1/10,000 units.

    ``balance`` may be negative (down to ``-credit_limit``, or lower once a
    promise it relied on has expired). ``due`` is the sum of charges recorded
    but not debited; ``suspended_at`` is when the first of them was recorded.
    """

    billing: str                    # prepaid | postpaid
    balance: int
    credit_limit: int = 0
    promise: Promise | None = None
    due: int = 0
    suspended_at: int | None = None

    def __post_init__(self) -> None:
        if self.billing not in BILLING_MODES:
            raise ValueError(f"billing must be prepaid or postpaid, got {self.billing!r}")
        if self.credit_limit < 0:
            raise ValueError(f"credit_limit must not be negative, got {self.credit_limit}")
        if self.due < 0:
            raise ValueError(f"due must not be negative, got {self.due}")
        if self.billing == "postpaid" and self.due:
            raise ValueError("a postpaid account has nothing due")
        if (self.suspended_at is not None) != (self.due > 0):
            raise ValueError("an account is suspended exactly when something is due")


@dataclass(frozen=True, slots=True)
class TopupOutcome:
    """What a top-up (or promise) did: dues ``settled`` (debited), and whether it resumed."""

    account: Account
    settled: int
    resume: bool


def available(acct: Account, now: int) -> int:
    """What a new charge may use: balance + credit limit + unexpired promise − due."""
    promised = acct.promise.amount if acct.promise is not None and acct.promise.active(now) else 0
    return acct.balance + acct.credit_limit + promised - acct.due


def settle(acct: Account, now: int) -> TopupOutcome:
    """Debit all dues at once if what is available at ``now`` covers them all; else nothing.

    store.ledger.settle calls it after anything that raises the available
    money: a top-up, a promise, a higher credit limit, a new charge.
    """
    acct = _without_expired(acct, now)
    # available() already subtracts the dues: covering them all is ≥ 0.
    if acct.due == 0 or available(acct, now) < 0:
        return TopupOutcome(acct, settled=0, resume=False)
    return TopupOutcome(replace(acct, balance=acct.balance - acct.due, due=0, suspended_at=None),
                        settled=acct.due, resume=True)


def state(acct: Account, now: int, *, grace_s: int, revoke_after_s: int | None) -> str:
    """The user's standing at ``now``: one of :data:`STATES`.

    ``active``: nothing due. ``grace``: suspended for less than ``grace_s``
    (logins still accepted). ``suspended``: for longer. ``revoked``: for
    ``revoke_after_s`` or more (``None``: never revoked).

    Raises:
        ValueError: a negative ``grace_s``, or ``revoke_after_s`` below it.
    """
    if grace_s < 0:
        raise ValueError(f"grace_s must not be negative, got {grace_s}")
    if revoke_after_s is not None and revoke_after_s < grace_s:
        raise ValueError(f"revoke_after_s ({revoke_after_s}) is shorter than grace_s ({grace_s})")
    if acct.suspended_at is None:
        return "active"
    # Two nodes' clocks may disagree by a little: before the suspension is no time at all.
    elapsed = max(0, now - acct.suspended_at)
    if revoke_after_s is not None and elapsed >= revoke_after_s:
        return "revoked"
    return "grace" if elapsed < grace_s else "suspended"


# --- internals -----------------------------------------------------------------

def _without_expired(acct: Account, now: int) -> Account:
    """The account without a promise that no longer counts, so it is not carried on."""
    if acct.promise is not None and not acct.promise.active(now):
        return replace(acct, promise=None)
    return acct
