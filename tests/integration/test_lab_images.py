"""A rebuilt lab image does not leave its predecessor behind: the realiser prunes our images that
a rebuild untagged, and leaves everyone else's alone."""

from __future__ import annotations

import io

import docker
import pytest

from pbx_infra.lab.realise import PLATFORM_LABEL, Realiser

pytestmark = pytest.mark.lab

TAG = "pbx-lab-prune-probe:lab"


def build(engine: docker.DockerClient, content: str, labels: dict[str, str]) -> str:
    dockerfile = f"FROM debian:trixie-slim\nRUN echo {content} > /probe\n"
    image, _ = engine.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=TAG, labels=labels, rm=True, forcerm=True
    )
    return str(image.id)


def gone(engine: docker.DockerClient, image_id: str) -> bool:
    try:
        engine.images.get(image_id)
    except docker.errors.ImageNotFound:
        return True
    return False


def test_superseded_images_are_pruned_foreign_ones_kept(engine: docker.DockerClient) -> None:
    foreign = build(engine, "foreign", {})
    ours_old = build(engine, "old", {PLATFORM_LABEL: "image"})  # untags `foreign`
    ours_new = build(engine, "new", {PLATFORM_LABEL: "image"})  # untags `ours_old`
    lines: list[str] = []
    try:
        Realiser(engine, lines.append)._prune_superseded_images()
        assert gone(engine, ours_old), lines
        assert not gone(engine, ours_new)
        assert not gone(engine, foreign), "an image not labelled as the lab's was pruned"
        assert any("superseded" in line for line in lines), lines
    finally:
        for image_id in (ours_new, foreign):
            if not gone(engine, image_id):
                engine.images.remove(image_id, force=True)
