"""Copies that cannot import Python (shell, SQL, Dockerfiles, Ansible defaults, Kamailio's
routing file): each must equal its one definition, or this fails.

Values Kamailio needs per deployment come through the rendered node.cfg instead
(tests/images/test_templates.py, tests/iac/test_program.py); what stays here are names and
numbers a file must spell out itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pbx_app import subscriber_view
from pbx_app.api.internal import TOKEN_HEADER, router
from pbx_infra.topology import KBIT_PER_VOICE_CHANNEL, TOS_CS3, TOS_EF, Ports

REPO = Path(__file__).resolve().parents[2]
PORTS = Ports()


def read(path: str) -> str:
    return (REPO / path).read_text()


def role_defaults(role: str) -> dict:
    return dict(yaml.safe_load(read(f"roles/{role}/defaults/main.yml")))


def test_voice_role_defaults_are_the_topologys() -> None:
    qos = role_defaults("voice_qos")
    assert qos["voice_qos_sip_ports"] == [PORTS.sip, PORTS.sip_tls, PORTS.sip_wss]
    # DSCP is the TOS byte's upper six bits.
    assert (qos["voice_qos_sip_dscp"], qos["voice_qos_rtp_dscp"]) == (TOS_CS3 >> 2, TOS_EF >> 2)
    assert qos["voice_qos_kbit_per_channel"] == KBIT_PER_VOICE_CHANNEL
    firewall = role_defaults("voice_firewall")
    assert (
        firewall["voice_firewall_sip_port"],
        firewall["voice_firewall_sip_tls_port"],
        firewall["voice_firewall_sip_wss_port"],
    ) == (PORTS.sip, PORTS.sip_tls, PORTS.sip_wss)


def test_kamailio_image_names_the_topologys_ports() -> None:
    (expose,) = re.findall(r"^EXPOSE (.*)$", read("kamailio/Dockerfile"), re.M)
    assert set(expose.split()) == {
        f"{PORTS.sip}/udp",
        f"{PORTS.sip}/tcp",
        f"{PORTS.sip_tls}/tcp",
        f"{PORTS.sip_wss}/tcp",
        f"{PORTS.rpc}/tcp",
    }
    # Without node.cfg's value the healthcheck falls back to the default SIP port.
    fallbacks = re.findall(
        r'node_value\("PBX_SIP_PORT"\) or (\d+)', read("kamailio/pbx-healthcheck")
    )
    assert fallbacks == [str(PORTS.sip)]


def test_lab_carrier_answers_on_the_sip_port() -> None:
    """node_config.carrier_socket sends the lab's external calls to the carrier on ports.sip."""
    # The carrier's router takes the trunk; its healthcheck calls through it.
    assert re.findall(r"^listen=udp:CARRIER:(\d+)$", read("carrier/kamailio.cfg"), re.M) == [
        str(PORTS.sip)
    ]
    assert f"${{address}}:{PORTS.sip}" in read("carrier/pbx-healthcheck")


def test_everyone_names_the_view_the_app_creates() -> None:
    view = subscriber_view.VIEW
    kamailio_cfg = read("kamailio/kamailio.cfg")
    # The proxies read credentials (route[CREDENTIALS]) and pub-gruu owners from the view only.
    queried = set(re.findall(r"FROM (\w+) WHERE username", kamailio_cfg))
    assert queried == {view}, queried
    assert f"FROM {view} LIMIT 1" in read("kamailio/pbx-kamailio-entrypoint")
    bootstrap = read("postgres/pbx-db-bootstrap")
    assert f"to_regclass('public.{view}')" in bootstrap
    assert f"GRANT SELECT ON public.{view} TO kamailio" in bootstrap
    # The credential query selects columns the view has.
    (select,) = re.findall(rf"SELECT (domain, ha1, .*?) FROM {view} WHERE", kamailio_cfg)
    selected = {re.sub(r"\W.*", "", c.strip()) for c in select.split(", ")}
    selected |= set(re.findall(r"WHEN (\w+) THEN", select)) | set(
        re.findall(r"EPOCH FROM (\w+)", select)
    )
    columns = set(re.findall(r" AS (\w+)", subscriber_view.select_sql("postgresql")))
    wanted = {"domain", "ha1", "aor", "max_contacts", "customer_id", "srtp_required",
              "business_option", "trial_ends_at"}  # fmt: skip
    assert wanted <= selected, wanted - selected
    assert wanted <= columns, wanted - columns


def test_kamailio_asks_the_route_api_with_its_token_header() -> None:
    kamailio_cfg = read("kamailio/kamailio.cfg")
    assert f'"{TOKEN_HEADER}: " + PBX_TOKEN_VALUE' in kamailio_cfg
    (path,) = re.findall(r'"\$var\(base\)(/[\w/]+)\?\$var\(query\)"', kamailio_cfg)
    assert path in {route.path for route in router.routes}  # type: ignore[attr-defined]
    # the query names the parameters the route API reads
    (query,) = re.findall(r'\$var\(query\) = "caller=" .*', kamailio_cfg)
    for name in ("caller=", "&target=", "&div="):
        assert name in query, query
