"""testinfra against a deployment: the service containers of the stack (`make verify`).

Targets come from the topology (pbx_infra.inventory), never from a hand-written host list.
`PBX_VERIFY_STACK` picks the stack (default: lab).
"""

from __future__ import annotations

import json
import os

import docker
import pytest
import testinfra

from labkit.targets import ServiceTarget, service_targets
from pbx_infra import topology
from pbx_infra.lab.declared import stack_config
from pbx_infra.topology import ServiceKind

STACK = os.environ.get("PBX_VERIFY_STACK", "lab")
PLATFORM = topology.load(json.loads(stack_config(STACK)["pbx:platform"]))


def targets(kind: ServiceKind) -> list[ServiceTarget]:
    return [t for t in service_targets(PLATFORM) if t.instance.kind is kind]


def by_kind(kind: ServiceKind):
    """Parametrize a check over every container of one service kind, named by site/service."""
    found = targets(kind)
    return pytest.mark.parametrize("target", found, ids=[t.label for t in found])


@pytest.fixture
def platform():
    return PLATFORM


@pytest.fixture
def host(target: ServiceTarget):
    if PLATFORM.mode == "lab":  # say plainly when the container itself is gone or stopped
        try:
            state = docker.from_env().containers.get(target.container).status
        except docker.errors.NotFound:
            pytest.fail(f"{target.label}: container does not exist")
        if state != "running":
            pytest.fail(f"{target.label}: container is {state}, not running")
    return testinfra.get_host(target.testinfra_spec)
