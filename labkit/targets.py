"""What testinfra checks (`make verify`, tests/infra): the stack's service containers, its
voice hosts and its Docker hosts, as testinfra reaches them. Derived from the topology and the
generated Ansible inventory, never from a hand-written host list."""

from __future__ import annotations

from dataclasses import dataclass

from pbx_infra.inventory import ansible_inventory
from pbx_infra.topology import Instance, Platform


@dataclass(frozen=True)
class ServiceTarget:
    """One service container as testinfra reaches it: `docker://<container>` in the lab."""

    instance: Instance
    container: str

    @property
    def testinfra_spec(self) -> str:
        return f"docker://{self.container}"

    @property
    def label(self) -> str:
        return f"{self.instance.site}/{self.instance.kind.value}/{self.container}"


def service_targets(platform: Platform) -> list[ServiceTarget]:
    return [ServiceTarget(i, i.container_name(platform)) for i in platform.instances()]


@dataclass(frozen=True)
class HostTarget:
    """A host of the stack as testinfra reaches it: over SSH in production, stand-ins in the lab."""

    name: str
    site: str
    testinfra_spec: str

    @property
    def label(self) -> str:
        return f"{self.site}/host/{self.name}"


def voice_host_targets(platform: Platform) -> list[HostTarget]:
    hosts, _ = ansible_inventory(platform)
    targets = []
    for group in hosts["all"]["children"].values():
        for name, host_vars in (group["hosts"] or {}).items():
            if not host_vars:
                continue
            if platform.mode == "lab":
                spec = f"docker://{name}"
            else:
                user = host_vars.get("ansible_user")
                spec = f"ssh://{user + '@' if user else ''}{name}"
            targets.append(HostTarget(name, host_vars["pbx_site"], spec))
    return targets


def docker_host_targets(platform: Platform) -> list[HostTarget]:
    """Where the Docker Engine runs: this machine for the lab, each site's host in production."""
    if platform.mode == "lab":
        return [HostTarget("lab-host", "lab", "local://")]
    return [HostTarget(t.name, t.site, t.testinfra_spec) for t in voice_host_targets(platform)]
