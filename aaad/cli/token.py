"""``aaad token``: API tokens: create (the token is printed this once), list, revoke.

The table holds each token's SHA-256 only (store/tokens.py), so a lost token
cannot be shown again: revoke it and create another.
"""

from __future__ import annotations

import click

from aaad.cli.common import (
    EXIT_USAGE,
    Context,
    emit,
    fail,
    iso,
    json_option,
    now_s,
    pass_ctx,
    table,
)

__all__ = ["token_group"]


@click.group("token")
def token_group() -> None:
    """API tokens (stored hashed; a token is shown once, when it is created)."""


@token_group.command("create")
@click.argument("name")
@click.option("--tenant", default=None, help="The tenant (reseller) the token acts for; "
              "default: none (all).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["read", "write", "admin"]),
              help="What it may do; repeat for several. admin allows write, write allows "
                   "read. Default: read.")
@json_option
@pass_ctx
def token_create(c: Context, name: str, tenant: str | None, scopes: tuple[str, ...],
                 as_json: bool) -> None:
    """Create a token NAME and print it: the only time it is shown.

    The token alone goes to stdout (with --json: an object with it), what it
    is to stderr, so TOKEN=$(aaad token create NAME) keeps it out of sight.
    """
    from aaad.store import tokens as token_store
    try:
        token_store.check_token_fields(name, tenant, scopes or ("read",))
    except token_store.BadToken as e:
        fail(str(e), EXIT_USAGE)
    try:
        made, secret = c.write(token_store.create_token, name, tenant=tenant,
                               scopes=scopes or ("read",), now=now_s())
    except token_store.TokenExists:
        fail(f"a token named {name} exists (see 'aaad token list'); names are never reused, "
             "not even a revoked token's")
    if as_json:
        emit({**_shown(made.as_dict()), "token": secret}, True, lambda _: None)
    else:
        click.echo(secret)
    click.echo(f"created token {made.name} (scopes: {', '.join(made.scopes)}; tenant: "
               f"{made.tenant or '-'}); it is shown only this once: store it now", err=True)


@token_group.command("list")
@json_option
@pass_ctx
def token_list(c: Context, as_json: bool) -> None:
    """List tokens, revoked ones too (never a token or its hash)."""
    from aaad.store import tokens as token_store
    rows = [_shown(t.as_dict()) for t in c.read(token_store.list_tokens)]
    emit(rows, as_json, lambda rs: table(
        [[r["name"], r["tenant"] or "-", ",".join(r["scopes"]), r["created_at"],
          r["last_used_at"] or "-", r["revoked_at"] or "-"] for r in rs],
        ["NAME", "TENANT", "SCOPES", "CREATED", "LAST USED", "REVOKED"]))


@token_group.command("revoke")
@click.argument("name")
@pass_ctx
def token_revoke(c: Context, name: str) -> None:
    """Revoke a token: it is refused from now on (its row stays, for the record)."""
    from aaad.store import tokens as token_store
    try:
        before = c.write(token_store.revoke_token, name, now_s())
    except token_store.NoSuchToken:
        fail(f"no token {name} (see 'aaad token list')")
    if before.revoked_at is not None:
        click.echo(f"token {name} was revoked already, at {iso(before.revoked_at)}; "
                   "nothing changed")
    else:
        click.echo(f"revoked token {name}")


def _shown(d: dict[str, object]) -> dict[str, object]:
    """Times in ISO 8601 (None stays None)."""
    return {k: (iso(v) or None) if k.endswith("_at") and isinstance(v, int) else v
            for k, v in d.items()}
