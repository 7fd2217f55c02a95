"""Two fax gateways back to back over loopback, each the other's "proxy": real SIP dialogs
(INVITE, 200 retransmitted until the ACK, re-INVITE, BYE) around real fax calls in real time.
Two calls at once: one moved to T.38 by the receiving side's re-INVITE, one whose sender
refuses T.38 and stays on G.711; then the answers a gateway gives when it cannot take a call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from labkit.fax import SIMILARITY_THRESHOLD, letter, similarity
from pbx_efax.documents import fax_pages
from pbx_efax.gateway import Config, Gateway, Outcome, Received
from pbx_sip.agent import Dialog, UserAgent, new_token, ping

IP = "127.0.0.1"


def config(tmp: Path, name: str, port: int, peer: int, t38: str, ports: range) -> Config:
    return Config(
        host=IP, sip_port=port, proxies=[(IP, peer)], media_ports=ports, domain="fax.test",
        token="t", spool=tmp / name, t38=t38,
    )  # fmt: skip


async def pair(
    tmp: Path, sender_t38: str, base: int, receiver_ports: range | None = None
) -> tuple[Gateway, Gateway, list[Received]]:
    received: list[Received] = []

    async def keep(fax: Received) -> None:
        received.append(fax)

    async def ignore(fax: Received) -> None:
        raise AssertionError("the sender received a fax")

    ports = range(base + 100, base + 140) if receiver_ports is None else receiver_ports
    receiver = Gateway(config(tmp, f"rx{base}", base, base + 1, "offer", ports), keep)
    sender = Gateway(
        config(tmp, f"tx{base}", base + 1, base, sender_t38, range(base + 200, base + 240)), ignore
    )
    await receiver.start()
    await sender.start()
    return sender, receiver, received


def test_two_faxes_at_once_one_moved_to_t38_one_kept_on_g711(tmp_path: Path) -> None:
    pages = tmp_path / "sent.tif"
    fax_pages(letter(1), pages)

    async def run() -> list[tuple[Outcome, list[Received]]]:
        pairs = [await pair(tmp_path, "accept", 45060), await pair(tmp_path, "off", 46060)]
        try:
            outcomes = await asyncio.gather(
                *(s.send("+4930123", "+4989555", pages, header="Test") for s, _, _ in pairs)
            )
            await asyncio.sleep(0.5)  # the receivers hand over their faxes after the BYE
            return [(o, r) for o, (_, _, r) in zip(outcomes, pairs, strict=True)]
        finally:
            for s, r, _ in pairs:
                await s.close()
                await r.close()

    results = asyncio.run(run())
    for (sent, received), mode in zip(results, ["t38", "audio"], strict=True):
        assert sent.status == "ok", sent
        assert sent.pages == 1
        assert sent.mode == mode, sent
        assert len(received) == 1
        fax = received[0]
        assert fax.outcome.status == "ok", fax.outcome
        assert (fax.number, fax.caller) == ("+4930123", "+4989555")
        assert fax.outcome.remote_ident == "+4989555"
        assert fax.outcome.mode == mode
        assert min(similarity(pages, fax.tiff)) >= SIMILARITY_THRESHOLD


def test_a_gateway_without_free_media_ports_is_busy(tmp_path: Path) -> None:
    pages = tmp_path / "sent.tif"
    fax_pages(letter(1), pages)

    async def run() -> Outcome:
        sender, receiver, _ = await pair(tmp_path, "accept", 47060, receiver_ports=range(0))
        try:
            return await sender.send("+4930123", "+4989555", pages)
        finally:
            await sender.close()
            await receiver.close()

    outcome = asyncio.run(run())
    assert (outcome.status, outcome.sip_code) == ("busy", 486)


@pytest.mark.parametrize(
    ("body", "code"), [(b"", 488), (b"v=0\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 1.2.3.4\r\n", 488)]
)
def test_offers_without_fax_media_are_refused(tmp_path: Path, body: bytes, code: int) -> None:
    async def run() -> int:
        sender, receiver, _ = await pair(tmp_path, "accept", 48060)
        try:
            dialog = Dialog(f"x-{new_token()}", new_token(), "sip:a@fax.test", "sip:b@fax.test")
            sent = await sender.agent.invite(
                [(IP, 48060)], dialog, "sip:+4930123@fax.test", [], body, 5
            )
            assert sent is not None
            return sent[0].status
        finally:
            await sender.close()
            await receiver.close()

    assert asyncio.run(run()) == code


def test_requests_from_anywhere_but_the_proxies_are_forbidden(tmp_path: Path) -> None:
    async def run() -> int:
        _, receiver, _ = await pair(tmp_path, "accept", 49060)
        stranger = UserAgent("127.0.0.2", 49099)  # another host than the proxy
        await stranger.start()
        try:
            dialog = Dialog(f"x-{new_token()}", new_token(), "sip:a@fax.test", "sip:b@fax.test")
            sent = await stranger.invite([(IP, 49060)], dialog, "sip:+4930123@fax.test", [], b"", 5)
            assert sent is not None
            return sent[0].status
        finally:
            stranger.close()
            await receiver.close()

    assert asyncio.run(run()) == 403


class _Proxy(asyncio.DatagramProtocol):
    """A stand-in proxy: sends raw datagrams to the gateway and queues what comes back."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait(data)

    async def answer(self, status: str, timeout: float = 3) -> bytes:
        while True:
            data = await asyncio.wait_for(self.got.get(), timeout)
            if data.startswith(f"SIP/2.0 {status}".encode()):
                return data


def test_garbage_is_ignored_and_a_retransmitted_invite_gets_the_same_answer(
    tmp_path: Path,
) -> None:
    offer = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 49990 RTP/AVP 8\r\n"
    )

    def request(method: str, cseq: int, to_tag: str = "", body: str = "") -> bytes:
        to = "<sip:+4930123@fax.test>" + (f";tag={to_tag}" if to_tag else "")
        head = (
            f"{method} sip:+4930123@127.0.0.1:50060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:50061;branch=z9hG4bK-{method}-{cseq}\r\n"
            "From: <sip:+4989555@fax.test>;tag=peer\r\n"
            f"To: {to}\r\nCall-ID: torture-1\r\nCSeq: {cseq} {method}\r\n"
            "Contact: <sip:peer@127.0.0.1:50061>\r\nMax-Forwards: 70\r\n"
        )
        if body:
            head += "Content-Type: application/sdp\r\n"
        return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()

    async def run() -> None:
        received: list[Received] = []

        async def keep(fax: Received) -> None:
            received.append(fax)

        gateway = Gateway(config(tmp_path, "rx", 50060, 50061, "accept", range(50100, 50140)), keep)
        await gateway.start()
        loop = asyncio.get_running_loop()
        transport, proxy = await loop.create_datagram_endpoint(_Proxy, local_addr=(IP, 50061))
        try:
            for junk in (b"\x00\xff" * 40, b"INVITE sip:x SIP/2.0\r\nVia: x", b"A" * 1400):
                transport.sendto(junk, (IP, 50060))
            invite = request("INVITE", 1, body=offer)
            transport.sendto(invite, (IP, 50060))
            first = await proxy.answer("200")
            transport.sendto(invite, (IP, 50060))  # as if our 200 were lost: the same again
            again = await proxy.answer("200")
            assert again == first
            tag = first.split(b"\r\nTo: ")[1].split(b"\r\n")[0].split(b"tag=")[1].decode()
            transport.sendto(request("ACK", 1, tag), (IP, 50060))
            assert gateway.active_calls == 1
            transport.sendto(request("BYE", 2, tag), (IP, 50060))
            await proxy.answer("200")
            for _ in range(50):  # the call's process ends, the fax is handed over (no pages)
                if received:
                    break
                await asyncio.sleep(0.1)
            assert [r.outcome.status for r in received] == ["failed"]
            assert gateway.active_calls == 0
        finally:
            transport.close()
            await gateway.close()

    asyncio.run(run())


def test_a_call_whose_fax_engine_dies_fails_alone_and_the_gateway_goes_on(
    tmp_path: Path,
) -> None:
    """The fax DSP runs in a process per call: killing one (as a crash in spandsp would) ends
    that call with a clear cause; the gateway answers the next request as before."""
    pages = tmp_path / "sent.tif"
    fax_pages(letter(1), pages)

    async def run() -> tuple[Outcome, list[Received], int]:
        sender, receiver, received = await pair(tmp_path, "accept", 51060)
        try:
            sending = asyncio.create_task(sender.send("+4930123", "+4989555", pages))
            for _ in range(100):  # the receiving call's process is up
                if receiver._processes:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)
            for process in list(receiver._processes):
                process.proc.kill()  # SIGKILL: what a segfault in the library amounts to
            outcome = await asyncio.wait_for(sending, 60)
            await asyncio.sleep(0.5)
            # The node itself may ask OPTIONS (its healthcheck): still answered.
            return outcome, received, await ping(IP, 51060, source=IP)
        finally:
            await sender.close()
            await receiver.close()

    outcome, received, options = asyncio.run(run())
    assert outcome.status == "failed", outcome
    assert [r.outcome.status for r in received] == ["failed"]
    assert "fax engine ended" in received[0].outcome.cause, received[0].outcome
    assert options == 200
