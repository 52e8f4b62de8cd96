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

from dataclasses import dataclass

__all__ = ["Validity", "expires_at", "starts_clock"]


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
