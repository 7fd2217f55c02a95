"""Each service template renders from its sample `node` and the service accepts the result."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jinja2
import pytest

from pbx_app.addressing import (
    AOR_PATTERN,
    CARRIER_CALLER,
    EMERGENCY_NUMBERS,
    PRIVACY_PREFIX,
    SIP_USERNAME_PATTERN,
)
from pbx_infra.topology import TOS_CS3

from . import samples
from .conftest import docker, image

KAMAILIO_CFG = "/etc/kamailio/kamailio.cfg"


def substdef(text: str, name: str) -> str:
    m = re.search(rf'^#!substdef "!{name}!(.*)!g"$', text, re.M)
    assert m, f"no substdef for {name}"
    return m.group(1)


# ---- kamailio -------------------------------------------------------------------------------


def test_kamailio_node_cfg_places_every_value(render):
    node = samples.KAMAILIO_FRA_1
    text = render("kamailio/node.cfg.j2", node)
    assert substdef(text, "PBX_NODE_NAME") == "fra-sip-proxy-1"
    assert substdef(text, "PBX_SITE") == "fra"
    assert substdef(text, "PBX_ADVERTISE") == node["advertise"]
    assert substdef(text, "PBX_INTERNAL") == node["internal"]
    assert re.search(rf"^server_id={node['server_id']}$", text, re.M)
    assert substdef(text, "PBX_SIP_DOMAIN") == "pbx.lab"
    assert substdef(text, "PBX_SIP_PORT") == "5060"
    assert substdef(text, "PBX_TLS_PORT") == "5061"
    assert substdef(text, "PBX_WSS_PORT") == "8443"
    assert substdef(text, "PBX_RPC_PORT") == "2049"
    assert substdef(text, "PBX_DMQ_PEERS").split(",") == node["dmq_peers"]
    assert substdef(text, "PBX_RTPENGINE_LOCAL").split() == node["rtpengines"]["local"]
    assert substdef(text, "PBX_RTPENGINE_REMOTE").split() == node["rtpengines"]["remote"]
    assert substdef(text, "PBX_RELAY_SITES").split() == node["relay_sites"]
    assert substdef(text, "PBX_APP_URLS").split(",") == node["apps"]
    assert substdef(text, "PBX_DMQ_PORT") == "5090"
    assert substdef(text, "PBX_CARRIER_HOST") == "10.231.0.5"
    assert substdef(text, "PBX_CARRIER_URI") == "sip:10.231.0.5:5060;transport=udp"
    assert substdef(text, "PBX_CARRIER_PEERS") == "10.231.0.5,10.231.0.105"
    assert substdef(text, "PBX_CARRIER_CALLER") == CARRIER_CALLER
    assert substdef(text, "PBX_EMERGENCY_NUMBERS").split("|") == sorted(EMERGENCY_NUMBERS)
    assert substdef(text, "PBX_PRIVACY_PREFIX") == PRIVACY_PREFIX
    assert substdef(text, "PBX_SIP_USERNAME_PATTERN") == SIP_USERNAME_PATTERN
    assert substdef(text, "PBX_AOR_PATTERN") == AOR_PATTERN
    assert substdef(text, "PBX_SITE_AREA_CODE") == "069"
    assert substdef(text, "PBX_SITE_CITY") == "Frankfurt am Main"
    assert re.search(rf"^tos={TOS_CS3}$", text, re.M)  # numeric CS3, never a symbolic name
    assert substdef(text, "PBX_TRUSTED_SOURCES").split(",") == node["trusted_sources"]
    assert re.search(r"^#!define PBX_HAS_TRUSTED_SOURCES$", text, re.M)
    # The per-peer modparams of the second inclusion: DMQ peers by IP, relay sets 0/1.
    for peer in node["dmq_peers"]:
        assert f'modparam("dmq", "notification_address", "sip:{peer}:5090")' in text
    assert 'modparam("rtpengine", "rtpengine_sock", "0 == udp:10.231.1.21:2223")' in text
    assert 'modparam("rtpengine", "rtpengine_sock", "1 == udp:10.231.2.21:2223")' in text

    listens = re.findall(r"^listen=(.*)$", text, re.M)
    public, internal = node["listen"]
    assert listens == [
        f"udp:{public}:5060 advertise {node['advertise']}:5060",
        f"tcp:{public}:5060 advertise {node['advertise']}:5060",
        f"udp:{internal}:5060",
        f"tcp:{internal}:5060",
        f"tls:{public}:5061 advertise {node['advertise']}:5061",
        f"tls:{public}:8443 advertise {node['advertise']}:8443",
        f"udp:{node['vip']}:5060",
        f"tcp:{node['vip']}:5060",
        f"tls:{node['vip']}:5061",
        f"tls:{node['vip']}:8443",
        f"udp:{internal}:5090",
        f"tcp:{internal}:9070",  # Prometheus metrics, internal only
    ]
    assert substdef(text, "PBX_VIP") == node["vip"]


def test_kamailio_node_cfg_renders_empty_lists(render):
    text = render("kamailio/node.cfg.j2", samples.KAMAILIO_MINIMAL)
    assert substdef(text, "PBX_DMQ_PEERS") == ""
    assert substdef(text, "PBX_RTPENGINE_REMOTE") == ""
    assert "notification_address" not in text
    assert '"1 == ' not in text
    assert len(re.findall(r"^listen=", text, re.M)) == 10  # 6 own, 4 on the site's address
    # No trusted sources: the check is compiled out (route[TRUSTED_SOURCE] is never true).
    assert "PBX_TRUSTED_SOURCES" not in text


@pytest.mark.parametrize("key", sorted(samples.KAMAILIO_FRA_1))
def test_kamailio_node_cfg_requires_every_key(render, key):
    node = copy.deepcopy(samples.KAMAILIO_FRA_1)
    del node[key]
    with pytest.raises(jinja2.UndefinedError):
        render("kamailio/node.cfg.j2", node)


def test_kamailio_exempts_trusted_sources_from_pike_alone():
    """A trusted source skips pike_check_req() and nothing else of route[REQINIT]: the ban
    check before it and the scanner check after it apply to every source outside the platform."""
    text = (Path(__file__).resolve().parents[2] / "kamailio/kamailio.cfg").read_text()
    reqinit = re.search(r"^route\[REQINIT\] \{\n(.*?)^\}", text, re.M | re.S)
    assert reqinit
    body = reqinit.group(1)
    assert body.count("TRUSTED_SOURCE") == 2  # the comment and the one call
    guarded = re.search(r"if \(!route\(TRUSTED_SOURCE\)\) \{\n(.*?)\n\t\t\}\n", body, re.S)
    assert guarded
    assert "pike_check_req()" in guarded.group(1)
    assert body.count("pike_check_req()") == 1
    assert body.index("$sht(ipban=>$si) != $null") < guarded.start()
    assert body.index("friendly-scanner") > guarded.end()
    trusted = re.search(r"^route\[TRUSTED_SOURCE\] \{\n(.*?)^\}", text, re.M | re.S)
    assert trusted
    assert "#!ifdef PBX_HAS_TRUSTED_SOURCES" in trusted.group(1)
    assert 'is_in_subnet("$si", "PBX_TRUSTED_SOURCES")' in trusted.group(1)
    assert 'loadmodule "ipops.so"' in text


def test_kamailio_routing_config_is_the_same_for_every_node():
    """Per-node values live only in node.cfg: the routing file names no address."""
    text = (Path(__file__).resolve().parents[2] / "kamailio/kamailio.cfg").read_text()
    assert 'include_file "/etc/kamailio/node.cfg"' in text
    assert not re.search(r"\b\d+\.\d+\.\d+\.\d+\b", text)
    assert 'modparam("ctl", "binrpc", "tcp:PBX_INTERNAL:PBX_RPC_PORT")' in text
    # Values of the app and the topology come through node.cfg, never as copies.
    assert '"PBX_CARRIER_CALLER"' in text
    assert f'"{CARRIER_CALLER}"' not in text
    # The emergency numbers are the app's list (node.cfg), never restated in the logic.
    assert "PBX_EMERGENCY_NUMBERS" in text
    logic = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not [n for n in EMERGENCY_NUMBERS if re.search(rf"\b{n}\b", logic)]
    # So is the per-call privacy prefix.
    assert "PBX_PRIVACY_PREFIX" in logic
    assert PRIVACY_PREFIX not in logic
    assert not re.search(r"^tos=", text, re.M)


@pytest.mark.parametrize(
    "node", [samples.KAMAILIO_FRA_1, samples.KAMAILIO_MINIMAL], ids=lambda n: n["name"]
)
def test_kamailio_accepts_rendered_config(built_images, render, tmp_path, node):
    node_cfg = tmp_path / "node.cfg"
    node_cfg.write_text(render("kamailio/node.cfg.j2", node))
    node_cfg.chmod(0o644)
    result = docker(
        "run", "--rm", "--network", "none",
        "-e", "PBX_DB_CLUSTER_LOCAL=local=>postgres://kamailio:pw@10.231.0.41:5432/pbx",
        "-e", "PBX_DB_CLUSTER_REMOTE=remote=>postgres://kamailio:pw@10.231.0.141:5432/pbx",
        "-e", "PBX_INTERNAL_TOKEN=image-test-token",
        "-e", "PBX_AUTH_SECRET=image-test-nonce-secret",
        "-v", f"{node_cfg}:/etc/kamailio/node.cfg:ro",
        "--entrypoint", "kamailio", image("kamailio"), "-c", "-f", KAMAILIO_CFG,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "config file ok" in output
    for address in node["listen"]:
        assert f"udp: {address} [{address}]:{node['sip_port']}" in output
        assert f"tcp: {address} [{address}]:{node['sip_port']}" in output
    assert f"advertise udp:{node['advertise']}:{node['sip_port']}" in output
    # The site's shared address, bound on every proxy of the site.
    assert f"udp: {node['vip']} [{node['vip']}]:{node['sip_port']}" in output


KEEPALIVED_FRA_1 = {
    "name": "fra-sip-proxy-1",
    "site": "fra",
    "address": "10.231.1.11",
    "peers": ["10.231.1.12"],
    "vip": "10.231.1.10",
    "prefix": 24,
    "router_id": 50,
    "priority": 150,
}


def test_keepalived_accepts_rendered_config(built_images, render, tmp_path):
    text = render("kamailio/keepalived.conf.j2", KEEPALIVED_FRA_1)
    assert "interface @10.231.1.11" in text  # the entrypoint names the interface at start
    conf = tmp_path / "keepalived.conf"
    conf.write_text(text.replace("interface @10.231.1.11", "interface eth0"))
    conf.chmod(0o644)
    result = docker(
        "run", "--rm", "--network", "bridge", "-v", f"{conf}:/etc/keepalived/keepalived.conf:ro",
        "--entrypoint", "keepalived", image("kamailio"), "--config-test",
        "--use-file=/etc/keepalived/keepalived.conf",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# ---- rtpengine ------------------------------------------------------------------------------


def conf_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([a-z-]+)\s*=\s*(.*?)\s*$", line)
        if m:
            assert m.group(1) not in values, f"{m.group(1)} set twice"
            values[m.group(1)] = m.group(2)
    return values


def test_rtpengine_conf_places_every_value(render):
    node = samples.RTPENGINE_FRA
    text = render("rtpengine/rtpengine.conf.j2", node)
    assert "[rtpengine]" in text.splitlines()
    values = conf_values(text)
    ng_host = node["ng_listen"].rsplit(":", 1)[0]
    assert values["interface"] == (
        f"public/{node['interface']}!{node['advertise']};backbone/{ng_host}"
    )
    assert values["listen-ng"] == node["ng_listen"]
    assert values["listen-cli"] == node["cli_listen"]
    assert values["port-min"] == str(node["port_min"])
    assert values["port-max"] == str(node["port_max"])
    assert values["tos"] == "184"  # numeric EF, never a symbolic name
    assert values["table"] == "-1"  # no kernel module in containers
    assert values["foreground"] == "true"
    assert values["log-stderr"] == "true"
    assert node["name"] in text


@pytest.mark.parametrize("key", sorted(samples.RTPENGINE_FRA))
def test_rtpengine_conf_requires_every_key(render, key):
    node = dict(samples.RTPENGINE_FRA)
    del node[key]
    with pytest.raises(jinja2.UndefinedError):
        render("rtpengine/rtpengine.conf.j2", node)


# ---- labdns ---------------------------------------------------------------------------------


def test_dnsmasq_conf_places_every_record(render):
    node = samples.DNS_FRA
    text = render("labdns/dnsmasq.conf.j2", node)
    lines = text.splitlines()
    assert f"listen-address={node['listen']}" in lines
    assert f"local=/{node['domain']}/" in lines
    assert "no-resolv" in lines
    assert not any(line.startswith(("server=", "dhcp-range")) for line in lines)
    assert [line for line in lines if line.startswith("host-record=")] == [
        f"host-record={a['name']},{a['address']}" for a in node["a_records"]
    ]
    assert [line for line in lines if line.startswith("srv-host=")] == [
        f"srv-host={s['name']},{s['target']},{s['port']},{s['priority']},{s['weight']}"
        for s in node["srv_records"]
    ]


def test_dnsmasq_accepts_rendered_config(built_images, render, tmp_path):
    conf = tmp_path / "pbx.conf"
    conf.write_text(render("labdns/dnsmasq.conf.j2", samples.DNS_FRA))
    conf.chmod(0o644)
    result = docker(
        "run", "--rm", "--network", "none",
        "-v", f"{conf}:/etc/dnsmasq.d/pbx.conf:ro",
        "--entrypoint", "dnsmasq", image("labdns"), "--test", "--conf-file=/etc/dnsmasq.d/pbx.conf",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syntax check OK" in result.stdout + result.stderr


# ---- every image ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["kamailio", "rtpengine", "postgres", "etcd", "labdns", "smtpsink"]
)
def test_image_declares_the_healthcheck(built_images, name):
    result = docker(
        "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", image(name)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '["CMD","pbx-healthcheck"]'
    which = docker("run", "--rm", "--network", "none", "--entrypoint", "test", image(name),
                   "-x", "/usr/local/bin/pbx-healthcheck")  # fmt: skip
    assert which.returncode == 0, f"{image(name)} has no executable /usr/local/bin/pbx-healthcheck"
