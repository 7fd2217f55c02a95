"""What an SRE sees of the running lab: each site's Prometheus scrapes every service of both
sites, from exporters on internal addresses only; every alert rule is loaded; a call placed
across the sites is found in the SIP capture by its Call-ID and by number, and drawn.

The alerts' drills (faults injected, alerts firing and clearing) are in test_alerts.py, which
runs with the other disruptive tests at the end.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from labkit import monitoring
from labkit.devices import Devices, device_creds, extension_of
from labkit.lab import CA_FILE, PLATFORM, PORTS, SITES, instances
from labkit.leases import lease
from labkit.wait import wait_for
from pbx_infra import capture
from pbx_infra.node_config import app_https_port, scrape_targets, tls_probes
from pbx_infra.topology import ServiceKind

pytestmark = pytest.mark.lab

DEVICES = lease("SIP capture", caller=64, callee=65)
SITE_NAMES = [s.name for s in PLATFORM.sites]


def _all_up(site: str) -> list[dict[str, Any]] | None:
    found = monitoring.targets(site)
    return found if found and all(t["health"] == "up" for t in found) else None


@pytest.mark.parametrize("site", SITE_NAMES)
def test_each_sites_prometheus_scrapes_every_service_of_both_sites(site: str) -> None:
    expected = {
        (job, t["labels"]["instance"])
        for job, found in scrape_targets(PLATFORM).items()
        for t in found
    } | {("tls", p["instance"]) for p in tls_probes(PLATFORM, site)}
    try:
        up = wait_for(lambda: _all_up(site), 120, 2, f"every target of {site}'s Prometheus up")
    except AssertionError:
        down = [(t["labels"]["job"], t["labels"]["instance"], t["lastError"])
                for t in monitoring.targets(site) if t["health"] != "up"]  # fmt: skip
        raise AssertionError(f"targets down at {site}: {down}") from None
    assert {(t["labels"]["job"], t["labels"]["instance"]) for t in up} == expected
    assert {t["labels"]["site"] for t in up} == {*SITE_NAMES, PLATFORM.witness.name}


@pytest.mark.parametrize("site", SITE_NAMES)
def test_the_metrics_an_sre_reads_are_there(site: str) -> None:
    proxies = {i.name for i in instances(ServiceKind.SIP_PROXY)}
    # Kamailio (xhttp_prom): registrations, transactions, dialogs, replies, memory, DMQ, bans.
    for metric in (
        "kamailio_usrloc_registered_users",
        "kamailio_tmx_active_transactions",
        "kamailio_dialog_active_dialogs",
        "kamailio_sl_2xx_replies",
        "kamailio_shmem_real_used_size",
        "kamailio_bans_active",
    ):
        assert set(monitoring.values(site, metric)) == proxies, metric
    total = monitoring.values(site, "kamailio_shmem_total_size")
    assert all(v == PLATFORM.proxy_shm_mb * 2**20 for v in total.values()), total
    # Each proxy reaches every other over DMQ.
    peers = wait_for(
        lambda: (
            (v := monitoring.values(site, "kamailio_dmq_peers_active"))
            and all(n == len(proxies) - 1 for n in v.values())
            and v
        ),
        30,
        what="every proxy with every DMQ peer active",
    )
    assert set(peers) == proxies
    # rtpengine: sessions and relayed packets.
    relays = {i.name for i in instances(ServiceKind.MEDIA_RELAY)}
    assert set(monitoring.values(site, "sum by (instance) (rtpengine_sessions)")) == relays
    assert set(monitoring.values(site, "sum by (instance) (rtpengine_packets_total)")) == relays
    # PostgreSQL: one leader, the other replicating, connections counted.
    dbs = {i.name for i in instances(ServiceKind.DB)}
    assert monitoring.values(site, "pg_up") == dict.fromkeys(dbs, 1.0)
    assert sorted(monitoring.values(site, "patroni_primary").values()) == [0.0, 1.0]
    assert set(monitoring.values(site, "pg_replication_lag_seconds")) == dbs
    assert set(monitoring.values(site, "sum by (instance) (pg_stat_activity_count)")) == dbs
    # The app: requests by route template, the proxies' route decisions.
    apps = {i.name for i in instances(ServiceKind.PBX_APP)}
    routes = monitoring.query(site, 'pbx_http_requests_total{route="/internal/v1/route"}')
    assert {r["metric"]["instance"] for r in routes} <= apps
    assert set(monitoring.values(site, "sum by (instance) (pbx_http_requests_total)")) == apps
    # Certificates: months left on every TLS listener of the site.
    left = monitoring.values(site, "probe_ssl_earliest_cert_expiry - time()")
    assert left, "no certificate checked"
    assert all(s > 30 * 86400 for s in left.values()), left


@pytest.mark.parametrize("site", SITE_NAMES)
def test_every_alert_rule_is_loaded(site: str) -> None:
    loaded = {r["name"]: r for r in monitoring.rules(site)}
    assert {"SiteDown", "SharedMemoryNearlyFull", "CertificateExpiresSoon"} <= set(loaded)
    assert all(r["health"] == "ok" for r in loaded.values()), loaded
    # (Whether one fires depends on what the suite did just before: a test that makes the
    # database refuse writes raises the API's error ratio for minutes, as it should.)


def _refused(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return True  # filtered counts as not reachable too
    return False


def test_management_endpoints_are_not_on_public_addresses() -> None:
    """Metrics and the monitors listen on internal addresses only, like the RPC."""
    fra = SITES["fra"]
    for proxy in fra["proxies"]:
        assert _refused(proxy, PORTS.sip_metrics), f"{proxy}:{PORTS.sip_metrics} answers"
    assert _refused(fra["relay_ip"], PORTS.relay_metrics)
    db = instances(ServiceKind.DB, "fra")[0]
    assert _refused(str(db.address), PORTS.db_metrics)
    monitor = monitoring.MONITORS["fra"]
    for port in (PORTS.prometheus, PORTS.alertmanager):
        assert _refused(str(monitor.address), port), f"monitor answers on {monitor.address}:{port}"
    # The app's metrics are on its plain (internal) listener, not on the HTTPS ones.
    app = instances(ServiceKind.PBX_APP, "fra")[0]
    r = httpx.get(f"https://{app.address}:{app_https_port(PLATFORM, app)}/metrics",
                  verify=str(CA_FILE), timeout=10)  # fmt: skip
    assert r.status_code == 404, r.status_code


def travelled(trace: Any, label: str, start: str) -> list[str]:
    """The participants a message with this label went through, in time order from `start`
    (each hop is sent by where the last one arrived)."""
    path = [trace.names[start]]
    for m in trace.messages:
        if m.label.startswith(label) and trace.names.get(m.src, m.src) == path[-1]:
            path.append(trace.names.get(m.dst, m.dst))
    return path


def test_a_call_is_found_in_the_capture_by_call_id_and_number_and_drawn(
    devices: Devices, tenant: dict[str, Any], tmp_path: Path
) -> None:
    callee, caller = devices.start("cap-fra", "fra"), devices.start("cap-ber", "ber")
    (c_user, c_pw), (e_user, e_pw) = (
        device_creds(tenant, DEVICES[r]) for r in ("caller", "callee")
    )
    extension = extension_of(tenant, DEVICES["callee"])
    assert callee.register(e_user, e_pw, SITES["fra"]["proxies"][0], port=5070).startswith("200")
    callee.answer(port=5070)
    call_id = f"capture-{uuid.uuid4().hex}@{caller.ip}"
    since = time.time() - 1
    status = caller.call(extension, c_user, c_pw, SITES["ber"]["proxies"][0], hold_ms=300,
                         port=5080, call_id=call_id)  # fmt: skip
    assert status.startswith("200"), status
    callee.register(e_user, e_pw, SITES["fra"]["proxies"][0], port=5070, expires=0)

    def whole_call() -> list[Any] | None:
        rows, missing = capture.gather(PLATFORM, "search", "--call-id", call_id)
        assert not missing, missing
        messages = capture.merge(rows)
        labels = [m.label for m in messages]
        complete = "200 OK (BYE)" in labels and any(lb.startswith("ACK") for lb in labels)
        return messages if complete else None

    messages = wait_for(whole_call, 20, 1, f"call {call_id} complete in the capture")
    trace = capture.ladder(PLATFORM, messages)
    assert (trace.caller, trace.callee) == (caller.ip, callee.ip)
    # Every message of the call on every hop: each request goes from the caller through both
    # sites' proxies to the callee, each final answer the whole way back.
    for label, src, dst in [
        ("INVITE", caller.ip, callee.ip),
        ("200 OK (INVITE)", callee.ip, caller.ip),
        ("ACK", caller.ip, callee.ip),
        ("BYE", caller.ip, callee.ip),
        ("200 OK (BYE)", callee.ip, caller.ip),
    ]:
        path = travelled(trace, label, src)
        assert (path[-1], len(path)) == (trace.names[dst], 4), f"{label}: {' -> '.join(path)}"
    assert any(m.label.startswith("407") and m.dst == caller.ip for m in messages), "challenge"
    svg = tmp_path / "call.svg"
    capture.render(trace, svg, f"Call {call_id}")
    drawn = svg.read_text()
    for label in ("INVITE", "ACK", "BYE", "sip-proxy-1", "caller"):
        assert label in drawn, label
    # By number: the callee's extension lists this call, within the time window.
    rows, _ = capture.gather(PLATFORM, "calls", "--number", extension, "--since", str(since))
    assert call_id in {r["callid"] for r in rows}
    rows, _ = capture.gather(PLATFORM, "calls", "--number", extension, "--until", str(since))
    assert call_id not in {r["callid"] for r in rows}
