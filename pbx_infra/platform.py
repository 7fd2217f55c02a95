"""The platform as a tree of Pulumi components: Platform -> Site -> SipProxy / MediaRelay / ..."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from .node_config import app_port, portal_url
from .services import (
    Carrier,
    Database,
    Efax,
    Etcd,
    LabDns,
    MediaRelay,
    Monitor,
    PbxApp,
    Secrets,
    ServiceGroup,
    SipProxy,
    SmtpSink,
)
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
    ServiceKind.ETCD: ImageSource("etcd", "etcd", "etcd/Dockerfile"),
    ServiceKind.PBX_APP: ImageSource("pbx-app", ".", "pbx_app/Dockerfile"),
    ServiceKind.DNS: ImageSource("labdns", "labdns", "labdns/Dockerfile"),
    ServiceKind.SMTP: ImageSource("smtpsink", "smtpsink", "smtpsink/Dockerfile"),
    ServiceKind.CARRIER: ImageSource("carrier", ".", "carrier/Dockerfile"),
    ServiceKind.MONITOR: ImageSource("monitor", "monitor", "monitor/Dockerfile"),
    ServiceKind.EFAX: ImageSource("efax", ".", "pbx_efax/Dockerfile"),
}

# The app image carries the web portal's bundle, which is built (`make portal`), not committed.
PORTAL_BUNDLE = Path(__file__).resolve().parent.parent / "pbx_app" / "web" / "static" / "app.js"


class PortalBundleMissing(RuntimeError):
    pass


def require_portal_bundle(bundle: Path = PORTAL_BUNDLE) -> None:
    """Stops the app image's build before it starts, rather than shipping an image whose
    portal answers 404."""
    if not bundle.is_file() or bundle.stat().st_size == 0:
        raise PortalBundleMissing(
            f"the web portal bundle {bundle} is missing: run `make portal` before building the "
            "pbx-app image (`make lab` does it)"
        )


class Site(pulumi.ComponentResource):
    """One datacentre: its proxies, relays, app nodes, database member and (lab) helpers.
    Nothing here waits on the other site: each site has its own etcd member, DNS, mail sink
    and carrier interconnect."""

    def __init__(
        self,
        platform: Platform,
        site: str,
        images: dict[ServiceKind, docker.Image],
        secrets: Secrets,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("pbx:site:Site", site, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=opts.provider)
        kinds = {i.kind for i in platform.instances(site=site)}

        def group(
            cls: type[ServiceGroup], kind: ServiceKind, group_opts: pulumi.ResourceOptions = child
        ) -> ServiceGroup | None:
            if kind not in kinds:
                return None
            return cls(f"{site}-{kind.value}", platform, site, images[kind], secrets, group_opts)

        self.etcd = Etcd(f"{site}-etcd", platform, site, images[ServiceKind.ETCD], secrets, child)
        self.database = Database(
            f"{site}-db",
            platform,
            site,
            images[ServiceKind.DB],
            secrets,
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(self.etcd.containers.values()))
            ),
        )
        self.sip_proxy = group(SipProxy, ServiceKind.SIP_PROXY)
        self.media_relay = group(MediaRelay, ServiceKind.MEDIA_RELAY)
        self.smtp = group(SmtpSink, ServiceKind.SMTP)
        self.dns = group(LabDns, ServiceKind.DNS)
        self.carrier = group(Carrier, ServiceKind.CARRIER)
        self.monitor = group(Monitor, ServiceKind.MONITOR)
        before_app = [*self.database.containers.values()]
        if self.smtp is not None:
            before_app += self.smtp.containers.values()
        self.pbx_app = group(
            PbxApp,
            ServiceKind.PBX_APP,
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=before_app)),
        )
        self.efax = group(Efax, ServiceKind.EFAX)
        self.register_outputs({})


class Witness(pulumi.ComponentResource):
    """The third place: one etcd member, so either site with it is a majority."""

    def __init__(
        self,
        platform: Platform,
        images: dict[ServiceKind, docker.Image],
        secrets: Secrets,
        opts: pulumi.ResourceOptions,
    ) -> None:
        name = platform.witness.name
        super().__init__("pbx:site:Witness", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=opts.provider)
        self.etcd = Etcd(f"{name}-etcd", platform, name, images[ServiceKind.ETCD], secrets, child)
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
        hosts = {s.name: s.docker_host or LOCAL_DOCKER for s in platform.sites}
        hosts[platform.witness.name] = platform.witness.docker_host or LOCAL_DOCKER
        for place, url in hosts.items():
            if url not in providers:
                label = "lab" if platform.mode == "lab" else place
                providers[url] = docker.Provider(
                    f"docker-{label}", host=url, opts=pulumi.ResourceOptions(parent=self)
                )

        lab = platform.mode == "lab"
        self.networks = self._lab_networks(providers[LOCAL_DOCKER]) if lab else []
        # Each host builds the images of the kinds it runs (the witness only etcd's).
        images = {
            url: {
                kind: self._image(provider, url, kind)
                for kind in IMAGE_SOURCES
                if any(hosts[i.site] == url for i in platform.instances(kind))
            }
            for url, provider in providers.items()
        }

        def place_opts(place: str) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=providers[hosts[place]], depends_on=list(self.networks)
            )

        # The witness first: the sites' database members elect their leader through it.
        self.witness = Witness(
            platform,
            images[hosts[platform.witness.name]],
            secrets,
            place_opts(platform.witness.name),
        )
        self.sites: dict[str, Site] = {
            site.name: Site(
                platform, site.name, images[hosts[site.name]], secrets, place_opts(site.name)
            )
            for site in platform.sites
        }
        self.register_outputs({"sites": list(self.sites), "witness": platform.witness.name})

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
        if kind is ServiceKind.PBX_APP:
            require_portal_bundle()
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
        ServiceKind.DB: [f"postgresql://{{i}}:{ports.db}", f"patroni:http://{{i}}:{ports.patroni}"],
        ServiceKind.ETCD: [f"etcd:http://{{i}}:{ports.etcd_client}"],
        ServiceKind.DNS: [f"dns:{{a}}:{ports.dns}"],
        ServiceKind.SMTP: [f"smtp:{{i}}:{ports.smtp}"],
        ServiceKind.CARRIER: [f"sip:{{a}}:{ports.sip}"],
        ServiceKind.EFAX: [f"sip:{{i}}:{ports.efax_sip}", f"smtp:{{i}}:{ports.efax_mail}"],
        ServiceKind.MONITOR: [
            f"prometheus:http://{{i}}:{ports.prometheus}/consoles/pbx.html",
            f"alertmanager:http://{{i}}:{ports.alertmanager}",
            f"hep:{{i}}:{ports.hep}",
        ],
    }
    rows: list[dict[str, object]] = []
    for inst in platform.instances():
        if inst.kind is ServiceKind.PBX_APP:
            shown = [
                f"http://{inst.address}:{app_port(platform, inst)}",
                portal_url(platform, inst),
            ]
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
