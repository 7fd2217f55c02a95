"""A SIP user agent over UDP, as small as click-to-dial needs (RFC 3261 subset).

It sends requests through the site's proxy (which record-routes, so every request of the
dialog passes it), retransmits them as RFC 3261 17.1 asks (timer A/E from T1, up to T2, until
a response; INVITE retransmissions stop at the first provisional), ACKs final answers
(non-2xx hop by hop with the INVITE's branch, 2xx end to end with a branch of its own, again
for each retransmitted 2xx), and answers requests inside its dialogs: NOTIFY and BYE with 200,
anything else with 501. Requests outside its dialogs get 481. No SDP negotiation: the one
offer it makes is an inactive stream that nobody sends to.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

log = logging.getLogger("pbx_sip")

T1, T2 = 0.5, 4.0
TIMER_B = 32.0  # 64*T1: no response at all
MAX_DATAGRAM = 65_000
COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "r": "refer-to",
    "o": "event",
    "k": "supported",
    "u": "allow-events",
}


class SipError(Exception):
    """The peer or the network failed the request (a timeout, an unparsable answer)."""


@dataclass
class Message:
    first_line: str
    headers: list[tuple[str, str]]  # (lower-case full name, value), in order
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first_line.split(" ", 2)[1]) if self.is_response else 0

    @property
    def reason(self) -> str:
        parts = self.first_line.split(" ", 2)
        return parts[2] if self.is_response and len(parts) > 2 else ""

    @property
    def method(self) -> str:
        return "" if self.is_response else self.first_line.split(" ", 1)[0]

    def get(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name), "")

    def all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated lists split (Via, Record-Route)."""
        out: list[str] = []
        for k, v in self.headers:
            if k == name:
                out.extend(_split_list(v))
        return out

    @property
    def cseq_method(self) -> str:
        return self.get("cseq").split()[-1] if self.get("cseq") else ""

    @property
    def branch(self) -> str:
        via = self.all("via")
        return _param(via[0], "branch") if via else ""


def _split_list(value: str) -> list[str]:
    """Splits a header list at commas outside <> and quotes."""
    items, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [i for i in items if i]


def _param(value: str, name: str) -> str:
    for part in value.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        if key.lower() == name:
            return val
    return ""


def tag_of(value: str) -> str:
    return _param(value.rsplit(">", 1)[-1] if ">" in value else value, "tag")


def uri_of(value: str) -> str:
    """The URI of a name-addr (<...>) or addr-spec."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def parse(data: bytes) -> Message:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipError("no end of headers")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipError(f"malformed header line {line[:40]!r}")
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return Message(lines[0], headers, body)


def build(first_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [first_line, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    local_uri: str
    remote_uri: str
    remote_tag: str = ""
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    cseq: int = 1
    # In-dialog requests from the peer (NOTIFY, BYE) for whoever runs the dialog.
    incoming: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)


class UserAgent(asyncio.DatagramProtocol):
    """One UDP socket; ``proxy`` is where every request goes first."""

    def __init__(self, host: str, port: int, user: str = "ctd") -> None:
        self.host, self.port, self.user = host, port, user
        self.transport: asyncio.DatagramTransport | None = None
        self._responses: dict[str, asyncio.Queue[Message]] = {}  # branch -> responses
        self._dialogs: dict[str, Dialog] = {}  # call-id -> dialog
        self._acks: dict[tuple[str, str], bytes] = {}  # (call-id, to-tag) -> the 2xx's ACK
        self.on_stray: Callable[[Message], None] = lambda m: None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's UDP transport is not a DatagramTransport subclass (3.12's is).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.host}:{self.port}>"

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    # --- incoming ------------------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 20 or data.strip() == b"":
            return  # keepalives
        try:
            msg = parse(data)
        except (SipError, ValueError, IndexError) as exc:
            log.info("unparsable SIP from %s: %s", addr, exc)
            return
        if msg.is_response:
            self._response(msg, addr)
        else:
            self._request(msg, addr)

    def _response(self, msg: Message, addr: tuple[str, int]) -> None:
        queue = self._responses.get(msg.branch)
        if queue is not None:
            queue.put_nowait(msg)
            return
        # A retransmitted 2xx to an INVITE whose ACK was lost: ACK it again.
        if msg.cseq_method == "INVITE" and 200 <= msg.status < 300:
            ack = self._acks.get((msg.get("call-id"), tag_of(msg.get("to"))))
            if ack is not None:
                self.send(ack, addr)

    def _request(self, msg: Message, addr: tuple[str, int]) -> None:
        dialog = self._dialogs.get(msg.get("call-id"))
        if msg.method == "ACK":
            return
        if dialog is None or tag_of(msg.get("to")) != dialog.local_tag:
            self._reply(msg, addr, 481, "Call/Transaction Does Not Exist")
            return
        if msg.method in ("NOTIFY", "BYE"):
            self._reply(msg, addr, 200, "OK")
            dialog.incoming.put_nowait(msg)
        elif msg.method == "OPTIONS":
            self._reply(msg, addr, 200, "OK")
        else:
            self._reply(msg, addr, 501, "Not Implemented")

    def _reply(self, req: Message, addr: tuple[str, int], code: int, reason: str) -> None:
        to = req.get("to")
        if code != 481 and ";tag=" not in to:
            to += f";tag={new_token()}"
        headers = [("Via", v) for v in req.all("via")]
        headers += [
            ("From", req.get("from")),
            ("To", to),
            ("Call-ID", req.get("call-id")),
            ("CSeq", req.get("cseq")),
        ]
        # Answer where the request came from (the proxy), as rport asks.
        self.send(build(f"SIP/2.0 {code} {reason}", headers), addr)

    # --- outgoing ------------------------------------------------------------------------------
    def register_dialog(self, dialog: Dialog) -> None:
        self._dialogs[dialog.call_id] = dialog

    def forget_dialog(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.call_id, None)
        for key in [k for k in self._acks if k[0] == dialog.call_id]:
            del self._acks[key]

    def via(self, branch: str) -> tuple[str, str]:
        return ("Via", f"SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport")

    async def transaction(
        self,
        data: bytes,
        branch: str,
        to: tuple[str, int],
        invite: bool,
        on_provisional: Callable[[Message], None] = lambda m: None,
        final_timeout: float = TIMER_B,
    ) -> Message:
        """Sends a request and returns its final response; SipError when none comes."""
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._responses[branch] = queue
        loop = asyncio.get_running_loop()
        try:
            interval, provisional = T1, False
            started = loop.time()
            deadline = started + TIMER_B
            self.send(data, to)
            while True:
                wait = deadline - loop.time()
                if not provisional:
                    wait = min(wait, interval)
                if wait <= 0:
                    raise SipError("no final answer" if provisional else "no answer")
                try:
                    msg = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if loop.time() >= deadline:
                        raise SipError("no final answer" if provisional else "no answer") from None
                    if not provisional:
                        self.send(data, to)
                        interval = min(interval * 2, T2) if not invite else interval * 2
                    continue
                if msg.status < 200:
                    if not provisional and invite:
                        deadline = loop.time() + final_timeout
                    provisional = True
                    on_provisional(msg)
                    continue
                return msg
        finally:
            self._responses.pop(branch, None)

    def remember_ack(self, call_id: str, to_tag: str, ack: bytes) -> None:
        self._acks[(call_id, to_tag)] = ack
