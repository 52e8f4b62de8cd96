"""SIP proxies on the wire: Digest credentials, Kamailio's Sip-* accounting attributes.

Kamailio and OpenSIPS (auth_radius / acc_radius over radcli) number their
attributes in ways that collide with the IETF's:

* RFC 5090 Digest-* (Digest-Response 103 … Digest-Username 115, Digest-HA1
  121, RFC 5090 §3) and draft-sterman-aaa-sip (Digest-Response 206,
  Digest-Attributes 207 holding sub-attributes 1-10), which radcli's
  ``dictionary.sip`` ships as Digest-Realm 1063 … Digest-User-Name 1072 and
  sends as sub-attributes of 207;
* the SER/Kamailio Sip-* accounting attributes of radcli's
  ``dictionary.sip``: Sip-Method 101 (RFC 5176's Error-Cause), Sip-Response-Code
  102, Sip-CSeq 103 (RFC 5090's Digest-Response), Sip-To-Tag 104, Sip-From-Tag
  105, Sip-Translated-Request-URI 107, Sip-User-* 110-119.

aaad decodes them by the packet they arrive in: on the accounting port,
101-119 are Kamailio's Sip-* (no RFC 5090 attribute belongs in an
Accounting-Request); in an Access-Request, Digest-Response 206 means
draft-sterman, else Digest-Response 103 means RFC 5090. No per-client
setting is needed. The shipped ``dictionaries/dictionary.sip`` names only
the numbers that collide with nothing (206-225); traces show 101-119 by
their RFC name.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aaad.radius.authenticators import DigestCredentials
from aaad.radius.errors import Malformed

__all__ = ["SIP_METHOD", "SIP_RESPONSE_CODE", "SIP_URI_USER", "SIP_AVP", "SIP_METHODS",
           "DIGEST_RESPONSE", "DIGEST_ATTRIBUTES", "RFC5090_DIGEST_RESPONSE",
           "read_digest", "parse_event_timestamp", "uri_user", "CALL_TIME_AVP",
           "context_name"]

# Accounting (Kamailio's dictionary.sip / dictionary.kamailio).
SIP_METHOD, SIP_RESPONSE_CODE, SIP_TRANSLATED_RURI = 101, 102, 107
SIP_METHODS = {0: "Other", 1: "Invite", 2: "Cancel", 3: "Ack", 4: "Bye"}
# Access (draft-sterman-aaa-sip-00 §3, and radcli's dictionary.sip).
SIP_URI_USER, DIGEST_RESPONSE, DIGEST_ATTRIBUTES, SIP_AVP = 208, 206, 207, 225
_STERMAN_SUB = {1: "realm", 2: "nonce", 3: "method", 4: "uri", 5: "qop", 6: "algorithm",
                7: "body_digest", 8: "cnonce", 9: "nonce_count", 10: "username"}
# RFC 5090 §3.
RFC5090_DIGEST_RESPONSE = 103
_RFC5090 = {104: "realm", 105: "nonce", 108: "method", 109: "uri", 110: "qop",
            111: "algorithm", 112: "body_digest", 113: "cnonce", 114: "nonce_count",
            115: "username"}

# Names by packet context, for traces (the pyrad dictionary has the RFC names).
_ACCOUNTING_NAMES = {101: "Sip-Method", 102: "Sip-Response-Code", 103: "Sip-CSeq",
                     104: "Sip-To-Tag", 105: "Sip-From-Tag", 106: "Sip-Branch-ID",
                     107: "Sip-Translated-Request-URI", 108: "Sip-Source-IP-Address",
                     109: "Sip-Source-Port"}
_INTEGERS = frozenset({101, 102, 109})
_ACCESS_NAMES = {RFC5090_DIGEST_RESPONSE: "Digest-Response",
                 **{a: "Digest-" + n.replace("_", "-").title() for a, n in _RFC5090.items()}}


def context_name(accounting: bool, attr_type: int, value: bytes) -> tuple[str, object] | None:
    """The name and value of an attribute whose number means something else in
    this packet (see the module docstring), or None for the dictionary's."""
    if accounting and attr_type in _ACCOUNTING_NAMES:
        if attr_type in _INTEGERS and len(value) == 4:
            return _ACCOUNTING_NAMES[attr_type], int.from_bytes(value, "big")
        return _ACCOUNTING_NAMES[attr_type], _text(value)
    if not accounting and attr_type in _ACCESS_NAMES:
        return _ACCESS_NAMES[attr_type], _text(value)
    return None


CALL_TIME_AVP = "aaad_call_time"
"""The SIP-AVP an Access-Accept carries the allowed call time in (seconds, an
integer AVP: ``aaad_call_time#600``), for auth_radius, which imports only
SIP-AVP attributes from a reply: ``$avp(aaad_call_time)`` in kamailio.cfg."""


def read_digest(values: Callable[[int], list[bytes]], user_name: str) -> DigestCredentials | None:
    """The Digest credentials of an Access-Request, or None if it has none.

    ``values(type)`` gives the raw values of an attribute type, in order.
    The user is Digest-Username / Digest-User-Name, else the User-Name with
    an ``@realm`` that equals the Digest realm taken off (auth_radius's
    ``append_realm_to_username``, on by default).

    Raises:
        Malformed: a Digest-Attributes sub-attribute that overruns its attribute.
    """
    fields: dict[str, str] = {}
    if response := values(DIGEST_RESPONSE):
        for value in values(DIGEST_ATTRIBUTES):
            pos = 0
            while pos < len(value):
                if pos + 2 > len(value) or value[pos + 1] < 2 \
                        or pos + value[pos + 1] > len(value):
                    raise Malformed("Digest-Attributes sub-attribute overruns its attribute")
                name = _STERMAN_SUB.get(value[pos])
                if name is not None:
                    fields[name] = _text(value[pos + 2:pos + value[pos + 1]])
                pos += value[pos + 1]
    elif response := values(RFC5090_DIGEST_RESPONSE):
        for attr, name in _RFC5090.items():
            if got := values(attr):
                fields[name] = _text(got[0])
    else:
        return None
    realm = fields.get("realm", "")
    username = fields.get("username") or user_name
    if not fields.get("username") and realm and username.endswith("@" + realm):
        username = username[:-len(realm) - 1]
    return DigestCredentials(
        username=username, realm=realm, nonce=fields.get("nonce", ""),
        method=fields.get("method", ""), uri=fields.get("uri", ""),
        response=_text(response[0]), qop=fields.get("qop", ""),
        nonce_count=fields.get("nonce_count", ""), cnonce=fields.get("cnonce", ""),
        algorithm=fields.get("algorithm", ""), body_digest=fields.get("body_digest", ""))


_DECIMAL = re.compile(r"\s*(\d{1,12})(?:\.\d*)?\s*")


def parse_event_timestamp(value: bytes | None) -> int | None:
    """Event-Timestamp (RFC 2869 §5.3): 4 octets, or the decimal text Kamailio
    sends with ``rad_time_mode = 1`` ("1445590624.377372", whole seconds kept).

    Raises:
        Malformed: neither.
    """
    if value is None:
        return None
    if len(value) == 4:
        return int.from_bytes(value, "big")
    m = _DECIMAL.fullmatch(value.decode("ascii", "replace"))
    if m is None:
        raise Malformed(f"Event-Timestamp of {len(value)} octets is neither 4 octets "
                        "nor decimal text")
    return int(m.group(1))


def uri_user(uri: str) -> str:
    """The user part of a SIP URI ("sip:+4930123@gw;user=phone" → "+4930123");
    the text itself when it is no URI."""
    rest = uri.partition(":")[2] if uri[:4].lower() in ("sip:", "tel:") or \
        uri[:5].lower() == "sips:" else uri
    return rest.partition("@")[0].partition(";")[0] if "@" in rest or ";" in rest else rest


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").replace("\x00", "\ufffd")
