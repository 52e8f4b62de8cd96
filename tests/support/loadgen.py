"""benchmarks/loadgen.py, the standalone RADIUS load generator, loaded from its file
(benchmarks/ is not a package), and the small dictionary its tests decode with."""

from __future__ import annotations

import io

from pyrad.dictionary import Dictionary

from tests.support.benchmarks import load_benchmark

loadgen = load_benchmark('loadgen')

SECRET = b'bench-secret'

DICTIONARY = """
ATTRIBUTE   User-Name               1   string
ATTRIBUTE   User-Password           2   octets
ATTRIBUTE   CHAP-Password           3   octets
ATTRIBUTE   NAS-IP-Address          4   ipaddr
ATTRIBUTE   NAS-Port                5   integer
ATTRIBUTE   Framed-IP-Address       8   ipaddr
ATTRIBUTE   Calling-Station-Id      31  string
ATTRIBUTE   Acct-Status-Type        40  integer
ATTRIBUTE   Acct-Input-Octets       42  integer
ATTRIBUTE   Acct-Output-Octets      43  integer
ATTRIBUTE   Acct-Session-Id         44  string
ATTRIBUTE   Acct-Session-Time       46  integer
ATTRIBUTE   Acct-Input-Packets      47  integer
ATTRIBUTE   Acct-Output-Packets     48  integer
ATTRIBUTE   Acct-Terminate-Cause    49  integer
ATTRIBUTE   Acct-Input-Gigawords    52  integer
ATTRIBUTE   Acct-Output-Gigawords   53  integer
ATTRIBUTE   Event-Timestamp         55  date
ATTRIBUTE   CHAP-Challenge          60  octets
ATTRIBUTE   Message-Authenticator   80  octets
ATTRIBUTE   NAS-IPv6-Address        95  ipv6addr

VALUE   Acct-Status-Type        Start           1
VALUE   Acct-Status-Type        Stop            2
VALUE   Acct-Status-Type        Interim-Update  3
VALUE   Acct-Terminate-Cause    User-Request    1
"""




def dictionary() -> Dictionary:
    return Dictionary(io.StringIO(DICTIONARY))
