"""Hotspot tickets: logins whose validity starts at their first use (DESIGN §4).

A ticket is a user account made to be handed out (``aaad voucher create
--login``): a printed user name and password, optionally valid for a
duration from the first login (``valid_s``, FreeRADIUS's ``Expire-After``,
MikroTik user-manager's validity), optionally usable only until a fixed
instant (``expires_at``, FreeRADIUS's ``Expiration``), and optionally with
an amount of time or data, which its plan (period ``none``) holds it to.

The clock starts at the first Access-Accept: that login is recorded
(``first_login_at``) before the Accept is sent. From then on the ticket
expires at ``first_login_at + valid_s`` (or ``expires_at``, if sooner): a
login after that is rejected with ``Ticket expired``, and Session-Timeout is
never past it. The functions here are pure; the store records the first
login, :func:`aaad.core.quotas.decide.decide` applies the expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Validity", "expires_at", "starts_clock", "TermsError", "MAX_PREFIX_CHARS",
           "good_prefix", "ticket_amount", "check_terms"]

MAX_PREFIX_CHARS = 32


@dataclass(frozen=True, slots=True)
class Validity:
    """How long an account may log in; all ``None`` for an ordinary user."""

    valid_s: int | None = None          # from the first login
    first_login_at: int | None = None   # when the clock started (None: unused yet)
    until: int | None = None            # a fixed instant, whatever the first login


def expires_at(v: Validity, now: int) -> int | None:
    """The first instant the account no longer logs in, for a login at ``now``:
    ``first_login_at + valid_s`` (``now + valid_s`` for its first login) or
    ``until``, whichever comes first; ``None``: it does not expire."""
    ends = [v.until] if v.until is not None else []
    if v.valid_s is not None:
        start = now if v.first_login_at is None else v.first_login_at
        ends.append(start + v.valid_s)
    return min(ends) if ends else None


def starts_clock(v: Validity) -> bool:
    """Whether an Accept now is the first login, which the store must record
    before the Accept goes out (only accounts with ``valid_s`` have a clock)."""
    return v.valid_s is not None and v.first_login_at is None


class TermsError(ValueError):
    """A ticket's terms that cannot make a ticket. ``field`` is the option at
    fault: ``valid``, ``time``, ``data``, ``plan``, ``expires`` or ``prefix``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def good_prefix(prefix: str) -> bool:
    """A user name prefix: at most 32 letters, digits, ``-``, ``_`` or ``.``."""
    return len(prefix) <= MAX_PREFIX_CHARS and all(
        ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in prefix)


def ticket_amount(text: str | None, field: str, parse: Callable[[str], int], *,
                  name: Callable[[str], str] = str) -> int | None:
    """A duration or size as given (``24h``, ``1G``), read by ``parse``, more
    than 0; None if not given. ``name`` says a field as the caller's user
    knows it (``--valid`` on the command line, ``valid`` in the API).

    Raises:
        TermsError: unreadable, or not more than 0.
    """
    if text is None:
        return None
    try:
        n = parse(text)
    except ValueError as e:
        raise TermsError(field, f"{name(field)}: {e}") from None
    if n <= 0:
        raise TermsError(field, f"{name(field)} must be more than 0")
    return n


def check_terms(*, valid_s: int | None, time_s: int | None, octets: int | None,
                plan: str | None, until: int | None, prefix: str,
                name: Callable[[str], str] = str) -> None:
    """What ``voucher create --login`` and ``POST /v1/tickets`` both refuse: a
    plan and amounts together (the amounts make a plan of their own), no
    limit at all, a bad user name prefix.

    Raises:
        TermsError: the first of those found.
    """
    if plan is not None and (time_s is not None or octets is not None):
        raise TermsError("plan", f"{name('plan')} or {name('time')}/{name('data')}, not both "
                         f"(the amounts make a plan of their own: put them in "
                         f"{name('plan')}'s time_limit/octets_limit with period none)")
    if valid_s is None and time_s is None and octets is None and plan is None and until is None:
        raise TermsError("valid", f"a ticket needs a limit: {name('valid')}, {name('time')}, "
                         f"{name('data')}, {name('plan')} or {name('expires')}")
    if not good_prefix(prefix):
        raise TermsError("prefix", f"{name('prefix')} must be at most {MAX_PREFIX_CHARS} "
                         "letters, digits, '-', '_' or '.'")
