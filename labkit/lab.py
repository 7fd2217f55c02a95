"""The running lab as tests and benchmarks reach it, derived from the topology model.

Sites, containers, addresses and ports come from `Pulumi.lab.yaml` through `pbx_infra.topology`
(what `make lab` realises); the demo tenant and the lab CA from `.lab/` (what `make lab` wrote).
Nothing here restates an address or a port of the platform.

Test and benchmark clients take host numbers of their own in each site's subnet: `TEST_HOSTS`
for the tests' devices, `BENCH_HOSTS` for the SIP benchmark. `labkit` checks at import that no
platform container or shared SIP address sits in either, and that the benchmark's addresses, and
no test address, are trusted sources (exempt from the proxies' flood limit).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any, TypedDict

from pbx_infra import topology
from pbx_infra.lab import declared
from pbx_infra.node_config import RTPENGINE_CLI, app_port
from pbx_infra.topology import Instance, ServiceKind

STACK = "lab"
REPO = declared.REPO
PLATFORM = topology.load(json.loads(declared.stack_config(STACK)["pbx:platform"]))
PORTS = PLATFORM.ports
SIP_DOMAIN = PLATFORM.sip_domain
LAB_DIR = REPO / ".lab"
TENANT_FILE = LAB_DIR / "demo-tenant.json"
CA_FILE = LAB_DIR / "tls" / "ca.pem"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SIPCLIENT_DIR = REPO / "sipclient"
SIPCLIENT_IMAGE = f"pbx/sipclient:{PLATFORM.image_tag}"
KAMAILIO_IMAGE = f"pbx/kamailio:{PLATFORM.image_tag}"
RTPENGINE_CLI_HOST, RTPENGINE_CLI_PORT = RTPENGINE_CLI

# Host numbers in a site subnet that belong to test clients, never to the platform.
TEST_HOSTS = range(110, 180)
BENCH_HOSTS = range(180, 200)


class Site(TypedDict):
    """One lab site: its network, DNS, proxies, relay and carrier interconnect."""

    name: str
    net: str  # Docker network
    subnet: ipaddress.IPv4Network
    dns: str
    vip: str  # the site's shared SIP address (VRRP)
    proxies: list[str]  # the proxies' site-side addresses
    proxy_internals: list[str]  # their backbone addresses
    proxy_containers: list[str]
    relay: str  # container
    relay_ip: str  # site side
    relay_internal: str  # backbone side
    rtp_ports: tuple[int, int]
    carrier: str  # container of the simulated carrier's interconnect for this site
    carrier_ip: str  # on the backbone


def container(instance: Instance) -> str:
    return instance.container_name(PLATFORM)


def instances(kind: ServiceKind, site: str | None = None) -> list[Instance]:
    return PLATFORM.instances(kind, site)


def _site(name: str) -> Site:
    subnet = PLATFORM.site(name).subnet
    assert subnet is not None  # lab mode, checked by the topology
    proxies = instances(ServiceKind.SIP_PROXY, name)
    relay = instances(ServiceKind.MEDIA_RELAY, name)[0]
    carrier = instances(ServiceKind.CARRIER, name)[0]
    return Site(
        name=name,
        net=PLATFORM.network_name(name),
        subnet=subnet,
        dns=str(instances(ServiceKind.DNS, name)[0].address),
        vip=str(PLATFORM.sip_vip(name)),
        proxies=[str(p.address) for p in proxies],
        proxy_internals=[str(p.reach) for p in proxies],
        proxy_containers=[container(p) for p in proxies],
        relay=container(relay),
        relay_ip=str(relay.address),
        relay_internal=str(relay.reach),
        rtp_ports=PLATFORM.site(name).rtp_ports,
        carrier=container(carrier),
        carrier_ip=str(carrier.address),
    )


SITES: dict[str, Site] = {s.name: _site(s.name) for s in PLATFORM.sites}
ALL_PROXIES = [c for s in SITES.values() for c in s["proxy_containers"]]
RELAYS = [s["relay"] for s in SITES.values()]
DB_CONTAINERS = [container(d) for d in instances(ServiceKind.DB)]


def site_of(address: str) -> str | None:
    """The site whose subnet holds `address` (None: the backbone or elsewhere)."""
    ip = ipaddress.IPv4Address(address)
    return next((name for name, s in SITES.items() if ip in s["subnet"]), None)


def client_address(site: str, host: int) -> str:
    """Address `host` (a number in TEST_HOSTS or BENCH_HOSTS) in `site`'s subnet."""
    assert host in TEST_HOSTS or host in BENCH_HOSTS, f"{host} is not a client host number"
    return str(SITES[site]["subnet"].network_address + host)


def app_base(site: str, ordinal: int = 1) -> str:
    """The REST API of a site's app node (site-side address)."""
    app = instances(ServiceKind.PBX_APP, site)[ordinal - 1]
    return f"http://{app.address}:{app_port(PLATFORM, app)}/api/v1"


def lab_names() -> dict[str, str]:
    """Every platform node's DNS name -> its site-side address: what a browser on this machine
    (which does not use the lab's DNS) needs to reach the names the platform hands out."""
    return {i.fqdn(PLATFORM): str(i.address) for i in PLATFORM.instances()}


def sip_target(address: str, tls: bool = False) -> str:
    """address:port of a proxy's SIP (or SIP over TLS) socket."""
    return f"{address}:{PORTS.sip_tls if tls else PORTS.sip}"


def load_tenant() -> dict[str, Any]:
    """The demo tenant `make lab` seeded: admin login, devices (credentials, AORs, DIDs)."""
    assert TENANT_FILE.exists(), f"{TENANT_FILE} missing (run `make lab`)"
    data: dict[str, Any] = json.loads(TENANT_FILE.read_text())
    assert data.get("devices"), f"no devices in {TENANT_FILE}"
    return data


def _check_client_hosts() -> None:
    taken = {a for i in PLATFORM.instances() for _, a in i.networks} | {
        PLATFORM.sip_vip(s) for s in SITES
    }
    for site in SITES.values():
        clients = {site["subnet"].network_address + n for n in (*TEST_HOSTS, *BENCH_HOSTS)}
        clash = sorted(str(a) for a in clients & taken)
        assert not clash, f"client addresses taken by the platform in {site['name']}: {clash}"


def _check_trusted_sources() -> None:
    """The benchmark drives load from few addresses, so each is a trusted source (exempt from the
    flood limit); the tests' addresses are not (the flood-ban tests send from them)."""
    trusted = PLATFORM.trusted_sources

    def is_trusted(address: ipaddress.IPv4Address) -> bool:
        return any(address in net for net in trusted)

    bench = {s["subnet"].network_address + n for s in SITES.values() for n in BENCH_HOSTS}
    extra = sorted(str(a) for net in trusted for a in net if a not in bench)
    assert not extra, f"pbx:platform.trusted_sources holds more than the bench addresses: {extra}"
    for site in SITES.values():
        base = site["subnet"].network_address
        missing = [str(base + n) for n in BENCH_HOSTS if not is_trusted(base + n)]
        assert not missing, f"bench addresses not in pbx:platform.trusted_sources: {missing}"
        wrong = [str(base + n) for n in TEST_HOSTS if is_trusted(base + n)]
        assert not wrong, f"test addresses in pbx:platform.trusted_sources: {wrong}"


_check_client_hosts()
_check_trusted_sources()
