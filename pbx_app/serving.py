"""Serving the app: one process, one application, one lifespan, two listeners.

Plain HTTP (PBX_LISTEN) for the platform's own clients on the internal network (Kamailio's
http_client, the CDR shipper); HTTPS (PBX_HTTPS_LISTEN) for people, because browsers give
microphones and WebSockets to the proxies only to secure pages; and HTTPS for phones
(PBX_PROVISIONING_LISTEN), which asks for a client certificate and checks it against the vendor
CAs (zero-touch provisioning, pbx_app.provisioning). All are uvicorn servers in one event loop
over the same ASGI app: no second process, no proxy in front, and the outbox sender and porting
scheduler (the lifespan) run once per node whichever port a request takes.

uvicorn runs a lifespan per server and catches the process's signals per server; both are
taken out of the servers' hands here and done once for the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.lifespan.on import LifespanOn

from pbx_app.metrics import with_metrics_endpoint
from pbx_app.provisioning import CLIENT_CERTIFICATE
from pbx_app.settings import Settings, host_port

log = logging.getLogger("pbx_app.serving")


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    certfile: str = ""  # empty: plain HTTP
    keyfile: str = ""
    # Phones: a client certificate is asked for (not required) and, when sent, verified against
    # these CAs; its subject reaches the app as the scope extension CLIENT_CERTIFICATE.
    client_ca_file: str = ""
    phones: bool = False

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"


def listeners(settings: Settings) -> list[Listener]:
    """The plain port always; the HTTPS port when the node has one."""
    found = [Listener(settings.listen_host, settings.listen_port)]
    if settings.https_listen:
        found.append(
            Listener(
                settings.https_host,
                settings.https_port,
                settings.tls_certificate_file,
                settings.tls_private_key_file,
            )
        )
    if settings.provisioning_listen:
        host, port = host_port(settings.provisioning_listen, "PBX_PROVISIONING_LISTEN")
        found.append(
            Listener(
                host,
                port,
                settings.tls_certificate_file,
                settings.tls_private_key_file,
                client_ca_file=_with_certificates(settings.vendor_ca_file),
                phones=True,
            )
        )
    return found


def _with_certificates(path: str) -> str:
    """The vendor CA file when it holds any certificate; else "" (no client certificates asked
    for: phones then prove themselves by claim token or password alone)."""
    if path and Path(path).is_file() and "BEGIN CERTIFICATE" in Path(path).read_text():
        return path
    return ""


def _with_client_certificate(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol, handing each request of a connection the client certificate the
    TLS handshake verified, in DER (none sent: no extension)."""

    class WithClientCertificate(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if not der:
                return
            inner: ASGIApp = self.app  # type: ignore[has-type]

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                scope["extensions"] = {
                    **(scope.get("extensions") or {}),
                    CLIENT_CERTIFICATE: der,
                }
                await inner(scope, receive, send)

            self.app = app

    return WithClientCertificate


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to `serve` below: uvicorn's own
    handling re-raises a caught SIGTERM when a server ends, which would kill the process
    before the other listener and the shared lifespan have shut down."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(app: ASGIApp, listener: Listener, lifespan: Literal["on", "off"]) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        ssl_certfile=listener.certfile or None,
        ssl_keyfile=listener.keyfile or None,
        ssl_cert_reqs=ssl.CERT_OPTIONAL if listener.client_ca_file else ssl.CERT_NONE,
        ssl_ca_certs=listener.client_ca_file or None,
        lifespan=lifespan,
        log_level="info",
        # X-Forwarded-* only from the loopback (uvicorn's default forwarded_allow_ips): a
        # request over the plain port cannot claim it came over https.
        proxy_headers=True,
    )


async def serve(app: ASGIApp, where: Sequence[Listener]) -> int:
    """Start the lifespan, then every listener; on SIGTERM/SIGINT, or when one listener stops
    (a port it could not bind, say), stop them all, then end the lifespan."""
    # Metrics only where the platform's own clients connect: the plain, internal listener.
    configs = [
        _config(app if listener.certfile else with_metrics_endpoint(app), listener, "off")
        for listener in where
    ]
    for config, listener in zip(configs, where, strict=True):
        config.load()  # reads the certificate and key now: a bad one fails before anything runs
        if listener.phones:
            config.http_protocol_class = _with_client_certificate(config.http_protocol_class)
    lifespan = LifespanOn(_config(app, where[0], "on"))
    await lifespan.startup()
    if lifespan.should_exit:
        return 3
    servers = [_Server(config) for config in configs]
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    log.info("listening on %s", ", ".join(f"{x.scheme}://{x.host}:{x.port}" for x in where))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop_all()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await lifespan.shutdown()
    # A listener that ended by itself (not asked to) means the node is not serving: fail.
    failed = [s for s, t in zip(servers, tasks, strict=True) if not s.started or t.exception()]
    return 1 if failed else 0
