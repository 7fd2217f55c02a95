"""`make down` removes what the lab created and nothing else. Runs last: it destroys the lab."""

from __future__ import annotations

import subprocess

import pytest

from pbx_infra.lab.declared import REPO

pytestmark = [pytest.mark.lab, pytest.mark.teardown]


def test_down_removes_the_lab_and_nothing_else(engine) -> None:
    # Objects that are not the lab's, one of them even named like it: they must survive.
    bystanders = {
        "network": engine.networks.create("pbx-lab-bystander", labels={"pbx.platform": "other"}),
        "volume": engine.volumes.create("pbx-lab-bystander-data"),
        "container": engine.containers.run(
            "pbx/smtpsink:lab", name="pbx-lab-bystander", labels={"pbx.site": "fra"}, detach=True
        ),
    }
    # A helper left attached to a lab network (a benchmark killed mid-run) must not block it.
    lab_network = engine.networks.list(filters={"label": "pbx.platform=pbx-lab"})[0]
    lab_network.connect(bystanders["container"])
    try:
        run = subprocess.run(
            ["make", "--no-print-directory", "down"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        mine = {"label": "pbx.platform=pbx-lab"}
        assert engine.containers.list(all=True, filters=mine) == []
        assert engine.networks.list(filters=mine) == []
        assert engine.volumes.list(filters=mine) == []
        assert not [
            n
            for n in engine.networks.list()
            if n.name.startswith("pbx-lab-") and n.name != "pbx-lab-bystander"
        ]
        leftovers = [
            c.name
            for c in engine.containers.list(all=True)
            if c.name.startswith("pbx-") and c.name != "pbx-lab-bystander"
        ]
        assert leftovers == [], f"make down left containers behind: {leftovers}"
        assert engine.networks.list(names=["pbx-labhosts"]) == []
        for kind, obj in bystanders.items():
            obj.reload()  # raises NotFound if down removed it
            assert obj.name.startswith("pbx-lab-bystander"), kind
        attached = bystanders["container"].attrs["NetworkSettings"]["Networks"]
        assert lab_network.name not in attached, attached
    finally:
        bystanders["container"].remove(force=True)
        bystanders["network"].remove()
        bystanders["volume"].remove(force=True)
