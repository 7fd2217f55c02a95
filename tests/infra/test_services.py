"""Per service container: running, listening where it should, and answering as itself."""

from __future__ import annotations

import json
import re

import pytest

from pbx_infra.topology import ServiceKind

from .checks import listening, processes, where
from .conftest import by_kind

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


@by_kind(ServiceKind.DB)
def test_database_role_and_replication(host, target, platform) -> None:
    primary = target.instance.site == platform.primary_site.name
    role = host.run("runuser -u postgres -- psql -tAc 'select pg_is_in_recovery()'")
    assert role.rc == 0, where(target, f"postgres does not answer: {role.stderr.strip()}")
    assert role.stdout.strip() == ("f" if primary else "t"), where(
        target, "primary is in recovery" if primary else "standby is not in recovery"
    )
    if not primary:
        query = (
            "select status, coalesce(extract(epoch from now() - last_msg_receipt_time), -1)"
            " from pg_stat_wal_receiver"
        )
        out = host.run(f'runuser -u postgres -- psql -tAc "{query}"').stdout.strip()
        status, _, lag = out.partition("|")
        assert status == "streaming", where(
            target, f"standby is not streaming ({out or 'no WAL receiver'})"
        )
        print(f"{target.label}: streaming, last message {float(lag):.1f}s ago")


@by_kind(ServiceKind.PBX_APP)
def test_app_is_healthy_against_its_database(host, target, platform) -> None:
    port = platform.ports.app
    probe = host.run(
        f"python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/healthz',timeout=5).read().decode())\""
    )
    assert probe.rc == 0, where(target, f"/healthz failed: {probe.stderr.strip()[-300:]}")
    assert json.loads(probe.stdout)["database"] == "ok", where(target, probe.stdout)


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
