"""Fixtures of the SIP tests against the running lab (`make lab`), over labkit. The lab, the
demo tenant and the device pool are shared with the other lab suites (tests/lab_fixtures.py).
Each module claims the demo devices it uses (labkit.leases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit import call_records
from labkit.devices import PLACED
from labkit.lab import Site
from labkit.portal import operator


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
