"""``aaad usage show``: a user's usage in one period, against the plan's limits."""

from __future__ import annotations

from typing import Any

import click

from aaad.cli.common import (
    Context,
    emit,
    fail,
    free_lines,
    in_tenant,
    json_option,
    no_user,
    now_s,
    pass_ctx,
    require_known,
    table,
    tenant_of,
    tenant_option,
)

__all__ = ["usage_group"]


@click.group("usage")
def usage_group() -> None:
    """Usage counters."""


@usage_group.command("show")
@click.argument("name")
@click.option("--period", default=None, help="YYYY-MM (monthly) or YYYY-MM-DD; default: now.")
@json_option
@tenant_option
@pass_ctx
def usage_show(c: Context, name: str, period: str | None, as_json: bool,
               tenant: str | None) -> None:
    """A user's usage in one period: used, limit and remaining per limit, per band,
    free minutes and free credit left, blocks; billing mode and suspensions."""
    from aaad.core.units import format_duration_s, format_octets
    from aaad.store.reports import usage_report
    cfg = c.config
    now = now_s()

    def read(conn: Any) -> dict[str, Any]:
        from aaad.store import users as user_store
        tid = tenant_of(conn, tenant)
        try:
            report: dict[str, Any] = usage_report(conn, name, period=period, now=now,
                                                  default_period=cfg.accounting.period,
                                                  tz=cfg.timezone, free=True, tenant=tid)
        except ValueError as e:
            fail(str(e))
        # after the period check: bad input first
        if tenant is None:
            require_known(conn, name)
        elif not user_store.user_ids(conn, [name], tenant=tid):
            no_user(in_tenant(name, tenant))
        report["billing"] = _billing(conn, name, tid)
        report["suspended_by_hand"] = _hold(conn, name, tid)
        return report

    def fmt(value: int, unit: str) -> str:
        return (format_duration_s(value) if unit == "s" else
                format_octets(value) if unit == "octets" else str(value))

    def render(d: dict[str, Any]) -> None:
        click.echo(f"user:    {d['user']}   plan: {d['plan'] or '-'}")
        click.echo(f"period:  {d['period']} ({d['period_start']} to {d['period_end'] or '-'})")
        click.echo(f"time:    {format_duration_s(d['session_s'])} ({d['session_s']} s)")
        click.echo(f"in:      {format_octets(d['in_octets'])} ({d['in_octets']} octets)")
        click.echo(f"out:     {format_octets(d['out_octets'])} ({d['out_octets']} octets)")
        if d["limits"]:
            table([[x["limit"], fmt(x["used"], x["unit"]), fmt(x["limit_value"], x["unit"]),
                    fmt(x["remaining"], x["unit"])] for x in d["limits"]],
                  ["LIMIT", "USED", "LIMIT", "REMAINING"])
        for band, t in sorted(d["bands"].items()):
            click.echo(f"band {band}: {format_duration_s(t['session_s'])}, "
                       f"{format_octets(t['in_octets'] + t['out_octets'])}")
        for line in free_lines(d):
            click.echo(line)
        money = d.get("billing")
        if money is not None:
            line = f"billing: {money['mode']}"
            if money["next_fee_at"]:
                line += f", next fee {money['next_fee_at']}"
            if money["suspended_at"]:
                line += f", suspended since {money['suspended_at']} with {money['due']} due"
            if money["promise"]:
                line += (f", promised {money['promise']['amount']} until "
                         f"{money['promise']['expires_at']}")
            click.echo(line)
        held = d.get("suspended_by_hand")
        if held is not None:
            click.echo(f"suspended by hand since {held['since']}"
                       + (f": {held['reason']}" if held["reason"] else ""))
        for b in d["blocks"]:
            state = "expired" if b["expired"] else f"{format_duration_s(b['seconds_left'])} left"
            click.echo(f"block {b['id']}: {format_duration_s(b['seconds_total'])}, {state}, "
                       f"expires {b['expires_at']}")
    emit(c.read(read), as_json, render)


def _hold(conn: Any, name: str, tenant: int) -> dict[str, Any] | None:
    """A suspension by hand of the account (``aaad user suspend``): since, reason."""
    from aaad.cli.common import iso
    from aaad.store import users as user_store
    try:
        hold = user_store.get_user(conn, name, tenant=tenant).hold
    except user_store.NoSuchUser:
        return None
    return None if hold is None else {"since": iso(hold.since), "reason": hold.reason}


def _billing(conn: Any, name: str, tenant: int) -> dict[str, Any] | None:
    """The money side of an account (None for a name that has no account): billing
    mode, next fee, what is due and since when it is suspended, a promised payment."""
    from aaad.cli.common import iso
    from aaad.core.quotas.plan import format_money
    from aaad.store import ledger as ledger_store
    from aaad.store import users as user_store
    try:
        user_store.get_user(conn, name, tenant=tenant)
    except user_store.NoSuchUser:
        return None
    uid = user_store.user_ids(conn, [name], tenant=tenant)[name]
    mode, suspended_at = user_store.billing_state(conn, uid)
    _, next_fee_at = user_store.fee_state(conn, uid)
    owed = ledger_store.dues(conn, [uid]).get(uid, 0) if mode == "prepaid" else 0
    promised = ledger_store.promise_of(conn, uid)
    return {"mode": mode, "next_fee_at": iso(next_fee_at) or None,
            "due": format_money(owed),
            "suspended_at": iso(suspended_at) if suspended_at is not None else None,
            "promise": None if promised is None else {
                "amount": format_money(promised.amount),
                "expires_at": iso(promised.expires_at)}}

