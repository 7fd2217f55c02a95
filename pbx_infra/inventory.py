"""Host lists derived from the topology: testinfra targets (and the Ansible inventory)."""

from __future__ import annotations

from dataclasses import dataclass

from .topology import Instance, Platform


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
