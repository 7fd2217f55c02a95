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
        # A user agent server (the fax gateway) sees every request first; True: it took it.
        self.on_request: Callable[[Message, tuple[str, int]], bool] = lambda m, a: False

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
        if self.on_request(msg, addr):
            return
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
        self.respond(req, addr, code, reason, to_tag="" if code == 481 else new_token())

    def respond(
        self,
        req: Message,
        addr: tuple[str, int],
        code: int,
        reason: str,
        *,
        to_tag: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> bytes:
        """Answers a request where it came from (the proxy, as rport asks); the To gets
        `to_tag` unless it has one. Returns the response, for retransmissions."""
        to = req.get("to")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [("Via", v) for v in req.all("via")]
        if 100 < code < 300:  # a dialog-forming answer keeps the route set (RFC 3261 12.1.1)
            lines += [("Record-Route", r) for r in req.all("record-route")]
        lines += [
            ("From", req.get("from")),
            ("To", to),
            ("Call-ID", req.get("call-id")),
            ("CSeq", req.get("cseq")),
            *(headers or []),
        ]
        data = build(f"SIP/2.0 {code} {reason}", lines, body)
        self.send(data, addr)
        return data

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

    # --- requests inside a dialog ------------------------------------------------------------
    def next_hop(self, dialog: Dialog, proxy: tuple[str, int]) -> tuple[str, int]:
        """The first Route (our proxy, loose routing) or, without one, the proxy itself."""
        if dialog.route_set:
            host_port = uri_of(dialog.route_set[0]).split("@")[-1].split(";")[0]
            host, _, port = host_port.removeprefix("sip:").partition(":")
            return host, int(port or 5060)
        return proxy

    def in_dialog(
        self,
        dialog: Dialog,
        method: str,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        cseq: int | None = None,
    ) -> tuple[bytes, str]:
        """A request of the dialog (the next CSeq unless given) and its branch."""
        if cseq is None:
            dialog.cseq += 1
            cseq = dialog.cseq
        branch = "z9hG4bK" + new_token()
        headers = [
            self.via(branch),
            ("Max-Forwards", "70"),
            *(("Route", r) for r in dialog.route_set),
            ("From", f"<{dialog.local_uri}>;tag={dialog.local_tag}"),
            ("To", f"<{dialog.remote_uri}>;tag={dialog.remote_tag}"),
            ("Call-ID", dialog.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", self.contact),
            *(extra or []),
        ]
        return build(f"{method} {dialog.remote_target} SIP/2.0", headers, body), branch

    async def request(
        self,
        dialog: Dialog,
        proxy: tuple[str, int],
        method: str,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Message:
        """Sends a request of the dialog and returns its final answer (a re-INVITE's 2xx
        is ACKed here)."""
        data, branch = self.in_dialog(dialog, method, extra, body)
        hop = self.next_hop(dialog, proxy)
        answer = await self.transaction(data, branch, hop, method == "INVITE")
        if method == "INVITE" and 200 <= answer.status < 300:
            ack, _ = self.in_dialog(dialog, "ACK", cseq=dialog.cseq)
            self.remember_ack(dialog.call_id, dialog.remote_tag, ack)
            self.send(ack, hop)
        return answer

    async def invite(
        self,
        proxies: list[tuple[str, int]],
        dialog: Dialog,
        request_uri: str,
        extra: list[tuple[str, str]],
        body: bytes,
        final_timeout: float,
        display: str = "",
    ) -> tuple[Message, tuple[str, int]] | None:
        """A dialog's first INVITE through the first proxy that answers; its final answer ACKed
        (a failure hop by hop, a 2xx end to end, which also fills in the dialog). None when no
        proxy answers at all."""
        for hop in proxies:
            branch = "z9hG4bK" + new_token()
            name = f'"{display}" ' if display else ""
            headers = [
                self.via(branch),
                ("Max-Forwards", "70"),
                ("From", f"{name}<{dialog.local_uri}>;tag={dialog.local_tag}"),
                ("To", f"<{dialog.remote_uri}>"),
                ("Call-ID", dialog.call_id),
                ("CSeq", f"{dialog.cseq} INVITE"),
                ("Contact", self.contact),
                *extra,
            ]
            data = build(f"INVITE {request_uri} SIP/2.0", headers, body)
            try:
                answer = await self.transaction(
                    data, branch, hop, True, final_timeout=final_timeout
                )
            except SipError:
                log.warning("INVITE %s: proxy %s:%s did not answer", dialog.call_id, *hop)
                continue
            if answer.status >= 300:  # hop-by-hop ACK, the INVITE's branch
                ack = [
                    self.via(branch),
                    ("Max-Forwards", "70"),
                    ("From", headers[2][1]),
                    ("To", answer.get("to")),
                    ("Call-ID", dialog.call_id),
                    ("CSeq", f"{dialog.cseq} ACK"),
                ]
                self.send(build(f"ACK {request_uri} SIP/2.0", ack), hop)
                return answer, hop
            dialog.remote_tag = tag_of(answer.get("to"))
            dialog.remote_target = uri_of(answer.get("contact"))
            dialog.route_set = list(reversed(answer.all("record-route")))
            ack_2xx, _ = self.in_dialog(dialog, "ACK", cseq=dialog.cseq)
            self.remember_ack(dialog.call_id, dialog.remote_tag, ack_2xx)
            self.send(ack_2xx, self.next_hop(dialog, hop))
            return answer, hop
        return None


async def ping(host: str, port: int, source: str, timeout: float = 4.0) -> int:
    """The status a SIP node at host:port answers an OPTIONS with (sent from `source`, a
    node's own address where it trusts only itself); SipError or TimeoutError when none."""
    agent = UserAgent(source, 0)
    await agent.start()
    try:
        dialog = Dialog(
            f"ping-{new_token()}", new_token(), "sip:ping@localhost", "sip:node@localhost"
        )
        dialog.remote_target = f"sip:{host}:{port}"
        data, branch = agent.in_dialog(dialog, "OPTIONS")
        answer = await asyncio.wait_for(
            agent.transaction(data, branch, (host, port), False), timeout
        )
        return answer.status
    finally:
        agent.close()
