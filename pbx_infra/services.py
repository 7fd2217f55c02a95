"""One Pulumi component per service kind; each declares one container per topology instance."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from .node_config import app_port, config_files
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


@dataclass
class ContainerSpec:
    """What differs between service kinds; everything else is common to every container."""

    envs: list[pulumi.Input[str]] = field(default_factory=list)
    volumes: list[docker.ContainerVolumeArgs] = field(default_factory=list)
    start_period: str = "30s"
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    uploads: list[docker.ContainerUploadArgs] = field(default_factory=list)


class ServiceGroup(pulumi.ComponentResource):
    """All containers of one service kind in one site; `spec()` says what differs per kind."""

    kind: ServiceKind

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
        child = pulumi.ResourceOptions(parent=self, provider=opts.provider)
        for inst in platform.instances(self.kind, site):
            spec = self.spec(inst)
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

    def spec(self, inst: Instance) -> ContainerSpec:
        # SIP/TLS and WSS material; the key is readable by its owner only.
        tls = "/etc/kamailio/tls"
        # Device credentials come from the site's own database node (the standby in the second
        # site): a read-only role, local reads, no cross-site round trip on every REGISTER.
        local_db = self.platform.instances(ServiceKind.DB, inst.site)[0]
        return ContainerSpec(
            envs=[
                pulumi.Output.concat(
                    "PBX_DB_URL=postgres://kamailio:",
                    self.secrets.db_kamailio_password,
                    f"@{local_db.reach}:{self.platform.ports.db}/pbx",
                ),
                pulumi.Output.concat("PBX_INTERNAL_TOKEN=", self.secrets.internal_api_token),
                pulumi.Output.concat("PBX_AUTH_SECRET=", self.secrets.sip_auth_secret),
            ],
            uploads=[
                docker.ContainerUploadArgs(
                    file=f"{tls}/server.pem", content=self.secrets.tls_certificate
                ),
                docker.ContainerUploadArgs(
                    file=f"{tls}/server.key",
                    content=self.secrets.tls_private_key,
                    permissions="0600",
                ),
                docker.ContainerUploadArgs(
                    file=f"{tls}/ca.pem", content=self.secrets.tls_ca_certificate
                ),
            ],
        )


class MediaRelay(ServiceGroup):
    kind = ServiceKind.MEDIA_RELAY


class Carrier(ServiceGroup):
    kind = ServiceKind.CARRIER


class LabDns(ServiceGroup):
    kind = ServiceKind.DNS


class SmtpSink(ServiceGroup):
    kind = ServiceKind.SMTP


class Database(ServiceGroup):
    """PostgreSQL: primary in the first site, streaming hot standby in the second."""

    kind = ServiceKind.DB

    def __init__(
        self,
        name: str,
        platform: Platform,
        site: str,
        image: docker.Image,
        secrets: Secrets,
        opts: pulumi.ResourceOptions,
        primary: Database | None = None,
    ) -> None:
        self.primary = primary
        self.volume = docker.Volume(
            f"{name}-data",
            name=f"{platform.name}-{site}-db-data",
            labels=[
                docker.VolumeLabelArgs(label=item.label, value=item.value)
                for item in _labels(platform, platform.instances(ServiceKind.DB, site)[0])
            ],
            opts=pulumi.ResourceOptions(provider=opts.provider),
        )
        super().__init__(name, platform, site, image, secrets, opts)

    def spec(self, inst: Instance) -> ContainerSpec:
        platform = self.platform
        common: list[pulumi.Input[str]] = [
            pulumi.Output.concat("PBX_DB_PASSWORD=", self.secrets.db_password),
            pulumi.Output.concat(
                "PBX_DB_REPLICATION_PASSWORD=", self.secrets.db_replication_password
            ),
            f"PBX_DB_ALLOWED_CIDRS={','.join(_platform_cidrs(platform))}",
            pulumi.Output.concat("PBX_DB_KAMAILIO_PASSWORD=", self.secrets.db_kamailio_password),
        ]
        volume = docker.ContainerVolumeArgs(
            volume_name=self.volume.name, container_path="/var/lib/postgresql/data"
        )
        if inst.site == platform.primary_site.name:
            slots = ",".join(_slot(s.name) for s in platform.sites[1:])
            return ContainerSpec(
                envs=["PBX_DB_ROLE=primary", f"PBX_DB_STANDBY_SLOTS={slots}", *common],
                volumes=[volume],
                start_period="60s",
            )
        primary = platform.instances(ServiceKind.DB, platform.primary_site.name)[0]
        return ContainerSpec(
            envs=[
                "PBX_DB_ROLE=standby",
                f"PBX_DB_PRIMARY_HOST={primary.reach}",
                f"PBX_DB_SLOT={_slot(inst.site)}",
                *common,
            ],
            volumes=[volume],
            start_period="180s",  # the first start copies the primary with pg_basebackup
            depends_on=list(self.primary.containers.values()) if self.primary else [],
        )


class PbxApp(ServiceGroup):
    kind = ServiceKind.PBX_APP

    def __init__(
        self,
        name: str,
        platform: Platform,
        site: str,
        image: docker.Image,
        secrets: Secrets,
        database: Database,
        opts: pulumi.ResourceOptions,
    ) -> None:
        self.database = database
        super().__init__(name, platform, site, image, secrets, opts)

    def spec(self, inst: Instance) -> ContainerSpec:
        platform = self.platform
        # Writes go to the primary; the standby takes over by promotion, not by app failover.
        primary = platform.instances(ServiceKind.DB, platform.primary_site.name)[0]
        if platform.mode == "lab":
            smtp = f"{platform.instances(ServiceKind.SMTP)[0].reach}:{platform.ports.smtp}"
            listen = f"0.0.0.0:{app_port(platform, inst)}"
        else:
            assert platform.smtp_relay is not None
            smtp = platform.smtp_relay
            listen = f"{inst.reach}:{app_port(platform, inst)}"
        smtp_host, _, smtp_port = smtp.partition(":")
        first_app = platform.instances(ServiceKind.PBX_APP, inst.site)[0]
        return ContainerSpec(
            envs=[
                pulumi.Output.concat(
                    "PBX_DATABASE_URL=postgresql+psycopg://pbx:",
                    self.secrets.db_password,
                    f"@{primary.reach}:{platform.ports.db}/pbx",
                ),
                pulumi.Output.concat("PBX_SECRET_KEY=", self.secrets.app_secret_key),
                pulumi.Output.concat("PBX_INTERNAL_TOKEN=", self.secrets.internal_api_token),
                f"PBX_LISTEN={listen}",
                f"PBX_PUBLIC_URL=http://{first_app.address}:{app_port(platform, first_app)}",
                f"PBX_SMTP_HOST={smtp_host}",
                f"PBX_SMTP_PORT={smtp_port or platform.ports.smtp}",
                f"PBX_MAIL_FROM=noreply@{platform.sip_domain}",
                f"PBX_SIP_DOMAIN={platform.sip_domain}",
                f"PBX_SITE={inst.site}",
                f"PBX_NODE_NAME={inst.name}",
            ],
            depends_on=[*self.database.containers.values()],
            start_period="60s",
        )


def _slot(site: str) -> str:
    return f"standby_{site}"


def _platform_cidrs(platform: Platform) -> list[str]:
    """Who may reach the database: the platform's own networks or hosts, nobody else."""
    if platform.mode == "lab":
        assert platform.backbone is not None
        return [str(platform.backbone.subnet)] + [str(s.subnet) for s in platform.sites]
    return sorted({f"{i.reach}/32" for i in platform.instances()})


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
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},
        # Production: `pulumi up` returns only when every container is healthy.
        wait=not lab,
        wait_timeout=300,
        opts=opts,
    )
