"""Break one thing on purpose: exactly the matching `make verify` check fails, naming it.

Each case breaks the running lab, runs the testinfra suite (tests/infra) in a subprocess,
compares the failing checks with the expected ones, and repairs what it broke.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from pbx_infra.lab.declared import REPO

pytestmark = [
    pytest.mark.lab,
    pytest.mark.disruptive,
    pytest.mark.usefixtures("converged_stand_ins"),
]


def failing_checks(tmp_path: Path) -> dict[str, str]:
    """Run the verify suite; return {test id: failure message} for every failed check."""
    report = tmp_path / "verify.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "tests/infra", "-m", "lab", "-q", f"--junitxml={report}"],
        cwd=REPO,
        capture_output=True,
        timeout=600,
        check=False,
    )
    failed = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            failed[case.get("name", "")] = problem.get("message", "")
    return failed


def exec_ok(container: str, *cmd: str) -> str:
    result = docker.from_env().containers.get(container).exec_run(list(cmd))
    assert result.exit_code == 0, f"{container}: {cmd}: {result.output.decode()}"
    return result.output.decode()


def wait_healthy(container: str, timeout: float = 120) -> None:
    engine = docker.from_env()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = engine.containers.get(container)
        if c.attrs["State"].get("Health", {}).get("Status") == "healthy":
            return
        time.sleep(2)
    pytest.fail(f"{container} did not become healthy again within {timeout}s")


@contextmanager
def witness_stopped() -> Iterator[None]:
    witness = docker.from_env().containers.get("pbx-lab-witness-etcd")
    witness.stop(timeout=5)
    try:
        yield
    finally:
        witness.start()
        wait_healthy(witness.name)


@contextmanager
def dscp_rule_removed() -> Iterator[None]:
    host = "pbx-labhost-fra"
    listing = exec_ok(host, "nft", "-a", "list", "chain", "inet", "pbx_qos", "postrouting")
    handles = [
        line.rsplit("# handle ", 1)[1] for line in listing.splitlines() if "dscp set ef" in line
    ]
    assert handles, f"no EF rule to remove on {host}:\n{listing}"
    for handle in handles:
        exec_ok(host, "nft", "delete", "rule", "inet", "pbx_qos", "postrouting", "handle", handle)
    try:
        yield
    finally:
        exec_ok(host, "nft", "-f", "/etc/nftables.d/pbx_qos.nft")


@contextmanager
def proxy_stopped() -> Iterator[None]:
    proxy = docker.from_env().containers.get("pbx-lab-ber-sip-proxy-2")
    proxy.stop(timeout=5)
    try:
        yield
    finally:
        proxy.start()
        wait_healthy(proxy.name)


# Each site's Prometheus scrapes every target of both sites: either sees what stopped.
MONITORS_SEE_A_TARGET_DOWN = {
    f"test_monitor_sees_every_scrape_target_up[{site}/monitor/pbx-lab-{site}-monitor]"
    for site in ("fra", "ber")
}

CASES: dict[str, tuple[Callable[[], object], set[str], str]] = {
    # The quorum survives (two of three), so the database checks pass; the etcd checks of both
    # sites and of the witness itself say the witness is gone, and so do both monitors.
    "witness stopped": (
        witness_stopped,
        {
            "test_etcd_member_sees_all_members_and_a_quorum[fra/etcd/pbx-lab-fra-etcd]",
            "test_etcd_member_sees_all_members_and_a_quorum[ber/etcd/pbx-lab-ber-etcd]",
            "test_etcd_member_sees_all_members_and_a_quorum[witness/etcd/pbx-lab-witness-etcd]",
            *MONITORS_SEE_A_TARGET_DOWN,
        },
        "witness",
    ),
    "DSCP rule removed": (
        dscp_rule_removed,
        {"test_voice_leaves_with_dscp_marks[fra/host/pbx-labhost-fra]"},
        "no DSCP EF rule for RTP",
    ),
    "proxy stopped": (
        proxy_stopped,
        {
            "test_sip_proxy_runs_a_valid_config[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            "test_sip_proxy_listens_on_its_addresses[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            "test_management_rpc_only_on_the_internal_network[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            "test_dmq_knows_every_other_proxy_once[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            "test_sites_sip_address_is_held_by_exactly_one_proxy[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            "test_proxy_metrics_only_on_the_internal_address[ber/sip-proxy/pbx-lab-ber-sip-proxy-2]",
            *MONITORS_SEE_A_TARGET_DOWN,
        },
        "ber-sip-proxy-2",  # the monitors name it by its instance
    ),
}


def test_verify_passes_on_the_intact_lab(tmp_path) -> None:
    assert failing_checks(tmp_path) == {}


@pytest.mark.parametrize("case", list(CASES))
def test_exactly_the_matching_check_fails(case: str, tmp_path) -> None:
    breaker, expected, words = CASES[case]
    with breaker():  # type: ignore[attr-defined]
        failed = failing_checks(tmp_path)
    assert set(failed) == expected, f"{case}: failed checks {sorted(failed)}"
    for name, message in failed.items():
        assert words in message, f"{name}: message does not say what is wrong: {message!r}"
