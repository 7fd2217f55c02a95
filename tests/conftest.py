"""Suite-wide conventions: tests that need Docker images run with the lab (`make test-lab`)."""

from __future__ import annotations

import pytest

# Fixtures that mean "this test drives real containers": such tests are part of the `lab` run,
# which comes after the host layer has installed Docker and the images are built.
_NEEDS_DOCKER = {"built_images", "engine"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _NEEDS_DOCKER & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
