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
    in_tenant,
    iso,
    json_option,
    no_user,
    now_s,
    pass_ctx,
    table,
    tenant_of,
    tenant_option,
    write_user,
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


def _read_nt_hash(text: str) -> str:
    from aaad.credentials import parse_nt_hash
    if text == "-":
        text = sys.stdin.readline().rstrip("\n")
    parsed = parse_nt_hash(text)
    if parsed is None:       # never the value: it is a secret
        fail("--nt-hash must be 32 hex digits (MD4 of the UTF-16LE password)")
    assert parsed is not None
    return parsed


def _form(cleartext: bool | None, password_hash: str | None) -> str:
    """The stored form --cleartext and --password-hash ask for (argon2id by default)."""
    if cleartext and password_hash is not None:
        raise click.UsageError("give --cleartext or --password-hash, not both")
    return "cleartext" if cleartext else password_hash or "argon2id"


def _credential(pw: str | None, form: str, nt_hash: str | None = None, *, name: str = "",
                realm: str | None = None) -> dict[str, Any]:
    """The password columns: ``pw`` stored as ``form``, or a given NT hash.

    ``form`` "ha1" keeps only the SIP Digest HA1, MD5(name:realm:password), with
    its ``realm`` (SIP Digest and PAP); the password itself is not kept."""
    from aaad.credentials import columns
    from aaad.radius.authenticators import HA1_PREFIX, digest_ha1
    if form == "ha1":
        if not realm or "$" in realm:
            fail("--password-hash ha1 needs --realm (the SIP Digest realm, no '$')")
        assert pw is not None and realm is not None
        ha1 = digest_ha1(name, realm, _read_password(pw))
        return {"password_cleartext": None, "password_nt_hash": None,
                "password_hash": f"{HA1_PREFIX}{realm}${ha1}"}
    if realm is not None:
        fail("--realm goes with --password-hash ha1")
    if nt_hash is not None:
        return columns(nt_hash_hex=_read_nt_hash(nt_hash))
    assert pw is not None
    return columns(password=_read_password(pw), form=form)


FORM_TEXT = {"argon2id": "hashed", "cleartext": "cleartext", "nt": "NT-hash",
             "ha1": "SIP HA1"}

password_hash_option = click.option(
    "--password-hash", type=click.Choice(["argon2id", "nt", "ha1"]), default=None,
    help="How to store --password: argon2id (the default; PAP only), nt, its NT hash "
         "(PAP and MS-CHAP v1/v2), or ha1, the SIP Digest MD5(name:realm:password) for "
         "--realm (SIP Digest and PAP). --cleartext stores it as it is (PAP, CHAP, "
         "MS-CHAP, SIP Digest).")
nt_hash_option = click.option(
    "--nt-hash", default=None, metavar="HEX",
    help="Instead of --password: the NT hash (32 hex digits, MD4 of the UTF-16LE "
         "password) to store; '-' reads it from stdin.")
realm_option = click.option("--realm", default=None,
                            help="The SIP Digest realm of --password-hash ha1.")



def _check_plan(c: Context, plan: str | None, tenant: str | None = None) -> str | None:
    """The stored name of the plan ``plan`` a user of ``tenant`` may be on:
    the tenant's own plan of that name, else the operator's (docs/design.md
    "Tenants"). Exits ``no plan`` otherwise."""
    from aaad.store import plans as plan_store
    from aaad.store import tenants as tenant_store
    if plan is None:
        return None
    candidates = [plan] if tenant is None else [tenant_store.qualify(tenant, plan), plan]

    def find(conn: Any) -> str | None:
        return plan_store.plan_for_user(conn, tenant_of(conn, tenant), candidates)
    stored: str | None = c.read(find)
    if stored is None:
        where = "" if tenant is None else f" of tenant {tenant} or the operator"
        fail(f"no plan {plan!r}{where} (see 'aaad plan list"
             + ("')" if tenant is None else f" --tenant {tenant}')"))
    return stored


def _check_name(name: str) -> str:
    if not name or len(name.encode("utf-8")) > 253:
        fail("a user name is 1-253 octets (RFC 2865 §5.1)")
    return name


@user_group.command("add")
@click.argument("name")
@click.option("--password", default=None, help="The password; '-' reads it from stdin.")
@click.option("--cleartext", is_flag=True,
              help="Store it in cleartext (needed for CHAP) instead of an argon2id hash.")
@password_hash_option
@nt_hash_option
@realm_option
@click.option("--plan", default=None)
@click.option("--disabled", is_flag=True, help="Create the user disabled.")
@tenant_option
@pass_ctx
def user_add(c: Context, name: str, password: str | None, cleartext: bool,
             password_hash: str | None, nt_hash: str | None, realm: str | None,
             plan: str | None, disabled: bool, tenant: str | None) -> None:
    """Add a user (of a tenant with --tenant: names are unique per tenant)."""
    from aaad.store import users as user_store
    if password is None and nt_hash is None:
        raise click.UsageError("Missing option '--password' (or '--nt-hash').")
    if password is not None and nt_hash is not None:
        raise click.UsageError("give --password or --nt-hash, not both")
    if nt_hash is not None and (cleartext or password_hash is not None):
        raise click.UsageError("--cleartext and --password-hash go with --password, "
                               "not --nt-hash")
    form = "nt" if nt_hash is not None else _form(cleartext, password_hash)
    cred = _credential(password, form, nt_hash, name=name, realm=realm)
    stored = _check_plan(c, plan, tenant)
    now = now_s()
    try:
        c.write(lambda conn: user_store.add_user(
            conn, _check_name(name), plan=stored, enabled=not disabled, now=now,
            tenant=tenant_of(conn, tenant), **cred))
    except user_store.UserExists:
        fail(f"user {name!r} already exists" + ("" if tenant is None else f" in tenant {tenant}"))
    click.echo(f"added user {in_tenant(name, tenant)} ({FORM_TEXT[form]} password)")


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
    for k in ("name", "tenant", "enabled", "plan", "credential", "open_sessions", "billing"):
        click.echo(f"{k + ':':15} {u.get(k) if u.get(k) is not None else '-'}")
    click.echo(f"{'suspended:':15} {suspension_text(u)}")
    if u.get("tax_exempt"):
        click.echo(f"{'tax exempt:':15} {', '.join(u['tax_exempt'])}")
    if u.get("next_fee_at"):
        click.echo(f"{'plan since:':15} {u['plan_since']}")
        click.echo(f"{'next fee:':15} {u['next_fee_at']}")
    click.echo(f"{'created:':15} {iso(u['created_at'])}")
    click.echo(f"{'updated:':15} {iso(u['updated_at'])}")
    for n, v in u.get("reply", []):
        click.echo(f"{'reply:':15} {n} = {v!r}")
    for p in u.get("plan_changes", []):
        click.echo(f"{'plan change:':15} to {p['plan'] or 'no plan'} at {p['at']} "
                   f"(change {p['id']})")


@user_group.command("show")
@click.argument("name")
@json_option
@tenant_option
@pass_ctx
def user_show(c: Context, name: str, as_json: bool, tenant: str | None) -> None:
    """Show one user (never the password)."""
    from aaad.store import reply_attributes as reply_store
    from aaad.store import sessions as session_store
    from aaad.store import users as user_store
    from aaad.store.jobs.plan_changes import pending_changes

    def get(conn: Any) -> dict[str, Any]:
        tid = tenant_of(conn, tenant)
        data = _suspension(user_store.get_user(conn, name, tenant=tid).as_dict())
        data["tenant"] = tenant
        user_id = user_store.user_ids(conn, [name], tenant=tid)[name]
        data["open_sessions"] = session_store.open_session_count(conn, user_id)
        data["plan_changes"] = [{"id": p["id"], "plan": p["plan"], "at": iso(p["at"])}
                                for p in pending_changes(conn, user_id)]
        data["reply"] = [[n, v] for n, v in reply_store.user_reply(conn, user_id)]
        fees = user_store.fee_state(conn, user_id)
        data["plan_since"], data["next_fee_at"] = iso(fees[0]), iso(fees[1])
        return data
    try:
        data = c.read(get)
    except user_store.NoSuchUser:
        no_user(in_tenant(name, tenant))
    emit(data, as_json, _show_user)


@user_group.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@json_option
@tenant_option
@pass_ctx
def user_list(c: Context, limit: int | None, as_json: bool, tenant: str | None) -> None:
    """List the operator's users, or a tenant's with --tenant."""
    from aaad.store import users as user_store
    users = [_suspension(u.as_dict()) for u in c.read(
        lambda conn: user_store.list_users(conn, limit=limit, tenant=tenant_of(conn, tenant)))]
    emit(users, as_json, lambda us: table(
        [[u["name"], "yes" if u["enabled"] else "no", u["plan"] or "-", u["credential"],
          suspension_text(u)] for u in us], ["NAME", "ENABLED", "PLAN", "PASSWORD", "SUSPENDED"]))


@user_group.command("set")
@click.argument("name")
@click.option("--password", default=None, help="New password; '-' reads it from stdin.")
@click.option("--cleartext/--hashed", default=None,
              help="How to store the new password (default: hashed).")
@password_hash_option
@nt_hash_option
@realm_option
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
@click.option("--reply", "reply", multiple=True, metavar="NAME=VALUE",
              help="Set a reply attribute of the user's Access-Accepts (any dictionary "
                   "name, e.g. Framed-IP-Address=10.0.0.5), replacing the plan's of that "
                   "name; repeat the option to repeat an attribute (Cisco-AVPair).")
@click.option("--unset-reply", "unset_reply", multiple=True, metavar="NAME",
              help="Remove the user's reply attribute NAME (the plan's applies again).")
@click.option("--clear-reply", is_flag=True, help="Remove all the user's reply attributes.")
@tenant_option
@pass_ctx
def user_set(c: Context, name: str, password: str | None, cleartext: bool | None,
             password_hash: str | None, nt_hash: str | None, realm: str | None,
             plan: str | None, at_text: str | None, cancel_changes: bool,
             billing: str | None, tax_exempt: str | None, reply: tuple[str, ...],
             unset_reply: tuple[str, ...], clear_reply: bool, tenant: str | None) -> None:
    """Change a user's password, plan (now, or --at a later date), tax exemptions
    or reply attributes."""
    if reply or unset_reply or clear_reply:
        _set_reply(c, name, reply, unset_reply, clear_reply, tenant)
        if (password is None and plan is None and billing is None and tax_exempt is None
                and not cancel_changes and cleartext is None and at_text is None
                and password_hash is None and nt_hash is None):
            return
    values: dict[str, Any] = {}
    if password is not None and nt_hash is not None:
        raise click.UsageError("give --password or --nt-hash, not both")
    if password is not None:
        values.update(_credential(password, _form(cleartext, password_hash), name=name,
                                  realm=realm))
    elif cleartext is not None or password_hash is not None:
        fail("--cleartext/--hashed and --password-hash need --password")
    elif nt_hash is not None:
        values.update(_credential(None, "nt", nt_hash))
    if tax_exempt is not None:
        values["tax_exempt"] = _exempt(c, tax_exempt)
    if billing is not None:
        if plan is not None or values or cancel_changes:
            fail("--billing is given alone")
        _set_billing(c, name, billing, tenant)
        return
    if at_text is not None and plan is None:
        fail("--at needs --plan")
    if cancel_changes:
        if plan is not None or values:
            fail("--cancel-changes is given alone")
        _cancel_changes(c, name, tenant)
        return
    stored = None
    if plan is not None:
        stored = _check_plan(c, plan or None, tenant)
    elif not values:
        fail("nothing to change: give --password, --nt-hash, --plan, --billing, --tax-exempt "
             "or --reply")
    if at_text is not None:
        _schedule_change(c, name, stored, _local_instant(c, at_text, "--at"), values, tenant)
        return
    if plan is None:
        _update(c, name, values, "updated", tenant)
        return
    from aaad.core.quotas.plan import format_money
    from aaad.store.jobs.accounts import change_plan
    credit = write_user(c, name, tenant, change_plan, stored, now=now_s(),
                        tz=c.config.timezone, values=values)
    click.echo(f"updated user {in_tenant(name, tenant)}"
               + (f"; credited {format_money(-credit)} of the old plan's fee" if credit else ""))


def _set_reply(c: Context, name: str, assignments: tuple[str, ...], unset: tuple[str, ...],
               clear: bool, tenant: str | None) -> None:
    """--reply/--unset-reply/--clear-reply: checked against the dictionary, then stored."""
    from aaad.core.quotas.reply import parse_assignment
    from aaad.radius.reply_check import check_reply
    from aaad.store.reply_attributes import NoSuchAttribute, set_user_reply
    try:
        pairs = [parse_assignment(a) for a in assignments]
        checked = check_reply(pairs, c.dictionary, "--reply")
    except ValueError as e:
        fail(str(e))
    try:
        attrs = write_user(c, name, tenant, set_user_reply, now=now_s(), set_=checked,
                           unset=unset, replace_all=clear)
    except NoSuchAttribute as e:
        fail(f"--unset-reply: {e}")
    shown = ", ".join(f"{n}={v}" for n, v in attrs) or "none"
    click.echo(f"user {in_tenant(name, tenant)}: reply attributes {shown}")


def _set_billing(c: Context, name: str, mode: str, tenant: str | None) -> None:
    from aaad.store.jobs.accounts import set_billing_mode
    changed = write_user(c, name, tenant, set_billing_mode, mode, now_s())
    click.echo(f"user {in_tenant(name, tenant)} is {mode}" + ("" if changed else " already"))


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
                     values: dict[str, Any], tenant: str | None) -> None:
    from aaad.store.jobs.accounts import schedule_plan_change
    now = now_s()
    if at <= now:
        fail("--at is not in the future (leave it out to change the plan now)")
    change = write_user(c, name, tenant, schedule_plan_change, plan, at=at, now=now,
                        values=values)
    click.echo(f"user {in_tenant(name, tenant)}: plan change to {plan or 'no plan'} "
               f"scheduled for {iso(at)} (change {change})")


def _cancel_changes(c: Context, name: str, tenant: str | None) -> None:
    from aaad.store.jobs.accounts import cancel_plan_changes
    n = write_user(c, name, tenant, cancel_plan_changes, now=now_s())
    click.echo(f"user {in_tenant(name, tenant)}: {n} scheduled plan "
               f"change{'s' if n != 1 else ''} called off")


def _update(c: Context, name: str, values: dict[str, Any], what: str,
            tenant: str | None = None) -> None:
    from aaad.store import users as user_store
    write_user(c, name, tenant, user_store.update_user, now=now_s(), **values)
    click.echo(f"{what} user {in_tenant(name, tenant)}")


_disconnect_option = click.option(
    "--disconnect/--no-disconnect", default=True, show_default=True,
    help="Send a Disconnect-Request (RFC 5176) for each open session.")


def _cut_sessions(c: Context, name: str, disconnect: bool, tenant: str | None = None) -> None:
    """After a change that refuses logins: disconnect the open sessions (as
    ``aaad disconnect`` does), unless ``--no-disconnect``."""
    if disconnect:
        from aaad.cli.disconnect import disconnect_user
        disconnect_user(c, name, tenant=tenant)


@user_group.command("disable")
@click.argument("name")
@_disconnect_option
@tenant_option
@pass_ctx
def user_disable(c: Context, name: str, disconnect: bool, tenant: str | None) -> None:
    """Refuse the user's logins from now on, and disconnect the open sessions."""
    _update(c, name, {"enabled": False}, "disabled", tenant)
    _cut_sessions(c, name, disconnect, tenant)


@user_group.command("suspend")
@click.argument("name")
@click.option("--reason", default=None, metavar="TEXT",
              help="Why; the user sees it: Reply-Message 'Account suspended: TEXT' "
                   "(at most 200 characters).")
@_disconnect_option
@tenant_option
@pass_ctx
def user_suspend(c: Context, name: str, reason: str | None, disconnect: bool,
                 tenant: str | None) -> None:
    """Suspend the user by hand: logins are refused ('Account suspended') until
    'aaad user resume'; a top-up does not lift it. Open sessions are disconnected."""
    from aaad.core.quotas.decide import check_hold_reason
    from aaad.store.jobs.accounts import suspend_user
    if reason is not None:
        try:
            reason = check_hold_reason(reason)
        except ValueError as e:
            fail(f"--reason {e}", EXIT_USAGE)
    done = write_user(c, name, tenant, suspend_user, reason, now_s())
    who = in_tenant(name, tenant)
    why = f" (reason: {done.reason})" if done.reason else ""
    if done.before is None:
        click.echo(f"suspended user {who} by hand{why}")
    elif done.changed:
        click.echo(f"user {who} is suspended by hand since {iso(done.before.since)}; "
                   f"reason now: {done.reason}")
    else:
        click.echo(f"user {who} is suspended by hand already, since "
                   f"{iso(done.before.since)}{why}")
    _cut_sessions(c, name, disconnect, tenant)


@user_group.command("resume")
@click.argument("name")
@tenant_option
@pass_ctx
def user_resume(c: Context, name: str, tenant: str | None) -> None:
    """Lift a suspension: by hand ('aaad user suspend'), and for non-payment if the
    balance now pays what is due (else nothing changes and it exits 1). A user
    who is not suspended is left as is (exit 0)."""
    from aaad.core.quotas.plan import format_money
    from aaad.store.jobs.accounts import resume_user
    from aaad.store.jobs.suspension import StillDue
    try:
        done, enabled = write_user(c, name, tenant, resume_user, now_s())
    except StillDue as e:
        fail(f"{name} is suspended for non-payment: {format_money(e.due)} due and only "
             f"{format_money(e.available)} available; top up ('aaad credit topup {name} "
             f"AMOUNT') or promise a payment ('aaad credit promise {name} AMOUNT'); "
             "nothing changed")
    if not done.changed:
        click.echo(f"user {in_tenant(name, tenant)} is not suspended; nothing changed")
        return
    parts = []
    if done.hold is not None:
        parts.append("lifted the suspension by hand" + (
            f" (reason was: {done.hold.reason})" if done.hold.reason else ""))
    if done.unpaid_suspension:
        parts.append(f"paid {format_money(done.paid)} that was due")
    again = f"aaad user enable {name}" + ("" if tenant is None else f" --tenant {tenant}")
    click.echo(f"resumed user {in_tenant(name, tenant)}: {'; '.join(parts)}"
               + ("" if enabled else f" (still disabled: '{again}')"))


@user_group.command("enable")
@click.argument("name")
@tenant_option
@pass_ctx
def user_enable(c: Context, name: str, tenant: str | None) -> None:
    """Allow the user's logins again."""
    _update(c, name, {"enabled": True}, "enabled", tenant)


@user_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@tenant_option
@pass_ctx
def user_delete(c: Context, name: str, yes: bool, tenant: str | None) -> None:
    """Delete a user (their sessions and usage history are kept).

    Without --yes it asks on a terminal, and refuses when stdin is not one
    (a script must say --yes).
    """
    from aaad.store import users as user_store
    if not yes:
        if not sys.stdin.isatty():
            fail(f"refusing to delete {name} without --yes (stdin is not a terminal)",
                 EXIT_USAGE)
        click.confirm(f"delete user {in_tenant(name, tenant)}?", abort=True)
    write_user(c, name, tenant, user_store.delete_user)
    click.echo(f"deleted user {in_tenant(name, tenant)}")


# ``aaad user import``: its own module, as it is long.
from aaad.cli.user_import import user_import  # noqa: E402

user_group.add_command(user_import)
