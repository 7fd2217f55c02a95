"""CTI on one app node: the CRM lookup, the event ingest, the event hub for WebSocket clients,
the webhook sender and the click-to-dial user agent, started and stopped with the app."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pbx_app import outbound
from pbx_app.addressing import aor
from pbx_app.click_to_dial import Dialer, Request
from pbx_app.crm import CrmLookup
from pbx_app.db import Database, utcnow
from pbx_app.event_hub import EventHub
from pbx_app.event_ingest import Ingestor
from pbx_app.repositories import call_events as repo
from pbx_app.settings import Settings, host_port
from pbx_app.webhooks import WebhookSender
from pbx_sip.agent import UserAgent

log = logging.getLogger("pbx_app.cti")


@dataclass
class Cti:
    settings: Settings
    db: Database
    crm: CrmLookup
    hub: EventHub
    ingestor: Ingestor
    webhooks: WebhookSender
    dialer: Dialer | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def create(cls, settings: Settings, db: Database) -> Cti:
        deny = outbound.networks(settings.outbound_deny)
        crm = CrmLookup(deny)
        hub = EventHub(db, retention_days=settings.event_retention_days)
        sender = WebhookSender(db, deny)

        def stored() -> None:
            hub.wake()
            sender.wake()

        return cls(settings, db, crm, hub, Ingestor(db, crm, stored), sender)

    @property
    def deny(self) -> tuple[outbound.Network, ...]:
        return outbound.networks(self.settings.outbound_deny)

    async def start(self) -> None:
        self.hub.start()
        self.ingestor.start()
        self.webhooks.start()
        if self.settings.sip_uac_listen and self.settings.sip_proxies:
            host, port = host_port(self.settings.sip_uac_listen, "PBX_SIP_UAC_LISTEN")
            agent = UserAgent(host, port)
            await agent.start()
            self.dialer = Dialer(agent, [host_port(p) for p in self.settings.sip_proxies])

    def stop(self) -> None:
        if self.dialer is not None:
            self.dialer.agent.close()
        self.ingestor.stop()
        self.webhooks.stop()
        self.hub.stop()
        self.crm.close()

    def click_to_dial(self, ctd_id: int, customer_id: int, extension: str, target: str) -> None:
        """Carries out a recorded request in the background (the API answered 202)."""
        assert self.dialer is not None
        request = Request(
            ctd_id,
            aor(customer_id, extension),
            extension,
            target,
            self.settings.sip_domain,
            self.settings.internal_token,
        )

        async def report(status: str, cause: str) -> None:
            def write() -> None:
                with self.db.transaction() as conn:
                    repo.ctd_update(
                        conn,
                        ctd_id,
                        {"status": status, "cause": cause[:200], "updated_at": utcnow()},
                    )

            try:
                await asyncio.to_thread(write)
            except Exception as exc:
                log.warning("click-to-dial %s: status %s not stored: %s", ctd_id, status, exc)

        task = asyncio.get_running_loop().create_task(self.dialer.run(request, report))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
