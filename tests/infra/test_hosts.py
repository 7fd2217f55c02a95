"""Per host: Docker Engine, kernel tuning, firewall, DSCP marking, time sync, TLS material.

Lab: the Docker host is this machine; the voice-host roles run on the two sites' stand-ins
(scripts/labhosts.sh). Production (PBX_VERIFY_STACK=production): each site's Docker host over SSH.
"""

from __future__ import annotations

import pytest
import testinfra

from labkit.targets import docker_host_targets, voice_host_targets

from .checks import where
from .conftest import PLATFORM

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("converged_stand_ins")]

VOICE_HOSTS = voice_host_targets(PLATFORM)
DOCKER_HOSTS = docker_host_targets(PLATFORM)
voice_host = pytest.mark.parametrize("target", VOICE_HOSTS, ids=[t.label for t in VOICE_HOSTS])


@pytest.fixture
def host(target):
    return testinfra.get_host(target.testinfra_spec)


@pytest.mark.parametrize("target", DOCKER_HOSTS, ids=[t.label for t in DOCKER_HOSTS])
def test_docker_engine_runs(host, target) -> None:
    info = host.run("docker info --format '{{.ServerVersion}} {{.ContainersRunning}}'")
    assert info.rc == 0, where(target, f"Docker Engine not answering: {info.stderr.strip()}")
    base = host.run("docker image inspect --format '{{.Id}}' debian:trixie-slim")
    assert base.rc == 0, where(target, "base image debian:trixie-slim is missing")


@voice_host
def test_kernel_keeps_local_ports_clear_of_rtp(host, target) -> None:
    site = next(s for s in PLATFORM.sites if s.name == target.site)
    low, high = (int(v) for v in host.sysctl("net.ipv4.ip_local_port_range").split())
    rtp_low, rtp_high = site.rtp_ports
    assert high < rtp_low or low > rtp_high, where(
        target, f"ip_local_port_range {low}-{high} overlaps RTP {rtp_low}-{rtp_high}"
    )
    reserved = host.sysctl("net.ipv4.ip_local_reserved_ports")
    assert f"{rtp_low}-{rtp_high}" in str(reserved), where(
        target, f"RTP range not reserved (ip_local_reserved_ports={reserved!r})"
    )


@voice_host
def test_firewall_drops_by_default_and_opens_voice(host, target) -> None:
    rules = host.run("nft list table inet pbx_filter")
    assert rules.rc == 0, where(target, "nftables table inet pbx_filter is missing")
    text = rules.stdout
    assert "policy drop" in text, where(target, "input policy is not drop")
    site = next(s for s in PLATFORM.sites if s.name == target.site)
    for port in (PLATFORM.ports.sip, PLATFORM.ports.sip_tls, PLATFORM.ports.sip_wss):
        assert str(port) in text, where(target, f"SIP port {port} is not opened")
    assert f"{site.rtp_ports[0]}-{site.rtp_ports[1]}" in text, where(target, "RTP range not open")
    assert str(PLATFORM.ports.db) in text, where(target, "no rule for the database port")


@voice_host
def test_voice_leaves_with_dscp_marks(host, target) -> None:
    rules = host.run("nft list table inet pbx_qos")
    assert rules.rc == 0, where(target, "nftables table inet pbx_qos is missing")
    text = rules.stdout
    # nft prints numeric code points by name: CS3 (24) for SIP, EF (46) for RTP.
    assert "dscp set cs3" in text, where(target, "no DSCP CS3 rule for SIP")
    assert "dscp set ef" in text, where(target, "no DSCP EF rule for RTP")


@voice_host
def test_time_is_synchronised(host, target) -> None:
    assert "chronyd" in host.run("cat /proc/[0-9]*/comm").stdout.split(), where(
        target, "chronyd is not running"
    )
    tracking = host.run("chronyc -n tracking")
    assert tracking.rc == 0, where(target, f"chronyc tracking failed: {tracking.stderr.strip()}")
    assert "Leap status     : Normal" in tracking.stdout, where(
        target, f"clock not synchronised: {tracking.stdout.strip().splitlines()[-1:]}"
    )


@voice_host
def test_tls_certificate_valid_for_30_days(host, target) -> None:
    cert = "/etc/pbx/tls/pbx.crt"
    assert host.file(cert).exists, where(target, f"{cert} is missing")
    key = host.file("/etc/pbx/tls/pbx.key")
    assert key.exists, where(target, "TLS key is missing")
    assert key.mode == 0o600, where(target, f"TLS key mode is {oct(key.mode)}, want 0o600")
    check = host.run(f"openssl x509 -noout -checkend {30 * 86400} -in {cert}")
    assert check.rc == 0, where(target, f"{cert} expires within 30 days")


@voice_host
def test_proxies_may_bind_the_sites_shared_address(host, target) -> None:
    """Every proxy binds the site's VRRP address, held by one of them at a time."""
    assert host.sysctl("net.ipv4.ip_nonlocal_bind") == 1, where(
        target,
        "net.ipv4.ip_nonlocal_bind is off: a backup proxy cannot bind the site's SIP address",
    )
