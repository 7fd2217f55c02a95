"""The Pulumi program, run under Pulumi's mocks: what it declares for the lab and production."""

from __future__ import annotations

import json
import re

import pytest

from labkit.provisioning import device_certificate
from pbx_app.addressing import CARRIER_CALLER
from pbx_app.settings import Settings
from pbx_infra import topology
from pbx_infra.lab.declared import Recorder, declare, stack_config
from pbx_infra.node_config import kamailio_node
from pbx_infra.tls import lab_vendor_cas, server_names, vendor_cas
from pbx_infra.topology import TOS_CS3, ServiceKind

from .conftest import SECRETS, Stack

SITES = ("fra", "ber")


def node_cfg(container: dict) -> dict:
    (upload,) = [u for u in container["uploads"] if u["file"] == "/etc/kamailio/node.cfg"]
    return upload


PER_SITE_LAB = {
    "sip-proxy": 2,
    "media-relay": 1,
    "pbx-app": 2,
    "db": 1,
    "etcd": 1,
    "dns": 1,
    "smtp": 1,
    "carrier": 1,
}


@pytest.mark.parametrize("site", SITES)
def test_lab_site_runs_the_planned_service_counts(lab: Stack, site: str) -> None:
    for service, count in PER_SITE_LAB.items():
        assert len(lab.by_service(site, service)) == count, (site, service)


def test_each_site_runs_a_fax_gateway_that_knows_every_proxy_and_app_node(lab: Stack) -> None:
    gateways = {
        lab.labels(c)["pbx.site"]: c
        for c in lab.containers.values()
        if lab.labels(c)["pbx.service"] == "efax"
    }
    assert set(gateways) == {"fra", "ber"}
    for site, c in gateways.items():
        env = dict(e.split("=", 1) for e in c["envs"])
        proxies = env["PBX_SIP_PROXIES"].split(",")
        apps = env["PBX_APP_URLS"].split(",")
        # Both sites' proxies and app nodes, the own site's first.
        assert len(proxies) == 4
        assert len(apps) == 4
        block = 0 if site == "fra" else 100  # the site's block of backbone addresses
        assert proxies[:2] == [f"172.30.0.{block + 11}:5060", f"172.30.0.{block + 12}:5060"]
        assert apps[0].startswith(f"http://172.30.0.{block + 31}:"), apps
        assert env["PBX_EFAX_SIP_LISTEN"] == f"172.30.0.{block + 71}:5080"
        assert env["PBX_EFAX_MEDIA_PORTS"] == "60000-60399"
        assert env["PBX_INTERNAL_TOKEN"]
        # Received faxes outlive the container.
        assert [v["containerPath"] for v in c["volumes"]] == ["/var/spool/pbx-efax"]


def test_lab_witness_is_one_etcd_member_on_the_backbone(lab: Stack) -> None:
    (witness,) = [c for c in lab.containers.values() if lab.labels(c)["pbx.site"] == "witness"]
    assert lab.labels(witness)["pbx.service"] == "etcd"
    assert [(n["name"], n["ipv4Address"]) for n in witness["networksAdvanced"]] == [
        ("pbx-lab-backbone", "172.30.0.245")
    ]


def test_every_container_is_labelled_health_checked_and_restarted(lab: Stack) -> None:
    for name, c in lab.containers.items():
        labels = lab.labels(c)
        assert labels["pbx.site"] in (*SITES, "witness"), name
        assert labels["pbx.service"], name
        assert c["restart"] == "unless-stopped", name
        assert c["healthcheck"]["tests"] == ["CMD", "pbx-healthcheck"], name
        assert int(c["healthcheck"]["retries"]) >= 3, name


def test_lab_networks_are_two_sites_and_a_backbone(lab: Stack) -> None:
    nets = {n.inputs["name"]: n.inputs for n in lab.of_type("network:Network")}
    assert set(nets) == {"pbx-lab-fra", "pbx-lab-ber", "pbx-lab-backbone"}
    subnets = {name: n["ipamConfigs"][0]["subnet"] for name, n in nets.items()}
    assert subnets == {
        "pbx-lab-backbone": "172.30.0.0/24",
        "pbx-lab-fra": "172.30.1.0/24",
        "pbx-lab-ber": "172.30.2.0/24",
    }


@pytest.mark.parametrize("site", SITES)
def test_lab_proxies_sit_on_their_site_network_and_the_backbone(lab: Stack, site: str) -> None:
    for proxy in lab.by_service(site, "sip-proxy"):
        nets = {n["name"]: n["ipv4Address"] for n in proxy["networksAdvanced"]}
        assert set(nets) == {f"pbx-lab-{site}", "pbx-lab-backbone"}
        assert nets[f"pbx-lab-{site}"].startswith("172.30.1." if site == "fra" else "172.30.2.")


def test_lab_addresses_are_unique_per_network(lab: Stack) -> None:
    seen: dict[tuple[str, str], str] = {}
    for name, c in lab.containers.items():
        for net in c["networksAdvanced"]:
            key = (net["name"], net["ipv4Address"])
            assert key not in seen, f"{name} and {seen.get(key)} share {key}"
            seen[key] = name


def test_proxy_config_names_every_other_proxy_as_dmq_peer_by_ip(lab: Stack) -> None:
    proxies = [c for c in lab.containers.values() if lab.labels(c)["pbx.service"] == "sip-proxy"]
    assert len(proxies) == 4
    for proxy in proxies:
        upload = node_cfg(proxy)
        backbone = {n["name"]: n["ipv4Address"] for n in proxy["networksAdvanced"]}
        for other in proxies:
            other_ip = {n["name"]: n["ipv4Address"] for n in other["networksAdvanced"]}[
                "pbx-lab-backbone"
            ]
            if other is proxy:
                continue
            assert other_ip in upload["content"], (proxy["name"], other_ip)
        assert backbone["pbx-lab-backbone"] in upload["content"]


def test_database_members_are_declared_alike_and_elect_in_etcd(lab: Stack) -> None:
    etcd = ["172.30.0.45:2379", "172.30.0.145:2379", "172.30.0.245:2379"]
    for site, own in (("fra", "172.30.0.41"), ("ber", "172.30.0.141")):
        (db,) = lab.by_service(site, "db")
        env = lab.env(db)
        assert env["PATRONI_REPLICATION_PASSWORD"] == "repl-pw"
        assert env["PATRONI_REWIND_PASSWORD"] == "rewind-pw"
        assert db["volumes"][0]["containerPath"] == "/var/lib/postgresql/data"
        files = {u["file"]: u["content"] for u in db["uploads"]}
        patroni = files["/etc/patroni/patroni.yml"]
        assert f"connect_address: {own}:5432" in patroni
        # The site's own etcd member first; no password is ever in the rendered file.
        own_etcd = etcd[0] if site == "fra" else etcd[1]
        assert f"hosts: {own_etcd}," in patroni
        assert "synchronous_mode: true" in patroni
        assert not any(v in patroni for v in SECRETS.values())
    initial = "fra-etcd=http://172.30.0.45:2380,ber-etcd=http://172.30.0.145:2380,"
    for member in [c for c in lab.containers.values() if lab.labels(c)["pbx.service"] == "etcd"]:
        conf = {u["file"]: u["content"] for u in member["uploads"]}["/etc/etcd/etcd.conf.yml"]
        assert f"initial-cluster: {initial}witness-etcd=http://172.30.0.245:2380" in conf


def test_apps_write_to_the_leader_read_locally_and_mail_their_sites_sink(lab: Stack) -> None:
    base = "postgresql+psycopg://pbx:db-pw@/pbx?"
    for site, hosts, sink in (
        ("fra", "host=172.30.0.41:5432&host=172.30.0.141:5432&", "172.30.0.25"),
        ("ber", "host=172.30.0.141:5432&host=172.30.0.41:5432&", "172.30.0.125"),
    ):
        for app in lab.by_service(site, "pbx-app"):
            env = lab.env(app)
            assert env["PBX_DATABASE_URL"] == (
                f"{base}{hosts}target_session_attrs=read-write&connect_timeout=2"
            )
            assert env["PBX_DATABASE_READ_URL"] == (
                f"{base}{hosts}target_session_attrs=any&connect_timeout=2"
            )
            assert env["PBX_SMTP_HOST"] == sink
            assert env["PBX_SITE"] == site


def test_secrets_reach_containers_only_through_config(lab: Stack) -> None:
    text = json.dumps([d.inputs for d in lab.declared])
    for value in SECRETS.values():
        assert value in text  # delivered ...
    stack_file = stack_config("lab")
    assert not any(value in v for v in stack_file.values() for value in SECRETS.values())


def test_lab_images_are_built_locally_once_each(lab: Stack) -> None:
    images = {i.inputs["imageName"]: i.inputs for i in lab.of_type("image:Image")}
    assert set(images) == {
        f"pbx/{n}:lab"
        for n in (
            "kamailio",
            "rtpengine",
            "postgres",
            "etcd",
            "pbx-app",
            "labdns",
            "smtpsink",
            "carrier",
            "monitor",
            "efax",
        )
    }
    for image in images.values():
        assert image["skipPush"] is True


def test_production_uses_one_docker_host_per_site_over_ssh(production: Stack) -> None:
    providers = {p.name: p.inputs["host"] for p in production.of_type("providers:docker")}
    assert providers == {
        "docker-fra": "ssh://deploy@pbx-fra-1.example-pbx.de",
        "docker-ber": "ssh://deploy@pbx-ber-1.example-pbx.de",
        "docker-witness": "ssh://deploy@pbx-witness.example-pbx.de",
    }
    # The witness host builds and runs etcd only.
    (witness,) = [
        c for c in production.containers.values() if production.labels(c)["pbx.site"] == "witness"
    ]
    assert witness["image"] == "pbx/etcd:2026.11"


def test_production_runs_sip_and_rtp_on_host_networking(production: Stack) -> None:
    assert not production.of_type("network:Network")
    for name, c in production.containers.items():
        assert c["networkMode"] == "host", name
        assert c["wait"] is True, name  # pulumi up returns once healthy


def test_production_proxies_bind_their_own_public_addresses(production: Stack) -> None:
    bound = []
    for proxy in production.by_service("fra", "sip-proxy"):
        upload = node_cfg(proxy)
        bound.append([ip for ip in ("192.0.2.10", "192.0.2.11") if ip in upload["content"]])
    assert sorted(map(tuple, bound)) == [("192.0.2.10",), ("192.0.2.11",)]


def test_production_app_nodes_on_one_host_use_distinct_ports(production: Stack) -> None:
    listens = [production.env(a)["PBX_LISTEN"] for a in production.by_service("fra", "pbx-app")]
    assert sorted(listens) == ["10.10.1.10:8000", "10.10.1.10:8001"]


def test_production_has_no_lab_helpers(production: Stack) -> None:
    services = {production.labels(c)["pbx.service"] for c in production.containers.values()}
    assert services == {"sip-proxy", "media-relay", "pbx-app", "db", "etcd", "monitor", "efax"}


def test_bad_config_declares_nothing(lab_config: dict) -> None:
    lab_config["sites"][1]["subnet"] = lab_config["sites"][0]["subnet"]
    config = stack_config("lab", SECRETS) | {"pbx:platform": json.dumps(lab_config)}
    recorder = Recorder()
    with pytest.raises(topology.TopologyError, match=r"sites\[1\]\.subnet"):
        declare("lab", config, recorder)
    assert recorder.declared == []


def test_proxies_get_tls_material_with_a_private_key_mode(lab: Stack, production: Stack) -> None:
    for stack in (lab, production):
        for proxy in (
            c for c in stack.containers.values() if stack.labels(c)["pbx.service"] == "sip-proxy"
        ):
            files = {u["file"]: u for u in proxy["uploads"]}
            assert files["/etc/kamailio/tls/server.pem"]["content"] == "-----CERT-----"
            assert files["/etc/kamailio/tls/server.key"]["content"] == "-----KEY-----"
            assert files["/etc/kamailio/tls/server.key"]["permissions"] == "0600"
            assert files["/etc/kamailio/tls/ca.pem"]["content"] == "-----CA-----"


def test_lab_carriers_sit_on_the_backbone_only_one_per_site(lab: Stack) -> None:
    carriers = [c for c in lab.containers.values() if lab.labels(c)["pbx.service"] == "carrier"]
    assert len(carriers) == 2
    for carrier in carriers:
        assert [n["name"] for n in carrier["networksAdvanced"]] == ["pbx-lab-backbone"]
    platform = topology.load(json.loads(stack_config("lab")["pbx:platform"]))
    own = {"fra": "172.30.0.5", "ber": "172.30.0.105"}
    for proxy in platform.instances(ServiceKind.SIP_PROXY):
        node = kamailio_node(platform, proxy)
        assert node["carrier"] == f"udp:{own[proxy.site]}:{platform.ports.sip}"
        assert node["carrier_peers"] == sorted(own.values())


def test_proxy_config_lists_the_stacks_trusted_sources(lab: Stack, production: Stack) -> None:
    """One source: pbx:platform.trusted_sources reaches every proxy's node.cfg; without a
    list (production's example) the check is compiled out."""
    platform = topology.load(json.loads(stack_config("lab")["pbx:platform"]))
    expected = ",".join(str(n) for n in platform.trusted_sources)
    assert expected
    for name, stack, want in (("lab", lab, expected), ("production", production, None)):
        proxies = [
            c for c in stack.containers.values() if stack.labels(c)["pbx.service"] == "sip-proxy"
        ]
        assert len(proxies) == 4, name
        for proxy in proxies:
            text = node_cfg(proxy)["content"]
            found = re.search(r'^#!substdef "!PBX_TRUSTED_SOURCES!(.*)!g"$', text, re.M)
            assert (found.group(1) if found else None) == want, (name, text[:600])
            assert ("#!define PBX_HAS_TRUSTED_SOURCES" in text) == (want is not None), name


def test_every_proxy_has_its_own_server_id(lab: Stack) -> None:
    """rtpengine ng cookies and usrloc record IDs embed server_id + PID; containers share PIDs."""
    for stack in ("lab", "production"):
        platform = topology.load(json.loads(stack_config(stack)["pbx:platform"]))
        ids = [
            kamailio_node(platform, p)["server_id"]
            for p in platform.instances(ServiceKind.SIP_PROXY)
        ]
        assert len(set(ids)) == len(ids) >= 4, ids
    for proxy in (
        c for c in lab.containers.values() if lab.labels(c)["pbx.service"] == "sip-proxy"
    ):
        node_cfg = {u["file"]: u["content"] for u in proxy["uploads"]}["/etc/kamailio/node.cfg"]
        assert re.search(r"^server_id=\d+$", node_cfg, re.M), node_cfg[:400]


def test_proxies_and_apps_get_the_apps_rules_and_the_topologys_ports(
    lab: Stack, production: Stack
) -> None:
    """One definition each: the carrier's caller name (pbx_app.addressing) and DSCP CS3 (the
    topology) reach Kamailio through node.cfg; the SIP/TLS port reaches the app's provisioning
    config through its environment."""
    for name, stack in (("lab", lab), ("production", production)):
        platform = topology.load(json.loads(stack_config(name)["pbx:platform"]))
        for site in SITES:
            for proxy in stack.by_service(site, "sip-proxy"):
                text = node_cfg(proxy)["content"]
                assert f'#!substdef "!PBX_CARRIER_CALLER!{CARRIER_CALLER}!g"' in text
                assert re.search(rf"^tos={TOS_CS3}$", text, re.M)
            for app in stack.by_service(site, "pbx-app"):
                assert stack.env(app)["PBX_SIP_TLS_PORT"] == str(platform.ports.sip_tls)
                # Browser phones: every proxy's WSS URL by a name the certificate covers, the
                # app's own site first.
                urls = stack.env(app)["PBX_WSS_URLS"].split(",")
                proxies = platform.instances(ServiceKind.SIP_PROXY)
                assert len(urls) == len(proxies) >= 2, urls
                names, _ = server_names(platform)
                hosts = [u.removeprefix("wss://").rsplit(":", 1) for u in urls]
                assert all(h in names and p == str(platform.ports.sip_wss) for h, p in hosts), urls
                sites = [next(x.site for x in proxies if x.fqdn(platform) == h) for h, _ in hosts]
                assert sites == sorted(sites, key=lambda s: s != site), (site, urls)
                assert Settings.from_env(stack.env(app)).wss_urls == tuple(urls)
    # The app's default (no PBX_SIP_TLS_PORT: development, tests) is the topology's default.
    assert Settings().sip_tls_port == topology.Ports().sip_tls


def test_proxies_read_credentials_from_their_own_sites_database(lab: Stack) -> None:
    for site, db in (("fra", "172.30.0.41"), ("ber", "172.30.0.141")):
        for proxy in lab.by_service(site, "sip-proxy"):
            url = lab.env(proxy)["PBX_DB_URL"]
            assert url == f"postgres://kamailio:kam-pw@{db}:5432/pbx"
            # The other site's member, only while the own one is down (db_cluster).
            other = "172.30.0.141" if site == "fra" else "172.30.0.41"
            env = lab.env(proxy)
            assert env["PBX_DB_CLUSTER_LOCAL"] == f"local=>{url}"
            assert (
                env["PBX_DB_CLUSTER_REMOTE"]
                == f"remote=>postgres://kamailio:kam-pw@{other}:5432/pbx"
            )
            assert lab.env(proxy)["PBX_INTERNAL_TOKEN"] == "int-token"
            assert lab.env(proxy)["PBX_AUTH_SECRET"] == "sip-auth"
            # Shared memory sized from the topology (planned_bindings), not the image's default.
            assert lab.env(proxy)["PBX_SHM_MB"] == str(
                topology.load(json.loads(stack_config("lab")["pbx:platform"])).proxy_shm_mb
            )
        # The nonce secret is the proxies' alone.
        for app in lab.by_service(site, "pbx-app"):
            assert "PBX_AUTH_SECRET" not in lab.env(app)


def test_app_nodes_serve_https_for_people_with_the_platform_certificate(
    lab: Stack, production: Stack
) -> None:
    """Plain HTTP stays on the port the platform's own clients use; HTTPS on its own port, with
    the proxies' certificate and key (the key private); mailed links and the portal's CSP point
    at what a browser uses."""
    for name, stack in (("lab", lab), ("production", production)):
        platform = topology.load(json.loads(stack_config(name)["pbx:platform"]))
        ports = platform.ports
        assert ports.app_https not in {ports.app, ports.sip_wss, ports.sip_tls}
        for site in SITES:
            apps = stack.by_service(site, "pbx-app")
            first = platform.instances(ServiceKind.PBX_APP, site)[0]
            for ordinal, app in enumerate(apps, start=1):
                env = stack.env(app)
                inst = platform.instances(ServiceKind.PBX_APP, site)[ordinal - 1]
                offset = ordinal - 1 if name == "production" else 0
                host = "0.0.0.0" if name == "lab" else str(inst.address)  # public side
                assert env["PBX_HTTPS_LISTEN"] == f"{host}:{ports.app_https + offset}"
                assert env["PBX_LISTEN"].endswith(f":{ports.app + offset}")
                # Mailed links: by the name the certificate covers (production), by address in
                # the lab (the lab CA names both; the lab's host does not resolve its names).
                host = first.fqdn(platform) if name == "production" else str(first.address)
                assert env["PBX_PUBLIC_URL"] == f"https://{host}:{ports.app_https}"
                files = {u["file"]: u for u in app["uploads"]}
                assert files[env["PBX_TLS_CERT_FILE"]]["content"] == "-----CERT-----"
                key = files[env["PBX_TLS_KEY_FILE"]]
                assert (key["content"], key["permissions"]) == ("-----KEY-----", "0600")
                wss = env["PBX_WSS_URLS"].split(",")
                proxies = platform.instances(ServiceKind.SIP_PROXY)
                assert len(wss) == len(proxies)
                assert all(u.startswith("wss://") and u.endswith(f":{ports.sip_wss}") for u in wss)
                home = [p.fqdn(platform) for p in proxies if p.site == site]
                assert [u.split("//")[1].split(":")[0] for u in wss[: len(home)]] == home
                # What the app reads back is what was declared.
                settings = Settings.from_env(env)
                assert settings.wss_urls == tuple(wss)
                assert settings.https_port == ports.app_https + offset


def test_app_nodes_serve_phones_their_configuration(lab: Stack, production: Stack) -> None:
    """Phones fetch over HTTPS on a port of their own, with the vendor CAs of the stack config;
    configurations point them back at the name every app node answers to; both sites are
    candidates for a phone's home site; the credential keys come from the stack's secret."""
    for name, stack in (("lab", lab), ("production", production)):
        platform = topology.load(json.loads(stack_config(name)["pbx:platform"]))
        ports = platform.ports
        assert ports.provisioning not in {ports.app, ports.app_https, ports.sip_wss}
        for site in SITES:
            for ordinal, app in enumerate(stack.by_service(site, "pbx-app"), start=1):
                env = stack.env(app)
                inst = platform.instances(ServiceKind.PBX_APP, site)[ordinal - 1]
                offset = ordinal - 1 if name == "production" else 0
                host = "0.0.0.0" if name == "lab" else str(inst.address)  # public side
                assert env["PBX_PROVISIONING_LISTEN"] == f"{host}:{ports.provisioning + offset}"
                name_ = f"provisioning.{platform.sip_domain}"
                assert env["PBX_PROVISIONING_URL"] == f"https://{name_}:{ports.provisioning}"
                assert env["PBX_CREDENTIAL_KEYS"] == SECRETS["credentialKeys"]
                assert env["PBX_SIP_SITES"] == ",".join(
                    f"{s.name}:{s.area_code}" for s in platform.sites
                )
                files = {u["file"]: u for u in app["uploads"]}
                assert env["PBX_VENDOR_CA_FILE"] in files
                settings = Settings.from_env(env)
                assert settings.provisioning_listen == env["PBX_PROVISIONING_LISTEN"]
                assert settings.sip_sites == tuple(env["PBX_SIP_SITES"].split(","))
        names, _ = server_names(platform)
        assert f"provisioning.{platform.sip_domain}" in names  # the certificate covers it


def test_each_sites_sip_name_has_srv_records_listing_it_first(lab: Stack) -> None:
    """What provisioned phones are told to use: the home site's name, whose SRV records list
    that site, then the other; and the provisioning name resolves to every app node."""
    platform = topology.load(json.loads(stack_config("lab")["pbx:platform"]))
    records = platform.site_srv_records()
    for home in SITES:
        tls = [r for r in records if r.name == f"_sips._tcp.{home}.{platform.sip_domain}"]
        ordered = [r.target for r in sorted(tls, key=lambda r: r.priority)]
        other = next(s for s in SITES if s != home)
        assert ordered == [f"{home}.{platform.sip_domain}", f"{other}.{platform.sip_domain}"]
        assert {r.port for r in tls} == {platform.ports.sip_tls}


def test_each_vendors_cas_reach_the_app_nodes_by_vendor(tmp_path) -> None:
    """The TLS layer trusts every vendor's CAs (one file); the app reads which are whose."""
    cas = lab_vendor_cas(tmp_path)
    stack = Stack(declare("lab", stack_config("lab", SECRETS | {"vendorCaCertificates": cas})))
    apps = [c for s in ("fra", "ber") for c in stack.by_service(s, "pbx-app")]
    assert apps
    for app in apps:
        env = stack.env(app)
        files = {u["file"]: u["content"] for u in app["uploads"]}
        assert files[env["PBX_VENDOR_CA_FILE"]] == "".join(cas.values())
        for vendor, pem in cas.items():
            assert files[f"{env['PBX_VENDOR_CA_DIR']}/{vendor}.pem"] == pem
        settings = Settings.from_env(env)
        assert settings.vendor_ca_dir == env["PBX_VENDOR_CA_DIR"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("-----BEGIN CERTIFICATE-----", "pbx:vendorCaCertificates: a map of vendor"),
        ({"snom": "not a certificate"}, "pbx:vendorCaCertificates.snom: not PEM CA"),
        ({"Snom Inc": "x"}, "pbx:vendorCaCertificates.Snom Inc: a vendor as device models"),
    ],
)
def test_vendor_cas_that_are_not_are_refused_naming_the_key(value, named) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        vendor_cas(value)


def test_a_device_certificate_is_not_taken_for_a_vendor_ca(tmp_path) -> None:
    """A phone's own certificate in the vendor CA map would let that phone vouch for others."""
    lab_vendor_cas(tmp_path)
    leaf, _ = device_certificate("000413aabb02", tmp_path, "snom", cas=tmp_path)
    with pytest.raises(ValueError, match=re.escape("pbx:vendorCaCertificates.snom: not PEM CA")):
        vendor_cas({"snom": leaf.read_text()})
