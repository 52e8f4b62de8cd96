"""``aaad affiliate``: an account's charges earn another account a share,
credited to that account's balance when a month closes."""

from __future__ import annotations

import click

from aaad.cli.common import Context, emit, fail, json_option, no_user, now_s, pass_ctx, table

__all__ = ["affiliate_group"]


@click.group("affiliate")
def affiliate_group() -> None:
    """Affiliate shares: a percentage of one account's monthly charges, credited to another."""


@affiliate_group.command("set")
@click.argument("account")
@click.argument("affiliate")
@click.option("--percent", required=True, metavar="P",
              help='The share of ACCOUNT\'s charges, 0-100 (a decimal such as "12.5").')
@pass_ctx
def affiliate_set(c: Context, account: str, affiliate: str, percent: str) -> None:
    """Credit AFFILIATE P % of ACCOUNT's charges (fees, usage, calls, charges; not
    taxes) of each month when it closes (replacing ACCOUNT's affiliate, if any)."""
    from aaad.core.billing.taxes import TaxError, parse_percent
    from aaad.store.affiliates import set_affiliate
    from aaad.store.users import NoSuchUser
    try:
        p = parse_percent(percent.strip(), "--percent")
    except TaxError as e:
        fail(str(e))
    text = percent.strip()
    now = now_s()
    try:
        c.write(lambda conn: set_affiliate(conn, account, affiliate, text, now))
    except NoSuchUser as e:
        no_user(str(e))
    except ValueError as e:
        fail(str(e))
    click.echo(f"user {affiliate} earns {text} % of {account}'s charges of each month "
               f"closed from now on" + (" (0 %: nothing)" if p == 0 else ""))


@affiliate_group.command("remove")
@click.argument("account")
@pass_ctx
def affiliate_remove(c: Context, account: str) -> None:
    """ACCOUNT's charges earn nobody a share any more (shares credited stay)."""
    from aaad.store.affiliates import remove_affiliate
    from aaad.store.users import NoSuchUser
    now = now_s()
    try:
        removed = c.write(lambda conn: remove_affiliate(conn, account, now))
    except NoSuchUser as e:
        no_user(str(e))
    click.echo(f"user {account}: " + ("affiliate removed" if removed else "had no affiliate"))


@affiliate_group.command("list")
@click.option("--affiliate", default=None, help="Only the accounts earning this user a share.")
@json_option
@pass_ctx
def affiliate_list(c: Context, affiliate: str | None, as_json: bool) -> None:
    """Accounts with an affiliate, and the share."""
    from aaad.store.affiliates import affiliations
    rows = [a.as_dict() for a in c.read(lambda conn: affiliations(conn, affiliate=affiliate))]
    emit(rows, as_json, lambda rs: table(
        [[r["account"], r["affiliate"] or "(deleted)", f"{r['percent']} %"] for r in rs],
        ["ACCOUNT", "AFFILIATE", "SHARE"]))
