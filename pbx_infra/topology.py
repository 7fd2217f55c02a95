"""The platform topology: the one source of truth for what runs where.

Stack config (`pbx:platform`) is parsed once into this validated model. Pulumi components, node
config templates, the Ansible inventory, DNS records and the testinfra host list are all derived
from it; nothing else restates sites, counts, addresses or ports.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The bandwidth planning rule (R9); the voice_qos role's default (voice_qos_kbit_per_channel)
# is a copy that tests/iac/test_topology.py keeps equal. The product limits (R4, R14-R16, R19)
# live in pbx_app.limits only.
KBIT_PER_VOICE_CHANNEL = 100

# DSCP as numeric TOS bytes: symbolic names have been buggy in Kamailio/rtpengine (R11).
TOS_CS3 = 96
TOS_EF = 184

# Shared memory of a sip-proxy (Kamailio -m, PBX_SHM_MB), derived from `planned_bindings`: every
# proxy holds every binding of the platform (dmq_usrloc replicates each one to all proxies).
# Measured by bench/full_size.py (249,000 bindings, bench/results/full_size.json): see
# docs/architecture.md "Proxy shared memory". The base is what a proxy uses with no binding
# at all under a registration storm (transactions, DMQ messages, htables: ~125 MB seen at
# 855 REGISTER/s in bench/sip_bench.py), doubled.
SHM_BASE_MB = 256
# Measured 2026-12-03 by bench/full_size.py on the lab (Kamailio 6.0.1), 249,000 bindings:
# core.shmmem real_used grew 1,604 bytes per binding on the proxies that only received the
# bindings over DMQ, and 3,378 on the proxy the devices registered at, which also caches each
# device's credentials (htable 'creds', route[CREDENTIALS]) and keeps its allocator's
# fragments of the registration traffic (815 MB of 1,024 there). Devices move between proxies
# (failover, DNS SRV), so over time any proxy may be that one: each binding is planned at the
# registering proxy's figure, rounded up.
SHM_BYTES_PER_BINDING = 3_500
# Planned bindings default: one full-size customer (R14: 249,000 extensions, one device each)
# plus a fifth for extra devices (Business Option) and the other customers.
DEFAULT_PLANNED_BINDINGS = 300_000


class ServiceKind(StrEnum):
    SIP_PROXY = "sip-proxy"
    MEDIA_RELAY = "media-relay"
    PBX_APP = "pbx-app"
    DB = "db"
    ETCD = "etcd"  # consensus for the database's leader election: one per site + the witness
    DNS = "dns"
    SMTP = "smtp"
    CARRIER = "carrier"  # lab only: a simulated PSTN carrier behind the trunk
    # Prometheus, Alertmanager and the SIP capture collector: one per site, each watching both
    MONITOR = "monitor"
    EFAX = "efax"  # the fax gateway: G.711/T.38 fax <-> documents, jobs from the app


# Host offset of each service inside a lab site subnet (instance n adds n-1). The backbone address
# of an instance is the same offset plus BACKBONE_SITE_STRIDE * site index.
_LAB_HOST_OFFSET = {
    ServiceKind.SIP_PROXY: 11,
    ServiceKind.MEDIA_RELAY: 21,
    ServiceKind.PBX_APP: 31,
    ServiceKind.DB: 41,
    ServiceKind.ETCD: 45,
    ServiceKind.SMTP: 25,
    ServiceKind.DNS: 53,
    ServiceKind.CARRIER: 5,
    ServiceKind.MONITOR: 61,
    ServiceKind.EFAX: 71,
}
BACKBONE_SITE_STRIDE = 100
_LAB_SIP_VIP_OFFSET = 10  # the site's shared SIP address, just below its proxies (11, 12, ...)
_MAX_PER_KIND = 9  # keeps each kind inside its block of ten host addresses
# A trusted source is the operator's own peer (an SBC, a monitoring or load host), never a
# whole provider: a list entry shorter than this is refused.
TRUSTED_SOURCE_MIN_PREFIX = 16


class Ports(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sip: int = 5060
    sip_tls: int = 5061
    sip_wss: int = 8443
    rpc: int = 2049  # Kamailio management RPC (ctl), internal networks only
    dmq: int = 5090  # Kamailio DMQ replication between proxies, internal networks only
    rtpengine_ng: int = 2223
    app: int = 8000  # plain HTTP: the platform's own clients on the internal network
    app_https: int = 9443  # HTTPS for people: the portal, the API, the browser phone
    sip_uac: int = 5070  # the app nodes' click-to-dial SIP user agent, internal networks only
    provisioning: int = 9543  # HTTPS for phones fetching their configuration (mTLS optional)
    db: int = 5432
    patroni: int = 8008  # Patroni's REST API (leader, members, lag), internal networks only
    etcd_client: int = 2379
    etcd_peer: int = 2380
    smtp: int = 25
    dns: int = 53
    # Observability; every one on internal addresses only, like the RPC.
    sip_metrics: int = 9070  # Kamailio's Prometheus endpoint (xhttp_prom)
    relay_metrics: int = 9103  # rtpengine's HTTP listener (/metrics)
    db_metrics: int = 9187  # prometheus-postgres-exporter
    node_metrics: int = 9100  # node exporter on each production host
    prometheus: int = 9090
    alertmanager: int = 9093
    alertmanager_cluster: int = 9094  # the two sites' Alertmanagers gossip (TCP and UDP)
    hep: int = 9060  # SIP capture: the proxies mirror every message here (HEP over UDP)
    efax_sip: int = 5080  # the fax gateways' SIP, reached by the proxies only
    efax_mail: int = 2525  # mail to fax, relayed by the operator's MX after its SPF/DKIM checks

    # Who reaches each port in production, over what: everyone (phones, browsers, people; the
    # app's HTTPS ports come per node from its address), the platform's own hosts only (the
    # voice hosts' firewall), or nobody (a service the lab runs in place of the operator's).
    REACH: ClassVar[dict[str, tuple[str, tuple[str, ...]]]] = {
        "sip": ("public", ("udp", "tcp")),
        "sip_tls": ("public", ("tcp",)),
        "sip_wss": ("public", ("tcp",)),
        "app_https": ("public", ("tcp",)),
        "provisioning": ("public", ("tcp",)),
        "rpc": ("platform", ("tcp",)),
        "dmq": ("platform", ("udp", "tcp")),
        "rtpengine_ng": ("platform", ("udp",)),
        "app": ("platform", ("tcp",)),
        "sip_uac": ("platform", ("udp",)),
        "db": ("platform", ("tcp",)),
        "patroni": ("platform", ("tcp",)),
        "etcd_client": ("platform", ("tcp",)),
        "etcd_peer": ("platform", ("tcp",)),
        "sip_metrics": ("platform", ("tcp",)),
        "relay_metrics": ("platform", ("tcp",)),
        "db_metrics": ("platform", ("tcp",)),
        "node_metrics": ("platform", ("tcp",)),
        "prometheus": ("platform", ("tcp",)),
        "alertmanager": ("platform", ("tcp",)),
        "alertmanager_cluster": ("platform", ("tcp", "udp")),
        "hep": ("platform", ("udp",)),
        "efax_sip": ("platform", ("udp",)),
        "efax_mail": ("platform", ("tcp",)),
        "smtp": ("lab", ("tcp",)),
        "dns": ("lab", ("udp", "tcp")),
    }

    def platform_only(self, protocol: str) -> list[int]:
        """The ports only the platform's own hosts may reach over this protocol."""
        return sorted(
            getattr(self, name)
            for name, (reach, protocols) in self.REACH.items()
            if reach == "platform" and protocol in protocols
        )


class Monitoring(BaseModel):
    """How closely the platform watches itself: what Prometheus scrapes how often, when a fault
    becomes an alert, and how long SIP capture keeps messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scrape_interval_s: Annotated[int, Field(ge=1, le=300)] = 15
    # How long a fault lasts before it alerts (a restart or a scrape missed does not page).
    alert_after_s: Annotated[int, Field(ge=1, le=3600)] = 60
    replication_lag_s: Annotated[int, Field(ge=1, le=3600)] = 30
    shm_used_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.9
    certificate_days: Annotated[int, Field(ge=1, le=365)] = 30
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 15  # metrics
    capture_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 72  # SIP messages
    # Who gets the alerts by e-mail (the operator's on-call address).
    alert_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")] | None = None


class ServiceCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sip_proxy: Annotated[int, Field(ge=1, le=_MAX_PER_KIND)] = 2
    media_relay: Annotated[int, Field(ge=1, le=_MAX_PER_KIND)] = 1
    pbx_app: Annotated[int, Field(ge=1, le=_MAX_PER_KIND)] = 2
    efax: Annotated[int, Field(ge=1, le=_MAX_PER_KIND)] = 1


AreaCode = Annotated[str, Field(pattern=r"^0[1-9][0-9]{1,4}$", description="German area code")]
SiteName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{1,9}$")]


def _docker_host_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("ssh://", "unix://", "tcp://")):
        raise ValueError("must be an ssh://, tcp:// or unix:// Docker host URL")
    return value


class Site(BaseModel):
    """One datacentre. In the lab it is a Docker network; in production a Docker host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SiteName
    city: str = Field(min_length=1)
    area_code: AreaCode
    services: ServiceCounts = ServiceCounts()
    rtp_ports: tuple[int, int] = (30000, 30999)
    # The fax gateways' media (RTP or UDPTL): four ports per call, beside the relays' range.
    fax_media_ports: tuple[int, int] = (31000, 31399)
    planned_channels: Annotated[int, Field(ge=1)] = 200
    uplink_kbit: Annotated[int, Field(ge=1)] = 100_000
    # lab
    subnet: ipaddress.IPv4Network | None = None
    # The site's SIP address, shared by its proxies (VRRP): phones know one address per site.
    # Lab: derived (the subnet's .10) unless set; production: a public address of the site.
    sip_vip: ipaddress.IPv4Address | None = None
    # production: the site's Docker host and the addresses its containers bind on host networking
    docker_host: str | None = None
    public_addresses: tuple[ipaddress.IPv4Address, ...] = ()
    internal_addresses: tuple[ipaddress.IPv4Address, ...] = ()

    @field_validator("rtp_ports")
    @classmethod
    def _rtp_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535:
            raise ValueError("must be [low, high] with 1024 <= low < high <= 65535")
        if low % 2:
            raise ValueError("must start on an even port (RTP even, RTCP odd)")
        if high - low + 1 < 100:
            raise ValueError("must hold at least 100 ports (50 calls)")
        return value

    @field_validator("fax_media_ports")
    @classmethod
    def _fax_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1024 <= low < high <= 65535 or low % 4 or (high - low + 1) % 4:
            raise ValueError("must be [low, high] in 1024..65535, blocks of 4 from a multiple of 4")
        return value

    @model_validator(mode="after")
    def _ranges_apart(self) -> Site:
        (rtp_low, rtp_high), (fax_low, fax_high) = self.rtp_ports, self.fax_media_ports
        if fax_low <= rtp_high and rtp_low <= fax_high:
            raise ValueError("fax_media_ports must not overlap rtp_ports (one host may run both)")
        return self

    @field_validator("docker_host")
    @classmethod
    def _docker_host_url(cls, value: str | None) -> str | None:
        return _docker_host_url(value)


class Backbone(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subnet: ipaddress.IPv4Network


class Witness(BaseModel):
    """The third place that breaks ties: it runs only an etcd member, so that whichever site
    survives (or stays connected) still has a quorum. Part of neither site. In the lab it is a
    container on the backbone; in production a small host of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: SiteName = "witness"
    city: str = Field(min_length=1)
    # production: its Docker host and its one address, reachable from both sites' hosts
    docker_host: str | None = None
    internal_address: ipaddress.IPv4Address | None = None

    @field_validator("docker_host")
    @classmethod
    def _docker_host_url(cls, value: str | None) -> str | None:
        return _docker_host_url(value)


class Platform(BaseModel):
    """The validated stack config `pbx:platform`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")] = "pbx"
    mode: Literal["lab", "production"]
    sip_domain: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")]
    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "lab"
    ports: Ports = Ports()
    backbone: Backbone | None = None
    smtp_relay: str | None = None  # production: the operator's mail relay; the lab runs a sink
    # production: the carrier trunk for external numbers (the lab runs a simulated carrier)
    carrier_trunk: Annotated[str, Field(pattern=r"^(udp|tcp|tls):[A-Za-z0-9.-]+:\d+$")] | None = (
        None
    )
    sites: tuple[Site, ...]
    witness: Witness
    # Registered devices (bindings) the platform is sized for; each proxy holds all of them, so
    # the proxies' shared memory follows from it (proxy_shm_mb).
    planned_bindings: Annotated[int, Field(ge=1_000, le=10_000_000)] = DEFAULT_PLANNED_BINDINGS
    # Sources the operator trusts not to flood (its SBCs, monitoring or load hosts): exempt from
    # the proxies' flood limit (pike, and the ban it triggers) and from nothing else: digest
    # auth, the failed-auth ban, scanner bans, sanity checks and an existing ban still apply.
    trusted_sources: tuple[ipaddress.IPv4Network, ...] = ()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="after")
    def _check(self) -> Platform:
        if len(self.sites) != 2:
            raise _KeyError("sites", "must name exactly two sites (R1: two redundant datacentres)")
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise _KeyError("sites", f"site names must be unique, got {names}")
        if self.witness.name in names:
            raise _KeyError("witness.name", f"'{self.witness.name}' names a site: it is neither")
        if self.mode == "lab":
            self._check_lab()
        else:
            self._check_production()
        self._check_trusted_sources()
        return self

    def _check_trusted_sources(self) -> None:
        seen: list[tuple[int, ipaddress.IPv4Network]] = []
        own = {a for i in _derive_instances(self) for a in _addresses(i)} | {
            self.sip_vip(s.name) for s in self.sites
        }
        for i, net in enumerate(self.trusted_sources):
            key = f"trusted_sources[{i}]"
            if net.prefixlen < TRUSTED_SOURCE_MIN_PREFIX:
                raise _KeyError(
                    key,
                    f"{net} is too broad: list your own peers, each a "
                    f"/{TRUSTED_SOURCE_MIN_PREFIX} or narrower (the flood limit protects the "
                    "platform from everyone else)",
                )
            for j, other in seen:
                if net.overlaps(other):
                    raise _KeyError(key, f"{net} overlaps trusted_sources[{j}] ({other})")
            clash = sorted(a for a in own if a in net)
            if clash:
                raise _KeyError(
                    key,
                    f"{net} holds the platform's own address(es) "
                    f"{', '.join(str(a) for a in clash[:3])}: list only sources outside it",
                )
            seen.append((i, net))

    def _check_lab(self) -> None:
        if self.backbone is None:
            raise _KeyError("backbone", "is required in lab mode (the inter-site network)")
        nets: list[tuple[str, ipaddress.IPv4Network]] = [("backbone.subnet", self.backbone.subnet)]
        for i, site in enumerate(self.sites):
            if site.subnet is None:
                raise _KeyError(f"sites[{i}].subnet", "is required in lab mode")
            if site.sip_vip is not None and site.sip_vip not in site.subnet:
                raise _KeyError(f"sites[{i}].sip_vip", f"{site.sip_vip} is not in {site.subnet}")
            if site.docker_host is not None and not site.docker_host.startswith("unix://"):
                raise _KeyError(f"sites[{i}].docker_host", "the lab runs on the local engine only")
            nets.append((f"sites[{i}].subnet", site.subnet))
        if self.witness.docker_host is not None or self.witness.internal_address is not None:
            raise _KeyError("witness", "the lab places its witness on the backbone: remove hosts")
        for key, net in nets:
            if net.num_addresses < 256:
                raise _KeyError(key, f"{net} is too small: use a /24 or larger")
        for i, (key, net) in enumerate(nets):
            for other_key, other in nets[i + 1 :]:
                if net.overlaps(other):
                    raise _KeyError(other_key, f"{other} overlaps {key} ({net})")

    def _check_production(self) -> None:
        if self.smtp_relay is None:
            raise _KeyError("smtp_relay", "is required in production (onboarding e-mail, fax)")
        if self.monitoring.alert_email is None:
            raise _KeyError("monitoring.alert_email", "is required in production (who is paged)")
        if self.carrier_trunk is None:
            raise _KeyError(
                "carrier_trunk", "is required in production (calls to external numbers)"
            )
        for i, site in enumerate(self.sites):
            if site.docker_host is None or not site.docker_host.startswith("ssh://"):
                raise _KeyError(f"sites[{i}].docker_host", "production sites need an ssh:// URL")
            if site.subnet is not None:
                raise _KeyError(f"sites[{i}].subnet", "production uses host networking: remove it")
            # Host networking: each proxy needs its own address pair to bind 5060/5061.
            for key in ("public_addresses", "internal_addresses"):
                have = len(getattr(site, key))
                if have < site.services.sip_proxy:
                    raise _KeyError(
                        f"sites[{i}].{key}",
                        f"has {have} address(es) but the site runs "
                        f"{site.services.sip_proxy} sip-proxy instance(s)",
                    )
            if site.sip_vip is None:
                raise _KeyError(f"sites[{i}].sip_vip", "production needs the site's SIP address")
            if site.sip_vip in site.public_addresses:
                raise _KeyError(f"sites[{i}].sip_vip", "must not be a proxy's own address")
            if site.services.media_relay > 1:
                raise _KeyError(
                    f"sites[{i}].services.media_relay", "one relay per host on host networking"
                )

        witness = self.witness
        if witness.docker_host is None or not witness.docker_host.startswith("ssh://"):
            raise _KeyError("witness.docker_host", "production needs an ssh:// URL of its own")
        if witness.docker_host in {s.docker_host for s in self.sites}:
            raise _KeyError("witness.docker_host", "must be a host of its own, in neither site")
        if witness.internal_address is None:
            raise _KeyError("witness.internal_address", "is required in production")

    # --- derived topology -------------------------------------------------------------------

    @property
    def proxy_shm_mb(self) -> int:
        """Each sip-proxy's shared memory in MB (Kamailio -m): the base plus planned_bindings
        at the measured bytes per binding, rounded up to a multiple of 64 MB."""
        return proxy_shm_mb(self.planned_bindings)

    @property
    def places(self) -> list[str]:
        """Every place that runs containers: the two sites, then the witness."""
        return [s.name for s in self.sites] + [self.witness.name]

    def instances(self, kind: ServiceKind | None = None, site: str | None = None) -> list[Instance]:
        found = [i for i in _derive_instances(self) if kind in (None, i.kind)]
        return [i for i in found if site in (None, i.site)]

    def instance(self, name: str) -> Instance:
        for inst in _derive_instances(self):
            if inst.name == name:
                return inst
        raise KeyError(name)

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    def sip_vip(self, site: str) -> ipaddress.IPv4Address:
        """The address phones use for `site`: held by one of its proxies at a time (VRRP)."""
        found = self.site(site)
        if found.sip_vip is not None:
            return found.sip_vip
        assert found.subnet is not None  # lab, checked by validation
        return found.subnet.network_address + _LAB_SIP_VIP_OFFSET

    def sip_vip_name(self, site: str) -> str:
        return f"{site}.{self.sip_domain}"

    @property
    def provisioning_name(self) -> str:
        """The name phones fetch their configuration from: every app node answers to it."""
        return f"provisioning.{self.sip_domain}"

    def site_srv_records(self) -> list[SrvRecord]:
        """SRV records under each site's SIP name: that site first (10), the other second (20).
        Provisioned phones name their home site this way, so the order holds wherever the phone
        resolves it (public DNS cannot answer per site the way the lab's site resolvers do)."""
        records = []
        for home in self.sites:
            for proto, port in (("_sip._udp", self.ports.sip), ("_sips._tcp", self.ports.sip_tls)):
                for site in self.sites:
                    records.append(
                        SrvRecord(
                            f"{proto}.{self.sip_vip_name(home.name)}",
                            self.sip_vip_name(site.name),
                            port,
                            10 if site.name == home.name else 20,
                            50,
                        )
                    )
        return records

    def network_name(self, site: str | None) -> str:
        """Docker network of a site (lab); None names the backbone."""
        return f"{self.name}-{site or 'backbone'}"

    def srv_records(self, home_site: str) -> list[SrvRecord]:
        """SRV records as seen from `home_site`: one target per site, its shared SIP address,
        home first (10), the other site second (20). One target per site, not per proxy: a
        phone spends one transaction timeout on a lost site, not one per proxy."""
        records = []
        for proto, port in (
            ("_sip._udp", self.ports.sip),
            ("_sip._tcp", self.ports.sip),
            ("_sips._tcp", self.ports.sip_tls),
        ):
            for site in self.sites:
                priority = 10 if site.name == home_site else 20
                records.append(
                    SrvRecord(
                        f"{proto}.{self.sip_domain}",
                        self.sip_vip_name(site.name),
                        port,
                        priority,
                        50,
                    )
                )
        return records


def proxy_shm_mb(planned_bindings: int) -> int:
    """Shared memory (MB) a proxy needs to hold `planned_bindings` bindings: SHM_BASE_MB plus
    SHM_BYTES_PER_BINDING each, rounded up to a multiple of 64 MB."""
    need_mb = SHM_BASE_MB + planned_bindings * SHM_BYTES_PER_BINDING / 2**20
    return math.ceil(need_mb / 64) * 64


class _KeyError(ValueError):
    """A config error that knows which key is wrong, relative to `pbx:platform`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class SrvRecord:
    name: str
    target: str
    port: int
    priority: int
    weight: int


@dataclass(frozen=True)
class Instance:
    """One container of the platform, with everything derived about it."""

    kind: ServiceKind
    site: str
    ordinal: int
    address: ipaddress.IPv4Address  # site-facing (lab) or public (production) address
    internal: ipaddress.IPv4Address | None  # backbone (lab) or internal (production) address
    networks: tuple[tuple[str, ipaddress.IPv4Address], ...] = field(default=())

    @property
    def name(self) -> str:
        if self.kind not in _NUMBERED:
            return f"{self.site}-{self.kind}"
        return f"{self.site}-{self.kind}-{self.ordinal}"

    def container_name(self, platform: Platform) -> str:
        return f"{platform.name}-{self.name}"

    def fqdn(self, platform: Platform) -> str:
        return f"{self.name}.{platform.sip_domain}"

    @property
    def reach(self) -> ipaddress.IPv4Address:
        """The address other platform nodes use: internal where there is one."""
        return self.internal or self.address


def _addresses(inst: Instance) -> set[ipaddress.IPv4Address]:
    """Every address a container holds, on every network it joins."""
    found = {inst.address} | {a for _, a in inst.networks}
    return found | ({inst.internal} if inst.internal else set())


def _derive_instances(platform: Platform) -> list[Instance]:
    out: list[Instance] = []
    for index, site in enumerate(platform.sites):
        counts = {
            ServiceKind.SIP_PROXY: site.services.sip_proxy,
            ServiceKind.MEDIA_RELAY: site.services.media_relay,
            ServiceKind.PBX_APP: site.services.pbx_app,
            ServiceKind.DB: 1,
            ServiceKind.ETCD: 1,
            ServiceKind.MONITOR: 1,
            ServiceKind.EFAX: site.services.efax,
        }
        if platform.mode == "lab":
            # Each site has its own DNS, mail sink and carrier interconnect: losing one site
            # takes none of them from the other.
            counts |= {ServiceKind.DNS: 1, ServiceKind.SMTP: 1, ServiceKind.CARRIER: 1}
        for kind, count in counts.items():
            for ordinal in range(1, count + 1):
                out.append(_place(platform, index, site, kind, ordinal))
    out.append(_place_witness(platform))
    return out


def _place_witness(platform: Platform) -> Instance:
    """The witness's etcd member: on the backbone only (lab), or its own host (production)."""
    name = platform.witness.name
    if platform.mode == "lab":
        assert platform.backbone is not None
        # The backbone's third block, after the two sites' (BACKBONE_SITE_STRIDE apart).
        index = len(platform.sites)
        address = (
            platform.backbone.subnet.network_address
            + BACKBONE_SITE_STRIDE * index
            + _LAB_HOST_OFFSET[ServiceKind.ETCD]
        )
        return Instance(
            ServiceKind.ETCD, name, 1, address, address, ((platform.network_name(None), address),)
        )
    assert platform.witness.internal_address is not None
    address = platform.witness.internal_address
    return Instance(ServiceKind.ETCD, name, 1, address, address)


def _place(platform: Platform, index: int, site: Site, kind: ServiceKind, ordinal: int) -> Instance:
    if platform.mode == "lab":
        # both checked by validation
        assert site.subnet is not None
        assert platform.backbone is not None
        offset = _LAB_HOST_OFFSET[kind] + ordinal - 1
        address = site.subnet.network_address + offset
        internal = platform.backbone.subnet.network_address + BACKBONE_SITE_STRIDE * index + offset
        # The carrier stands outside both sites: each site's interconnect to it sits on the
        # backbone only.
        if kind is ServiceKind.CARRIER:
            address = internal
            return Instance(
                kind, site.name, ordinal, address, None, ((platform.network_name(None), address),)
            )
        # DNS answers the site's own clients only; everything else also joins the backbone.
        if kind is ServiceKind.DNS:
            return Instance(
                kind,
                site.name,
                ordinal,
                address,
                None,
                ((platform.network_name(site.name), address),),
            )
        internal = platform.backbone.subnet.network_address + BACKBONE_SITE_STRIDE * index + offset
        return Instance(
            kind,
            site.name,
            ordinal,
            address,
            internal,
            ((platform.network_name(site.name), address), (platform.network_name(None), internal)),
        )
    # Production, host networking: proxy n binds address pair n; the rest share the first pair.
    slot = ordinal - 1 if kind is ServiceKind.SIP_PROXY else 0
    return Instance(
        kind, site.name, ordinal, site.public_addresses[slot], site.internal_addresses[slot]
    )


# Kinds that may run several instances per site carry an ordinal in their name.
_NUMBERED = {ServiceKind.SIP_PROXY, ServiceKind.MEDIA_RELAY, ServiceKind.PBX_APP, ServiceKind.EFAX}


class TopologyError(ValueError):
    """The stack config is invalid; the message names every offending key and why."""


def load(raw: Any, source: str = "pbx:platform") -> Platform:
    """Parse and validate the raw stack config object."""
    try:
        return Platform.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _format_loc(err["loc"])
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _KeyError):
                loc = ctx_error.key
                msg = str(ctx_error).split(": ", 1)[1]
            else:
                msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}.{loc}: {msg}" if loc else f"{source}: {msg}")
        raise TopologyError("invalid stack config:\n  " + "\n  ".join(problems)) from None


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
