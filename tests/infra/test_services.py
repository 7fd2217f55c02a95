"""Per service container: running, listening where it should, and answering as itself."""

from __future__ import annotations

import json
import re

import pytest
import testinfra

from pbx_infra.node_config import ctd_sip_port, scrape_targets, tls_probes
from pbx_infra.topology import ServiceKind

from .checks import listening, processes, where
from .conftest import PLATFORM, by_kind, targets

pytestmark = pytest.mark.lab


@by_kind(ServiceKind.SIP_PROXY)
def test_sip_proxy_runs_a_valid_config(host, target) -> None:
    assert "kamailio" in processes(host), where(target, "kamailio is not running")
    check = host.run("kamailio -c -f /etc/kamailio/kamailio.cfg")
    assert check.rc == 0, where(target, f"kamailio -c failed: {check.stderr[-400:]}")


@by_kind(ServiceKind.SIP_PROXY)
def test_sip_proxy_listens_on_its_addresses(host, target, platform) -> None:
    inst = target.instance
    udp, tcp = listening(host, "udp"), listening(host, "tcp")
    for address in filter(None, (inst.address, inst.internal)):
        wanted = (str(address), platform.ports.sip)
        assert wanted in udp, where(target, f"no SIP/UDP listener on {address}")
        assert wanted in tcp, where(target, f"no SIP/TCP listener on {address}")


@by_kind(ServiceKind.SIP_PROXY)
def test_management_rpc_only_on_the_internal_network(host, target, platform) -> None:
    rpc = {a for a, p in listening(host, "tcp") if p == platform.ports.rpc}
    assert rpc == {str(target.instance.reach)}, where(
        target, f"management RPC listens on {sorted(rpc) or 'nothing'}, want internal only"
    )


@by_kind(ServiceKind.MEDIA_RELAY)
def test_media_relay_answers_ng_ping(host, target) -> None:
    assert "rtpengine" in processes(host), where(target, "rtpengine is not running")
    ping = host.run("pbx-healthcheck")
    assert ping.rc == 0, where(target, f"ng ping failed: {ping.stdout.strip()}")


def internal_json(host, target, port: int, path: str):
    """What a management endpoint of this instance answers (JSON, its internal address)."""
    url = f"http://{target.instance.reach}:{port}{path}"
    out = host.run(f"curl -fsS --max-time 5 '{url}'")
    assert out.rc == 0, where(target, f"{url} does not answer: {out.stderr.strip()}")
    return json.loads(out.stdout)


def patroni_cluster(host, target) -> dict:
    """The cluster as this member's Patroni sees it (REST API /cluster)."""
    return internal_json(host, target, PLATFORM.ports.patroni, "/cluster")


@by_kind(ServiceKind.DB)
def test_database_has_one_leader_and_a_synchronous_replica(host, target, platform) -> None:
    members = {m["name"]: m for m in patroni_cluster(host, target)["members"]}
    wanted = {db.name for db in platform.instances(ServiceKind.DB)}
    assert set(members) == wanted, where(target, f"members {sorted(members)}, want {wanted}")
    leaders = [n for n, m in members.items() if m["role"] == "leader"]
    assert len(leaders) == 1, where(target, f"{len(leaders)} leaders: {leaders}")
    (leader,) = leaders
    (replica,) = [m for n, m in members.items() if n != leader]
    # Every acknowledged write is on both members: the replica is the synchronous standby.
    assert replica["role"] == "sync_standby", where(
        target, f"{replica['name']} is {replica['role']}, not the synchronous standby"
    )
    assert replica["state"] == "streaming", where(target, f"{replica['name']} {replica['state']}")
    assert replica["timeline"] == members[leader]["timeline"], where(
        target,
        f"replica on timeline {replica['timeline']}, leader on {members[leader]['timeline']}",
    )
    lag = replica.get("lag", 0)
    assert isinstance(lag, int), where(target, f"replica lag unknown ({lag})")
    assert lag < 16 * 1024 * 1024, where(target, f"replica lag {lag} bytes")
    print(f"{target.label}: leader {leader}, timeline {members[leader]['timeline']}, "
          f"sync replica {replica['name']} lag {lag} bytes")  # fmt: skip


@by_kind(ServiceKind.DB)
def test_database_member_answers_as_its_role(host, target) -> None:
    me = next(
        m for m in patroni_cluster(host, target)["members"] if m["name"] == target.instance.name
    )
    recovering = host.run(
        "runuser -u postgres -- psql -h /run/postgresql -tAc 'select pg_is_in_recovery()'"
    )
    assert recovering.rc == 0, where(target, f"postgres does not answer: {recovering.stderr}")
    want = "f" if me["role"] == "leader" else "t"
    assert recovering.stdout.strip() == want, where(
        target, f"Patroni says {me['role']} but pg_is_in_recovery() = {recovering.stdout.strip()}"
    )


@by_kind(ServiceKind.ETCD)
def test_etcd_member_sees_all_members_and_a_quorum(host, target, platform) -> None:
    health = host.run(
        f"etcdctl --endpoints=http://127.0.0.1:{platform.ports.etcd_client} --command-timeout=3s "
        "endpoint health"
    )
    assert health.rc == 0, where(
        target, f"no quorum: {health.stdout.strip()} {health.stderr.strip()}"
    )
    local = f"http://127.0.0.1:{platform.ports.etcd_client}"
    listed = host.run(f"etcdctl --endpoints={local} member list -w json")
    names = {m.get("name") for m in json.loads(listed.stdout)["members"]}
    wanted = {m.name for m in platform.instances(ServiceKind.ETCD)}
    assert names == wanted, where(target, f"etcd members {sorted(names)}, want {sorted(wanted)}")
    # The witness in particular: without it, losing either site leaves no majority.
    witness = platform.instances(ServiceKind.ETCD, platform.witness.name)[0]
    probe = host.run(
        f"etcdctl --endpoints=http://{witness.reach}:{platform.ports.etcd_client} "
        "--command-timeout=3s endpoint health"
    )
    assert probe.rc == 0, where(target, f"witness {witness.name} unreachable: {probe.stderr}")


@by_kind(ServiceKind.PBX_APP)
def test_app_is_healthy_against_its_database(host, target, platform) -> None:
    port = platform.ports.app
    probe = host.run(
        f"python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/healthz',timeout=5).read().decode())\""
    )
    assert probe.rc == 0, where(target, f"/healthz failed: {probe.stderr.strip()[-300:]}")
    assert json.loads(probe.stdout)["database"] == "ok", where(target, probe.stdout)


@by_kind(ServiceKind.PBX_APP)
def test_click_to_dial_agent_only_on_the_internal_network(host, target, platform) -> None:
    # A production host runs several app nodes: each has its own port (node_config.ctd_sip_port).
    sip = {a for a, p in listening(host, "udp") if p == ctd_sip_port(platform, target.instance)}
    assert sip == {str(target.instance.reach)}, where(
        target, f"click-to-dial's SIP agent listens on {sorted(sip) or 'nothing'}, want internal"
    )


@by_kind(ServiceKind.EFAX)
def test_fax_gateway_answers_sip_on_the_internal_network_only(host, target, platform) -> None:
    probe = host.run("pbx-healthcheck")  # SIP OPTIONS to its listener, the fax engine starts
    assert probe.rc == 0, where(target, probe.stdout.strip()[-300:])
    sip = {a for a, p in listening(host, "udp") if p == platform.ports.efax_sip}
    mail = {a for a, p in listening(host, "tcp") if p == platform.ports.efax_mail}
    want = {str(target.instance.reach)}
    assert (sip, mail) == (want, want), where(target, f"SIP on {sip}, mail on {mail}")
    assert host.user().name == "efax", where(target, "the gateway runs as root")


@by_kind(ServiceKind.DNS)
def test_lab_dns_answers_srv(host, target) -> None:
    probe = host.run("pbx-healthcheck")
    assert probe.rc == 0, where(target, probe.stdout.strip())


@by_kind(ServiceKind.SMTP)
def test_smtp_sink_accepts_mail(host, target) -> None:
    probe = host.run("pbx-healthcheck")
    assert probe.rc == 0, where(target, probe.stdout.strip())


@by_kind(ServiceKind.SIP_PROXY)
def test_dmq_knows_every_other_proxy_once(host, target, platform) -> None:
    """Registrations replicate over DMQ: each proxy knows all others, by IP, exactly once."""
    out = host.run("kamcmd dmq.list_nodes")
    assert out.rc == 0, where(target, f"dmq.list_nodes failed: {out.stderr.strip()}")
    nodes = re.findall(r"host: (\S+)\s+port: (\d+).*?status: (\w+).*?local: (\d)", out.stdout, re.S)
    peers = [(h, s) for h, p, s, local in nodes if local == "0"]
    wanted = {
        str(p.reach) for p in platform.instances(ServiceKind.SIP_PROXY) if p != target.instance
    }
    seen = [h for h, _ in peers]
    assert sorted(seen) == sorted(wanted), where(
        target, f"DMQ peers {sorted(seen)}, want each of {sorted(wanted)} once"
    )
    # A peer that is down shows as not active here; its own checks fail, not this one.
    inactive = sorted(h for h, s in peers if s != "active")
    if inactive:
        print(where(target, f"DMQ peers currently not active: {inactive}"))


@by_kind(ServiceKind.SIP_PROXY)
def test_sites_sip_address_is_held_by_exactly_one_proxy(host, target, platform) -> None:
    """Phones know one address per site (DNS SRV); VRRP keeps it on one live proxy."""
    vip = str(platform.sip_vip(target.instance.site))
    holders = []
    for sibling in targets(ServiceKind.SIP_PROXY):
        if sibling.instance.site != target.instance.site:
            continue
        addresses = testinfra.get_host(sibling.testinfra_spec).run("ip -o -4 addr show").stdout
        if f" {vip}/" in addresses:
            holders.append(sibling.instance.name)
    assert len(holders) == 1, where(
        target, f"the site's SIP address {vip} is held by {holders or 'no proxy'}"
    )
    assert f"{vip}:" in " ".join(f"{a}:{p}" for a, p in listening(host, "udp")), where(
        target, f"Kamailio does not listen on the site's SIP address {vip}"
    )


# ---- observability: exporters on internal addresses, the monitors' view of the platform ----


def _metrics_only_internally(host, target, port: int) -> None:
    bound = {a for a, p in listening(host, "tcp") if p == port}
    assert bound == {str(target.instance.reach)}, where(
        target, f"metrics port {port} on {sorted(bound) or 'nothing'}, want internal only"
    )


@by_kind(ServiceKind.SIP_PROXY)
def test_proxy_metrics_only_on_the_internal_address(host, target, platform) -> None:
    _metrics_only_internally(host, target, platform.ports.sip_metrics)


@by_kind(ServiceKind.MEDIA_RELAY)
def test_relay_metrics_only_on_the_internal_address(host, target, platform) -> None:
    _metrics_only_internally(host, target, platform.ports.relay_metrics)


@by_kind(ServiceKind.DB)
def test_database_metrics_only_on_the_internal_address(host, target, platform) -> None:
    _metrics_only_internally(host, target, platform.ports.db_metrics)


@by_kind(ServiceKind.MONITOR)
def test_monitor_sees_every_scrape_target_up(host, target, platform) -> None:
    found = internal_json(host, target, platform.ports.prometheus, "/api/v1/targets")
    active = found["data"]["activeTargets"]
    expected = sum(len(t) for t in scrape_targets(platform).values()) + len(
        tls_probes(platform, target.instance.site)
    )
    assert len(active) == expected, where(target, f"{len(active)} targets, want {expected}")
    down = [f"{t['labels']['job']}/{t['labels']['instance']}: {t['lastError']}"
            for t in active if t["health"] != "up"]  # fmt: skip
    assert not down, where(target, f"targets down: {down}")


@by_kind(ServiceKind.MONITOR)
def test_monitor_loads_every_alert_rule(host, target, platform) -> None:
    rules = host.file("/etc/monitor/alerts.yml").content_string
    wanted = set(re.findall(r"^\s+- alert: (\w+)$", rules, re.M))
    found = internal_json(host, target, platform.ports.prometheus, "/api/v1/rules?type=alert")
    loaded = {r["name"]: r for g in found["data"]["groups"] for r in g["rules"]}
    assert set(loaded) == wanted, where(target, f"rules loaded {sorted(loaded)}, want {wanted}")
    broken = [n for n, r in loaded.items() if r["health"] != "ok"]
    assert not broken, where(target, f"rules failing to evaluate: {broken}")


@by_kind(ServiceKind.MONITOR)
def test_alertmanagers_form_one_cluster(host, target, platform) -> None:
    status = internal_json(host, target, platform.ports.alertmanager, "/api/v2/status")
    peers = status["cluster"]["peers"]
    wanted = len(platform.instances(ServiceKind.MONITOR))
    assert len(peers) == wanted, where(target, f"{len(peers)} Alertmanager peers, want {wanted}")


@by_kind(ServiceKind.MONITOR)
def test_capture_collector_listens_for_hep_internally(host, target, platform) -> None:
    assert "kamailio" in processes(host), where(target, "the capture collector is not running")
    hep = {a for a, p in listening(host, "udp") if p == platform.ports.hep}
    assert hep == {str(target.instance.reach)}, where(target, f"HEP listener on {sorted(hep)}")
