"""Shared helpers for the service image tests.

These tests need the local Docker Engine and the images built from this repository
(`docker build -t pbx/<name>:lab <name>/`). A missing image is a failure, never a skip: a
green run must mean the images were actually exercised.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES = ("kamailio", "rtpengine", "postgres", "etcd", "labdns", "smtpsink")


def image(name: str) -> str:
    return f"pbx/{name}:lab"


def docker(
    *args: str, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def built_images() -> None:
    """Fail (not skip) when Docker or any service image is unavailable."""
    missing = [name for name in IMAGES if docker("image", "inspect", image(name)).returncode != 0]
    assert not missing, (
        "service images missing: "
        + ", ".join(image(m) for m in missing)
        + " (build: docker build -t pbx/<name>:lab <name>/)"
    )


@pytest.fixture(scope="session")
def render() -> Callable[[str, dict[str, Any]], str]:
    """Render a template the way pbx_infra.node_config does: StrictUndefined, no trimming."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )

    def _render(template: str, node: dict[str, Any]) -> str:
        return env.get_template(template).render(node=node)

    return _render
