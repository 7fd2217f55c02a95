"""A browser's SIP stack, reduced to what the tests need: SIP over a secure WebSocket (RFC 7118)
with digest authentication and WebRTC-style SDP (UDP/TLS/RTP/SAVPF, ICE, DTLS fingerprint).

It speaks to a proxy's WSS port exactly as JsSIP or SIP.js in a browser would: one SIP message per
text frame, Contact on an `.invalid` host with transport=ws, Via SIP/2.0/WSS.

With ``gruu=True`` it behaves like JsSIP 3.13 with GRUUs: it registers with `+sip.instance`,
`reg-id` and `Supported: path, gruu, outbound`, a random Contact user, takes the pub-gruu of the
200 OK as its Contact for every later request and dialog (Registrator.js, UA.contact.toString),
and refuses in-dialog and other requests whose Request-URI user is neither its own user nor its
Contact's (UA.receiveRequest: 404, an ACK silently ignored).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import ssl
import time
import uuid
import warnings
from dataclasses import dataclass, field

from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol


@dataclass
class Message:
    first_line: str
    headers: list[tuple[str, str]]
    body: str

    @property
    def status(self) -> int:
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if self.first_line.startswith("SIP/2.0") else 0

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0") else self.first_line.split(" ", 1)[0]

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""

    @classmethod
    def parse(cls, text: str) -> Message:
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, body)


def webrtc_sdp(setup: str = "actpass", mid: str = "0") -> str:
    """An offer/answer as a browser makes it: Opus + G.711, DTLS-SRTP, ICE, rtcp-mux, BUNDLE.
    An answer names the offer's media ID (`mid`)."""
    fingerprint = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    return (
        "v=0\r\n"
        f"o=- {secrets.randbits(62)} 2 IN IP4 127.0.0.1\r\n"
        f"s=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\na=msid-semantic: WMS\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\n"
        "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
        f"a=ice-ufrag:{secrets.token_hex(4)}\r\na=ice-pwd:{secrets.token_hex(12)}\r\n"
        "a=ice-options:trickle\r\n"
        f"a=fingerprint:sha-256 {fingerprint}\r\na=setup:{setup}\r\n"
        f"a=mid:{mid}\r\na=sendrecv\r\na=rtcp-mux\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host generation 0\r\n"
    )


@dataclass
class WsPhone:
    """One registered browser: `user`/`password` are the device's SIP credentials."""

    url: str
    user: str
    password: str
    ca_file: str
    domain: str = "pbx.lab"
    host: str = field(default_factory=lambda: f"{secrets.token_hex(6)}.invalid")
    ws: ClientConnection | None = None
    cseq: int = 0
    gruu: bool = False
    instance: str = field(default_factory=lambda: f"<urn:uuid:{uuid.uuid4()}>")
    # JsSIP's Contact user is a random token when it uses GRUUs (UA.js contact_uri).
    contact_user: str = ""
    pub_gruu: str = ""
    temp_gruu: str = ""
    # Requests refused because their Request-URI did not point to us (JsSIP's check).
    refused: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.contact_user:
            self.contact_user = secrets.token_hex(4) if self.gruu else self.user

    @property
    def contact(self) -> str:
        """The Contact URI of our requests and dialogs: the pub-gruu once registered with one."""
        return self.pub_gruu or f"sip:{self.contact_user}@{self.host};transport=ws"

    def __enter__(self) -> WsPhone:
        context = ssl.create_default_context(cafile=self.ca_file)
        context.check_hostname = False  # the lab certificate names the domain, not the address
        sip = Subprotocol("sip")
        try:
            self.ws = connect(self.url, subprotocols=[sip], ssl=context, open_timeout=10)
        except (TimeoutError, OSError) as e:
            # JsSIP opens the socket again after 2 s (recovery_min_interval); so does this phone,
            # once, and says so: a proxy that keeps a browser waiting is seen in the test's log.
            warnings.warn(f"{self.url}: WebSocket not opened ({e!r}); opening again", stacklevel=2)
            time.sleep(2)
            self.ws = connect(self.url, subprotocols=[sip], ssl=context, open_timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.__exit__(None, None, None)

    # ---- wire -----------------------------------------------------------------------------

    def send(self, text: str) -> None:
        assert self.ws is not None
        self.ws.send(text)

    def receive(self, timeout: float = 10) -> Message:
        """The next message that gets past JsSIP's Request-URI check (with ``gruu``)."""
        assert self.ws is not None
        while True:
            msg = Message.parse(str(self.ws.recv(timeout=timeout)))
            if not self.gruu or not msg.method or self.points_to_us(msg):
                return msg
            self.refused.append(msg)
            if msg.method != "ACK":
                self.reply(msg, "404 Not Found")

    def points_to_us(self, request: Message) -> bool:
        """JsSIP 3.13 UA.receiveRequest: the R-URI user is the configured user or the user of
        the Contact URI it was created with (not the GRUU's)."""
        ruri = request.first_line.split(" ")[1]
        user = re.sub(r"^sips?:", "", ruri).split("@", 1)[0] if "@" in ruri else ""
        return user in (self.user, self.contact_user)

    def final_response(self, timeout: float = 15) -> Message:
        """The next final response; provisional ones and stray requests are skipped."""
        while True:
            msg = self.receive(timeout)
            if msg.status >= 200:
                return msg

    def next_request(self, method: str, timeout: float = 15) -> Message:
        while True:
            msg = self.receive(timeout)
            if msg.method == method:
                return msg

    # ---- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        ruri: str,
        call_id: str,
        from_tag: str,
        to: str,
        extra: list[str] | None = None,
        body: str = "",
        cseq: int | None = None,
        branch: str = "",
        contact: str | None = None,
        local: str | None = None,
    ) -> str:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/WSS {self.host};branch={branch or 'z9hG4bK' + secrets.token_hex(8)}"
            ";rport",
            "Max-Forwards: 70",
            f"From: {local or f'<sip:{self.user}@{self.domain}>'};tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            contact or f"Contact: <{self.contact}>",
            "User-Agent: pbx-test-webrtc",
            *(extra or []),
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        text = "\r\n".join(lines) + "\r\n\r\n" + body
        self.send(text)
        return text

    def digest(self, challenge: str, method: str, uri: str) -> str:
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
        ha1 = md5(f"{self.user}:{params['realm']}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        fields = [
            f'username="{self.user}"',
            f'realm="{params["realm"]}"',
            f'nonce="{params["nonce"]}"',
            f'uri="{uri}"',
            "algorithm=MD5",
        ]
        if "qop" in params:
            cnonce = secrets.token_hex(8)
            response = md5(f"{ha1}:{params['nonce']}:00000001:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
        else:
            response = md5(f"{ha1}:{params['nonce']}:{ha2}")
        fields.append(f'response="{response}"')
        return "Digest " + ", ".join(fields)

    def register(self, expires: int = 300) -> Message:
        call_id, tag, ruri = secrets.token_hex(10), secrets.token_hex(4), f"sip:{self.domain}"
        to = f"<sip:{self.user}@{self.domain}>"
        extra = [f"Expires: {expires}"]
        contact = None
        if self.gruu:
            # A REGISTER names the Contact it was created with, never a GRUU (Registrator.js).
            contact = (
                f"Contact: <sip:{self.contact_user}@{self.host};transport=ws>"
                f';reg-id=1;+sip.instance="{self.instance}";expires={expires}'
            )
            extra.append("Supported: path, gruu, outbound")
        self.request("REGISTER", ruri, call_id, tag, to, extra, contact=contact)
        answer = self.final_response()
        if answer.status == 401:
            auth = self.digest(answer.get("WWW-Authenticate"), "REGISTER", ruri)
            self.request(
                "REGISTER", ruri, call_id, tag, to, [*extra, f"Authorization: {auth}"],
                contact=contact,
            )  # fmt: skip
            answer = self.final_response()
        if self.gruu and answer.status == 200:
            self.take_gruus(answer)
        return answer

    def take_gruus(self, answer: Message) -> None:
        """Registrator.js: the Contact of the 200 with our +sip.instance and reg-id (else our
        Contact user) carries the GRUUs; quotes removed."""
        for header in answer.all("Contact"):
            for contact in split_contacts(header):
                params = contact_params(contact)
                ours = (
                    params.get("+sip.instance", "").strip('"') == self.instance
                    and params.get("reg-id") == "1"
                )
                if ours or f"sip:{self.contact_user}@" in contact:
                    self.pub_gruu = params.get("pub-gruu", "").strip('"')
                    self.temp_gruu = params.get("temp-gruu", "").strip('"')
                    return

    def invite(self, target: str, sdp: str, anonymous: bool = False) -> tuple[Message, Dialog]:
        """INVITE with digest auth; returns the final response and the dialog (if answered).
        ``anonymous``: the temp-gruu as Contact, as JsSIP does for an anonymous call."""
        call_id, tag = secrets.token_hex(10), secrets.token_hex(4)
        ruri, to = f"sip:{target}@{self.domain}", f"<sip:{target}@{self.domain}>"
        branch = "z9hG4bK" + secrets.token_hex(8)
        contact = f"Contact: <{self.temp_gruu}>" if anonymous and self.temp_gruu else None
        self.request("INVITE", ruri, call_id, tag, to, body=sdp, branch=branch, contact=contact)
        answer = self.final_response()
        if answer.status == 407:
            # The challenge ends the first transaction: ACK it on the same branch.
            self.request("ACK", ruri, call_id, tag, answer.get("To"), cseq=self.cseq, branch=branch)
            auth = self.digest(answer.get("Proxy-Authenticate"), "INVITE", ruri)
            self.request(
                "INVITE",
                ruri,
                call_id,
                tag,
                to,
                [f"Proxy-Authorization: {auth}"],
                body=sdp,
                contact=contact,
            )
            answer = self.final_response(timeout=40)
        dialog = Dialog(
            self,
            call_id,
            tag,
            answer.get("To"),
            contact_uri(answer.get("Contact")),
            # A caller's route set is the Record-Route entries in reverse (RFC 3261 12.1.2),
            # entries, not header lines: a proxy may list several in one header.
            list(reversed(route_entries(answer))),
            self.cseq,
        )
        return answer, dialog

    def answer(self, invite: Message, sdp: str) -> Dialog:
        """Ring, then answer an incoming INVITE with `sdp` (a 200 OK with our Contact); returns
        the dialog as its callee sees it (for a BYE of ours)."""
        tag = secrets.token_hex(4)
        self.reply(invite, "180 Ringing", tag)
        self.reply(invite, "200 OK", tag, sdp)
        return Dialog(
            self,
            invite.get("Call-ID"),
            tag,
            invite.get("From"),
            contact_uri(invite.get("Contact")),
            route_entries(invite),
            0,
            local=re.sub(r";tag=[^;>]*", "", invite.get("To")),
        )

    def reply(self, request: Message, status: str, to_tag: str = "", sdp: str = "") -> None:
        """A response to `request`; with a To tag it is a dialog-forming one (RR, Contact)."""
        lines = [f"SIP/2.0 {status}", *(f"Via: {v}" for v in request.all("Via"))]
        if to_tag:
            lines += [f"Record-Route: {r}" for r in request.all("Record-Route")]
        lines += [
            f"From: {request.get('From')}",
            f"To: {request.get('To')}" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {request.get('Call-ID')}",
            f"CSeq: {request.get('CSeq')}",
        ]
        if to_tag:
            lines.append(f"Contact: <{self.contact}>")
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(sdp.encode())}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + sdp)


@dataclass
class Dialog:
    phone: WsPhone
    call_id: str
    from_tag: str
    to: str
    remote_target: str
    route_set: list[str]
    invite_cseq: int
    # Our From in the dialog's requests (the callee's is the INVITE's To); None: our own user.
    local: str | None = None

    def _routes(self) -> list[str]:
        return [f"Route: {r}" for r in self.route_set]

    def ack(self) -> None:
        self.phone.request(
            "ACK", self.remote_target, self.call_id, self.from_tag, self.to, self._routes(),
            cseq=self.invite_cseq,
        )  # fmt: skip

    def bye(self) -> Message:
        self.phone.request(
            "BYE", self.remote_target, self.call_id, self.from_tag, self.to, self._routes(),
            local=self.local,
        )  # fmt: skip
        return self.phone.final_response()


def route_entries(message: Message) -> list[str]:
    """Every Record-Route entry of ``message``, in order."""
    return [e for h in message.all("Record-Route") for e in split_contacts(h)]


def split_contacts(header: str) -> list[str]:
    """A Contact (or Record-Route) header's entries (commas inside <> or quotes do not
    split)."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(header):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(header[start:i].strip())
            start = i + 1
    parts.append(header[start:].strip())
    return [p for p in parts if p]


def contact_params(contact: str) -> dict[str, str]:
    """The header parameters after the <URI> of one Contact entry (quoted values kept)."""
    rest = contact.split(">", 1)[1] if ">" in contact else ""
    return {
        m.group(1).lower(): m.group(2) or ""
        for m in re.finditer(r';\s*([^=;\s]+)(?:=("[^"]*"|[^;]*))?', rest)
    }


def contact_uri(contact: str) -> str:
    m = re.search(r"<([^>]+)>", contact)
    return m.group(1) if m else contact.split(";")[0]


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
