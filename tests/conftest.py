"""Suite-wide conventions: tests that need Docker images run with the lab (`make test-lab`)."""

from __future__ import annotations

import subprocess

import pytest
from argon2 import PasswordHasher

from labkit.hosts import STAND_INS
from pbx_app import security

# The lab, the demo tenant and the test device pool: one instance per run for every suite.
pytest_plugins = ["tests.lab_fixtures"]

# Fixtures that mean "this test drives real containers": such tests are part of the `lab` run,
# which comes after the host layer has installed Docker and the images are built.
_NEEDS_DOCKER = {"built_images", "engine", "converged_stand_ins"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _NEEDS_DOCKER & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
    # Tests that stop parts of the lab (a whole site, a proxy) run after everything that needs
    # the lab whole, so their after-effects (relays marked down, stale bindings) touch no one.
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 at its production cost (a few tenths of a second per hash on this machine) in
    every fixture's users and logins was most of the unit phase; what the tests check of
    passwords does not depend on the cost. Tests that measure logins keep it (`real_argon2`)."""
    if request.node.get_closest_marker("real_argon2") is not None:
        return
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(security, "_hasher", cheap)
    monkeypatch.setattr(security, "_DUMMY_HASH", cheap.hash("not a password"))


@pytest.fixture(scope="session")
def converged_stand_ins() -> None:
    """The sites' stand-in hosts, up and converged by the voice-host roles (`make lab-hosts`)."""
    probe = subprocess.run(
        ["docker", "exec", STAND_INS["fra"], "nft", "list", "table", "inet", "pbx_qos"],
        capture_output=True,
        check=False,
    )
    if probe.returncode == 0:
        return
    run = subprocess.run(
        ["make", "--no-print-directory", "lab-hosts"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if run.returncode != 0:
        pytest.fail(f"`make lab-hosts` failed:\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}")
