"""The money keys of the configuration: ``billing:`` and ``taxes:``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aaad.config.model import BillingConfig, ConfigError
from aaad.core.billing.taxes import Tax, TaxError, parse_taxes

if TYPE_CHECKING:
    from aaad.config.loader import _Reader

__all__ = ["billing_section", "taxes_section"]


def taxes_section(r: _Reader) -> tuple[Tax, ...]:
    """The ``taxes:`` list (core.billing.taxes checks it, naming the key path)."""
    r.seen.add("taxes")
    try:
        return parse_taxes(r.data.get("taxes") or [], r.key("taxes"))
    except TaxError as e:
        raise ConfigError(e.path, e.message) from None


def billing_section(r: _Reader) -> BillingConfig:
    days = r.get("close_after_days", _close_days, None)
    grace = r.get("grace_days", _close_days, None) or 0
    revoke = r.get("revoke_after_days", _close_days, None)
    if revoke is not None and revoke < grace:
        raise ConfigError(r.key("revoke_after_days"), "must not be shorter than grace_days")
    r.done()
    return BillingConfig(close_after_days=days, grace_days=grace, revoke_after_days=revoke)


def _close_days(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 366:
        raise ValueError("must be a number of days 0-366, or null")
    return v
