"""``aaad debug``: ask the running daemon to trace a user's or client's requests."""

from __future__ import annotations

import json

import click

from aaad.cli.common import Context, fail, pass_ctx

__all__ = ["debug_cmd"]


@click.command("debug")
@click.argument("name")
@click.option("--client", "is_client", is_flag=True, help="NAME is a client, not a user")
@click.option("--minutes", type=click.FloatRange(0.1, 1440), default=10, show_default=True)
@pass_ctx
def debug_cmd(c: Context, name: str, is_client: bool, minutes: float) -> None:
    """Trace every request of a user (or client) in the daemon's log, for a while.

    Like radiusd -X for one user: attributes (passwords masked), reply, timing.
    Talks to the running daemon through its API (the config's api: section).
    """
    import urllib.error
    import urllib.request
    api = c.config.api
    if not api.enabled or api.token is None:
        fail("aaad debug talks to the daemon's API: add an api: section to the config")
    body = {"client" if is_client else "user": name, "minutes": minutes}
    req = urllib.request.Request(f"http://{api.bind}:{api.port}/v1/debug", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {api.token.value.decode()}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            json.loads(r.read())
    except urllib.error.HTTPError as e:
        fail(f"the daemon refused: {json.loads(e.read()).get('error', e.code)}")
    except OSError as e:
        fail(f"aaad is not answering at {api.bind}:{api.port}: {getattr(e, 'reason', e)}")
    click.echo(f"tracing {'client' if is_client else 'user'} {name} for {minutes:g} minutes "
               "(lines 'trace …' in the daemon's log)")
