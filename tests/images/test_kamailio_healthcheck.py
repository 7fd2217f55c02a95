"""The proxy healthcheck removes a peer that Kamailio 6.0.1 listed twice, and only the extra
entry (dmq.remove drops the first match): exactly one entry per peer remains."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "kamailio" / "pbx-healthcheck"


def node(host: str, local: int) -> str:
    return f"{{\n\thost: {host}\n\tport: 5090\n\tproto: *\n\tstatus: active\n\tlocal: {local}\n}}\n"


@pytest.fixture
def healthcheck() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("pbx_kamailio_healthcheck", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("listed", "removed"),
    [
        (["172.30.0.12", "172.30.0.111", "172.30.0.112"], []),
        (["172.30.0.12", "172.30.0.12", "172.30.0.111"], ["sip:172.30.0.12:5090"]),
        (["172.30.0.111"] * 3, ["sip:172.30.0.111:5090"] * 2),
    ],
    ids=["clean", "one-duplicate", "listed-three-times"],
)
def test_duplicate_dmq_peers_are_removed_once_each(
    healthcheck: ModuleType, listed: list[str], removed: list[str]
) -> None:
    # Our own node (local: 1) is listed too and is never touched.
    out = "".join(node(h, 0) for h in listed) + node("172.30.0.11", 1)
    calls: list[tuple[str, ...]] = []

    def kamcmd(*args: str) -> str:
        calls.append(args)
        return out if args == ("dmq.list_nodes",) else ""

    healthcheck.kamcmd = kamcmd
    healthcheck.remove_duplicate_dmq_peers()
    assert [a[1] for a in calls if a[0] == "dmq.remove"] == removed
