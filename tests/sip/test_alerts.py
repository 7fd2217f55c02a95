"""Alert drills: a real fault injected into the lab, its alert firing at the monitors of both
sites (each watches the whole platform) and reaching the on-call mailbox, then clearing after
the repair. The lab alerts after `monitoring.alert_after_s` (10 s) of a fault, scraping every
5 s; the measured times go to the pytest cache (pbx/alerts/<alert>) and the test output.

The site-loss drill of test_site_loss.py checks `SiteDown` the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterator

import httpx
import pytest

from labkit import monitoring
from labkit.control import kamcmd
from labkit.docker import docker, shell, wait_healthy
from labkit.lab import LAB_DIR, PLATFORM, PORTS, container, instances
from labkit.wait import wait_for
from pbx_infra.tls import lab_certificate_ending_in
from pbx_infra.topology import ServiceKind

from .site_drills import DBS, healthy_pair, leader

pytestmark = [pytest.mark.lab, pytest.mark.disruptive]

SITE_NAMES = [s.name for s in PLATFORM.sites]
SINKS = [container(i) for i in instances(ServiceKind.SMTP)]
ONCALL = PLATFORM.monitoring.alert_email or f"oncall@{PLATFORM.sip_domain}"


def _record(request: pytest.FixtureRequest, alert: str, times: dict[str, float]) -> None:
    print(f"\n{alert}: {times}")
    request.config.cache.set(f"pbx/alerts/{alert}", times)


def _fires_everywhere(alert: str, since: float, **labels: str) -> dict[str, float]:
    """Seconds from the fault to the alert firing at each site's Prometheus."""
    return {
        f"fired_at_{site}_s": monitoring.wait_firing(site, alert, since, **labels)
        for site in SITE_NAMES
    }


def _clears_everywhere(alert: str, since: float, **labels: str) -> dict[str, float]:
    return {
        f"cleared_at_{site}_s": monitoring.wait_cleared(site, alert, since, **labels)
        for site in SITE_NAMES
    }


def _mails(subject: str) -> list[dict[str, object]]:
    """The alert mails with this subject the sinks hold, from either site's Alertmanager."""
    found = []
    for sink in SINKS:
        out = docker("exec", sink, "sink-messages", check=True).stdout
        found += [m for m in json.loads(out)
                  if ONCALL in m["envelope_to"] and m["subject"] == subject]  # fmt: skip
    return found


def _mailed(subject: str, before: int, timeout: float = 60) -> dict[str, object]:
    """The first such mail after the `before` ones the sinks held when the fault began."""
    mails = wait_for(lambda: len(m := _mails(subject)) > before and m, timeout, 1,
                     f"a new mail '{subject}' to {ONCALL}")  # fmt: skip
    return mails[before]


def test_a_stopped_relay_alerts_mails_the_on_call_and_clears(
    request: pytest.FixtureRequest,
) -> None:
    relay = instances(ServiceKind.MEDIA_RELAY, "fra")[0]
    name = container(relay)
    wait_for(lambda: not monitoring.firing("ber", "MediaRelayDown"), 30, what="a quiet start")
    subject = "[FIRING] MediaRelayDown fra"
    mails_before = len(_mails(subject))
    stopped = time.monotonic()
    docker("stop", "-t", "2", name, check=True)
    try:
        times = _fires_everywhere("MediaRelayDown", stopped, instance=relay.name)
        # Alertmanager holds it (both sites' gossip as one) and mails the on-call once.
        assert monitoring.notified("ber", "MediaRelayDown", instance=relay.name)
        mail = _mailed(subject, mails_before)
        assert "docs/runbooks/media-relay-down.md" in str(mail["body"])
        times["mailed_s"] = round(time.monotonic() - stopped, 1)
    finally:
        docker("start", name, check=True)
        repaired = time.monotonic()
    wait_healthy([name], timeout=60)
    times |= _clears_everywhere("MediaRelayDown", repaired, instance=relay.name)
    _record(request, "MediaRelayDown", times)


def _ballast(proxy_internal: str, mib: int) -> None:
    r = httpx.get(f"http://{proxy_internal}:{PORTS.sip_metrics}/lab/ballast/{mib}", timeout=60)
    assert r.status_code == 200, r.text


@pytest.fixture
def proxy_memory() -> Iterator[tuple[str, str]]:
    """A proxy (name, internal address) whose ballast is given back whatever happens."""
    proxy = instances(ServiceKind.SIP_PROXY, "ber")[1]
    yield proxy.name, str(proxy.reach)
    _ballast(str(proxy.reach), 0)


def test_a_proxy_with_its_shared_memory_filled_alerts_and_clears(
    request: pytest.FixtureRequest, proxy_memory: tuple[str, str]
) -> None:
    name, internal = proxy_memory
    used = monitoring.values("fra", "kamailio_shmem_real_used_size")[name]
    total = monitoring.values("fra", "kamailio_shmem_total_size")[name]
    threshold = PLATFORM.monitoring.shm_used_ratio
    assert used / total < threshold, f"{name} is over the threshold before the drill"
    # Fill to just past the threshold, in MiB.
    fill = math.ceil(((threshold + 0.03) * total - used) / 2**20)
    filled = time.monotonic()
    _ballast(internal, fill)
    times = _fires_everywhere("SharedMemoryNearlyFull", filled, instance=name)
    ratio = monitoring.values("fra", "kamailio_shmem_real_used_size / kamailio_shmem_total_size")
    assert ratio[name] > threshold, ratio
    freed = time.monotonic()
    _ballast(internal, 0)
    times |= _clears_everywhere("SharedMemoryNearlyFull", freed, instance=name)
    times["filled_mib"] = fill
    _record(request, "SharedMemoryNearlyFull", times)


def _psql(db_container: str, sql: str, database: str = "postgres") -> str:
    r = docker("exec", "-u", "postgres", db_container, "psql", "-XAtq", "-d", database, "-c", sql)
    assert r.returncode == 0, f"{db_container}: {sql}: {r.stderr}"
    return r.stdout.strip()


def test_a_replica_whose_replay_stalls_alerts_and_clears(
    request: pytest.FixtureRequest,
) -> None:
    wait_for(healthy_pair, 120, 1, "a leader and a synchronous standby")
    lead = leader()
    replica = next(d for d in DBS.values() if d.name != lead)
    primary = next(d for d in DBS.values() if d.name == lead)
    replica_c, primary_c = replica.container_name(PLATFORM), primary.container_name(PLATFORM)
    # The replica's replay stalls (its startup process stopped, as a stuck disk would stop it)
    # while its WAL receiver goes on receiving.
    replay = _startup_process(replica_c)
    docker("exec", replica_c, "kill", "-STOP", replay, check=True)
    stalled = time.monotonic()
    try:
        # One commit the replica receives but cannot apply (committed locally: the platform's
        # own commits wait for the standby's apply, this drill's does not).
        _psql(
            primary_c,
            "SET synchronous_commit = local; "
            "CREATE TABLE IF NOT EXISTS lab_replication_drill (at timestamptz); "
            "INSERT INTO lab_replication_drill VALUES (now())",
        )
        times = _fires_everywhere("ReplicationLagging", stalled, instance=replica.name)
    finally:
        docker("exec", replica_c, "kill", "-CONT", replay, check=True)
        repaired = time.monotonic()
    times |= _clears_everywhere("ReplicationLagging", repaired, instance=replica.name)
    _psql(primary_c, "DROP TABLE IF EXISTS lab_replication_drill")
    _record(request, "ReplicationLagging", times)


def _startup_process(db_container: str) -> str:
    """The PID of PostgreSQL's startup process (WAL replay) in a replica's container."""
    script = (
        'for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline 2>/dev/null)" in '
        '"postgres: "*"startup recovering"*) echo "${p#/proc/}";; esac; done'
    )
    (pid,) = shell(db_container, script, check=True).stdout.split()
    return pid


TLS_FILE = "/etc/kamailio/tls/server.pem"


def _serve_certificate(proxy: str, pem: str) -> None:
    r = docker("exec", "-i", proxy, "sh", "-c", f"cat > {TLS_FILE}", input=pem)
    assert r.returncode == 0, r.stderr
    kamcmd(proxy, "tls.reload")


def test_a_certificate_ending_within_the_window_alerts_and_clears(
    request: pytest.FixtureRequest,
) -> None:
    proxy = instances(ServiceKind.SIP_PROXY, "fra")[0]
    name = container(proxy)
    original = shell(name, f"cat {TLS_FILE}").stdout
    days = PLATFORM.monitoring.certificate_days // 3
    ending = lab_certificate_ending_in(PLATFORM, LAB_DIR / "tls", dt.timedelta(days=days))
    swapped = time.monotonic()
    _serve_certificate(name, ending)
    try:
        # Each site's monitor checks its own site's listeners.
        times = {
            "fired_s": monitoring.wait_firing(
                proxy.site, "CertificateExpiresSoon", swapped, instance=proxy.name
            )
        }
        endpoint = f"{proxy.address}:{PORTS.sip_tls}"
        (alert,) = monitoring.firing(proxy.site, "CertificateExpiresSoon", endpoint=endpoint)
        assert f"expires in {days - 1}d" in alert["annotations"]["summary"], alert
    finally:
        _serve_certificate(name, original)
        restored = time.monotonic()
    times["cleared_s"] = monitoring.wait_cleared(
        proxy.site, "CertificateExpiresSoon", restored, instance=proxy.name
    )
    _record(request, "CertificateExpiresSoon", times)


def test_the_drills_leave_every_target_up() -> None:
    for site in SITE_NAMES:
        wait_for(
            lambda s=site: all(t["health"] == "up" for t in monitoring.targets(s)),
            60,
            2,
            f"every target of {site}'s Prometheus up again",
        )
