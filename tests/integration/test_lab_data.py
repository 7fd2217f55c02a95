"""A lab database volume remembers which secrets it was initialised with: a checkout with other
secrets is stopped before it starts containers against it, with a message saying what to do."""

from __future__ import annotations

import docker
import pytest

from pbx_infra.lab.declared import Declared
from pbx_infra.lab.realise import DATA_FINGERPRINT, VOLUME, Realiser, StaleData

pytestmark = pytest.mark.lab

NAME = "pbx-lab-fingerprint-probe-data"
PROBE = Declared(
    VOLUME, "probe", {"name": NAME, "labels": [{"label": "pbx.platform", "value": "probe"}]}
)


def test_volume_of_other_secrets_is_refused(engine: docker.DockerClient) -> None:
    quiet = lambda _: None  # noqa: E731
    try:
        Realiser(engine, quiet, data_fingerprint="aaaa").apply([PROBE])
        assert engine.volumes.get(NAME).attrs["Labels"][DATA_FINGERPRINT] == "aaaa"
        Realiser(engine, quiet, data_fingerprint="aaaa").apply([PROBE])  # same secrets: kept
        with pytest.raises(StaleData, match=rf"{NAME} .*other secrets.*make down"):
            Realiser(engine, quiet, data_fingerprint="bbbb").apply([PROBE])
        assert engine.volumes.get(NAME).attrs["Labels"][DATA_FINGERPRINT] == "aaaa"
    finally:
        engine.volumes.get(NAME).remove(force=True)


def test_a_run_that_owns_the_lab_starts_afresh(engine: docker.DockerClient) -> None:
    """`make test` (--afresh-if-stale) replaces another checkout's lab instead of stopping."""
    lines: list[str] = []
    try:
        Realiser(engine, lines.append, data_fingerprint="aaaa").apply([PROBE])
        Realiser(engine, lines.append, data_fingerprint="bbbb").apply_afresh_if_stale(
            [PROBE], "probe"
        )
        assert engine.volumes.get(NAME).attrs["Labels"][DATA_FINGERPRINT] == "bbbb"
        assert any("other secrets" in line and "afresh" in line for line in lines), lines
        assert f"  removed volume    {NAME}" in lines
    finally:
        engine.volumes.get(NAME).remove(force=True)
