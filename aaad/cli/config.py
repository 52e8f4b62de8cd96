"""``aaad config check``: validate the configuration file."""

from __future__ import annotations

import click

from aaad.cli.common import Context, pass_ctx

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Configuration file commands."""


@config_group.command("check")
@pass_ctx
def config_check(c: Context) -> None:
    """Validate the configuration file."""
    from aaad.store.database import describe_url
    cfg = c.config
    click.echo(f"{c.config_path}: OK ({len(cfg.clients)} clients, database "
               f"{describe_url(cfg.database.url)}, time zone {cfg.timezone.key})")
