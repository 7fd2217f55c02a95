from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pbx_infra.lab.declared import Declared, declare, stack_config

SECRETS = {
    "dbPassword": "db-pw",
    "dbReplicationPassword": "repl-pw",
    "appSecretKey": "app-key",
    "tlsCertificate": "-----CERT-----",
    "tlsPrivateKey": "-----KEY-----",
    "tlsCaCertificate": "-----CA-----",
    "dbKamailioPassword": "kam-pw",
    "dbRewindPassword": "rewind-pw",
    "internalApiToken": "int-token",
    "sipAuthSecret": "sip-auth",
    "credentialKeys": "k1:credential-key-of-at-least-32-chars",
}


class Stack:
    """What the Pulumi program declared for one stack, with small query helpers."""

    def __init__(self, declared: list[Declared]) -> None:
        self.declared = declared

    def of_type(self, suffix: str) -> list[Declared]:
        return [d for d in self.declared if d.type.endswith(suffix)]

    @property
    def containers(self) -> dict[str, dict[str, Any]]:
        """By name, which carries the ordinal: the order the mocks declare them in depends on
        when their outputs resolve, which differs from run to run."""
        found = {d.inputs["name"]: d.inputs for d in self.of_type("container:Container")}
        return dict(sorted(found.items()))

    def labels(self, container: dict[str, Any]) -> dict[str, str]:
        return {item["label"]: item["value"] for item in container["labels"]}

    def by_service(self, site: str, service: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.containers.values()
            if self.labels(c)["pbx.site"] == site and self.labels(c)["pbx.service"] == service
        ]

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        return dict(e.split("=", 1) for e in container["envs"])


@pytest.fixture(scope="session")
def lab() -> Stack:
    return Stack(declare("lab", stack_config("lab", SECRETS)))


@pytest.fixture(scope="session")
def production() -> Stack:
    return Stack(declare("production", stack_config("production", SECRETS)))


@pytest.fixture
def lab_config() -> dict[str, Any]:
    """A mutable copy of the lab's `pbx:platform` object."""
    return copy.deepcopy(json.loads(stack_config("lab")["pbx:platform"]))


@pytest.fixture
def production_config() -> dict[str, Any]:
    return copy.deepcopy(json.loads(stack_config("production")["pbx:platform"]))
