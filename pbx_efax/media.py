"""A fax call's media on one UDP socket each: G.711 over RTP, or T.38 over UDPTL, each driving
its spandsp engine in 20 ms steps.

Packets are handed to the engine as they arrive (a fax modem wants every sample, in order; a
lost RTP packet becomes fill-in of its length). The clock is the event loop's, with absolute
deadlines so that 50 packets go out every second however late a step ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable

from . import spandsp, udptl
from .sdp import PCMA, PCMU

STEP_SAMPLES = 160  # 20 ms at 8 kHz
STEP_S = STEP_SAMPLES / spandsp.SAMPLE_RATE
_RTP_HEADER = struct.Struct("!BBHII")


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on_datagram = on_datagram
        self.received = 0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.received += 1
        self._on_datagram(data, (str(addr[0]), int(addr[1])))


class Media(ABC):
    """The part both kinds share: a socket, a peer, a step clock, and the last packet's time
    (a call whose media stopped is over)."""

    def __init__(self, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.local, self.remote = local, remote
        self.transport: asyncio.DatagramTransport | None = None
        self._protocol = _Socket(self._receive)
        self._ticker: asyncio.Task[None] | None = None
        self.last_packet = 0.0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._protocol, local_addr=self.local
        )
        self.transport = transport
        self.last_packet = loop.time()
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            self.step()
            deadline += STEP_S
            delay = deadline - loop.time()
            if delay < -1:  # the process was stopped for a while: no burst to catch up
                deadline = loop.time()
            await asyncio.sleep(max(delay, 0))

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last_packet = asyncio.get_running_loop().time()
        # A malformed datagram is dropped, as a lost one.
        with contextlib.suppress(ValueError, struct.error):
            self.packet(data)

    def send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data, self.remote)

    @abstractmethod
    def step(self) -> None:
        """20 ms have passed: send what the engine has for them."""

    @abstractmethod
    def packet(self, data: bytes) -> None:
        """A datagram from the far end, for the engine."""

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self.transport is not None:
            self.transport.close()


class RtpAudio(Media):
    """G.711 RTP (RFC 3550) to and from an audio fax engine."""

    def __init__(
        self,
        engine: spandsp.AudioFax,
        local: tuple[str, int],
        remote: tuple[str, int],
        payload: int = PCMA,
    ) -> None:
        super().__init__(local, remote)
        self.engine = engine
        self.payload = payload
        # A peer may answer in the other law than it was offered: decode what each packet says.
        self._codecs = {PCMA: spandsp.G711(spandsp.ALAW), PCMU: spandsp.G711(spandsp.ULAW)}
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._rx_seq: int | None = None

    def step(self) -> None:
        payload = self._codecs[self.payload].encode(self.engine.transmit(STEP_SAMPLES))
        header = _RTP_HEADER.pack(0x80, self.payload, self._seq, self._timestamp, self._ssrc)
        self.send(header + payload)
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp = (self._timestamp + STEP_SAMPLES) & 0xFFFFFFFF

    def packet(self, data: bytes) -> None:
        first, marker_pt, seq, _, _ = _RTP_HEADER.unpack_from(data)
        if first >> 6 != 2 or (marker_pt & 0x7F) not in self._codecs:
            return  # not RTP, or not G.711 (comfort noise, events): nothing for the modem
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            (words,) = struct.unpack_from("!H", data, start + 2)
            start += 4 + 4 * words
        payload = data[start : len(data) - (data[-1] if first & 0x20 else 0)]
        if self._rx_seq is not None:
            gap = (seq - self._rx_seq - 1) & 0xFFFF
            if gap >= 0x8000:
                return  # late: its moment has passed
            if gap:
                self.engine.fill_in(min(gap, 50) * STEP_SAMPLES)
        self._rx_seq = seq
        self.engine.receive(self._codecs[marker_pt & 0x7F].decode(payload))

    def close(self) -> None:
        super().close()
        for codec in self._codecs.values():
            codec.close()


class UdptlT38(Media):
    """T.38 over UDPTL to and from a T.38 terminal engine."""

    def __init__(
        self,
        make_engine: Callable[[Callable[[bytes, int], None]], spandsp.T38Fax],
        local: tuple[str, int],
        remote: tuple[str, int],
        max_datagram: int = 400,
    ) -> None:
        super().__init__(local, remote)
        self._sender = udptl.Sender(max_datagram=max_datagram)
        self._receiver = udptl.Receiver()
        self.engine = make_engine(self._transmit)

    def _transmit(self, packet: bytes, count: int) -> None:
        for _ in range(count):
            self.send(self._sender.datagram(packet))

    def step(self) -> None:
        self.engine.tick(STEP_SAMPLES)

    def packet(self, data: bytes) -> None:
        for seq, ifp in self._receiver.packets(data):
            self.engine.receive(ifp, seq)
