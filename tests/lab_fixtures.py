"""The lab fixtures every lab suite shares (tests/sip, tests/browser): the running lab, the demo
tenant, the SIP client image and the pool of test devices. Loaded once for the whole session by
tests/conftest.py (pytest_plugins), so that there is one pool of device addresses per run,
whichever directories run and in whatever order.

Test devices are throwaway containers of the SIP client image (labkit.devices) on the site
networks; every one started here is removed at the end. A missing lab or image is a failure,
never a skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.devices import Devices, aor_for, build_sipclient
from labkit.docker import container_state
from labkit.lab import ALL_PROXIES, RELAYS, SITES, Site, load_tenant


@pytest.fixture(scope="session")
def lab() -> dict[str, Site]:
    """The lab's sites, once its proxies and relays are healthy."""
    needed = ALL_PROXIES + RELAYS
    # A proxy restarted moments ago (an earlier failover test) gets a bounded grace period.
    deadline = time.monotonic() + 60
    while True:
        states = {n: container_state(n) for n in needed}
        bad = {n: s for n, s in states.items() if s != "running healthy"}
        if (
            not bad
            or time.monotonic() > deadline
            or any(s in ("missing", "exited") or s.startswith("exited") for s in bad.values())
        ):
            break
        time.sleep(1)
    assert not bad, f"lab not up/healthy (run `make lab`): {bad}"
    load_tenant()
    return SITES


@pytest.fixture(scope="session")
def sipclient_image() -> str:
    return build_sipclient()


@pytest.fixture(scope="session")
def tenant() -> dict[str, Any]:
    return load_tenant()


@pytest.fixture(scope="session")
def aor_of() -> Any:
    """username -> AOR (labkit.devices.aor_for as a fixture)."""
    return aor_for


@pytest.fixture(scope="session")
def devices(lab: dict[str, Site], sipclient_image: str) -> Iterator[Devices]:
    Devices.remove_stale()
    pool = Devices(sipclient_image)
    try:
        yield pool
    finally:
        pool.remove_all()
