"""The Ansible inventories are generated from the stack configs and kept in step with them."""

from __future__ import annotations

import json

import pytest

from pbx_infra import topology
from pbx_infra.inventory import INVENTORIES, ansible_inventory, render_inventory
from pbx_infra.lab.declared import REPO, stack_config


@pytest.mark.parametrize("stack", sorted(INVENTORIES))
def test_committed_inventory_matches_the_stack(stack: str) -> None:
    platform = topology.load(json.loads(stack_config(stack)["pbx:platform"]))
    for rel, content in render_inventory(stack, platform).items():
        path = REPO / "inventories" / INVENTORIES[stack] / rel
        assert path.read_text() == content, f"{path} is stale: run `make inventories`"


def test_production_inventory_has_one_ssh_host_per_site(production_config) -> None:
    hosts, group_vars = ansible_inventory(topology.load(production_config))
    groups = hosts["all"]["children"]
    assert set(groups["docker_hosts"]["hosts"]) == {
        "pbx-fra-1.example-pbx.de",
        "pbx-ber-1.example-pbx.de",
        "pbx-witness.example-pbx.de",  # runs the third etcd member, no voice
    }
    assert "pbx-witness.example-pbx.de" not in groups["voice_hosts"]["hosts"]
    fra = groups["site_fra"]["hosts"]["pbx-fra-1.example-pbx.de"]
    assert fra["ansible_user"] == "deploy"
    assert fra["pbx_planned_channels"] == 2000
    assert fra["pbx_public_addresses"] == ["192.0.2.10", "192.0.2.11"]
    assert group_vars["pbx_platform_addresses"] == [
        "10.10.1.10",
        "10.10.1.11",
        "10.10.2.10",
        "10.10.2.11",
        "10.10.3.10",
    ]
    assert group_vars["pbx_ports"]["dmq"] == 5090
    assert group_vars["pbx_ports"]["etcd_peer"] == 2380
    # Two app nodes on the host: the firewall opens both HTTPS ports (people) and both
    # provisioning ports (phones) to everyone.
    assert fra["pbx_app_https_ports"] == [9443, 9444, 9543, 9544]
    assert group_vars["pbx_ports"]["app_https"] == 9443
    # Only the platform reaches the relays' control port and the capture collector (UDP), the
    # database and the metrics (TCP); SIP and HTTPS are not among them.
    assert {2223, 5090, 9060, 9094} <= set(group_vars["pbx_platform_udp_ports"])
    assert {5432, 9070, 9090, 9100} <= set(group_vars["pbx_platform_tcp_ports"])
    assert not {5060, 5061, 8443, 9443} & set(
        group_vars["pbx_platform_tcp_ports"] + group_vars["pbx_platform_udp_ports"]
    )


def test_a_new_site_value_reaches_the_inventory(production_config) -> None:
    production_config["sites"][1]["uplink_kbit"] = 12345
    hosts, _ = ansible_inventory(topology.load(production_config))
    ber = hosts["all"]["children"]["site_ber"]["hosts"]["pbx-ber-1.example-pbx.de"]
    assert ber["pbx_uplink_kbit"] == 12345
