"""UDPTL (T.38 Annex A): the UDP transport of T.38's IFP packets, with redundancy.

Each datagram carries a 16-bit sequence number, the primary IFP packet and, for error recovery,
copies of the packets before it (the newest first). A receiver that sees a gap recovers what the
copies hold and hands every packet to the engine once, in order. FEC error recovery is
understood on receipt (its primary is used, its parity ignored) but never sent: every peer must
accept redundancy, not every one accepts FEC.

Encoding is ASN.1 aligned PER as T.38 defines it; only what UDPTL uses is here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

_SEQ = 1 << 16
_MAX_LENGTH = 0x3FFF  # what a two-octet length determinant holds; IFP packets are far smaller


class UdptlError(ValueError):
    pass


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= _MAX_LENGTH:
        return bytes([0x80 | (n >> 8), n & 0xFF])
    raise UdptlError(f"UDPTL field of {n} octets: fragmented lengths are not used by T.38")


def _read_length(data: bytes, at: int) -> tuple[int, int]:
    if at >= len(data):
        raise UdptlError("truncated length")
    first = data[at]
    if first & 0x80 == 0:
        return first, at + 1
    if first & 0x40:
        raise UdptlError("fragmented length")
    if at + 1 >= len(data):
        raise UdptlError("truncated length")
    return ((first & 0x3F) << 8) | data[at + 1], at + 2


def _read_octets(data: bytes, at: int) -> tuple[bytes, int]:
    n, at = _read_length(data, at)
    if at + n > len(data):
        raise UdptlError("truncated field")
    return data[at : at + n], at + n


@dataclass(frozen=True)
class Datagram:
    seq: int
    primary: bytes
    secondary: tuple[bytes, ...] = ()  # the packets seq-1, seq-2, ... (newest first)


def encode(datagram: Datagram) -> bytes:
    out = bytearray(datagram.seq.to_bytes(2, "big"))
    out += _length(len(datagram.primary)) + datagram.primary
    out.append(0x00)  # error recovery: secondary IFP packets (redundancy)
    out += _length(len(datagram.secondary))
    for packet in datagram.secondary:
        out += _length(len(packet)) + packet
    return bytes(out)


def decode(data: bytes) -> Datagram:
    if len(data) < 4:
        raise UdptlError("datagram too short")
    seq = int.from_bytes(data[:2], "big")
    primary, at = _read_octets(data, 2)
    if at >= len(data):
        raise UdptlError("no error recovery field")
    if data[at] & 0x80:
        return Datagram(seq, primary)  # FEC: the primary alone
    count, at = _read_length(data, at + 1)
    secondary = []
    for _ in range(count):
        packet, at = _read_octets(data, at)
        secondary.append(packet)
    return Datagram(seq, primary, tuple(secondary))


class Sender:
    """Numbers outgoing IFP packets and adds the last `redundancy` ones to each datagram."""

    def __init__(self, redundancy: int = 3, max_datagram: int = 400) -> None:
        self.seq = 0
        self._recent: deque[bytes] = deque(maxlen=redundancy)
        self._max = max_datagram

    def datagram(self, packet: bytes) -> bytes:
        recent = list(reversed(self._recent))
        data = encode(Datagram(self.seq, packet, tuple(recent)))
        # The far end announced the largest datagram it takes: fewer copies, never the primary.
        while len(data) > self._max and recent:
            recent.pop()
            data = encode(Datagram(self.seq, packet, tuple(recent)))
        self._recent.append(packet)
        self.seq = (self.seq + 1) % _SEQ
        return data


class Receiver:
    """Turns datagrams, lost, late or repeated as the network delivers them, into the IFP
    packets in order, each once, with its sequence number. What no copy recovers stays a gap
    in the numbers, which the T.38 engine detects and handles."""

    def __init__(self) -> None:
        self._expected: int | None = None

    def packets(self, data: bytes) -> list[tuple[int, bytes]]:
        datagram = decode(data)
        if self._expected is None:
            self._expected = datagram.seq
        ahead = (datagram.seq - self._expected) % _SEQ
        if ahead >= _SEQ // 2:
            return []  # older than what was delivered: a repeat or a straggler
        out = []
        # Gaps the copies can fill, oldest first.
        for back in range(min(ahead, len(datagram.secondary)), 0, -1):
            out.append(((datagram.seq - back) % _SEQ, datagram.secondary[back - 1]))
        out.append((datagram.seq, datagram.primary))
        self._expected = (datagram.seq + 1) % _SEQ
        return out
