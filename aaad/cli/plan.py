"""``aaad plan``: add, change, show, list, delete and apply (from YAML) plans."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    fail,
    json_option,
    now_s,
    pass_ctx,
    table,
    tenant_of,
    tenant_option,
)

if TYPE_CHECKING:
    from aaad.core.quotas.plan import Plan

__all__ = ["plan_group"]


@click.group("plan")
def plan_group() -> None:
    """Manage plans (limits, bands, blocks)."""


def _plan_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--period", type=click.Choice(["monthly", "weekly", "daily", "none"])),
        click.option("--billing-day", type=click.IntRange(1, 28)),
        click.option("--time-limit", help="e.g. 150h; 'none' removes it"),
        click.option("--octets-limit", help="e.g. 50GB; 'none' removes it"),
        click.option("--octets-direction", type=click.Choice(["in", "out", "total"])),
        click.option("--max-sessions", help="a number; 'none' removes it"),
        click.option("--on-max-sessions", type=click.Choice(["reject", "replace-oldest"]),
                     help="at max-sessions: refuse the new login, or close the oldest "
                          "session for it"),
        click.option("--over-limit",
                     type=click.Choice(["reject", "disconnect", "bill", "throttle"]),
                     help="throttle needs throttle_reply: set it with 'aaad plan apply'"),
        click.option("--overage-per-hour", help="price per hour above the cap, e.g. 1.20"),
        click.option("--overage-per-gb", help="price per GB above the cap, e.g. 0.50"),
        click.option("--fee", help="price per cycle, billed in advance, e.g. 29.90; "
                                   "'none' removes it"),
        click.option("--cycle-months", type=click.Choice(["1", "3", "6", "12"])),
        click.option("--setup-fee", help="once per assignment to a user; 'none' removes it"),
        click.option("--free-credit", help="granted at each renewal, spent first, e.g. 5.00; "
                                           "'none' removes it"),
        click.option("--free-credit-cap", help="most free credit carried (allowance carry)"),
        click.option("--allowance", type=click.Choice(["reset", "carry"]),
                     help="what is left of free minutes and free credit at a renewal"),
    ]):
        f = opt(f)
    return f


def _apply_options(base: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    d = dict(base)
    if opts.get("allowance") is not None and isinstance(d.get("free_minutes"), dict):
        # --allowance is the new spelling of the free minutes' rollover: it replaces it.
        d["free_minutes"] = {k: v for k, v in d["free_minutes"].items()
                             if k != "rollover" and (k != "rollover_cap"
                                                     or opts["allowance"] == "carry")}
    if opts.get("allowance") == "reset":
        d.pop("free_credit_cap", None)
    if opts.get("max_sessions") == "none":
        d.pop("on_max_sessions", None)      # it says what happens at max_sessions
    if opts.get("free_credit") == "none":
        d.pop("free_credit_cap", None)
        if "free_minutes" not in d:
            d.pop("allowance", None)
    for key in ("period", "billing_day", "time_limit", "octets_limit", "octets_direction",
                "max_sessions", "on_max_sessions", "over_limit", "fee", "cycle_months",
                "setup_fee", "free_credit", "free_credit_cap", "allowance"):
        v = opts.get(key)
        if v is None:
            continue
        if v == "none" and key != "period":     # --period none is the lifetime period
            d.pop(key, None)
        elif key == "cycle_months":
            d[key] = int(v)
        elif key == "max_sessions":
            try:
                d[key] = int(v)
            except ValueError:
                fail("--max-sessions must be a number or 'none'")
        else:
            d[key] = v
    price = dict(d.get("overage_price") or {})
    for key, opt in (("per_hour", "overage_per_hour"), ("per_gb", "overage_per_gb")):
        if opts.get(opt) is not None:
            price[key] = opts[opt]
    if price:
        d["overage_price"] = price
    return d


def _save_plan(c: Context, definition: dict[str, Any], path: str = "plan",
               tenant: str | None = None) -> tuple[Plan, str]:
    from aaad.core.quotas.plan_parse import parse_plan
    from aaad.radius.reply_check import check_plan_replies
    from aaad.store.jobs.fees import save_plan
    from aaad.store.plans import plan_to_json
    try:
        plan = check_plan_replies(parse_plan(definition, path), c.dictionary, path)
    except ValueError as e:
        fail(str(e))
    return plan, c.write(lambda conn: save_plan(conn, plan.name, plan_to_json(plan), now=now_s(),
                                                tz=c.config.timezone,
                                                tenant=tenant_of(conn, tenant)))


def _stored_name(name: str, tenant: str | None, *, new: bool = False) -> str:
    """A plan's stored name: ``<tenant>/<name>`` for a tenant's (store.tenants.qualify).
    A new plan's own name cannot contain ``/``, which separates the two."""
    from aaad.store import tenants as tenant_store
    if new and tenant_store.SEPARATOR in name:
        fail(f"a plan name cannot contain {tenant_store.SEPARATOR!r} (a tenant's plans: "
             "--tenant TENANT)", EXIT_USAGE)
    stored = tenant_store.qualify(tenant, name)
    if len(stored) > 64:
        fail(f"the plan name {stored!r} is longer than 64 characters", EXIT_USAGE)
    return stored


def _definition(c: Context, name: str, tenant: str | None) -> str:
    """The stored definition of ``tenant``'s plan ``name``; exits ``no plan``."""
    from aaad.store import plans as plan_store
    stored = _stored_name(name, tenant)

    def read(conn: Any) -> str | None:
        tid = tenant_of(conn, tenant)
        if plan_store.plan_owner(conn, stored) != tid:
            return None
        return plan_store.plan_definition(conn, stored)
    definition: str | None = c.read(read)
    if definition is None:
        fail(f"no plan {name!r}" + ("" if tenant is None else f" of tenant {tenant}"))
    return definition


@plan_group.command("add")
@click.argument("name")
@_plan_options
@tenant_option
@pass_ctx
def plan_add(c: Context, /, name: str, tenant: str | None, **opts: Any) -> None:
    """Add a plan (bands and blocks: use 'aaad plan apply FILE.yaml'). A
    tenant's plan (--tenant) is named NAME within the tenant and stored as
    TENANT/NAME; the tenant's users may be on it and on the operator's plans."""
    from aaad.store import plans as plan_store
    stored = _stored_name(name, tenant, new=True)

    def exists(conn: Any) -> bool:
        tenant_of(conn, tenant)             # the tenant exists, or exit
        return plan_store.plan_definition(conn, stored) is not None
    if c.read(exists):
        fail(f"plan {stored!r} already exists (use 'aaad plan set')")
    plan, _ = _save_plan(c, _apply_options({"name": stored}, opts), tenant=tenant)
    click.echo(f"added plan {plan.name}")


@plan_group.command("set")
@click.argument("name")
@_plan_options
@tenant_option
@pass_ctx
def plan_set(c: Context, /, name: str, tenant: str | None, **opts: Any) -> None:
    """Change a plan's limits."""
    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store.plans import plan_from_json
    stored = _definition(c, name, tenant)
    _, result = _save_plan(c, _apply_options(plan_to_dict(plan_from_json(stored)), opts),
                           tenant=tenant)
    click.echo(f"plan {_stored_name(name, tenant)}: {result}")


@plan_group.command("show")
@click.argument("name")
@json_option
@tenant_option
@pass_ctx
def plan_show(c: Context, name: str, as_json: bool, tenant: str | None) -> None:
    """Show a plan in human units."""
    import yaml

    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store.plans import plan_from_json
    data = plan_to_dict(plan_from_json(_definition(c, name, tenant)))
    emit(data, as_json, lambda d: click.echo(yaml.safe_dump(d, sort_keys=False).rstrip()))


@plan_group.command("list")
@json_option
@tenant_option
@pass_ctx
def plan_list(c: Context, as_json: bool, tenant: str | None) -> None:
    """List the operator's plans, or with --tenant the plans a tenant's users
    may be on (its own, then the operator's)."""
    from aaad.core.accounting.realms import OPERATOR
    from aaad.core.quotas.plan import plan_to_dict
    from aaad.store import plans as plan_store
    from aaad.store.plans import plan_from_json

    def read(conn: Any) -> list[tuple[str, str]]:
        tid = tenant_of(conn, tenant)
        own = plan_store.list_plans(conn, tenant=tid) if tid != OPERATOR else []
        return own + plan_store.list_plans(conn, tenant=OPERATOR)
    plans = [plan_to_dict(plan_from_json(d)) for _, d in c.read(read)]
    emit(plans, as_json, lambda ps: table(
        [[p["name"], p["period"], p.get("time_limit", "-"), p.get("octets_limit", "-"),
          str(p.get("max_sessions", "-")), p["over_limit"], str(len(p.get("bands", []))),
          _fee_text(p)]
         for p in ps], ["NAME", "PERIOD", "TIME", "DATA", "SESSIONS", "OVER LIMIT", "BANDS",
                        "FEE"]))


def _fee_text(p: dict[str, Any]) -> str:
    if "fee" not in p:
        return "-"
    months = p["cycle_months"]
    return f"{p['fee']}/month" if months == 1 else f"{p['fee']}/{months} months"


@plan_group.command("delete")
@click.argument("name")
@tenant_option
@pass_ctx
def plan_delete(c: Context, name: str, tenant: str | None) -> None:
    """Delete a plan no user is on."""
    from aaad.store import plans as plan_store
    _definition(c, name, tenant)        # the tenant's own, or exit
    try:
        c.write(plan_store.delete_plan, _stored_name(name, tenant))
    except plan_store.NoSuchPlan:
        fail(f"no plan {name!r}")
    except plan_store.PlanInUse as e:
        fail(str(e))
    click.echo(f"deleted plan {_stored_name(name, tenant)}")


@plan_group.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def plan_apply(c: Context, file: str) -> None:
    """Create or update every plan in a YAML file (applying it twice changes nothing)."""
    import yaml

    from aaad.core.quotas.plan_parse import parse_plans
    from aaad.store.jobs.fees import save_plan
    from aaad.store.plans import plan_to_json
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"{file}: cannot read: {e.strerror}")
    except yaml.YAMLError:
        fail(f"{file}: not valid YAML")
    from aaad.radius.reply_check import check_plan_replies
    try:
        plans = [check_plan_replies(p, c.dictionary, f"plans[{i}]")
                 for i, p in enumerate(parse_plans(data))]
    except ValueError as e:
        fail(f"{file}: {e}")
    now = now_s()

    def save_all(conn: Any) -> list[tuple[str, str]]:
        return [(p.name, save_plan(conn, p.name, plan_to_json(p), now=now, tz=c.config.timezone))
                for p in plans]
    for name, result in c.write(save_all):
        click.echo(f"plan {name}: {result}")
