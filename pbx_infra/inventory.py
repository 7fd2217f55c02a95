"""The Ansible inventories, derived from the topology (testinfra targets: labkit.targets)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import yaml

from .lab.declared import REPO, stack_config
from .node_config import app_https_port, provisioning_port
from .topology import Platform, ServiceKind, Site, load

# The lab's stand-ins for the two sites' hosts: Debian containers the host roles run against
# instead of this machine, on a network of their own. The one list of them: scripts/labhosts.sh
# starts them from `python -m labkit.hosts`, which prints these.
LAB_STAND_IN_NETWORK = ("pbx-labhosts", "172.29.250.0/24")
LAB_STAND_INS = {
    "fra": ("pbx-labhost-fra", "172.29.250.11"),
    "ber": ("pbx-labhost-ber", "172.29.250.12"),
}

_HEADER = (
    "# Generated from Pulumi.{stack}.yaml by `make inventories`; do not edit (policy: {policy}).\n"
)


def _site_vars(site: Site, internal: list[str]) -> dict[str, Any]:
    return {
        "pbx_site": site.name,
        "pbx_public_addresses": [str(a) for a in site.public_addresses],
        "pbx_internal_addresses": internal,
        "pbx_rtp_ports": list(site.rtp_ports),
        "pbx_fax_media_ports": list(site.fax_media_ports),
        "pbx_planned_channels": site.planned_channels,
        "pbx_uplink_kbit": site.uplink_kbit,
    }


def ansible_inventory(platform: Platform) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hosts.yml, group_vars/all/topology.yml) for the stack's Docker hosts.

    Production: one host per site, named after its ssh:// docker_host. Lab: the stand-ins.
    """
    hosts: dict[str, dict[str, Any]] = {}
    for site in platform.sites:
        if platform.mode == "production":
            assert site.docker_host is not None
            url = urlsplit(site.docker_host)
            name = url.hostname or site.name
            host_vars = _site_vars(site, [str(a) for a in site.internal_addresses])
            if url.username:
                host_vars["ansible_user"] = url.username
            if url.port:
                host_vars["ansible_port"] = url.port
        else:
            name, address = LAB_STAND_INS[site.name]
            host_vars = _site_vars(site, [address])
        # HTTPS for people (the portal, the browser phone) and for phones fetching their
        # configuration: open to everyone like SIP.
        host_vars["pbx_app_https_ports"] = sorted(
            {
                port(platform, a)
                for a in platform.instances(ServiceKind.PBX_APP, site.name)
                for port in (app_https_port, provisioning_port)
            }
        )
        hosts[name] = host_vars
    groups: dict[str, Any] = {"voice_hosts": {"hosts": dict.fromkeys(hosts)}}
    platform_addresses = {a for h in hosts.values() for a in h["pbx_internal_addresses"]}
    if platform.mode == "production":
        # The witness is a Docker host too (it runs one etcd member), but carries no voice.
        witness = platform.witness
        assert witness.docker_host is not None
        assert witness.internal_address is not None
        url = urlsplit(witness.docker_host)
        witness_vars: dict[str, Any] = {"pbx_witness": witness.name}
        if url.username:
            witness_vars["ansible_user"] = url.username
        docker_hosts = dict.fromkeys(hosts) | {url.hostname or witness.name: witness_vars}
        groups = {"docker_hosts": {"hosts": docker_hosts}, **groups}
        platform_addresses.add(str(witness.internal_address))
    for name, host_vars in hosts.items():
        groups[f"site_{host_vars['pbx_site']}"] = {"hosts": {name: host_vars}}
    ports = platform.ports
    group_vars = {
        "pbx_platform_name": platform.name,
        "pbx_sip_domain": platform.sip_domain,
        "pbx_ports": ports.model_dump(),
        # DMQ, database, Patroni, etcd, management RPC, the app's plain HTTP, metrics, the
        # monitors and SIP capture (Ports.REACH "platform") accept traffic only from these.
        "pbx_platform_addresses": sorted(platform_addresses),
        "pbx_platform_tcp_ports": ports.platform_only("tcp"),
        "pbx_platform_udp_ports": ports.platform_only("udp"),
    }
    return {"all": {"children": groups}}, group_vars


INVENTORIES = {"production": "production", "lab": "lab-hosts"}  # stack -> inventories/<dir>


class _IndentedDumper(yaml.SafeDumper):
    """Indent list items under their key, as yamllint (ansible-lint) expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def render_inventory(stack: str, platform: Platform) -> dict[str, str]:
    """File path (relative to inventories/<dir>/) -> content."""
    hosts, group_vars = ansible_inventory(platform)
    header = _HEADER.format(stack=stack, policy="group_vars/all/policy.yml")

    def dump(data: dict[str, Any]) -> str:
        return yaml.dump(data, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False)

    return {
        "hosts.yml": "---\n" + header + dump(hosts),
        "group_vars/all/topology.yml": "---\n" + header + dump(group_vars),
    }


def main() -> None:
    for stack, directory in INVENTORIES.items():
        platform = load(json.loads(stack_config(stack)["pbx:platform"]))
        for rel, content in render_inventory(stack, platform).items():
            path = REPO / "inventories" / directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
