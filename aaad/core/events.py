"""The kinds of event aaad records in its audit trail (the events table): what
``aaad events list --kind`` and ``GET /v1/events?kind=`` accept.

- ``suspended``/``resumed``: by hand, or for non-payment (a prepaid balance
  that could not pay what is due / a top-up or resume that paid it);
- ``over_limit``: a live session crossed a limit of a ``disconnect`` plan;
- ``disconnect``: a Disconnect-Request's outcome (ack, nak, timeout, ...);
- ``replaced``: a session closed for a new login of its user (a plan with
  ``on_max_sessions: replace-oldest``), before its Disconnect-Request;
- ``renewal_charged``/``renewal_due``: a plan fee line at a cycle start, paid
  (or billed, postpaid) / left due by a prepaid balance;
- ``throttle``/``unthrottle``: a CoA-Request's outcome (ack, nak, timeout, ...)
  for a live session that crossed an ``over_limit: throttle`` cap / is under
  it again (a NAS with ``throttle_by: disconnect`` gets a Disconnect-Request
  instead, recorded as ``disconnect``);
- ``block_renewed``, ``block_expired``, ``rollover``, ``revoked``;
- ``call_max_duration``: a call of a client without Interim-Updates closed
  by aaad past its authorised call time or the maximum call duration;
- ``call_credit_overrun``: a call debited for more than the credit left.

A test (tests/store/test_cli_errors.py) keeps the list complete.
"""

from __future__ import annotations

__all__ = ["EVENT_KINDS"]

EVENT_KINDS = ("block_expired", "block_renewed", "call_credit_overrun", "call_max_duration",
               "disconnect", "over_limit", "renewal_charged", "renewal_due", "replaced",
               "resumed", "revoked", "rollover", "suspended", "throttle", "unthrottle")
