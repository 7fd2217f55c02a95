"""roles/docker_host on this machine (the lab's Docker host): a run after `make host` changes
nothing, and dockerd (started with or without systemd) keeps answering."""

from __future__ import annotations

import pytest

from tests.ansible.conftest import docker, run_playbook

pytestmark = pytest.mark.lab


def test_docker_host_is_idempotent_on_the_lab_host() -> None:
    first = run_playbook("playbooks/docker_hosts.yml", "inventories/lab")
    assert first.returncode == 0, first.describe()
    second = run_playbook("playbooks/docker_hosts.yml", "inventories/lab")
    assert second.returncode == 0, second.describe()
    assert second.recap["lab-host"].changed == 0, second.describe()
    assert docker("image", "inspect", "debian:trixie-slim").returncode == 0
