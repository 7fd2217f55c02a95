"""One Pulumi component per service kind; each declares one container per topology instance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote

import pulumi
import pulumi_docker as docker

from .node_config import (
    app_https_port,
    app_port,
    app_url,
    config_files,
    ctd_sip_port,
    outbound_deny,
    portal_url,
    provisioning_port,
    provisioning_url,
    sip_sites,
    site_proxies,
    wss_urls,
)
from .topology import Instance, Platform, ServiceKind

HEALTHCHECK_COMMAND = ["CMD", "pbx-healthcheck"]  # every image ships one that tests the service


@dataclass
class Secrets:
    db_password: pulumi.Input[str]
    db_replication_password: pulumi.Input[str]
    app_secret_key: pulumi.Input[str]
    tls_certificate: pulumi.Input[str]
    tls_private_key: pulumi.Input[str]
    tls_ca_certificate: pulumi.Input[str]
    db_kamailio_password: pulumi.Input[str]
    internal_api_token: pulumi.Input[str]
    sip_auth_secret: pulumi.Input[str]  # digest nonce secret, shared by every proxy
    db_rewind_password: pulumi.Input[str]  # pg_rewind's role: a returning leader rejoins
    # pbx_app.vault: "k2:<secret>,k1:<secret>", the first seals the devices' passwords.
    credential_keys: pulumi.Input[str]
    # The CAs whose device certificates prove a phone's MAC, by vendor as device models name
    # it (PEM; public, optional): one vendor's CA vouches for its own phones only.
    vendor_ca_certificates: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerSpec:
    """What differs between service kinds; everything else is common to every container."""

    envs: list[pulumi.Input[str]] = field(default_factory=list)
    volumes: list[docker.ContainerVolumeArgs] = field(default_factory=list)
    start_period: str = "30s"
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    uploads: list[docker.ContainerUploadArgs] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    stop_timeout: int | None = None  # seconds `docker stop` waits before SIGKILL


def _server_tls(secrets: Secrets, directory: str) -> list[docker.ContainerUploadArgs]:
    """The platform's certificate and key (readable by its owner only) for a TLS server."""
    return [
        docker.ContainerUploadArgs(file=f"{directory}/server.pem", content=secrets.tls_certificate),
        docker.ContainerUploadArgs(
            file=f"{directory}/server.key", content=secrets.tls_private_key, permissions="0600"
        ),
    ]


class ServiceGroup(pulumi.ComponentResource):
    """All containers of one service kind in one site; `spec()` says what differs per kind."""

    kind: ServiceKind
    # Where a stateful kind keeps what must outlive its container: a named volume per instance,
    # kept when the container is replaced (a new image, a crash).
    data_path: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        platform: Platform,
        site: str,
        image: docker.Image,
        secrets: Secrets,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(f"pbx:service:{type(self).__name__}", name, None, opts)
        self.platform = platform
        self.secrets = secrets
        self.containers: dict[str, docker.Container] = {}
        self.volumes: dict[str, docker.Volume] = {}
        child = pulumi.ResourceOptions(parent=self, provider=opts.provider)
        for inst in platform.instances(self.kind, site):
            spec = self.spec(inst)
            if self.data_path:
                self.volumes[inst.name] = _data_volume(platform, inst, opts)
                spec.volumes.append(
                    docker.ContainerVolumeArgs(
                        volume_name=self.volumes[inst.name].name, container_path=self.data_path
                    )
                )
            self.containers[inst.name] = _container(
                platform,
                inst,
                image,
                spec,
                pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=spec.depends_on)
                ),
            )
        self.register_outputs({"containers": {n: c.name for n, c in self.containers.items()}})

    def spec(self, inst: Instance) -> ContainerSpec:
        return ContainerSpec()


class SipProxy(ServiceGroup):
    kind = ServiceKind.SIP_PROXY
    # Where Kamailio spools the call records its shipper has not delivered yet (a volume: a new
    # container, after an image change or a crash, delivers what the old one left).
    data_path = "/var/spool/kamailio/cdr"

    def spec(self, inst: Instance) -> ContainerSpec:
        # SIP/TLS and WSS material; the key is readable by its owner only.
        tls = "/etc/kamailio/tls"
        # Device credentials come from the site's own database member, leader or replica: a
        # read-only role, local reads, nothing that waits on the other site on every REGISTER.
        local_db = self.platform.instances(ServiceKind.DB, inst.site)[0]
        other_db = next(d for d in self.platform.instances(ServiceKind.DB) if d.site != inst.site)
        return ContainerSpec(
            # keepalived moves the site's shared SIP address between the proxies (VRRP).
            capabilities=["NET_ADMIN"],
            # Kamailio binds that address while another proxy holds it. Production sets this on
            # the host (voice_tuning): a container on host networking may not.
            sysctls={"net.ipv4.ip_nonlocal_bind": "1"} if self.platform.mode == "lab" else {},
            envs=[
                pulumi.Output.concat(
                    "PBX_DB_URL=postgres://kamailio:",
                    self.secrets.db_kamailio_password,
                    f"@{local_db.reach}:{self.platform.ports.db}/pbx",
                ),
                # auth_db through db_cluster: the own member, the other site's while it is down.
                pulumi.Output.concat(
                    "PBX_DB_CLUSTER_LOCAL=local=>postgres://kamailio:",
                    self.secrets.db_kamailio_password,
                    f"@{local_db.reach}:{self.platform.ports.db}/pbx",
                ),
                pulumi.Output.concat(
                    "PBX_DB_CLUSTER_REMOTE=remote=>postgres://kamailio:",
                    self.secrets.db_kamailio_password,
                    f"@{other_db.reach}:{self.platform.ports.db}/pbx",
                ),
                pulumi.Output.concat("PBX_INTERNAL_TOKEN=", self.secrets.internal_api_token),
                pulumi.Output.concat("PBX_AUTH_SECRET=", self.secrets.sip_auth_secret),
                # Shared memory for every binding of the platform (topology planned_bindings).
                f"PBX_SHM_MB={self.platform.proxy_shm_mb}",
            ],
            uploads=[
                *_server_tls(self.secrets, tls),
                docker.ContainerUploadArgs(
                    file=f"{tls}/ca.pem", content=self.secrets.tls_ca_certificate
                ),
            ],
        )


class MediaRelay(ServiceGroup):
    kind = ServiceKind.MEDIA_RELAY


class Carrier(ServiceGroup):
    """Lab only: the PSTN behind the site's trunk (carrier/), with a remote fax machine."""

    kind = ServiceKind.CARRIER

    def spec(self, inst: Instance) -> ContainerSpec:
        # What the PSTN's calls reach: the site's proxies, on their internal addresses.
        proxies = self.platform.instances(ServiceKind.SIP_PROXY, inst.site)
        own = [f"{p.reach}:{self.platform.ports.sip}" for p in proxies]
        return ContainerSpec(envs=[f"PBX_CARRIER_PROXIES={','.join(own)}"])


class LabDns(ServiceGroup):
    kind = ServiceKind.DNS


class SmtpSink(ServiceGroup):
    kind = ServiceKind.SMTP


class Monitor(ServiceGroup):
    """Prometheus, Alertmanager and the SIP capture collector of one site (monitor/)."""

    kind = ServiceKind.MONITOR
    data_path = "/var/lib/monitor"

    def spec(self, inst: Instance) -> ContainerSpec:
        return ContainerSpec(
            # Alertmanager is ready once its cluster settles (up to a minute alone).
            start_period="90s",
            # The certificate checks verify the chain against the platform's CA.
            uploads=[
                docker.ContainerUploadArgs(
                    file="/etc/monitor/tls/ca.pem", content=self.secrets.tls_ca_certificate
                )
            ],
        )


class Efax(ServiceGroup):
    """The fax gateway of one site (pbx_efax): answers the fax numbers' calls the proxies route
    to it, places the calls of outgoing fax jobs it leases from the app, takes mail to fax."""

    kind = ServiceKind.EFAX
    # Received faxes wait here until an app node has them (a volume: a new container, after an
    # image change or a crash, hands in what the old one kept).
    data_path = "/var/spool/pbx-efax"

    def spec(self, inst: Instance) -> ContainerSpec:
        platform = self.platform
        site = platform.site(inst.site)
        apps = sorted(platform.instances(ServiceKind.PBX_APP), key=lambda a: a.site != inst.site)
        first, last = site.fax_media_ports
        return ContainerSpec(
            envs=[
                f"PBX_NODE_NAME={inst.name}",
                f"PBX_EFAX_SIP_LISTEN={inst.reach}:{platform.ports.efax_sip}",
                f"PBX_EFAX_MEDIA_PORTS={first}-{last}",
                f"PBX_EFAX_MAIL_LISTEN={inst.reach}:{platform.ports.efax_mail}",
                f"PBX_EFAX_MAIL_DOMAIN=fax.{platform.sip_domain}",
                # Every proxy may route a fax call here (the other site's when ours are gone);
                # ours first for the outgoing calls.
                f"PBX_SIP_PROXIES={','.join(site_proxies(platform, inst.site))}",
                f"PBX_APP_URLS={','.join(app_url(platform, a) for a in apps)}",
                f"PBX_SIP_DOMAIN={platform.sip_domain}",
                pulumi.Output.concat("PBX_INTERNAL_TOKEN=", self.secrets.internal_api_token),
            ],
        )


def _data_volume(platform: Platform, inst: Instance, opts: pulumi.ResourceOptions) -> docker.Volume:
    """A named volume for one instance's state, labelled like its container."""
    return docker.Volume(
        f"{inst.name}-data",
        name=f"{platform.name}-{inst.name}-data",
        labels=[
            docker.VolumeLabelArgs(label=item.label, value=item.value)
            for item in _labels(platform, inst)
        ],
        opts=pulumi.ResourceOptions(provider=opts.provider),
    )


class Etcd(ServiceGroup):
    """etcd: one member per site and one at the witness; the quorum Patroni elects in."""

    kind = ServiceKind.ETCD
    data_path = "/var/lib/etcd/data"


class Database(ServiceGroup):
    """PostgreSQL under Patroni: one member per site, the same declaration in both. Which one
    leads is decided at run time in etcd, not here."""

    kind = ServiceKind.DB
    data_path = "/var/lib/postgresql/data"

    def spec(self, inst: Instance) -> ContainerSpec:
        return ContainerSpec(
            envs=[
                pulumi.Output.concat("PBX_DB_PASSWORD=", self.secrets.db_password),
                pulumi.Output.concat(
                    "PBX_DB_KAMAILIO_PASSWORD=", self.secrets.db_kamailio_password
                ),
                pulumi.Output.concat(
                    "PATRONI_REPLICATION_PASSWORD=", self.secrets.db_replication_password
                ),
                pulumi.Output.concat("PATRONI_REWIND_PASSWORD=", self.secrets.db_rewind_password),
                # prometheus-postgres-exporter, beside Patroni: internal address only.
                f"PBX_DB_METRICS_LISTEN={inst.reach}:{self.platform.ports.db_metrics}",
                f"PBX_DB_PORT={self.platform.ports.db}",
            ],
            start_period="90s",  # a new replica's first start copies the leader
            # A leader stopped on purpose hands over cleanly: its last WAL reaches the replica
            # before it exits. Cut short, the replica would wait for that WAL before taking over.
            stop_timeout=60,
        )


class PbxApp(ServiceGroup):
    kind = ServiceKind.PBX_APP
    # The platform's certificate (the proxies' one, its names extended to the app nodes); the
    # image's entrypoint hands the key, uploaded root-only like the proxies', to the app's user.
    TLS_DIR = "/etc/pbx-app/tls"

    def spec(self, inst: Instance) -> ContainerSpec:
        platform = self.platform
        if platform.mode == "lab":
            # The site's own mail sink: a site alone still sends onboarding mail.
            sink = platform.instances(ServiceKind.SMTP, inst.site)[0]
            smtp = f"{sink.reach}:{platform.ports.smtp}"
            listen = f"0.0.0.0:{app_port(platform, inst)}"
            https_listen = f"0.0.0.0:{app_https_port(platform, inst)}"
            phones_listen = f"0.0.0.0:{provisioning_port(platform, inst)}"
        else:
            assert platform.smtp_relay is not None
            smtp = platform.smtp_relay
            # Plain HTTP on the internal address only; HTTPS for people on the public one.
            listen = f"{inst.reach}:{app_port(platform, inst)}"
            https_listen = f"{inst.address}:{app_https_port(platform, inst)}"
            phones_listen = f"{inst.address}:{provisioning_port(platform, inst)}"
        smtp_host, _, smtp_port = smtp.partition(":")
        first_app = platform.instances(ServiceKind.PBX_APP, inst.site)[0]
        tls = self.TLS_DIR
        return ContainerSpec(
            envs=[
                # Writes go to whichever member leads now; route decisions read the site's own.
                _database_url(platform, inst.site, self.secrets, "PBX_DATABASE_URL", "read-write"),
                _database_url(platform, inst.site, self.secrets, "PBX_DATABASE_READ_URL", "any"),
                pulumi.Output.concat("PBX_SECRET_KEY=", self.secrets.app_secret_key),
                pulumi.Output.concat("PBX_INTERNAL_TOKEN=", self.secrets.internal_api_token),
                f"PBX_LISTEN={listen}",
                f"PBX_HTTPS_LISTEN={https_listen}",
                f"PBX_TLS_CERT_FILE={tls}/server.pem",
                f"PBX_TLS_KEY_FILE={tls}/server.key",
                # Mailed set-password links: the site's first node, over HTTPS.
                f"PBX_PUBLIC_URL={portal_url(platform, first_app)}",
                f"PBX_WSS_URLS={','.join(wss_urls(platform, inst.site))}",
                f"PBX_SMTP_HOST={smtp_host}",
                f"PBX_SMTP_PORT={smtp_port or platform.ports.smtp}",
                f"PBX_MAIL_FROM=noreply@{platform.sip_domain}",
                f"PBX_SIP_DOMAIN={platform.sip_domain}",
                f"PBX_SIP_TLS_PORT={platform.ports.sip_tls}",
                f"PBX_SITE={inst.site}",
                f"PBX_NODE_NAME={inst.name}",
                # Click-to-dial's SIP user agent, on the internal address, through the site's
                # proxies; customers' webhooks and CRMs never reach the platform's own hosts.
                f"PBX_SIP_UAC_LISTEN={inst.reach}:{ctd_sip_port(platform, inst)}",
                f"PBX_SIP_PROXIES={','.join(site_proxies(platform, inst.site))}",
                f"PBX_OUTBOUND_DENY={','.join(outbound_deny(platform))}",
                # Zero-touch provisioning: phones fetch here (a vendor certificate checked
                # against the vendor CAs), configurations point them back at the shared name,
                # and their home site is chosen among these.
                f"PBX_PROVISIONING_LISTEN={phones_listen}",
                f"PBX_PROVISIONING_URL={provisioning_url(platform)}",
                f"PBX_VENDOR_CA_FILE={tls}/vendor-ca.pem",
                f"PBX_VENDOR_CA_DIR={tls}/vendors",
                f"PBX_SIP_SITES={','.join(sip_sites(platform))}",
                pulumi.Output.concat("PBX_CREDENTIAL_KEYS=", self.secrets.credential_keys),
                # A fax to a busy line is tried again after 2 minutes, then 10, and a dead
                # gateway's job waits 90 s for another; the lab's drills cannot wait that long.
                *(
                    ["PBX_FAX_RETRY_SECONDS=5", "PBX_FAX_LEASE_SECONDS=30"]
                    if platform.mode == "lab"
                    else []
                ),
            ],
            uploads=[
                *_server_tls(self.secrets, tls),
                # All vendors' CAs in one file (the TLS layer's trust), and each vendor's alone
                # (whose phones its certificates may prove).
                docker.ContainerUploadArgs(
                    file=f"{tls}/vendor-ca.pem",
                    content="".join(self.secrets.vendor_ca_certificates.values()),
                ),
                *(
                    docker.ContainerUploadArgs(file=f"{tls}/vendors/{vendor}.pem", content=pem)
                    for vendor, pem in sorted(self.secrets.vendor_ca_certificates.items())
                ),
            ],
            start_period="60s",
        )


def database_hosts(platform: Platform, site: str) -> list[str]:
    """Every database member as host:port, the site's own first."""
    members = sorted(platform.instances(ServiceKind.DB), key=lambda m: m.site != site)
    return [f"{m.reach}:{platform.ports.db}" for m in members]


def _database_url(
    platform: Platform, site: str, secrets: Secrets, env: str, session: str
) -> pulumi.Output[str]:
    """libpq multi-host: the site's member first; `read-write` skips members that do not lead.
    connect_timeout bounds each try, so a dead site costs a new connection two seconds."""
    hosts = "".join(f"host={h}&" for h in database_hosts(platform, site))
    return pulumi.Output.from_input(secrets.db_password).apply(
        lambda password: (
            f"{env}=postgresql+psycopg://pbx:{quote(password, safe='')}@/pbx?"
            f"{hosts}target_session_attrs={session}&connect_timeout=2"
        )
    )


def _labels(platform: Platform, inst: Instance) -> list[docker.ContainerLabelArgs]:
    return [
        docker.ContainerLabelArgs(label=k, value=v)
        for k, v in {
            "pbx.platform": platform.name,
            "pbx.site": inst.site,
            "pbx.service": inst.kind.value,
            "pbx.instance": inst.name,
        }.items()
    ]


def _container(
    platform: Platform,
    inst: Instance,
    image: docker.Image,
    spec: ContainerSpec,
    opts: pulumi.ResourceOptions,
) -> docker.Container:
    lab = platform.mode == "lab"
    return docker.Container(
        inst.name,
        name=inst.container_name(platform),
        image=image.image_name,
        hostname=inst.name,
        labels=_labels(platform, inst),
        envs=spec.envs,
        volumes=spec.volumes,
        uploads=[
            docker.ContainerUploadArgs(file=f.path, content=f.content)
            for f in config_files(platform, inst)
        ]
        + spec.uploads,
        # Lab: static addresses on the site network and the backbone. Production: SIP and RTP
        # on host networking (no NAT between the phone and the proxy's advertised address).
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(
                name=network, ipv4_address=str(address), aliases=[inst.fqdn(platform), inst.name]
            )
            for network, address in inst.networks
        ]
        if lab
        else None,
        network_mode=None if lab else "host",
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=HEALTHCHECK_COMMAND,
            interval="10s",
            timeout="5s",
            retries=3,
            start_period=spec.start_period,
        ),
        restart="unless-stopped",
        capabilities=docker.ContainerCapabilitiesArgs(adds=spec.capabilities)
        if spec.capabilities
        else None,
        sysctls=spec.sysctls or None,
        stop_timeout=spec.stop_timeout,
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        # Production: `pulumi up` returns only when every container is healthy.
        wait=not lab,
        wait_timeout=300,
        opts=opts,
    )
