"""The ``aaad`` command line: serve, database, users, sessions, usage.

Every list/show command takes ``--json``. Bad input exits non-zero with a
one-line ``error: …`` on stderr: 2 for a bad command line or configuration
file, 1 for anything else (``aaad status`` adds 3: the daemon is degraded).
Passwords and secrets are never printed back, except the ones ``aaad init
--demo`` generates and must show once.

This package imports click and nothing heavy. Each command imports the store,
SQLAlchemy, the daemon or Twisted when it runs, so ``aaad --version`` and
``aaad --help`` do not pay for them.

This module is the root group ``aaad``; each command or group of commands
under it is a module of its own, named after it (``aaad user …`` is
:mod:`aaad.cli.user`), and what they share is :mod:`aaad.cli.common`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from aaad.cli.affiliate import affiliate_group
from aaad.cli.block import block_group
from aaad.cli.calls import calls_group
from aaad.cli.charges import charges_group
from aaad.cli.common import Context, fail
from aaad.cli.config import config_group
from aaad.cli.credit import credit_group
from aaad.cli.db import db_group
from aaad.cli.debug import debug_cmd
from aaad.cli.disconnect import disconnect_cmd
from aaad.cli.events import EVENT_KINDS, events_group
from aaad.cli.init import init_cmd
from aaad.cli.journal import journal_group
from aaad.cli.period import period_group
from aaad.cli.plan import plan_group
from aaad.cli.rates import rates_group
from aaad.cli.serve import serve_cmd
from aaad.cli.session import session_group
from aaad.cli.status import EXIT_DEGRADED, status_cmd
from aaad.cli.tenant import tenant_group
from aaad.cli.token import token_group
from aaad.cli.usage import usage_group
from aaad.cli.user import user_group
from aaad.cli.voucher import voucher_group

__all__ = ["main", "cli", "EXIT_DEGRADED", "EVENT_KINDS"]

# click >= 8.2 raises this for a group run without a subcommand: it shows the help.
_SHOWS_HELP: tuple[type[click.ClickException], ...] = tuple(
    x for x in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if x is not None)


class _OneLineErrors(click.Group):
    """The root group: a usage error is one ``error: …`` line on stderr, exit 2.

    click would print three (Usage, Try, Error). The command path in the hint
    tells which ``--help`` to read.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except _SHOWS_HELP as e:
            e.show()
            sys.exit(e.exit_code)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            fail(_one_line(e.format_message()) + hint, e.exit_code)
        except click.ClickException as e:
            fail(_one_line(e.format_message()), e.exit_code)
        except click.Abort:
            fail("aborted")
        # standalone_mode=False returns the exit code of --help and --version
        sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _default_config_path() -> str:
    from aaad.config import default_config_path
    return default_config_path()


@click.group(name="aaad", cls=_OneLineErrors,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", "config_path", default=_default_config_path, show_default=
              "$AAAD_CONFIG or /etc/aaad/aaad.yaml", help="Configuration file.")
@click.version_option(package_name="aaad")
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """aaad: RADIUS authentication and exact accounting."""
    ctx.obj = Context(config_path)
    ctx.call_on_close(ctx.obj.close)


# The commands, each from its module; --help lists them by name.
for _command in (serve_cmd, config_group, db_group, init_cmd, journal_group, user_group,
                 session_group, usage_group, plan_group, rates_group, calls_group, block_group,
                 events_group, charges_group, period_group, credit_group, affiliate_group,
                 voucher_group, token_group, tenant_group, disconnect_cmd,
                 debug_cmd, status_cmd):
    cli.add_command(_command)
del _command


def main() -> None:
    cli(prog_name="aaad")

