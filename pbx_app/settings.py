"""Settings from the environment, read once into one object."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass


def host_port(value: str, name: str = "PBX_LISTEN") -> tuple[str, int]:
    """host:port (an IPv6 host in brackets) as (host, port); a ValueError naming the setting."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{name} must be host:port, got {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Settings:
    # Writes (and migrations). In the platform a libpq multi-host URL with
    # target_session_attrs=read-write, so it always reaches the Patroni leader.
    database_url: str = "sqlite:///./pbx.db"
    # Reads of the routing hot path and /healthz (multi-host, target_session_attrs=any, local
    # member first); empty: the same engine as database_url.
    database_read_url: str = ""
    listen: str = "127.0.0.1:8000"
    # HTTPS for people (browsers give microphones and WSS only to secure pages): host:port, with
    # the platform's certificate and key; empty: plain HTTP only. The plain listener stays for
    # the platform's own clients (Kamailio, the CDR shipper). See pbx_app.serving.
    https_listen: str = ""
    tls_certificate_file: str = ""
    tls_private_key_file: str = ""
    # What mailed links point at: the HTTPS URL wherever there is one.
    public_url: str = ""
    # The proxies' WebSocket URLs (wss://host:port), home site first: the portal page's CSP lets
    # the browser phone connect to them.
    wss_urls: tuple[str, ...] = ()
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    mail_from: str = "pbx@localhost"
    sip_domain: str = "sip.pbx.test"
    # The SIP/TLS port phones are provisioned with: the topology's ports.sip_tls
    # (pbx_infra.topology.Ports), passed as PBX_SIP_TLS_PORT; the default is its default.
    sip_tls_port: int = 5061
    secret_key: str = "insecure-development-key"  # noqa: S105 - set PBX_SECRET_KEY in the lab
    site: str = "local"
    node_name: str = "pbx-app"
    # Product limits (R14, R15, R4) live in pbx_app.limits; these are operational knobs only.
    password_link_ttl_hours: int = 72
    session_ttl_hours: int = 12
    # Request bodies: JSON bodies are parsed in memory, so they stay small; the extension import
    # streams its body to disk (pbx_app.api.extensions) and may be as large as a full import.
    max_body_bytes: int = 1024 * 1024
    max_import_bytes: int = 64 * 1024 * 1024
    # The outbox's first retry of a mail the relay did not take; each further one waits twice
    # as long (pbx_app.outbox).
    mail_retry_seconds: float = 30.0
    # The porting scheduler (pbx_app.porting_scheduler) on this node: how often it looks for
    # confirmed requests whose date has come (0 or less: not on this node), and how long a
    # request that could not complete waits before the next try.
    porting_poll_seconds: float = 60.0
    porting_retry_seconds: float = 900.0
    # A fax job that met a busy line or no answer is tried again after this many seconds, then
    # five times as long (pbx_app.services.faxes.retry_delay).
    fax_retry_seconds: float = 120.0
    # How long a fax gateway holds a job between renewals (pbx_app.services.faxes.LEASE): the
    # wait before another gateway takes over the job of one that died.
    fax_lease_seconds: int = 90
    # Shared secret of the internal API (/internal/v1, used by Kamailio); empty disables it.
    internal_token: str = ""
    # Seconds Kamailio may cache a routing decision that depends on no rule, time or rotation
    # (the "ttl" of GET /internal/v1/route); 0 disables its cache.
    route_ttl_seconds: int = 2
    # CTI: where customers' webhooks and CRM lookups may not go (CIDRs: the platform's internal
    # networks and its nodes' addresses; pbx_app.outbound adds loopback and the like itself).
    outbound_deny: tuple[str, ...] = ()
    # Click-to-dial's SIP user agent (pbx_app.click_to_dial): its own UDP socket (host:port on
    # the internal network), and the site's proxies it sends through, local first. Without a
    # socket click-to-dial answers 503.
    sip_uac_listen: str = ""
    sip_proxies: tuple[str, ...] = ()
    # Call events are kept this long for clients that resume.
    event_retention_days: int = 7
    # Zero-touch provisioning (pbx_app.provisioning): the phones' HTTPS listener (host:port,
    # the platform certificate; a client certificate is asked for and checked against the vendor
    # CAs in vendor_ca_file, all vendors' in one; vendor_ca_dir holds them by vendor,
    # <vendor>.pem), the URL configurations point phones back at, and how long an admin's
    # one-time claim token stays usable.
    provisioning_listen: str = ""
    vendor_ca_file: str = ""
    vendor_ca_dir: str = ""
    provisioning_url: str = ""
    claim_token_ttl_hours: int = 168
    # The sites phones register at, "name:area code" in the topology's order: a phone's home
    # site is the one of its location's area code, else one chosen by its customer.
    sip_sites: tuple[str, ...] = ()
    # The stack's credential keys (pbx_app.vault); empty: one derived from secret_key (tests
    # and development only; the platform always sets them).
    credential_keys: str = ""

    @property
    def listen_host(self) -> str:
        return host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return host_port(self.listen)[1]

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.listen_host}:{self.listen_port}"

    @property
    def effective_credential_keys(self) -> str:
        if self.credential_keys:
            return self.credential_keys
        digest = hashlib.sha256(self.secret_key.encode()).hexdigest()
        return f"dev:{digest}"

    @property
    def effective_provisioning_url(self) -> str:
        return (self.provisioning_url or self.effective_public_url).rstrip("/")

    @property
    def https_host(self) -> str:
        return host_port(self.https_listen)[0]

    @property
    def https_port(self) -> int:
        return host_port(self.https_listen)[1]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        listen = e.get("PBX_LISTEN", cls.listen)
        host_port(listen)
        https_listen = e.get("PBX_HTTPS_LISTEN", "")
        if https_listen:
            host_port(https_listen, "PBX_HTTPS_LISTEN")
            if not (e.get("PBX_TLS_CERT_FILE") and e.get("PBX_TLS_KEY_FILE")):
                raise ValueError("PBX_HTTPS_LISTEN needs PBX_TLS_CERT_FILE and PBX_TLS_KEY_FILE")
        if e.get("PBX_PROVISIONING_LISTEN") and not (
            e.get("PBX_TLS_CERT_FILE") and e.get("PBX_TLS_KEY_FILE")
        ):
            raise ValueError("PBX_PROVISIONING_LISTEN needs PBX_TLS_CERT_FILE and PBX_TLS_KEY_FILE")
        wss_urls = tuple(u.strip() for u in e.get("PBX_WSS_URLS", "").split(",") if u.strip())
        for url in wss_urls:
            if not re.fullmatch(r"wss://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?", url):
                raise ValueError(f"PBX_WSS_URLS: {url!r} is not a wss:// URL")
        return cls(
            database_url=e.get("PBX_DATABASE_URL", cls.database_url),
            database_read_url=e.get("PBX_DATABASE_READ_URL", ""),
            listen=listen,
            https_listen=https_listen,
            tls_certificate_file=e.get("PBX_TLS_CERT_FILE", ""),
            tls_private_key_file=e.get("PBX_TLS_KEY_FILE", ""),
            wss_urls=wss_urls,
            public_url=e.get("PBX_PUBLIC_URL", ""),
            smtp_host=e.get("PBX_SMTP_HOST", cls.smtp_host),
            smtp_port=int(e.get("PBX_SMTP_PORT", str(cls.smtp_port))),
            mail_from=e.get("PBX_MAIL_FROM", cls.mail_from),
            sip_domain=e.get("PBX_SIP_DOMAIN", cls.sip_domain),
            sip_tls_port=int(e.get("PBX_SIP_TLS_PORT", str(cls.sip_tls_port))),
            secret_key=e.get("PBX_SECRET_KEY", cls.secret_key),
            site=e.get("PBX_SITE", cls.site),
            node_name=e.get("PBX_NODE_NAME", cls.node_name),
            max_body_bytes=int(e.get("PBX_MAX_BODY_BYTES", str(cls.max_body_bytes))),
            max_import_bytes=int(e.get("PBX_MAX_IMPORT_BYTES", str(cls.max_import_bytes))),
            internal_token=e.get("PBX_INTERNAL_TOKEN", ""),
            route_ttl_seconds=int(e.get("PBX_ROUTE_TTL_SECONDS", str(cls.route_ttl_seconds))),
            mail_retry_seconds=float(e.get("PBX_MAIL_RETRY_SECONDS", str(cls.mail_retry_seconds))),
            porting_poll_seconds=float(
                e.get("PBX_PORTING_POLL_SECONDS", str(cls.porting_poll_seconds))
            ),
            porting_retry_seconds=float(
                e.get("PBX_PORTING_RETRY_SECONDS", str(cls.porting_retry_seconds))
            ),
            fax_retry_seconds=float(e.get("PBX_FAX_RETRY_SECONDS", str(cls.fax_retry_seconds))),
            fax_lease_seconds=int(e.get("PBX_FAX_LEASE_SECONDS", str(cls.fax_lease_seconds))),
            outbound_deny=_cidrs(e.get("PBX_OUTBOUND_DENY", "")),
            sip_uac_listen=_optional_listen(e.get("PBX_SIP_UAC_LISTEN", ""), "PBX_SIP_UAC_LISTEN"),
            sip_proxies=tuple(
                host_port(p.strip(), "PBX_SIP_PROXIES") and p.strip()
                for p in e.get("PBX_SIP_PROXIES", "").split(",")
                if p.strip()
            ),
            event_retention_days=int(
                e.get("PBX_EVENT_RETENTION_DAYS", str(cls.event_retention_days))
            ),
            provisioning_listen=_optional_listen(
                e.get("PBX_PROVISIONING_LISTEN", ""), "PBX_PROVISIONING_LISTEN"
            ),
            vendor_ca_file=e.get("PBX_VENDOR_CA_FILE", ""),
            vendor_ca_dir=e.get("PBX_VENDOR_CA_DIR", ""),
            provisioning_url=e.get("PBX_PROVISIONING_URL", ""),
            claim_token_ttl_hours=int(
                e.get("PBX_CLAIM_TOKEN_TTL_HOURS", str(cls.claim_token_ttl_hours))
            ),
            sip_sites=_sites(e.get("PBX_SIP_SITES", "")),
            credential_keys=e.get("PBX_CREDENTIAL_KEYS", ""),
        )


def _optional_listen(value: str, name: str) -> str:
    if value:
        host_port(value, name)
    return value


def _cidrs(value: str) -> tuple[str, ...]:
    cidrs = tuple(c.strip() for c in value.split(",") if c.strip())
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"PBX_OUTBOUND_DENY: {cidr!r} is not a network") from None
    return cidrs


def _sites(value: str) -> tuple[str, ...]:
    sites = tuple(x.strip() for x in value.split(",") if x.strip())
    for site in sites:
        if not re.fullmatch(r"[a-z][a-z0-9]{1,9}:0[1-9][0-9]{1,4}", site):
            raise ValueError(f"PBX_SIP_SITES: {site!r} is not <site>:<area code>")
    return sites
