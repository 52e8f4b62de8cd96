"""RADIUS packets over a byte stream: cutting a TLS stream into packets (RFC 6614 §2.5).

Over UDP a datagram is one packet. Over TCP or TLS (RFC 6613 §2.1, RFC 6614)
packets follow each other on one stream and the only boundary is the Length
field of each header (RFC 2865 §3: octets 3-4, the whole packet, 20-4096).
:class:`StreamFramer` is sans-I/O: bytes in, whole packets out. A Length
outside 20-4096 cannot be skipped over (nothing says where the next packet
starts), so it raises :class:`~aaad.radius.errors.Malformed` and the caller
closes the connection (RFC 6613 §2.6.4). Everything else about a packet
(codes, attributes, authenticators) is checked later by the same code as a
datagram's (framing.check_frame, codec.decode_request).
"""

from __future__ import annotations

from aaad.radius.errors import Malformed
from aaad.radius.framing import MAX_LENGTH, MIN_LENGTH

__all__ = ["StreamFramer"]

_HEADER = 4     # code, identifier, length: enough to know how long the packet is


class StreamFramer:
    """Splits a stream into RADIUS packets by their Length fields.

    At most one packet (4096 octets) is ever held back, however the stream
    is cut: memory per connection is bounded.
    """

    __slots__ = ("_buffer", "_broken")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken = False

    @property
    def buffered(self) -> int:
        """Octets received that do not yet make a whole packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` from the stream; return the packets it completed, in order.

        Raises:
            Malformed: a Length field outside 20-4096. The stream cannot be
                resynchronised after it: every later call raises too.
        """
        if self._broken:
            raise Malformed("stream already broken by an earlier bad length field")
        buf = self._buffer
        buf += data
        packets: list[bytes] = []
        start = 0
        while len(buf) - start >= _HEADER:
            length = (buf[start + 2] << 8) | buf[start + 3]
            if length < MIN_LENGTH or length > MAX_LENGTH:
                self._broken = True
                raise Malformed(f"length field {length} is outside {MIN_LENGTH}-{MAX_LENGTH}"
                                f" (code {buf[start]}, identifier {buf[start + 1]})")
            if len(buf) - start < length:
                break
            packets.append(bytes(buf[start:start + length]))
            start += length
        if start:
            del buf[:start]
        return packets
