"""Click-to-dial: ring the user's own devices, then have the one that answers call the target.

Third-party call control by REFER (RFC 3515), with the app as a small user agent
(pbx_sip.agent) behind the site's proxy:

  1. INVITE to the extension's AOR through the proxy (kamailio.cfg route[CLICK_TO_DIAL]: from
     an app node with the internal token). The proxy forks to every registered device of the
     extension and anchors the (inactive) media as for any call; the phone shows the target.
  2. The user picks up: ACK, then REFER with ``Refer-To: <sip:target@domain>``.
  3. The phone calls the target itself: an ordinary call of that device, so its customer's
     rules, caller ID, CTI events and call record apply exactly as if it had been dialled, and
     the user hears the ringback on the phone.
  4. The phone reports the new call's progress in NOTIFYs (message/sipfrag); at its final
     answer (or after NOTIFY_WAIT) the first call is hung up (BYE): the user stays on the new one.

Why not a B2BUA that calls both sides and joins them (RFC 3725)? It would stay in the media and
signalling path of every click-to-dial call for its whole length (holds, transfers and BYEs
relayed by the app; its loss ends the call), and the second leg's caller ID and rules would
have to be re-created for a call the device never placed. REFER needs a device that accepts
REFER, as desk phones and softphones do (blind transfer uses it); one that does not gets a
clear failure (``refer_refused``) and the first call ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pbx_sip.agent import Dialog, Message, SipError, UserAgent, new_token

log = logging.getLogger("pbx_app.click_to_dial")

RING_SECONDS = 40.0  # the proxy gives up after 30 s (t_set_fr in route[CLICK_TO_DIAL])
NOTIFY_WAIT = 60.0  # the new call's final answer
Report = Callable[[str, str], Awaitable[None]]  # (status, cause)


@dataclass(frozen=True)
class Request:
    ctd_id: int
    aor: str  # c<customer>x<extension>: the Request-URI the proxy looks up
    extension: str  # the To: phones take it as their own URI for the call they place
    target: str
    domain: str
    token: str  # the internal token the proxy checks


def _sdp(host: str) -> bytes:
    """An audio stream nobody sends on: the phone only has to accept it."""
    return (
        "v=0\r\n"
        f"o=ctd 1 1 IN IP4 {host}\r\n"
        "s=click-to-dial\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        "m=audio 9 RTP/AVP 8 0\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=inactive\r\n"
    ).encode()


def _sipfrag_status(body: bytes) -> int:
    first = body.decode("utf-8", "replace").split("\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[0] == "SIP/2.0" and first[1].isdigit() else 0


class Dialer:
    def __init__(self, agent: UserAgent, proxies: list[tuple[str, int]]) -> None:
        self.agent, self.proxies = agent, proxies

    async def run(self, req: Request, report: Report) -> None:
        """Carries one click-to-dial through; every state change goes to ``report``."""
        try:
            await self._run(req, report)
        except Exception as exc:
            log.exception("click-to-dial %s failed", req.ctd_id)
            await report("failed", f"internal error: {type(exc).__name__}")

    async def _run(self, req: Request, report: Report) -> None:
        ua, proxy = self.agent, self.proxies[0]
        dialog = Dialog(
            call_id=f"ctd-{req.ctd_id}-{new_token()}",
            local_tag=new_token(),
            local_uri=f"sip:{req.target}@{req.domain}",
            remote_uri=f"sip:{req.extension}@{req.domain}",
        )
        ua.register_dialog(dialog)
        try:
            answer = await self._invite(req, dialog, proxy)
            if answer is None:
                return await report("failed", "no answer from the proxies")
            if answer.status >= 300:
                causes = {486: "busy", 480: "no device answered", 408: "no device answered"}
                return await report(
                    "failed", causes.get(answer.status, f"{answer.status} {answer.reason}")
                )
            await report("connecting", "")
            refer = await self._in_dialog(
                dialog,
                proxy,
                "REFER",
                [
                    ("Refer-To", f"<sip:{req.target}@{req.domain}>"),
                    ("Referred-By", f"<sip:{ua.user}@{req.domain}>"),
                ],
            )
            if refer.status >= 300:
                await report("failed", f"refer_refused: the device answered {refer.status}")
                return await self._bye(dialog, proxy)
            status, cause, hung_up = await self._progress(dialog)
            await report(status, cause)
            if not hung_up:
                await self._bye(dialog, proxy)
        except SipError as exc:
            await report("failed", str(exc))
        finally:
            ua.forget_dialog(dialog)

    async def _invite(self, req: Request, dialog: Dialog, proxy: tuple[str, int]) -> Message | None:
        ua = self.agent
        sent = await ua.invite(
            self.proxies,
            dialog,
            f"sip:{req.aor}@{req.domain}",
            [
                ("Allow", "INVITE, ACK, BYE, CANCEL, NOTIFY, OPTIONS"),
                ("User-Agent", "pbx-click-to-dial"),
                ("X-PBX-Internal-Token", req.token),
                ("Content-Type", "application/sdp"),
            ],
            _sdp(ua.host),
            RING_SECONDS,
            display=req.target,
        )
        if sent is None:
            return None
        answer, hop = sent
        self.proxies = [hop, *(p for p in self.proxies if p != hop)]
        return answer

    async def _in_dialog(
        self, dialog: Dialog, proxy: tuple[str, int], method: str, extra: list[tuple[str, str]]
    ) -> Message:
        return await self.agent.request(dialog, proxy, method, extra)

    async def _progress(self, dialog: Dialog) -> tuple[str, str, bool]:
        """(status, cause, whether the phone hung up the first call) from its NOTIFYs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NOTIFY_WAIT
        hung_up = False
        while True:
            try:
                msg = await asyncio.wait_for(dialog.incoming.get(), deadline - loop.time())
            except TimeoutError:
                return "failed", "the device did not report the new call's outcome", hung_up
            if msg.method == "BYE":
                # Phones may end the first call as soon as the new one is under way; the
                # REFER's subscription (its NOTIFYs) outlives it.
                hung_up = True
                continue
            status = _sipfrag_status(msg.body)
            if 200 <= status < 300:
                return "connected", "", hung_up
            if status >= 300:
                return "failed", f"the target answered {status}", hung_up

    async def _bye(self, dialog: Dialog, proxy: tuple[str, int]) -> None:
        try:
            await self._in_dialog(dialog, proxy, "BYE", [])
        except SipError as exc:
            log.info("click-to-dial BYE for %s: %s", dialog.call_id, exc)
