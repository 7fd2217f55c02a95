"""Per-node configuration, derived from the topology and rendered into each service's template.

Every service directory (kamailio/, rtpengine/, labdns/) holds one template that only places
values; the routing logic stays in files that never vary per node. The rendered files travel with
the container declaration (docker `uploads`), so Pulumi sees a config change as a container change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from pbx_app.addressing import (
    AOR_PATTERN,
    CARRIER_CALLER,
    EMERGENCY_NUMBERS,
    FAX_CALLER_PREFIX,
    PRIVACY_PREFIX,
    SIP_USERNAME_PATTERN,
)

from .topology import TOS_CS3, TOS_EF, Instance, Platform, ServiceKind

REPO = Path(__file__).resolve().parent.parent

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(REPO)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - these are config files, not HTML
)
# Prometheus and Alertmanager files carry Go templates ({{ $labels.site }}) of their own.
_monitor_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(REPO)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - these are config files, not HTML
    variable_start_string="[[",
    variable_end_string="]]",
    block_start_string="[%",
    block_end_string="%]",
    comment_start_string="[#",
    comment_end_string="#]",
)


@dataclass(frozen=True)
class ConfigFile:
    path: str  # inside the container
    content: str


def node_port(platform: Platform, inst: Instance, base: int) -> int:
    """Lab apps have an address each; on a production host they share one, so ports differ."""
    return base + (inst.ordinal - 1 if platform.mode == "production" else 0)


def app_port(platform: Platform, inst: Instance) -> int:
    return node_port(platform, inst, platform.ports.app)


def app_https_port(platform: Platform, inst: Instance) -> int:
    return node_port(platform, inst, platform.ports.app_https)


def ctd_sip_port(platform: Platform, inst: Instance) -> int:
    return node_port(platform, inst, platform.ports.sip_uac)


def provisioning_port(platform: Platform, inst: Instance) -> int:
    return node_port(platform, inst, platform.ports.provisioning)


def provisioning_url(platform: Platform) -> str:
    """Where configurations point phones back to: the name every app node answers to (in
    production the operator publishes it for the hosts' first app nodes, which hold the port)."""
    return f"https://{platform.provisioning_name}:{platform.ports.provisioning}"


def sip_sites(platform: Platform) -> list[str]:
    """The sites phones register at, with their area codes: a phone's home site (the app)."""
    return [f"{s.name}:{s.area_code}" for s in platform.sites]


def site_proxies(platform: Platform, site: str) -> list[str]:
    """The proxies' internal host:port, the site's own first: click-to-dial's next hop."""
    proxies = sorted(platform.instances(ServiceKind.SIP_PROXY), key=lambda p: p.site != site)
    return [f"{p.reach}:{platform.ports.sip}" for p in proxies]


def outbound_deny(platform: Platform) -> list[str]:
    """Where customers' webhooks and CRM lookups may not go: every node's addresses and, in
    the lab, the backbone (the internal network)."""
    nets = {
        f"{a}/32"
        for inst in platform.instances()
        for a in (inst.address, inst.internal)
        if a is not None
    }
    if platform.backbone is not None:
        nets.add(str(platform.backbone.subnet))
    return sorted(nets)


def portal_url(platform: Platform, inst: Instance) -> str:
    """Where people reach an app node over HTTPS: by the name the certificate gives it in
    production (a public CA names hosts, not addresses); by its address in the lab, whose names
    only the lab's own DNS knows (the lab CA names both)."""
    host = inst.fqdn(platform) if platform.mode == "production" else str(inst.address)
    return f"https://{host}:{app_https_port(platform, inst)}"


def wss_urls(platform: Platform, site: str) -> list[str]:
    """The proxies' WebSocket URLs for the browser phone, the home site's first: by the proxy's
    name, which the certificate covers (production certificates name hosts, not addresses)."""
    proxies = sorted(platform.instances(ServiceKind.SIP_PROXY), key=lambda p: p.site != site)
    return [f"wss://{p.fqdn(platform)}:{platform.ports.sip_wss}" for p in proxies]


def app_url(platform: Platform, inst: Instance) -> str:
    return f"http://{inst.reach}:{app_port(platform, inst)}"


def kamailio_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    proxies = platform.instances(ServiceKind.SIP_PROXY)
    relays = platform.instances(ServiceKind.MEDIA_RELAY)
    ng = platform.ports.rtpengine_ng
    listen = [str(inst.address)] + ([str(inst.internal)] if inst.internal else [])
    return {
        "name": inst.name,
        "site": inst.site,
        "listen": listen,
        # The site's shared address (VRRP): bound while another proxy holds it, too.
        "vip": str(platform.sip_vip(inst.site)),
        "advertise": str(inst.address),
        "internal": str(inst.reach),
        # Unique per proxy: it goes into rtpengine's ng cookies and usrloc's record IDs, which
        # would collide between containers (identical PIDs) sharing one relay or location table.
        "server_id": proxies.index(inst) + 1,
        "sip_port": platform.ports.sip,
        "tls_port": platform.ports.sip_tls,
        "wss_port": platform.ports.sip_wss,
        "rpc_port": platform.ports.rpc,
        # DMQ peers by IP, never by name: names create duplicate peers (docs/architecture.md).
        "dmq_peers": [str(p.reach) for p in proxies if p != inst],
        "rtpengines": {
            "local": [f"udp:{r.reach}:{ng}" for r in relays if r.site == inst.site],
            "remote": [f"udp:{r.reach}:{ng}" for r in relays if r.site != inst.site],
        },
        # Which site each relay belongs to: call records name the site whose relay carried a
        # call (kamailio/pbx-cdr-shipper).
        "relay_sites": [f"udp:{r.reach}:{ng}={r.site}" for r in relays],
        "apps": [
            app_url(platform, a)
            for a in sorted(
                platform.instances(ServiceKind.PBX_APP), key=lambda a: a.site != inst.site
            )
        ],
        # Click-to-dial's user agents send from these (kamailio.cfg route[CLICK_TO_DIAL]).
        "app_addresses": sorted({str(a.reach) for a in platform.instances(ServiceKind.PBX_APP)}),
        "sip_domain": platform.sip_domain,
        "dmq_port": platform.ports.dmq,
        # Calls to external numbers leave through the site's own interconnect; calls from the
        # carrier are taken from any of them.
        "carrier": carrier_socket(platform, inst.site),
        "carrier_peers": sorted(
            {carrier_socket(platform, s.name).split(":")[1] for s in platform.sites}
        ),
        # The caller name of the carrier's calls in route queries: the app's (pbx_app.addressing).
        "carrier_caller": CARRIER_CALLER,
        # The fax gateways (route[STEP_FAX]: the app's plans name them by index, this proxy's
        # site's first) and where their outgoing calls come from (route[FROM_EFAX]).
        "fax_caller_prefix": FAX_CALLER_PREFIX,
        "efax_gateways": [
            f"{g.reach}:{platform.ports.efax_sip}"
            for g in sorted(platform.instances(ServiceKind.EFAX), key=lambda g: g.site != inst.site)
        ],
        "efax_addresses": sorted({str(g.reach) for g in platform.instances(ServiceKind.EFAX)}),
        # Numbers that always reach the carrier (the app's list, one source), an alternation
        # for the proxies' regexes; and the site's area and city: the emergency routing data
        # of a call the app cannot be asked about.
        "emergency_numbers": sorted(EMERGENCY_NUMBERS),
        "privacy_prefix": PRIVACY_PREFIX,
        "sip_username_pattern": SIP_USERNAME_PATTERN,
        "aor_pattern": AOR_PATTERN,
        "site_area_code": platform.site(inst.site).area_code,
        "site_city": platform.site(inst.site).city,
        # DSCP CS3 on every SIP packet (R11), numeric.
        "sip_tos": TOS_CS3,
        # The operator's trusted sources: exempt from the flood limit (pike) alone.
        "trusted_sources": [str(n) for n in platform.trusted_sources],
        "metrics_port": platform.ports.sip_metrics,
        # Every SIP message, mirrored to the site's collector (HEP).
        "hep_uri": f"sip:{monitor_of(platform, inst.site).reach}:{platform.ports.hep}",
        # The lab's alert drills inject faults through the proxies (route[LAB_BALLAST]).
        "lab_faults": platform.mode == "lab",
    }


def monitor_of(platform: Platform, site: str) -> Instance:
    return platform.instances(ServiceKind.MONITOR, site)[0]


def carrier_socket(platform: Platform, site: str) -> str:
    """Where a site's calls to external numbers go: the operator's trunk, or (lab) the site's
    own interconnect to the simulated carrier, so that a site alone still reaches the PSTN."""
    if platform.carrier_trunk:
        return platform.carrier_trunk
    carrier = platform.instances(ServiceKind.CARRIER, site)[0]
    return f"udp:{carrier.address}:{platform.ports.sip}"


def db_cidrs(platform: Platform) -> list[str]:
    """Who may reach the database: the platform's own networks or hosts, nobody else."""
    if platform.mode == "lab":
        assert platform.backbone is not None
        return [str(platform.backbone.subnet)] + [str(s.subnet) for s in platform.sites]
    return sorted({f"{i.reach}/32" for i in platform.instances()})


def etcd_members(platform: Platform) -> list[Instance]:
    return platform.instances(ServiceKind.ETCD)


def etcd_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    return {
        "name": inst.name,
        "internal": str(inst.reach),
        "cluster": platform.name,
        "client_port": platform.ports.etcd_client,
        "peer_port": platform.ports.etcd_peer,
        "members": [{"name": m.name, "address": str(m.reach)} for m in etcd_members(platform)],
    }


def patroni_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    # The site's own etcd member first: Patroni asks the first one that answers.
    members = sorted(etcd_members(platform), key=lambda m: m.site != inst.site)
    return {
        "name": inst.name,
        "site": inst.site,
        "internal": str(inst.reach),
        "cluster": platform.name,
        "rest_port": platform.ports.patroni,
        "db_port": platform.ports.db,
        "etcd_hosts": [f"{m.reach}:{platform.ports.etcd_client}" for m in members],
        "allowed_cidrs": db_cidrs(platform),
        # The REST API: internal networks only (the backbone; production: the platform's hosts).
        "api_cidrs": db_cidrs(platform)[:1] if platform.mode == "lab" else db_cidrs(platform),
    }


def keepalived_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    site = platform.instances(ServiceKind.SIP_PROXY, inst.site)
    subnet = platform.site(inst.site).subnet
    return {
        "name": inst.name,
        "site": inst.site,
        "address": str(inst.address),
        "peers": [str(p.address) for p in site if p != inst],
        "vip": str(platform.sip_vip(inst.site)),
        "prefix": subnet.prefixlen if subnet else 32,
        # VRRP router ids are per network segment; one instance per site.
        "router_id": 50 + [s.name for s in platform.sites].index(inst.site),
        # The first proxy is preferred at start; after that the holder keeps the address.
        "priority": 150 - 10 * (inst.ordinal - 1),
    }


# rtpengine's command line interface (rtpengine-ctl), inside its container only.
RTPENGINE_CLI = ("127.0.0.1", 9900)


def rtpengine_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    site = next(s for s in platform.sites if s.name == inst.site)
    return {
        "name": inst.name,
        "site": inst.site,
        "interface": str(inst.address),
        "advertise": str(inst.address),
        "ng_listen": f"{inst.reach}:{platform.ports.rtpengine_ng}",
        "cli_listen": f"{RTPENGINE_CLI[0]}:{RTPENGINE_CLI[1]}",
        "http_listen": f"{inst.reach}:{platform.ports.relay_metrics}",
        "port_min": site.rtp_ports[0],
        "port_max": site.rtp_ports[1],
        "tos": TOS_EF,
    }


def scrape_targets(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    """Prometheus job -> its targets (address, labels), every site's: each site's Prometheus
    scrapes both, so either one alone still sees the whole platform."""
    ports = platform.ports

    def of(kind: ServiceKind, port: int | None = None) -> list[dict[str, Any]]:
        return [
            {
                "address": f"{i.reach}:{port or app_port(platform, i)}",
                "labels": {"site": i.site, "instance": i.name, "service": kind.value},
            }
            for i in platform.instances(kind)
        ]

    jobs = {
        "sip-proxy": of(ServiceKind.SIP_PROXY, ports.sip_metrics),
        "media-relay": of(ServiceKind.MEDIA_RELAY, ports.relay_metrics),
        "pbx-app": of(ServiceKind.PBX_APP),
        "db": of(ServiceKind.DB, ports.db_metrics),
        "patroni": of(ServiceKind.DB, ports.patroni),
        "etcd": of(ServiceKind.ETCD, ports.etcd_client),
        "prometheus": of(ServiceKind.MONITOR, ports.prometheus),
        "alertmanager": of(ServiceKind.MONITOR, ports.alertmanager),
    }
    if platform.mode == "production":
        # Each site host's node exporter (roles/node_exporter, voice hosts), internal address.
        hosts = [(s.name, s.internal_addresses[0]) for s in platform.sites]
        jobs["node"] = [
            {
                "address": f"{address}:{ports.node_metrics}",
                "labels": {"site": site, "instance": f"{site}-host", "service": "host"},
            }
            for site, address in hosts
        ]
    return jobs


def tls_probes(platform: Platform, site: str) -> list[dict[str, str]]:
    """What the site's monitor checks certificates on: every TLS listener people and phones
    use at its own site, by the address they connect to (the other site's monitor checks its)."""
    probes = []
    for proxy in platform.instances(ServiceKind.SIP_PROXY, site):
        for port in (platform.ports.sip_tls, platform.ports.sip_wss):
            probes.append({"target": f"{proxy.address}:{port}", "instance": proxy.name})
    for app in platform.instances(ServiceKind.PBX_APP, site):
        for port in (app_https_port(platform, app), provisioning_port(platform, app)):
            probes.append({"target": f"{app.address}:{port}", "instance": app.name})
    return probes


def monitor_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    ports, watch = platform.ports, platform.monitoring
    monitors = platform.instances(ServiceKind.MONITOR)
    if platform.mode == "lab":
        sink = platform.instances(ServiceKind.SMTP, inst.site)[0]
        smarthost = f"{sink.reach}:{ports.smtp}"
        alert_email = watch.alert_email or f"oncall@{platform.sip_domain}"
    else:
        assert platform.smtp_relay is not None
        assert watch.alert_email is not None
        smarthost, alert_email = platform.smtp_relay, watch.alert_email
    return {
        "name": inst.name,
        "site": inst.site,
        "listen": str(inst.reach),
        "ports": ports.model_dump(),
        "scrape_interval_s": watch.scrape_interval_s,
        "alert_after_s": watch.alert_after_s,
        "replication_lag_s": watch.replication_lag_s,
        "shm_used_ratio": watch.shm_used_ratio,
        "certificate_days": watch.certificate_days,
        "retention_days": watch.retention_days,
        "capture_hours": watch.capture_hours,
        "jobs": scrape_targets(platform),
        "tls_probes": tls_probes(platform, inst.site),
        # Every name the platform certificate covers includes the SIP domain: one name checks
        # the chain of every listener.
        "tls_server_name": platform.sip_domain,
        "alertmanagers": [f"{m.reach}:{ports.alertmanager}" for m in monitors],
        "cluster_peers": [f"{m.reach}:{ports.alertmanager_cluster}" for m in monitors if m != inst],
        "smarthost": smarthost,
        "mail_from": f"alerts@{platform.sip_domain}",
        "alert_email": alert_email,
        "sites": [s.name for s in platform.sites],
    }


def dns_node(platform: Platform, inst: Instance) -> dict[str, Any]:
    a_records = (
        [
            {"name": other.fqdn(platform), "address": str(other.address)}
            for other in platform.instances()
            if other.kind is not ServiceKind.DNS
        ]
        + [
            {"name": platform.sip_vip_name(s.name), "address": str(platform.sip_vip(s.name))}
            for s in platform.sites
        ]
        + [
            {"name": platform.provisioning_name, "address": str(app.address)}
            for app in platform.instances(ServiceKind.PBX_APP)
        ]
    )
    srv = platform.srv_records(home_site=inst.site) + platform.site_srv_records()
    return {
        "listen": str(inst.address),
        "domain": platform.sip_domain,
        "a_records": a_records,
        "srv_records": [
            {
                "name": r.name,
                "target": r.target,
                "port": r.port,
                "priority": r.priority,
                "weight": r.weight,
            }
            for r in srv
        ],
    }


# kind -> [(node builder, template in the repo, destination inside the container)]
_TEMPLATES = {
    ServiceKind.SIP_PROXY: [
        (kamailio_node, "kamailio/node.cfg.j2", "/etc/kamailio/node.cfg"),
        (keepalived_node, "kamailio/keepalived.conf.j2", "/etc/keepalived/keepalived.conf"),
    ],
    ServiceKind.MEDIA_RELAY: [
        (rtpengine_node, "rtpengine/rtpengine.conf.j2", "/etc/rtpengine/rtpengine.conf")
    ],
    ServiceKind.DNS: [(dns_node, "labdns/dnsmasq.conf.j2", "/etc/dnsmasq.d/pbx.conf")],
    ServiceKind.ETCD: [(etcd_node, "etcd/etcd.conf.yml.j2", "/etc/etcd/etcd.conf.yml")],
    ServiceKind.DB: [(patroni_node, "postgres/patroni.yml.j2", "/etc/patroni/patroni.yml")],
    ServiceKind.MONITOR: [
        (monitor_node, f"monitor/{template}.j2", f"/etc/monitor/{destination}")
        for template, destination in (
            ("prometheus.yml", "prometheus.yml"),
            ("alerts.yml", "alerts.yml"),
            ("alertmanager.yml", "alertmanager.yml"),
            ("blackbox.yml", "blackbox.yml"),
            ("capture.cfg", "capture.cfg"),
            ("monitor.env", "monitor.env"),
            ("dashboard.html", "consoles/pbx.html"),
        )
    ],
}


def config_files(platform: Platform, inst: Instance) -> list[ConfigFile]:
    """The rendered per-node files a container of `inst` needs (empty when it needs none)."""
    return [
        ConfigFile(
            destination, _env_of(template).get_template(template).render(node=build(platform, inst))
        )
        for build, template, destination in _TEMPLATES.get(inst.kind, [])
    ]


def _env_of(template: str) -> jinja2.Environment:
    return _monitor_env if template.startswith("monitor/") else _env
