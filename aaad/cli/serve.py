"""``aaad serve``: run the daemon in the foreground."""

from __future__ import annotations

import sys

import click

from aaad.cli.common import Context, check_driver, fail, pass_ctx

__all__ = ["serve_cmd"]


@click.command("serve")
@pass_ctx
def serve_cmd(c: Context) -> None:
    """Run the daemon in the foreground."""
    check_driver(c.config.database.url)
    from aaad.daemon.main import StartError
    from aaad.daemon.main import serve as run
    try:
        code = run(c.config)
    except StartError as e:
        fail(str(e))
    sys.exit(code)
