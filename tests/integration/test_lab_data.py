"""A lab database volume remembers which secrets it was initialised with: a checkout with other
secrets is stopped before it starts containers against it, with a message saying what to do."""

from __future__ import annotations

import docker
import pytest

from pbx_infra.lab.declared import Declared
from pbx_infra.lab.realise import DATA_FINGERPRINT, VOLUME, Realiser, StaleData

pytestmark = pytest.mark.lab

NAME = "pbx-lab-fingerprint-probe-data"


def test_volume_of_other_secrets_is_refused(engine: docker.DockerClient) -> None:
    item = Declared(
        VOLUME, "probe", {"name": NAME, "labels": [{"label": "pbx.platform", "value": "probe"}]}
    )
    quiet = lambda _: None  # noqa: E731
    try:
        Realiser(engine, quiet, data_fingerprint="aaaa").apply([item])
        assert engine.volumes.get(NAME).attrs["Labels"][DATA_FINGERPRINT] == "aaaa"
        Realiser(engine, quiet, data_fingerprint="aaaa").apply([item])  # same secrets: kept
        with pytest.raises(StaleData, match=rf"{NAME} .*other secrets.*make down"):
            Realiser(engine, quiet, data_fingerprint="bbbb").apply([item])
        assert engine.volumes.get(NAME).attrs["Labels"][DATA_FINGERPRINT] == "aaaa"
    finally:
        engine.volumes.get(NAME).remove(force=True)
