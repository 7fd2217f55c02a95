"""The fax gateway node: its SIP side (pbx_efax.gateway), the outgoing jobs it leases from the
app, the faxes it hands in, and mail to fax.

- Jobs: while it has room for another call, the node leases the next due job from the app
  (either site's nodes, its own site's first), renders the document to fax pages, renews the
  lease at a third of its time while the call lasts and reports the outcome. A node that dies
  leaves a lease that runs out; a gateway of either site then takes the job.
- Received faxes go to the spool first (pages as PDF and the report beside them) and from
  there to the app; a fax that arrives while no app node answers is handed in later, never
  lost with the call.
- Mail to fax: an SMTP listener (the operator's MX relays ``<number>@<fax domain>`` here after
  its SPF/DKIM checks); the first PDF or TIFF attachment is faxed to <number> if the envelope
  sender is allowed by one of the customer's fax numbers (the app decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from . import documents
from .gateway import Config, Gateway, Outcome, Received

log = logging.getLogger("pbx_efax")

POLL_S = 2.0
DELIVER_RETRY_S = 10.0
TOKEN_HEADER = "X-PBX-Internal-Token"  # noqa: S105 - a header name
MAIL_LIMIT = 15 * 1024 * 1024  # a 10 MiB document, base64-encoded, and the mail around it
# The code a job gets when its document cannot be rendered: the app takes it as permanent
# (pbx_app.services.faxes.PERMANENT_SIP_CODES; tests/app/test_faxes.py holds them together).
UNRENDERABLE = 415
RECIPIENT = re.compile(r"^\+?[0-9]{3,20}$")


@dataclass(frozen=True)
class Settings:
    name: str
    config: Config
    apps: list[str]  # app base URLs, own site first
    mail_listen: tuple[str, int] | None
    mail_domain: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)

        def host_port(value: str, key: str) -> tuple[str, int]:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{key}: want host:port, got {value!r}")
            return host, int(port)

        try:
            host, sip_port = host_port(e["PBX_EFAX_SIP_LISTEN"], "PBX_EFAX_SIP_LISTEN")
            first, _, last = e.get("PBX_EFAX_MEDIA_PORTS", "31000-31399").partition("-")
            proxies = [
                host_port(p.strip(), "PBX_SIP_PROXIES") for p in e["PBX_SIP_PROXIES"].split(",")
            ]
            config = Config(
                host=host,
                sip_port=sip_port,
                proxies=proxies,
                media_ports=range(int(first), int(last) + 1),
                domain=e["PBX_SIP_DOMAIN"],
                token=e["PBX_INTERNAL_TOKEN"],
                spool=Path(e.get("PBX_EFAX_SPOOL", "/var/spool/pbx-efax")),
                t38=e.get("PBX_EFAX_T38", "offer"),
            )
            mail = e.get("PBX_EFAX_MAIL_LISTEN", "")
            if config.t38 not in ("offer", "accept", "off"):
                raise ValueError("PBX_EFAX_T38: offer, accept or off")
            return cls(
                name=e.get("PBX_NODE_NAME", host),
                config=config,
                apps=[u.strip().rstrip("/") for u in e["PBX_APP_URLS"].split(",") if u.strip()],
                mail_listen=host_port(mail, "PBX_EFAX_MAIL_LISTEN") if mail else None,
                mail_domain=e.get("PBX_EFAX_MAIL_DOMAIN", f"fax.{e['PBX_SIP_DOMAIN']}"),
            )
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]} is not set") from None


class AppUnavailable(Exception):
    """No app node answered (or each answered 5xx)."""


class App:
    """The app's internal API, on whichever node answers (own site's first)."""

    def __init__(self, urls: list[str], token: str) -> None:
        self.urls = urls
        self.client = httpx.AsyncClient(headers={TOKEN_HEADER: token}, timeout=15.0)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        last = "no app URL"
        for base in self.urls:
            try:
                r = await self.client.post(base + path, **kwargs)
            except httpx.HTTPError as exc:
                last = f"{base}: {type(exc).__name__}"
                continue
            if r.status_code < 500:
                return r
            last = f"{base}: {r.status_code}"
        raise AppUnavailable(last)

    async def close(self) -> None:
        await self.client.aclose()


def _report(outcome: Outcome) -> dict[str, Any]:
    return {
        "status": outcome.status,
        "cause": outcome.cause[:200],
        "pages": outcome.pages,
        "seconds": int(outcome.seconds),
        "bit_rate": outcome.bit_rate,
        "transport": outcome.mode,
        "remote_ident": outcome.remote_ident[:40],
        "sip_code": outcome.sip_code,
    }


class Node:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.config
        self.app = App(settings.apps, self.config.token)
        self.gateway = Gateway(self.config, self._received)
        self.inbox = self.config.spool / "inbox"
        self._deliver = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.max_calls = max(len(self.config.media_ports) // 4, 1)

    async def run(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        await self.gateway.start()
        servers = []
        if self.settings.mail_listen is not None:
            host, port = self.settings.mail_listen
            loop = asyncio.get_running_loop()
            servers.append(
                await loop.create_server(
                    lambda: SMTP(
                        MailToFax(self),
                        data_size_limit=MAIL_LIMIT,
                        hostname=self.settings.mail_domain,
                    ),
                    host,
                    port,
                )
            )
        log.info(
            "%s: SIP on %s:%s, %d calls at most",
            self.settings.name,
            self.config.host,
            self.config.sip_port,
            self.max_calls,
        )
        try:
            await asyncio.gather(self._jobs(), self._delivery())
        finally:
            for server in servers:
                server.close()
            await self.gateway.close()
            await self.app.close()

    # --- outgoing jobs ----------------------------------------------------------------------
    async def _jobs(self) -> None:
        reachable = True  # said once when it changes, not every poll
        while True:
            job = None
            if self.gateway.active_calls < self.max_calls:
                try:
                    r = await self.app.post(
                        "/internal/v1/fax/jobs/lease", json={"gateway": self.settings.name}
                    )
                    job = r.json() if r.status_code == 200 else None
                    if not reachable:
                        log.info("the app answers again")
                    reachable = True
                except (AppUnavailable, ValueError) as exc:
                    if reachable:
                        log.warning("no job lease, the app does not answer: %s", exc)
                    reachable = False
            if job is None:
                await asyncio.sleep(POLL_S)
                continue
            task = asyncio.create_task(self._send(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, job: dict[str, Any]) -> None:
        fax_id, me = job["id"], {"gateway": self.settings.name}
        work = self.config.spool / f"job-{fax_id}-{job['attempts']}"
        work.mkdir(parents=True, exist_ok=True)
        renewing = asyncio.create_task(self._renew(fax_id, job.get("lease_seconds", 90) / 3))
        try:
            r = await self.app.post(f"/internal/v1/fax/jobs/{fax_id}/document", json=me)
            if r.status_code != 200:
                log.warning("fax %s: document not available (%s)", fax_id, r.status_code)
                return
            tiff = work / "pages.tif"
            try:
                pages = await asyncio.to_thread(documents.fax_pages, r.content, tiff)
            except documents.DocumentError as exc:
                outcome = Outcome("failed", f"{exc.code}: {exc}", sip_code=UNRENDERABLE)
            else:
                log.info("fax %s: %d pages to %s", fax_id, pages, job["remote_number"])
                outcome = await self.gateway.send(
                    job["remote_number"],
                    job["our_number"],
                    tiff,
                    header=f"Fax {job['our_number']}",
                    ident=job["our_number"],
                )
            log.info(
                "fax %s: %s %s (%d pages)", fax_id, outcome.status, outcome.cause, outcome.pages
            )
            await self._report(fax_id, outcome)
        except AppUnavailable as exc:
            log.warning(
                "fax %s: app unavailable (%s); the lease runs out, it is retried", fax_id, exc
            )
        finally:
            renewing.cancel()
            shutil.rmtree(work, ignore_errors=True)

    async def _renew(self, fax_id: int, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            with contextlib.suppress(AppUnavailable):
                await self.app.post(
                    f"/internal/v1/fax/jobs/{fax_id}/renew", json={"gateway": self.settings.name}
                )

    async def _report(self, fax_id: int, outcome: Outcome) -> None:
        body = {"gateway": self.settings.name, **_report(outcome)}
        for _ in range(30):  # the app may be failing over: keep the outcome a while
            try:
                r = await self.app.post(f"/internal/v1/fax/jobs/{fax_id}/result", json=body)
                if r.status_code != 200:
                    log.warning("fax %s: result refused (%s %s)", fax_id, r.status_code, r.text)
                return
            except AppUnavailable:
                await asyncio.sleep(DELIVER_RETRY_S)

    # --- received faxes ---------------------------------------------------------------------
    async def _received(self, fax: Received) -> None:
        """Spool first: the pages (as PDF) and the report, then wake the delivery."""
        stem = self.inbox / fax.tiff.stem
        pdf = stem.with_suffix(".pdf")
        if fax.outcome.pages and fax.tiff.exists():
            try:
                await asyncio.to_thread(documents.to_pdf, fax.tiff, pdf)
            except documents.DocumentError as exc:
                log.error("%s: pages not convertible: %s", fax.call_id, exc)
        fax.tiff.unlink(missing_ok=True)
        report = {
            "gateway": self.settings.name,
            "number": fax.number,
            "caller": fax.caller,
            "call_id": fax.call_id,
            "outcome": _report(fax.outcome),
        }
        tmp = stem.with_suffix(".tmp")
        tmp.write_text(json.dumps(report))
        tmp.rename(stem.with_suffix(".json"))  # complete, or not there at all
        log.info(
            "received %s -> %s: %s, %d pages",
            fax.caller,
            fax.number,
            fax.outcome.status,
            fax.outcome.pages,
        )
        self._deliver.set()

    async def _delivery(self) -> None:
        while True:
            for report in sorted(self.inbox.glob("*.json")):
                pdf = report.with_suffix(".pdf")
                files = (
                    {"file": ("fax.pdf", pdf.read_bytes(), "application/pdf")}
                    if pdf.exists()
                    else None
                )
                try:
                    r = await self.app.post(
                        "/internal/v1/fax/received",
                        data={"report": report.read_text()},
                        files=files,
                    )
                except AppUnavailable as exc:
                    log.warning("received fax waits in the spool: %s", exc)
                    break
                if r.status_code != 200:
                    log.error("received fax %s refused: %s %s", report.stem, r.status_code, r.text)
                report.unlink()
                pdf.unlink(missing_ok=True)
            self._deliver.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deliver.wait(), DELIVER_RETRY_S)


class MailToFax:
    """aiosmtpd handler: one recipient <number>@<fax domain> per mail, its first document."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local, _, domain = address.rpartition("@")
        if domain.lower() != self.node.settings.mail_domain or not RECIPIENT.fullmatch(local):
            return f"550 5.1.1 <{address}>: not a fax address of {self.node.settings.mail_domain}"
        if envelope.rcpt_tos:
            return "452 4.5.3 one fax recipient per mail"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        document = None
        for part in message.walk():
            if part.get_content_type() in ("application/pdf", "image/tiff"):
                document = (part.get_filename() or "mail.pdf", part.get_payload(decode=True))
                break
        if document is None or not document[1]:
            return "554 5.6.0 no PDF or TIFF attachment to fax"
        to = envelope.rcpt_tos[0].rpartition("@")[0]
        try:
            r = await self.node.app.post(
                "/internal/v1/fax/mail",
                data={"sender": envelope.mail_from or "", "to": to},
                files={"file": document},
            )
        except AppUnavailable:
            return "451 4.3.0 the fax service is unavailable, try again later"
        if r.status_code == 202:
            return f"250 2.0.0 queued as fax {r.json()['id']}"
        code = r.json().get("error", {}).get("code", "refused") if r.content else "refused"
        return f"550 5.7.1 {code}"
