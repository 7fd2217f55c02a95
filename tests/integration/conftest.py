from __future__ import annotations

import docker
import pytest

from labkit.lab import PLATFORM
from pbx_infra.topology import Platform


@pytest.fixture(scope="session")
def platform() -> Platform:
    return PLATFORM


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker.from_env()


def exec_in(engine: docker.DockerClient, container: str, *cmd: str, env: dict | None = None):
    result = engine.containers.get(container).exec_run(list(cmd), environment=env or {})
    return result.exit_code, result.output.decode(errors="replace")
