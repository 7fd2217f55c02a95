"""Fixtures of the SIP tests against the running lab (`make lab`), over labkit.

Test devices are throwaway containers of the SIP client image (labkit.devices) on the site
networks; every one started here is removed at the end. Each module claims the demo devices it
uses (labkit.leases). A missing lab or image is a failure, never a skip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from labkit import call_records
from labkit.devices import PLACED, Devices, aor_for, build_sipclient
from labkit.docker import container_state
from labkit.lab import ALL_PROXIES, RELAYS, SITES, Site, load_tenant
from labkit.portal import operator


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


@pytest.fixture(scope="module")
def calls_recorded(lab: dict[str, Site], request: pytest.FixtureRequest) -> Iterator[None]:
    """Opt-in per module (``pytest.mark.usefixtures("calls_recorded")``): every call the
    module's devices placed that the platform answered (anything but a digest challenge or no
    answer) has exactly one call record, with the answer the caller got; checked as an operator
    once the module is done (issue 13: a CDR for every call)."""
    since, first = call_records.utc_now(), len(PLACED)
    yield
    placed = PLACED[first:]
    with operator("cdr-check@platform.test") as api:
        problems = call_records.check_recorded(api, since, placed)
    assert not problems, "calls without their call record:\n" + "\n".join(problems)
    checked = sum(map(call_records.recordable, placed))
    print(
        f"\n{request.module.__name__}: {checked} call(s) with a final answer, each with its record"
    )
