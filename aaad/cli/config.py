"""``aaad config check``: validate the configuration file."""

from __future__ import annotations

import click

from aaad.cli.common import Context, fail, pass_ctx

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Configuration file commands."""


@config_group.command("check")
@pass_ctx
def config_check(c: Context) -> None:
    """Validate the configuration file (and the RadSec certificate files it names)."""
    from aaad.store.database import describe_url
    cfg = c.config
    radsec = ""
    if cfg.radsec.enabled:
        from aaad.config import ConfigError
        from aaad.daemon.radsec import load_tls
        try:
            tls = load_tls(cfg.radsec, c.config_path)
        except ConfigError as e:
            fail(str(e))
        radsec = (f"; RadSec: {len(cfg.radsec.clients)} clients, certificate {tls.subject} "
                  f"valid until {tls.not_after.date().isoformat()}, {tls.cas} CA certificates")
    click.echo(f"{c.config_path}: OK ({len(cfg.clients)} clients, database "
               f"{describe_url(cfg.database.url)}, time zone {cfg.timezone.key}){radsec}")
