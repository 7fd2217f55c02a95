"""The fax gateway's SIP side: it answers fax calls the proxies route to it and places the calls
of outgoing fax jobs through them. Each call's media and DSP run in a process of their own
(pbx_efax.call); this module does the SIP around it (RFC 3261 over UDP, pbx_sip.agent):

- receiving: INVITE with G.711 or T.38 -> 200 with our answer (retransmitted until the ACK).
  With `t38` set to "offer", an audio call is moved to T.38 by our re-INVITE right after the
  ACK, as a carrier's gateway does; a peer that refuses (488) keeps the call on G.711.
- a re-INVITE from the peer to T.38 (what carriers send on hearing the fax tones) or back to
  audio is answered and the call's process switches its engine;
- BYE from either side ends the call; a call whose fax is over is hung up by us.

Requests are taken only from the platform's proxies: the gateway has no digest auth of its own
and is never reachable from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbx_sip.agent import T1, T2, Dialog, Message, SipError, UserAgent, new_token, tag_of, uri_of

from . import sdp

log = logging.getLogger("pbx_efax.gateway")

RING_S = 60.0  # how long an outgoing fax call may ring before it counts as not answered
# The longest a fax call may last (50 pages at the slowest rate): then it is cut.
CALL_LIMIT_S = 50 * 60.0
T38_OFFER_DELAY_S = 1.0  # after the ACK, as a carrier's gateway does on hearing CED
BUSY = (486, 600)
NO_ANSWER = (408, 480, 487)


@dataclass(frozen=True)
class Config:
    host: str  # SIP and media address (internal)
    sip_port: int
    proxies: list[tuple[str, int]]  # the site's own first
    media_ports: range  # four per call: audio RTP, RTCP, T.38, spare
    domain: str
    token: str  # the internal token the proxies check on our outgoing calls
    spool: Path
    ident: str = ""  # the station id we send (the customer's number is used when known)
    t38: str = "offer"  # "offer": move audio calls to T.38; "accept": only when asked; "off"


@dataclass(frozen=True)
class Policy:
    """How a call to a number is met: answered (with this T.38 behaviour, hung up after
    `hang_up_after_s` if set) or refused with `code`. The platform's gateway answers every
    number the proxies send it; the lab's remote fax machine plays busy lines and the like."""

    code: int = 200
    reason: str = "OK"
    t38: str = "offer"
    hang_up_after_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """How a fax call ended: `status` is "ok", "busy", "no_answer" or "failed"."""

    status: str
    cause: str = ""
    pages: int = 0
    bit_rate: int = 0
    ecm: bool = False
    mode: str = ""  # "audio" or "t38": what carried the pages
    remote_ident: str = ""
    seconds: float = 0.0
    sip_code: int = 0


@dataclass(frozen=True)
class Received:
    """A fax that came in: the number called, who called, the pages (TIFF) and the outcome."""

    number: str
    caller: str
    tiff: Path
    outcome: Outcome
    call_id: str


def _usable(body: bytes) -> sdp.Stream | None:
    """The fax stream of an SDP body; None for none, or for a body that is not SDP."""
    try:
        return sdp.parse(body.decode("utf-8", "replace")).usable() if body else None
    except sdp.SdpError:
        return None


class CallProcess:
    """One call's media/DSP process (pbx_efax.call), driven over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.result: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.proc_done = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, **start: Any) -> CallProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pbx_efax.call",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        process = cls(proc)
        process.command(op="start", **start)
        return process

    def command(self, **fields: Any) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write((json.dumps(fields) + "\n").encode())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "result" and not self.result.done():
                    self.result.set_result(event)
        rc = await self.proc.wait()
        if not self.result.done():  # the DSP died: the call failed, the gateway goes on
            self.result.set_result({"ok": False, "code": -2, "text": f"fax engine ended ({rc})"})

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@dataclass
class Call:
    dialog: Dialog
    proxy: tuple[str, int]
    port: int  # the first of its four media ports
    builder: sdp.Builder
    process: CallProcess | None = None
    policy: Policy = Policy()
    mode: str = ""
    hung_up: bool = False  # the peer sent BYE
    established: asyncio.Event = field(default_factory=asyncio.Event)  # ACK of our 2xx
    pending_2xx: bytes = b""
    pending_to: tuple[str, int] = ("", 0)


class Gateway:
    def __init__(self, config: Config, on_received: Callable[[Received], Awaitable[None]]) -> None:
        self.config = config
        self.on_received = on_received
        self.agent = UserAgent(config.host, config.sip_port, user="fax")
        self.agent.on_request = self._on_request
        self._calls: dict[str, Call] = {}
        self._free_ports = list(range(config.media_ports.start, config.media_ports.stop - 3, 4))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._proxy_hosts = {host for host, _ in config.proxies}
        self.policy: Callable[[str], Policy] = lambda number: Policy(t38=config.t38)
        self._processes: set[CallProcess] = set()

    async def start(self) -> None:
        self.config.spool.mkdir(parents=True, exist_ok=True)
        await self.agent.start()

    async def close(self) -> None:
        """Ends every call's process and waits for each to be reaped (a child reaped after the
        loop closed makes asyncio's watcher thread fail), then the SIP socket."""
        for process in list(self._processes):
            process.kill()
            await process.proc.wait()
        for task in list(self._tasks):
            task.cancel()
        self.agent.close()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def _process(self, **start: Any) -> CallProcess:
        process = await CallProcess.start(**start)
        self._processes.add(process)
        process.proc_done.add_done_callback(lambda _: self._processes.discard(process))
        return process

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests from the proxies --------------------------------------------------------------
    def _on_request(self, msg: Message, addr: tuple[str, int]) -> bool:
        if msg.method == "OPTIONS" and addr[0] == self.config.host:  # the healthcheck
            self.agent.respond(msg, addr, 200, "OK", to_tag=new_token())
            return True
        if addr[0] not in self._proxy_hosts:
            if msg.method != "ACK":
                self.agent.respond(msg, addr, 403, "Forbidden", to_tag=new_token())
            return True
        call = self._calls.get(msg.get("call-id"))
        to_tag = tag_of(msg.get("to"))
        if msg.method == "OPTIONS" and not to_tag:
            self.agent.respond(msg, addr, 200, "OK", to_tag=new_token())
            return True
        if msg.method == "INVITE" and not to_tag:
            if call is not None:  # a retransmission: the answer again
                if call.pending_2xx:
                    self.agent.send(call.pending_2xx, addr)
                return True
            self._incoming(msg, addr)
            return True
        if call is None or to_tag != call.dialog.local_tag:
            if msg.method == "CANCEL":  # for an INVITE we answered already: no effect
                self.agent.respond(msg, addr, 200, "OK")
                return True
            return msg.method != "ACK" and self._unknown(msg, addr)
        if msg.method == "ACK":
            call.pending_2xx = b""
            call.established.set()
        elif msg.method == "BYE":
            self.agent.respond(msg, addr, 200, "OK")
            call.hung_up = True
            if call.process is not None:
                call.process.command(op="hangup")
        elif msg.method == "INVITE":
            self._reinvite(call, msg, addr)
        elif msg.method in ("OPTIONS", "UPDATE", "INFO") and not msg.body:
            self.agent.respond(msg, addr, 200, "OK")
        else:
            self.agent.respond(msg, addr, 501, "Not Implemented")
        return True

    def _unknown(self, msg: Message, addr: tuple[str, int]) -> bool:
        self.agent.respond(msg, addr, 481, "Call/Transaction Does Not Exist")
        return True

    def _answer(self, call: Call, msg: Message, addr: tuple[str, int], body: str) -> None:
        """200 with our SDP, retransmitted (T1 doubling up to T2) until the ACK (timer G/H)."""
        call.established.clear()
        call.pending_to = addr
        call.pending_2xx = self.agent.respond(
            msg,
            addr,
            200,
            "OK",
            to_tag=call.dialog.local_tag,
            headers=[
                ("Contact", self.agent.contact),
                ("Content-Type", "application/sdp"),
                ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"),
            ],
            body=body.encode(),
        )

        async def retransmit() -> None:
            interval, waited = T1, 0.0
            while call.pending_2xx and waited < 64 * T1:
                await asyncio.sleep(interval)
                waited += interval
                if call.pending_2xx:
                    self.agent.send(call.pending_2xx, addr)
                interval = min(interval * 2, T2)

        self._spawn(retransmit())

    def _incoming(self, msg: Message, addr: tuple[str, int]) -> None:
        stream = _usable(msg.body)
        if stream is None or not self._free_ports:
            code, reason = (488, "Not Acceptable Here") if stream is None else (486, "Busy Here")
            self.agent.respond(msg, addr, code, reason, to_tag=new_token())
            return
        # The number called: the Request-URI's (the proxy put the fax number there; the To
        # keeps whatever the caller dialled).
        number = msg.first_line.split(" ")[1].removeprefix("sip:").split("@")[0].split(";")[0]
        policy = self.policy(number)
        if policy.code != 200:
            self.agent.respond(msg, addr, policy.code, policy.reason, to_tag=new_token())
            return
        self.agent.respond(msg, addr, 100, "Trying")
        dialog = Dialog(
            call_id=msg.get("call-id"),
            local_tag=new_token(),
            local_uri=uri_of(msg.get("to")),
            remote_uri=uri_of(msg.get("from")),
            remote_tag=tag_of(msg.get("from")),
            remote_target=uri_of(msg.get("contact")),
            route_set=msg.all("record-route"),
        )
        port = self._free_ports.pop(0)
        call = Call(dialog, addr, port, sdp.Builder(self.config.host), policy=policy)
        self._calls[dialog.call_id] = call
        caller = uri_of(msg.get("from")).removeprefix("sip:").split("@")[0]
        self._spawn(self._receive(call, msg, addr, stream, number, caller))

    async def _receive(
        self,
        call: Call,
        msg: Message,
        addr: tuple[str, int],
        stream: sdp.Stream,
        number: str,
        caller: str,
    ) -> None:
        tiff = self.config.spool / f"rx-{new_token()}.tif"
        started = asyncio.get_running_loop().time()
        try:
            call.process = await self._process(
                role="receive", file=str(tiff), ident=number, ip=self.config.host
            )
            self._accept(call, msg, addr, stream)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.established.wait(), 64 * T1)
            if call.policy.hang_up_after_s is not None:
                self._spawn(self._hang_up_later(call, call.policy.hang_up_after_s))
            if call.mode == "audio" and call.policy.t38 == "offer" and not call.hung_up:
                await asyncio.sleep(T38_OFFER_DELAY_S)
                await self._offer_t38(call)
            outcome = await self._finish(call, started)
        finally:
            self._end(call)
        await self.on_received(Received(number, caller, tiff, outcome, call.dialog.call_id))

    async def _hang_up_later(self, call: Call, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if call.process is not None:
            call.process.command(op="hangup")

    def _media(self, call: Call, stream: sdp.Stream) -> None:
        assert call.process is not None
        remote = [stream.address, stream.port]
        if stream.t38:
            call.process.command(
                op="t38", port=call.port + 2, remote=remote, max_datagram=stream.max_datagram
            )
            call.mode = "t38"
        else:
            call.process.command(
                op="audio", port=call.port, remote=remote, payload=stream.audio_payload
            )
            call.mode = "audio"

    def _reinvite(self, call: Call, msg: Message, addr: tuple[str, int]) -> None:
        stream = _usable(msg.body)
        if stream is None or call.process is None or (stream.t38 and call.policy.t38 == "off"):
            self.agent.respond(msg, addr, 488, "Not Acceptable Here")
            return
        self._accept(call, msg, addr, stream)

    def _accept(self, call: Call, msg: Message, addr: tuple[str, int], stream: sdp.Stream) -> None:
        """The call's media follows `stream`; the answer says ours (same law, or T.38)."""
        self._media(call, stream)
        body = (
            call.builder.t38(call.port + 2, stream)
            if stream.t38
            else call.builder.audio(call.port, (stream.audio_payload or sdp.PCMA,))
        )
        self._answer(call, msg, addr, body)

    async def _offer_t38(self, call: Call) -> None:
        try:
            answer = await self.agent.request(
                call.dialog,
                call.proxy,
                "INVITE",
                [("Content-Type", "application/sdp")],
                call.builder.t38(call.port + 2).encode(),
            )
        except SipError as exc:
            log.info(
                "%s: T.38 re-INVITE unanswered (%s); staying on G.711", call.dialog.call_id, exc
            )
            return
        stream = _usable(answer.body) if 200 <= answer.status < 300 else None
        if stream is not None and stream.t38:
            self._media(call, stream)
            log.info("%s: switched to T.38", call.dialog.call_id)
        else:
            log.info("%s: T.38 refused (%s); staying on G.711", call.dialog.call_id, answer.status)

    async def _finish(self, call: Call, started: float) -> Outcome:
        """Waits for the fax to end, hangs up if the peer has not, and says how it went."""
        assert call.process is not None
        try:
            result = await asyncio.wait_for(asyncio.shield(call.process.result), CALL_LIMIT_S)
        except TimeoutError:
            call.process.command(op="hangup")
            result = await call.process.result
        if not call.hung_up:
            with contextlib.suppress(SipError):
                await self.agent.request(call.dialog, call.proxy, "BYE")
        seconds = asyncio.get_running_loop().time() - started
        return Outcome(
            status="ok" if result.get("ok") else "failed",
            cause="" if result.get("ok") else str(result.get("text", "")),
            pages=int(result.get("pages", 0)),
            bit_rate=int(result.get("bit_rate", 0)),
            ecm=bool(result.get("ecm", False)),
            mode=str(result.get("mode", call.mode)),
            remote_ident=str(result.get("remote_ident", "")),
            seconds=round(seconds, 1),
            sip_code=200,
        )

    def _end(self, call: Call) -> None:
        call.pending_2xx = b""
        if call.process is not None:
            call.process.kill()
        self._calls.pop(call.dialog.call_id, None)
        self._free_ports.append(call.port)

    # --- outgoing fax calls ---------------------------------------------------------------------
    async def send(
        self, number: str, caller: str, tiff: Path, header: str = "", ident: str = ""
    ) -> Outcome:
        """Calls `number` through the proxies as `caller` (the customer's fax number, which the
        proxy's routing turns into the caller ID) and sends the pages of `tiff`."""
        if not self._free_ports:
            return Outcome("failed", "no free media ports on this gateway")
        loop = asyncio.get_running_loop()
        started = loop.time()
        port = self._free_ports.pop(0)
        dialog = Dialog(
            call_id=f"fax-{new_token()}@{self.config.host}",
            local_tag=new_token(),
            local_uri=f"sip:{caller}@{self.config.domain}",
            remote_uri=f"sip:{number}@{self.config.domain}",
        )
        call = Call(
            dialog,
            self.config.proxies[0],
            port,
            sdp.Builder(self.config.host),
            policy=Policy(t38=self.config.t38),
        )
        self._calls[dialog.call_id] = call
        try:
            call.process = await self._process(
                role="send",
                file=str(tiff),
                ident=ident or caller,
                header=header,
                ip=self.config.host,
            )
            sent = await self.agent.invite(
                self.config.proxies,
                dialog,
                f"sip:{number}@{self.config.domain}",
                [
                    # The proxies let the platform's gateways call out by this token.
                    *([("X-PBX-Internal-Token", self.config.token)] if self.config.token else []),
                    ("User-Agent", "pbx-efax"),
                    ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"),
                    ("Content-Type", "application/sdp"),
                ],
                call.builder.audio(port).encode(),
                RING_S,
            )
            if sent is None:
                return Outcome("failed", "no proxy answered", seconds=round(loop.time() - started))
            answer, call.proxy = sent
            if answer.status >= 300:
                status = (
                    "busy"
                    if answer.status in BUSY
                    else "no_answer"
                    if answer.status in NO_ANSWER
                    else "failed"
                )
                return Outcome(
                    status,
                    f"{answer.status} {answer.reason}",
                    sip_code=answer.status,
                    seconds=round(loop.time() - started, 1),
                )
            stream = _usable(answer.body)
            if stream is None:
                with contextlib.suppress(SipError):
                    await self.agent.request(dialog, call.proxy, "BYE")
                return Outcome("failed", "the answer has no usable media", sip_code=answer.status)
            self._media(call, stream)
            return await self._finish(call, started)
        finally:
            self._end(call)
