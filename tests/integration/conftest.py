from __future__ import annotations

import json

import docker
import pytest

from pbx_infra import topology
from pbx_infra.lab.declared import stack_config
from pbx_infra.topology import Platform


@pytest.fixture(scope="session")
def platform() -> Platform:
    return topology.load(json.loads(stack_config("lab")["pbx:platform"]))


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker.from_env()


def exec_in(engine: docker.DockerClient, container: str, *cmd: str, env: dict | None = None):
    result = engine.containers.get(container).exec_run(list(cmd), environment=env or {})
    return result.exit_code, result.output.decode(errors="replace")
