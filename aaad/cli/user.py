"""``aaad user``: add, show, list, change, disable, enable, suspend, resume and delete users.

Passwords are read from the command line or stdin (``-``) and never printed back.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    fail,
    iso,
    json_option,
    no_user,
    now_s,
    pass_ctx,
    table,
)

__all__ = ["user_group", "suspension_text"]


@click.group("user")
def user_group() -> None:
    """Manage users."""


def _read_password(pw: str) -> str:
    if pw == "-":
        pw = sys.stdin.readline().rstrip("\n")
    if not pw:
        fail("the password must not be empty")
    if len(pw.encode("utf-8")) > 128:
        fail("the password must be at most 128 octets (RFC 2865 §5.2)")
    return pw


def _credential(pw: str, cleartext: bool) -> dict[str, Any]:
    from aaad.credentials import hash_password
    pw = _read_password(pw)
    return ({"password_cleartext": pw, "password_hash": None} if cleartext
            else {"password_cleartext": None, "password_hash": hash_password(pw)})


def _check_plan(c: Context, plan: str | None) -> None:
    from aaad.store import plans as plan_store
    if plan is not None and c.read(plan_store.plan_definition, plan) is None:
        fail(f"no plan {plan!r} (see 'aaad plan list')")


def _check_name(name: str) -> str:
    if not name or len(name.encode("utf-8")) > 253:
        fail("a user name is 1-253 octets (RFC 2865 §5.1)")
    return name


@user_group.command("add")
@click.argument("name")
@click.option("--password", required=True, help="The password; '-' reads it from stdin.")
@click.option("--cleartext", is_flag=True,
              help="Store it in cleartext (needed for CHAP) instead of an argon2id hash.")
@click.option("--plan", default=None)
@click.option("--disabled", is_flag=True, help="Create the user disabled.")
@pass_ctx
def user_add(c: Context, name: str, password: str, cleartext: bool, plan: str | None,
             disabled: bool) -> None:
    """Add a user."""
    from aaad.store import users as user_store
    cred = _credential(password, cleartext)
    _check_plan(c, plan)
    try:
        c.write(user_store.add_user, _check_name(name), plan=plan, enabled=not disabled,
                now=now_s(), **cred)
    except user_store.UserExists:
        fail(f"user {name!r} already exists")
    click.echo(f"added user {name} ({'cleartext' if cleartext else 'hashed'} password)")


def _suspension(u: dict[str, Any]) -> dict[str, Any]:
    """A user's dict for output: the suspensions as ``suspended_by_hand`` ({since,
    reason} or None) and ``suspended_at`` (for non-payment), times in ISO."""
    u = dict(u)
    since, reason = u.pop("held_at"), u.pop("held_reason")
    u["suspended_by_hand"] = None if since is None else {"since": iso(since), "reason": reason}
    u["suspended_at"] = iso(u["suspended_at"]) or None
    return u


def suspension_text(u: dict[str, Any]) -> str:
    """``by hand since T: reason``, ``for non-payment since T``, both, or ``-``."""
    parts = []
    if u["suspended_by_hand"] is not None:
        held = u["suspended_by_hand"]
        parts.append(f"by hand since {held['since']}"
                     + (f": {held['reason']}" if held["reason"] else ""))
    if u["suspended_at"] is not None:
        parts.append(f"for non-payment since {u['suspended_at']}")
    return "; ".join(parts) or "-"


def _show_user(u: dict[str, Any]) -> None:
    for k in ("name", "enabled", "plan", "credential", "open_sessions", "billing"):
        click.echo(f"{k + ':':15} {u.get(k) if u.get(k) is not None else '-'}")
    click.echo(f"{'suspended:':15} {suspension_text(u)}")
    if u.get("tax_exempt"):
        click.echo(f"{'tax exempt:':15} {', '.join(u['tax_exempt'])}")
    if u.get("next_fee_at"):
        click.echo(f"{'plan since:':15} {u['plan_since']}")
        click.echo(f"{'next fee:':15} {u['next_fee_at']}")
    click.echo(f"{'created:':15} {iso(u['created_at'])}")
    click.echo(f"{'updated:':15} {iso(u['updated_at'])}")
    for p in u.get("plan_changes", []):
        click.echo(f"{'plan change:':15} to {p['plan'] or 'no plan'} at {p['at']} "
                   f"(change {p['id']})")


@user_group.command("show")
@click.argument("name")
@json_option
@pass_ctx
def user_show(c: Context, name: str, as_json: bool) -> None:
    """Show one user (never the password)."""
    from aaad.store import sessions as session_store
    from aaad.store import users as user_store
    from aaad.store.jobs.plan_changes import pending_changes

    def get(conn: Any) -> dict[str, Any]:
        data = _suspension(user_store.get_user(conn, name).as_dict())
        data["open_sessions"] = session_store.open_session_count(conn, name)
        user_id = user_store.user_ids(conn, [name])[name]
        data["plan_changes"] = [{"id": p["id"], "plan": p["plan"], "at": iso(p["at"])}
                                for p in pending_changes(conn, user_id)]
        fees = user_store.fee_state(conn, user_id)
        data["plan_since"], data["next_fee_at"] = iso(fees[0]), iso(fees[1])
        return data
    try:
        data = c.read(get)
    except user_store.NoSuchUser:
        no_user(name)
    emit(data, as_json, _show_user)


@user_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@pass_ctx
def user_list(c: Context, limit: int | None, as_json: bool) -> None:
    """List users."""
    from aaad.store import users as user_store
    users = [_suspension(u.as_dict()) for u in c.read(user_store.list_users, limit=limit)]
    emit(users, as_json, lambda us: table(
        [[u["name"], "yes" if u["enabled"] else "no", u["plan"] or "-", u["credential"],
          suspension_text(u)] for u in us], ["NAME", "ENABLED", "PLAN", "PASSWORD", "SUSPENDED"]))


@user_group.command("set")
@click.argument("name")
@click.option("--password", default=None, help="New password; '-' reads it from stdin.")
@click.option("--cleartext/--hashed", default=None,
              help="How to store the new password (default: hashed).")
@click.option("--plan", default=None, help="Plan name; '' removes the plan.")
@click.option("--at", "at_text", default=None, metavar="DATE",
              help="Make the plan change then instead of now: YYYY-MM-DD (local midnight), "
                   "YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS, in the configured time zone.")
@click.option("--cancel-changes", is_flag=True,
              help="Call off the user's plan changes scheduled with --at.")
@click.option("--billing", type=click.Choice(["prepaid", "postpaid"]), default=None,
              help="prepaid: every charge is paid from the balance at once, or the user "
                   "is suspended until a top-up pays it; postpaid: charges go to the export.")
@click.option("--tax-exempt", default=None, metavar="TAXES",
              help="Names of configured taxes the user does not pay, comma-separated; "
                   "'' pays them all.")
@pass_ctx
def user_set(c: Context, name: str, password: str | None, cleartext: bool | None,
             plan: str | None, at_text: str | None, cancel_changes: bool,
             billing: str | None, tax_exempt: str | None) -> None:
    """Change a user's password, plan (now, or --at a later date) or tax exemptions."""
    values: dict[str, Any] = {}
    if password is not None:
        values.update(_credential(password, bool(cleartext)))
    elif cleartext is not None:
        fail("--cleartext/--hashed needs --password")
    if tax_exempt is not None:
        values["tax_exempt"] = _exempt(c, tax_exempt)
    if billing is not None:
        if plan is not None or values or cancel_changes:
            fail("--billing is given alone")
        _set_billing(c, name, billing)
        return
    if at_text is not None and plan is None:
        fail("--at needs --plan")
    if cancel_changes:
        if plan is not None or values:
            fail("--cancel-changes is given alone")
        _cancel_changes(c, name)
        return
    if plan is not None:
        _check_plan(c, plan or None)
    elif not values:
        fail("nothing to change: give --password, --plan, --billing or --tax-exempt")
    if at_text is not None:
        _schedule_change(c, name, plan or None, _local_instant(c, at_text, "--at"), values)
        return
    if plan is None:
        _update(c, name, values, "updated")
        return
    from aaad.core.quotas.plan import format_money
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import change_plan
    try:
        credit = c.write(change_plan, name, plan or None, now=now_s(), tz=c.config.timezone,
                         values=values)
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"updated user {name}" + (f"; credited {format_money(-credit)} of the old "
                                         "plan's fee" if credit else ""))


def _set_billing(c: Context, name: str, mode: str) -> None:
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import set_billing_mode
    try:
        changed = c.write(set_billing_mode, name, mode, now_s())
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"user {name} is {mode}" + ("" if changed else " already"))


def _exempt(c: Context, text: str) -> str | None:
    names = sorted({n.strip() for n in text.split(",") if n.strip()})
    known = {t.name for t in c.config.taxes}
    for n in names:
        if n not in known:
            fail(f"--tax-exempt: no tax {n!r} in the configuration"
                 + (f" (taxes: {', '.join(sorted(known))})" if known else " (it has none)"))
    return ",".join(names) or None


def _local_instant(c: Context, text: str, option: str) -> int:
    """YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM or YYYY-MM-DDTHH:MM:SS in the
    configured zone."""
    from aaad.core.accounting.periods import local_instant
    try:
        return local_instant(text, c.config.timezone)
    except ValueError as e:
        fail(f"{option} {e}")


def _schedule_change(c: Context, name: str, plan: str | None, at: int,
                     values: dict[str, Any]) -> None:
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import schedule_plan_change
    now = now_s()
    if at <= now:
        fail("--at is not in the future (leave it out to change the plan now)")
    try:
        change = c.write(schedule_plan_change, name, plan, at=at, now=now, values=values)
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"user {name}: plan change to {plan or 'no plan'} scheduled for {iso(at)} "
               f"(change {change})")


def _cancel_changes(c: Context, name: str) -> None:
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import cancel_plan_changes
    try:
        n = c.write(cancel_plan_changes, name, now=now_s())
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"user {name}: {n} scheduled plan change{'s' if n != 1 else ''} called off")


def _update(c: Context, name: str, values: dict[str, Any], what: str) -> None:
    from aaad.store import users as user_store
    try:
        c.write(user_store.update_user, name, now=now_s(), **values)
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"{what} user {name}")


_disconnect_option = click.option(
    "--disconnect/--no-disconnect", default=True, show_default=True,
    help="Send a Disconnect-Request (RFC 5176) for each open session.")


def _cut_sessions(c: Context, name: str, disconnect: bool) -> None:
    """After a change that refuses logins: disconnect the open sessions (as
    ``aaad disconnect`` does), unless ``--no-disconnect``."""
    if disconnect:
        from aaad.cli.disconnect import disconnect_user
        disconnect_user(c, name)


@user_group.command("disable")
@click.argument("name")
@_disconnect_option
@pass_ctx
def user_disable(c: Context, name: str, disconnect: bool) -> None:
    """Refuse the user's logins from now on, and disconnect the open sessions."""
    _update(c, name, {"enabled": False}, "disabled")
    _cut_sessions(c, name, disconnect)


@user_group.command("suspend")
@click.argument("name")
@click.option("--reason", default=None, metavar="TEXT",
              help="Why; the user sees it: Reply-Message 'Account suspended: TEXT' "
                   "(at most 200 characters).")
@_disconnect_option
@pass_ctx
def user_suspend(c: Context, name: str, reason: str | None, disconnect: bool) -> None:
    """Suspend the user by hand: logins are refused ('Account suspended') until
    'aaad user resume'; a top-up does not lift it. Open sessions are disconnected."""
    from aaad.core.quotas.decide import check_hold_reason
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import suspend_user
    if reason is not None:
        try:
            reason = check_hold_reason(reason)
        except ValueError as e:
            fail(f"--reason {e}", EXIT_USAGE)
    try:
        done = c.write(suspend_user, name, reason, now_s())
    except user_store.NoSuchUser:
        no_user(name)
    why = f" (reason: {done.reason})" if done.reason else ""
    if done.before is None:
        click.echo(f"suspended user {name} by hand{why}")
    elif done.changed:
        click.echo(f"user {name} is suspended by hand since {iso(done.before.since)}; "
                   f"reason now: {done.reason}")
    else:
        click.echo(f"user {name} is suspended by hand already, since "
                   f"{iso(done.before.since)}{why}")
    _cut_sessions(c, name, disconnect)


@user_group.command("resume")
@click.argument("name")
@pass_ctx
def user_resume(c: Context, name: str) -> None:
    """Lift a suspension: by hand ('aaad user suspend'), and for non-payment if the
    balance now pays what is due (else nothing changes and it exits 1). A user
    who is not suspended is left as is (exit 0)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store import users as user_store
    from aaad.store.jobs.accounts import resume_user
    from aaad.store.jobs.suspension import StillDue
    try:
        done, enabled = c.write(resume_user, name, now_s())
    except user_store.NoSuchUser:
        no_user(name)
    except StillDue as e:
        fail(f"{name} is suspended for non-payment: {format_money(e.due)} due and only "
             f"{format_money(e.available)} available; top up ('aaad credit topup {name} "
             f"AMOUNT') or promise a payment ('aaad credit promise {name} AMOUNT'); "
             "nothing changed")
    if not done.changed:
        click.echo(f"user {name} is not suspended; nothing changed")
        return
    parts = []
    if done.hold is not None:
        parts.append("lifted the suspension by hand" + (
            f" (reason was: {done.hold.reason})" if done.hold.reason else ""))
    if done.unpaid_suspension:
        parts.append(f"paid {format_money(done.paid)} that was due")
    click.echo(f"resumed user {name}: {'; '.join(parts)}"
               + ("" if enabled else f" (still disabled: 'aaad user enable {name}')"))


@user_group.command("enable")
@click.argument("name")
@pass_ctx
def user_enable(c: Context, name: str) -> None:
    """Allow the user's logins again."""
    _update(c, name, {"enabled": True}, "enabled")


@user_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def user_delete(c: Context, name: str, yes: bool) -> None:
    """Delete a user (their sessions and usage history are kept).

    Without --yes it asks on a terminal, and refuses when stdin is not one
    (a script must say --yes).
    """
    from aaad.store import users as user_store
    if not yes:
        if not sys.stdin.isatty():
            fail(f"refusing to delete {name} without --yes (stdin is not a terminal)",
                 EXIT_USAGE)
        click.confirm(f"delete user {name}?", abort=True)
    try:
        c.write(user_store.delete_user, name)
    except user_store.NoSuchUser:
        no_user(name)
    click.echo(f"deleted user {name}")


# ``aaad user import``: its own module, as it is long.
from aaad.cli.user_import import user_import  # noqa: E402

user_group.add_command(user_import)
