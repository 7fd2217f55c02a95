"""Stack config validation: each kind of bad config is rejected with a message naming its key."""

from __future__ import annotations

from typing import Any

import pytest

from pbx_app.limits import MAX_EXTENSIONS_PER_CUSTOMER
from pbx_infra import topology
from pbx_infra.topology import ServiceKind


def _error(config: dict[str, Any]) -> str:
    with pytest.raises(topology.TopologyError) as info:
        topology.load(config)
    return str(info.value)


def test_lab_and_production_configs_are_valid(lab_config, production_config) -> None:
    assert topology.load(lab_config).mode == "lab"
    assert topology.load(production_config).mode == "production"


@pytest.mark.parametrize(
    ("mutate", "key", "why"),
    [
        (lambda c: c["sites"].pop(), "pbx:platform.sites", "exactly two sites"),
        (lambda c: c["sites"][1].update(name="fra"), "pbx:platform.sites", "unique"),
        (lambda c: c["sites"][0].update(area_code="69"), "sites[0].area_code", "pattern"),
        (lambda c: c["sites"][1].update(subnet="172.30.1.0/24"), "sites[1].subnet", "overlaps"),
        (lambda c: c["sites"][0].update(subnet="10.0.0.0/28"), "sites[0].subnet", "too small"),
        (lambda c: c["sites"][0].pop("subnet"), "sites[0].subnet", "required in lab"),
        (lambda c: c.pop("backbone"), "pbx:platform.backbone", "required in lab"),
        (
            lambda c: c["sites"][0]["services"].update(sip_proxy=0),
            "services.sip_proxy",
            "greater than or equal to 1",
        ),
        (
            lambda c: c["sites"][0]["services"].update(pbx_app=10),
            "services.pbx_app",
            "less than or equal to 9",
        ),
        (lambda c: c["sites"][1].update(rtp_ports=[30001, 30999]), "sites[1].rtp_ports", "even"),
        (lambda c: c["sites"][1].update(rtp_ports=[30000, 30010]), "sites[1].rtp_ports", "100"),
        (lambda c: c.update(mode="staging"), "pbx:platform.mode", "'lab' or 'production'"),
        (lambda c: c.update(colour="blue"), "pbx:platform.colour", "Extra inputs"),
        (lambda c: c.update(sip_domain="Bad Domain!"), "pbx:platform.sip_domain", "pattern"),
        (
            lambda c: c["sites"][0].update(docker_host="ssh://elsewhere"),
            "sites[0].docker_host",
            "local engine only",
        ),
        (lambda c: c.update(trusted_sources=["0.0.0.0/0"]), "trusted_sources[0]", "too broad"),
        (
            lambda c: c.update(trusted_sources=["172.30.1.180/30", "10.0.0.0/15"]),
            "trusted_sources[1]",
            "too broad",
        ),
        (
            lambda c: c.update(trusted_sources=["172.30.1.181/30"]),
            "trusted_sources[0]",
            "IPv4 network",
        ),
        (
            lambda c: c.update(trusted_sources=["172.30.1.180/30", "172.30.1.176/28"]),
            "trusted_sources[1]",
            "overlaps trusted_sources[0]",
        ),
        # The platform's own containers are trusted by route[FROM_PLATFORM] already; a list that
        # holds them is a typo (or a whole site network).
        (
            lambda c: c.update(trusted_sources=["172.30.1.0/24"]),
            "trusted_sources[0]",
            "platform's own address",
        ),
        (
            lambda c: c.update(trusted_sources=["172.30.0.0/16"]),
            "trusted_sources[0]",
            "platform's own address",
        ),
        (
            lambda c: c.update(trusted_sources=["172.30.1.10/32"]),
            "trusted_sources[0]",
            "172.30.1.10",
        ),
    ],
)
def test_bad_lab_config_names_the_key(lab_config, mutate, key: str, why: str) -> None:
    mutate(lab_config)
    message = _error(lab_config)
    assert key in message
    assert why in message


@pytest.mark.parametrize(
    ("mutate", "key", "why"),
    [
        (lambda c: c["sites"][0].pop("docker_host"), "sites[0].docker_host", "ssh://"),
        (lambda c: c["sites"][1].update(docker_host="ftp://x"), "sites[1].docker_host", "URL"),
        (lambda c: c.pop("smtp_relay"), "pbx:platform.smtp_relay", "required in production"),
        (lambda c: c.pop("carrier_trunk"), "pbx:platform.carrier_trunk", "required in production"),
        (lambda c: c.update(carrier_trunk="sip:x"), "pbx:platform.carrier_trunk", "pattern"),
        (
            lambda c: c["sites"][1].update(public_addresses=["198.51.100.10"]),
            "sites[1].public_addresses",
            "2 sip-proxy",
        ),
        (
            lambda c: c["sites"][0].update(subnet="172.30.1.0/24"),
            "sites[0].subnet",
            "host networking",
        ),
        (
            lambda c: c["sites"][0]["services"].update(media_relay=2),
            "sites[0].services.media_relay",
            "one relay per host",
        ),
        (
            lambda c: c["sites"][0].update(internal_addresses=["10.0.0.999"]),
            "sites[0].internal_addresses[0]",
            "IPv4",
        ),
        (lambda c: c.update(trusted_sources=["192.0.0.0/8"]), "trusted_sources[0]", "too broad"),
        (
            lambda c: c.update(trusted_sources=["192.0.2.8/29"]),
            "trusted_sources[0]",
            "192.0.2.10",
        ),
    ],
)
def test_bad_production_config_names_the_key(production_config, mutate, key, why) -> None:
    mutate(production_config)
    message = _error(production_config)
    assert key in message
    assert why in message


def test_srv_records_prefer_the_home_site(lab_config) -> None:
    platform = topology.load(lab_config)
    for home in ("fra", "ber"):
        records = [r for r in platform.srv_records(home) if r.name == "_sip._udp.pbx.lab"]
        # One target per site, its shared address: a lost site costs a phone one timeout.
        assert sorted((r.priority, r.target) for r in records) == [
            (10, f"{home}.pbx.lab"),
            (20, f"{'ber' if home == 'fra' else 'fra'}.pbx.lab"),
        ]
        assert str(platform.sip_vip(home)) == f"172.30.{1 if home == 'fra' else 2}.10"


def test_lab_runs_four_proxies(lab_config) -> None:
    # The product limits are pbx_app.limits' alone (tests/app/test_rules.py states them).
    platform = topology.load(lab_config)
    assert len(platform.instances(ServiceKind.SIP_PROXY)) == 4


def test_proxy_shared_memory_follows_planned_bindings(lab_config) -> None:
    # The base alone for a tiny platform, rounded up to 64 MB; then the measured bytes per binding.
    assert topology.proxy_shm_mb(1_000) == topology.SHM_BASE_MB + 64
    per_binding = topology.SHM_BYTES_PER_BINDING
    for planned in (10_000, 249_000, 300_000, 1_000_000):
        mb = topology.proxy_shm_mb(planned)
        assert mb % 64 == 0
        need = topology.SHM_BASE_MB + planned * per_binding / 2**20
        assert need <= mb < need + 64, (planned, mb)
    assert topology.proxy_shm_mb(600_000) > topology.proxy_shm_mb(300_000)
    # The default is sized for a full customer (R14) with headroom for extra devices.
    default = topology.Platform.model_fields["planned_bindings"].default
    assert default >= 1.2 * MAX_EXTENSIONS_PER_CUSTOMER
    platform = topology.load(lab_config)
    assert platform.proxy_shm_mb == topology.proxy_shm_mb(platform.planned_bindings)
    # The lab is sized for bench/full_size.py: one full customer's devices and then some.
    assert platform.planned_bindings > MAX_EXTENSIONS_PER_CUSTOMER


@pytest.mark.parametrize("value", [0, 999, -5, 10_000_001, "many"])
def test_planned_bindings_is_validated(lab_config, value) -> None:
    lab_config["planned_bindings"] = value
    assert "pbx:platform.planned_bindings" in _error(lab_config)


def test_trusted_sources_are_optional_and_validated(lab_config, production_config) -> None:
    """Empty by default (production's example lists none); a /16 is the broadest accepted."""
    assert topology.load(production_config).trusted_sources == ()
    lab_config.pop("trusted_sources", None)
    assert topology.load(lab_config).trusted_sources == ()
    lab_config["trusted_sources"] = ["10.20.0.0/16", "203.0.113.7/32"]
    assert [str(n) for n in topology.load(lab_config).trusted_sources] == [
        "10.20.0.0/16",
        "203.0.113.7/32",
    ]
    production_config["trusted_sources"] = ["203.0.113.0/28"]
    assert [str(n) for n in topology.load(production_config).trusted_sources] == ["203.0.113.0/28"]


def test_lab_trusts_exactly_the_benchmarks_client_addresses(lab_config) -> None:
    """Hosts 180-199 of each site (labkit.lab.BENCH_HOSTS), in the fewest networks."""
    platform = topology.load(lab_config)
    trusted = {a for net in platform.trusted_sources for a in net}
    bench = set()
    for site in platform.sites:
        assert site.subnet is not None
        bench |= {site.subnet.network_address + n for n in range(180, 200)}
    assert trusted == bench
    assert len(platform.trusted_sources) == 6  # .180/30, .184/29, .192/29 per site


def test_lab_relays_have_the_benchmarks_port_range(lab_config) -> None:
    """A few hundred calls/s, 4 ports per call kept 30 s past the BYE (delete-delay)."""
    for site in topology.load(lab_config).sites:
        low, high = site.rtp_ports
        assert high - low + 1 >= 40_000, site.rtp_ports


def test_every_port_says_who_reaches_it() -> None:
    """A new port is opened on the voice hosts' firewall for the platform only if it says so:
    Ports.REACH names each one, with its protocols."""
    ports = topology.Ports()
    assert set(ports.REACH) == set(type(ports).model_fields)
    for name, (reach, protocols) in ports.REACH.items():
        assert reach in ("public", "platform", "lab"), name
        assert protocols, name
        assert set(protocols) <= {"tcp", "udp"}, name
    assert ports.rtpengine_ng in ports.platform_only("udp")
    assert ports.hep not in ports.platform_only("tcp")
    assert ports.sip not in ports.platform_only("udp") + ports.platform_only("tcp")
