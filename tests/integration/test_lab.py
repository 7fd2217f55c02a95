"""The running lab (`make lab`): every service healthy, the sites reach each other."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys
import urllib.request
import uuid
from email.message import EmailMessage

import dns.resolver
import httpx
import pytest

from labkit.lab import CA_FILE
from pbx_app.addressing import EMERGENCY_NUMBERS
from pbx_infra.lab.__main__ import LAB_DIR
from pbx_infra.lab.declared import REPO
from pbx_infra.node_config import portal_url
from pbx_infra.topology import ServiceKind

from .conftest import exec_in

pytestmark = pytest.mark.lab


def test_every_declared_container_runs_healthy_with_its_labels(platform, engine) -> None:
    for inst in platform.instances():
        container = engine.containers.get(inst.container_name(platform))
        container.reload()
        health = container.attrs["State"].get("Health", {}).get("Status")
        assert health == "healthy", f"{container.name} is {health}"
        assert container.labels["pbx.site"] == inst.site
        assert container.labels["pbx.service"] == inst.kind.value


def test_no_container_of_the_lab_is_left_over(platform, engine) -> None:
    running = {
        c.name
        for c in engine.containers.list(
            all=True, filters={"label": f"pbx.platform={platform.name}"}
        )
    }
    assert running == {i.container_name(platform) for i in platform.instances()}


@pytest.mark.parametrize("site", ["fra", "ber"])
def test_proxies_answer_the_other_sites_proxies_over_the_backbone(platform, engine, site) -> None:
    """SIP OPTIONS from every proxy of `site` to every proxy of the other site, by backbone IP."""
    for source in platform.instances(ServiceKind.SIP_PROXY, site):
        for target in platform.instances(ServiceKind.SIP_PROXY):
            if target.site == site:
                continue
            code, out = exec_in(
                engine,
                source.container_name(platform),
                "pbx-healthcheck",
                env={"PBX_HEALTH_TARGET": f"{target.internal}:{platform.ports.sip}"},
            )
            assert code == 0, f"{source.name} -> {target.name} ({target.internal}): {out}"


def test_proxies_set_up_tls_before_any_other_openssl_user(platform, engine) -> None:
    """Kamailio warns at start-up when a module touched OpenSSL before tls.so did; with
    OpenSSL 3, TLS can then crash under load. tls.so is loaded first, so no proxy warns."""
    for proxy in platform.instances(ServiceKind.SIP_PROXY):
        logs = engine.containers.get(proxy.container_name(platform)).logs().decode(errors="replace")
        assert "main():" in logs, f"{proxy.name}: its start-up is not in the container log"
        assert "must be the first module loaded" not in logs, f"{proxy.name}: {logs[-800:]}"


def test_management_rpc_answers_on_the_internal_address_only(platform, engine) -> None:
    fra, ber = (platform.instances(ServiceKind.SIP_PROXY, s)[0] for s in ("fra", "ber"))
    neighbour = platform.instances(ServiceKind.SIP_PROXY, "fra")[1]  # same site network as fra
    code, out = exec_in(
        engine,
        fra.container_name(platform),
        "kamcmd",
        "-s",
        f"tcp:{ber.internal}:{platform.ports.rpc}",
        "core.uptime",
    )
    assert code == 0, out
    assert "uptime" in out
    code, out = exec_in(
        engine,
        fra.container_name(platform),
        "kamcmd",
        "-s",
        f"tcp:{neighbour.address}:{platform.ports.rpc}",
        "core.uptime",
    )
    assert code != 0, f"RPC must not answer on the site-facing address {neighbour.address}: {out}"


def test_database_members_replicate_synchronously(platform) -> None:
    """One leader, the other member its synchronous standby, both on one timeline."""
    db = platform.instances(ServiceKind.DB)[0]
    url = f"http://{db.reach}:{platform.ports.patroni}/cluster"
    with urllib.request.urlopen(url, timeout=5) as response:
        members = {m["name"]: m for m in json.load(response)["members"]}
    assert set(members) == {d.name for d in platform.instances(ServiceKind.DB)}
    roles = sorted(m["role"] for m in members.values())
    assert roles == ["leader", "sync_standby"], members
    assert len({m["timeline"] for m in members.values()}) == 1, members


def test_patroni_api_is_not_on_the_site_networks(platform, engine) -> None:
    """The API can switch leaders and has no login: only the internal network reaches it."""
    db = platform.instances(ServiceKind.DB, "fra")[0]
    code, out = exec_in(
        engine, db.container_name(platform), "curl", "-s", "--max-time", "2",
        f"http://{db.address}:{platform.ports.patroni}/patroni",
    )  # fmt: skip
    assert code != 0, f"Patroni API answers on the site-facing address {db.address}: {out}"


@pytest.mark.parametrize("node", [0, 1, 2, 3])
def test_every_app_node_is_healthy_against_the_database(platform, node) -> None:
    app = platform.instances(ServiceKind.PBX_APP)[node]
    with urllib.request.urlopen(
        f"http://{app.address}:{platform.ports.app}/healthz", timeout=5
    ) as response:
        body = json.load(response)
    assert body["database"] == "ok"
    assert body["writable"] is True
    assert body["site"] == app.site


@pytest.mark.parametrize("node", [0, 1, 2, 3])
def test_every_app_node_serves_people_over_https_with_the_platform_certificate(
    platform, engine, node
) -> None:
    """The portal's URL as `make lab` prints it: the certificate names the node's address and
    chains to the lab CA (verified, nothing ignored); the app process runs as its own user."""
    app = platform.instances(ServiceKind.PBX_APP)[node]
    url = portal_url(platform, app)
    with httpx.Client(verify=ssl.create_default_context(cafile=CA_FILE), timeout=5) as client:
        r = client.get(f"{url}/healthz")
    assert r.status_code == 200, r.text
    assert r.json()["node"] == app.name
    assert "max-age" in r.headers["strict-transport-security"]
    # PID 1 is the app itself (the entrypoint execs it as its user).
    code, out = exec_in(engine, app.container_name(platform), "stat", "-c", "%U", "/proc/1")
    assert code == 0, out
    assert out.strip() == "pbx", out


@pytest.mark.parametrize("home", ["fra", "ber"])
def test_site_dns_lists_home_site_first(platform, home) -> None:
    """One SRV target per site (its shared SIP address), the home site first."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [str(platform.instances(ServiceKind.DNS, home)[0].address)]
    answer = resolver.resolve(f"_sip._udp.{platform.sip_domain}", "SRV", lifetime=3)
    by_priority = sorted(answer, key=lambda r: r.priority)
    targets = [str(r.target).rstrip(".") for r in by_priority]
    other = next(s.name for s in platform.sites if s.name != home)
    assert targets == [f"{home}.{platform.sip_domain}", f"{other}.{platform.sip_domain}"]
    assert [r.priority for r in by_priority] == [10, 20]
    (a_record,) = resolver.resolve(targets[0], "A", lifetime=3)
    assert str(a_record) == str(platform.sip_vip(home))


def test_smtp_sink_keeps_what_it_receives(platform, engine) -> None:
    sink = platform.instances(ServiceKind.SMTP)[0]
    subject = f"lab probe {uuid.uuid4()}"
    message = EmailMessage()
    message["From"] = "probe@pbx.lab"
    message["To"] = "someone@pbx.lab"
    message["Subject"] = subject
    message.set_content("hello")
    with smtplib.SMTP(str(sink.address), 25, timeout=5) as smtp:
        smtp.send_message(message)
    code, out = exec_in(engine, sink.container_name(platform), "sink-messages")
    assert code == 0, out
    assert subject in [m["subject"] for m in json.loads(out)]


def test_demo_tenant_file_tells_how_to_log_in_and_register() -> None:
    demo = json.loads((LAB_DIR / "demo-tenant.json").read_text())
    assert demo["admin_email"]
    assert demo["admin_password"]
    # 100-199 without the emergency numbers
    assert len(demo["devices"]) == len(set(map(str, range(100, 200))) - EMERGENCY_NUMBERS)
    assert not EMERGENCY_NUMBERS & {d["extension"] for d in demo["devices"]}
    device = demo["devices"][0]
    assert {"extension", "sip_username", "sip_password", "sip_domain"} <= set(device)
    assert set(demo["proxies"]) == {"fra", "ber"}
    assert demo["proxies"]["fra"]["tls"]


def test_second_lab_up_changes_nothing(platform, engine) -> None:
    before = {
        c.name: c.id
        for c in engine.containers.list(filters={"label": f"pbx.platform={platform.name}"})
    }
    demo_before = json.loads((LAB_DIR / "demo-tenant.json").read_text())
    run = subprocess.run(
        [sys.executable, "-m", "pbx_infra.lab", "up"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " created" not in run.stdout, run.stdout
    assert "replacing" not in run.stdout, run.stdout
    after = {
        c.name: c.id
        for c in engine.containers.list(filters={"label": f"pbx.platform={platform.name}"})
    }
    assert after == before
    demo_after = json.loads((LAB_DIR / "demo-tenant.json").read_text())
    assert demo_after["admin_password"] == demo_before["admin_password"]
    assert "HEALTH" in run.stdout
    assert "unhealthy" not in run.stdout
