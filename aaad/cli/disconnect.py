"""``aaad disconnect``: send Disconnect-Requests from the command line, now.

The CLI has no running daemon to ask, so it runs a reactor just long enough to
send the requests (with the same client, retries and event records as the
daemon's enforcement) and wait for the answers.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred, gatherResults

from aaad.config import Config
from aaad.daemon.enforcement import Enforcer
from aaad.daemon.executor import InlineExecutor
from aaad.daemon.metrics import Metrics
from aaad.daemon.service import client_table
from aaad.radius.coa import CoAClient
from aaad.radius.codec import load_dictionary
from aaad.store.database import Database

__all__ = ["disconnect_now"]


def disconnect_now(reactor: Any, config: Config, db: Database, sessions: list[dict[str, Any]],
                   results: list[tuple[dict[str, Any], str]], *,
                   timeout_s: float = 3.0) -> Deferred[Any]:
    """Disconnect each session; appends (session, ack|nak|timeout|no_client) to ``results``."""
    coa = CoAClient(reactor=reactor, dictionary=load_dictionary())
    coa.start()
    table = client_table(config.clients)
    # The CLI's own short-lived reactor: writing the event inline is fine here.
    enforcer = Enforcer(coa=coa, clients=lambda: table, db=db, writer=InlineExecutor(),
                        reactor=reactor, metrics=Metrics(CollectorRegistry()),
                        timeouts=(timeout_s / 7, 2 * timeout_s / 7, 4 * timeout_s / 7))

    def one(s: dict[str, Any]) -> Deferred[Any]:
        d = enforcer.disconnect(client_name=s["client"], nas_address=s["nas_address"],
                                user_name=s["user"], session_key=s["id"],
                                acct_session_id=s["acct_session_id"], nas_key=s["nas"],
                                framed_ip=s["framed_ip"], why="requested by admin")
        return d.addCallback(lambda r: results.append(
            (s, r.status if r is not None else "no_client")))
    d = gatherResults([one(s) for s in sessions], consumeErrors=True)
    return d.addBoth(lambda r: coa.stop().addCallback(lambda _: None))
