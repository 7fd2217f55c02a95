"""The platform as a tree of Pulumi components: Platform -> Site -> SipProxy / MediaRelay / ..."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from .node_config import app_port
from .services import Carrier, Database, LabDns, MediaRelay, PbxApp, Secrets, SipProxy, SmtpSink
from .topology import Platform, ServiceKind

LOCAL_DOCKER = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class ImageSource:
    name: str
    context: str
    dockerfile: str

    def tag(self, platform: Platform) -> str:
        return f"pbx/{self.name}:{platform.image_tag}"


# Build context of each service's image, relative to the repository root (the Pulumi project).
IMAGE_SOURCES = {
    ServiceKind.SIP_PROXY: ImageSource("kamailio", "kamailio", "kamailio/Dockerfile"),
    ServiceKind.MEDIA_RELAY: ImageSource("rtpengine", "rtpengine", "rtpengine/Dockerfile"),
    ServiceKind.DB: ImageSource("postgres", "postgres", "postgres/Dockerfile"),
    ServiceKind.PBX_APP: ImageSource("pbx-app", ".", "pbx_app/Dockerfile"),
    ServiceKind.DNS: ImageSource("labdns", "labdns", "labdns/Dockerfile"),
    ServiceKind.SMTP: ImageSource("smtpsink", "smtpsink", "smtpsink/Dockerfile"),
    ServiceKind.CARRIER: ImageSource("carrier", "carrier", "carrier/Dockerfile"),
}


class Site(pulumi.ComponentResource):
    """One datacentre: its proxies, relays, app nodes, database and (lab) helpers."""

    def __init__(
        self,
        platform: Platform,
        site: str,
        images: dict[ServiceKind, docker.Image],
        secrets: Secrets,
        opts: pulumi.ResourceOptions,
        primary_db: Database | None = None,
    ) -> None:
        super().__init__("pbx:site:Site", site, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=opts.provider)
        kinds = {i.kind for i in platform.instances(site=site)}
        self.database = Database(
            f"{site}-db", platform, site, images[ServiceKind.DB], secrets, child, primary_db
        )
        self.sip_proxy = SipProxy(
            f"{site}-sip-proxy", platform, site, images[ServiceKind.SIP_PROXY], secrets, child
        )
        self.media_relay = MediaRelay(
            f"{site}-media-relay", platform, site, images[ServiceKind.MEDIA_RELAY], secrets, child
        )
        self.smtp = (
            SmtpSink(f"{site}-smtp", platform, site, images[ServiceKind.SMTP], secrets, child)
            if ServiceKind.SMTP in kinds
            else None
        )
        self.dns = (
            LabDns(f"{site}-dns", platform, site, images[ServiceKind.DNS], secrets, child)
            if ServiceKind.DNS in kinds
            else None
        )
        self.carrier = (
            Carrier(f"{site}-carrier", platform, site, images[ServiceKind.CARRIER], secrets, child)
            if ServiceKind.CARRIER in kinds
            else None
        )
        app_opts = child
        if self.smtp is not None:
            app_opts = pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(self.smtp.containers.values()))
            )
        self.pbx_app = PbxApp(
            f"{site}-pbx-app",
            platform,
            site,
            images[ServiceKind.PBX_APP],
            secrets,
            self.database,
            app_opts,
        )
        self.register_outputs({})


class PbxPlatform(pulumi.ComponentResource):
    """Both sites, their Docker hosts, images and (lab) networks."""

    def __init__(
        self, platform: Platform, secrets: Secrets, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pbx:platform:Platform", platform.name, None, opts)
        self.platform = platform
        # One provider per Docker host: the lab's sites share the local engine.
        providers: dict[str, docker.Provider] = {}
        for site in platform.sites:
            url = site.docker_host or LOCAL_DOCKER
            if url not in providers:
                label = "lab" if platform.mode == "lab" else site.name
                providers[url] = docker.Provider(
                    f"docker-{label}", host=url, opts=pulumi.ResourceOptions(parent=self)
                )

        lab = platform.mode == "lab"
        self.networks = self._lab_networks(providers[LOCAL_DOCKER]) if lab else []
        needed = {i.kind for i in platform.instances()}
        images = {
            url: {
                kind: self._image(provider, url, kind) for kind in IMAGE_SOURCES if kind in needed
            }
            for url, provider in providers.items()
        }

        self.sites: dict[str, Site] = {}
        primary_db: Database | None = None
        for site in platform.sites:
            url = site.docker_host or LOCAL_DOCKER
            site_opts = pulumi.ResourceOptions(
                parent=self, provider=providers[url], depends_on=list(self.networks)
            )
            built = Site(platform, site.name, images[url], secrets, site_opts, primary_db)
            primary_db = primary_db or built.database
            self.sites[site.name] = built
        self.register_outputs({"sites": list(self.sites)})

    def _lab_networks(self, provider: docker.Provider) -> list[docker.Network]:
        platform = self.platform
        assert platform.backbone is not None
        subnets = {None: platform.backbone.subnet} | {s.name: s.subnet for s in platform.sites}
        networks = []
        for site, subnet in subnets.items():
            name = platform.network_name(site)
            networks.append(
                docker.Network(
                    name,
                    name=name,
                    driver="bridge",
                    ipam_configs=[docker.NetworkIpamConfigArgs(subnet=str(subnet))],
                    labels=[
                        docker.NetworkLabelArgs(label="pbx.platform", value=platform.name),
                        docker.NetworkLabelArgs(label="pbx.site", value=site or "backbone"),
                    ],
                    opts=pulumi.ResourceOptions(parent=self, provider=provider),
                )
            )
        return networks

    def _image(self, provider: docker.Provider, url: str, kind: ServiceKind) -> docker.Image:
        source = IMAGE_SOURCES[kind]
        suffix = "" if url == LOCAL_DOCKER else f"-{provider._name}"
        return docker.Image(
            f"image-{source.name}{suffix}",
            image_name=source.tag(self.platform),
            build=docker.DockerBuildArgs(context=source.context, dockerfile=source.dockerfile),
            skip_push=True,  # built on each site's own Docker host; there is no registry
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )


def endpoints(platform: Platform) -> list[dict[str, object]]:
    """What the lab table and stack outputs show: every container and how to reach it."""
    ports = platform.ports
    by_kind: dict[ServiceKind, list[str]] = {
        ServiceKind.SIP_PROXY: [f"sip:{{a}}:{ports.sip}", f"sips:{{a}}:{ports.sip_tls}"],
        ServiceKind.MEDIA_RELAY: [f"ng:{{i}}:{ports.rtpengine_ng}"],
        ServiceKind.DB: [f"postgresql://{{i}}:{ports.db}"],
        ServiceKind.DNS: [f"dns:{{a}}:{ports.dns}"],
        ServiceKind.SMTP: [f"smtp:{{i}}:{ports.smtp}"],
        ServiceKind.CARRIER: [f"sip:{{a}}:{ports.sip}"],
    }
    rows: list[dict[str, object]] = []
    for inst in platform.instances():
        if inst.kind is ServiceKind.PBX_APP:
            shown = [f"http://{inst.address}:{app_port(platform, inst)}"]
        else:
            shown = [t.format(a=inst.address, i=inst.reach) for t in by_kind[inst.kind]]
        rows.append(
            {
                "site": inst.site,
                "service": inst.kind.value,
                "container": inst.container_name(platform),
                "address": str(inst.address),
                "internal": str(inst.internal) if inst.internal else None,
                "endpoints": shown,
            }
        )
    return rows
