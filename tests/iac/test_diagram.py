"""The README's topology picture is drawn from the lab stack config and kept in step with it."""

from __future__ import annotations

from pbx_infra import topology
from pbx_infra.diagram import dot
from pbx_infra.lab.declared import REPO


def test_committed_diagram_matches_the_lab_stack(lab_config) -> None:
    committed = (REPO / "docs" / "topology.dot").read_text()
    assert committed == dot(topology.load(lab_config)), "run `make diagram` and commit the result"


def test_diagram_shows_every_instance(lab_config) -> None:
    platform = topology.load(lab_config)
    drawn = dot(platform)
    for inst in platform.instances():
        assert f'"{inst.name}" [label=' in drawn
    assert "synchronous replication" in drawn
    assert f'label="witness {platform.witness.name}' in drawn
