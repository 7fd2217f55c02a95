"""The voice host roles on two stand-in hosts: converge, then a second run changes nothing,
and the result does what it is for (DSCP on the wire, firewall verdicts, time, TLS files)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from labkit.lab import PORTS
from tests.ansible.conftest import (
    BER_ADDRESS,
    BER_HOST,
    FRA_ADDRESS,
    FRA_HOST,
    REPO,
    PlaybookRun,
    in_host,
    run_playbook,
)

pytestmark = pytest.mark.lab

INVENTORY = "inventories/lab-hosts"


@pytest.fixture(scope="module")
def converged(stand_in_hosts: tuple[str, ...]) -> tuple[PlaybookRun, PlaybookRun]:
    first = run_playbook("playbooks/voice_hosts.yml", INVENTORY)
    second = run_playbook("playbooks/voice_hosts.yml", INVENTORY)
    return first, second


def test_first_run_converges(
    converged: tuple[PlaybookRun, PlaybookRun], stand_in_hosts: tuple[str, ...]
) -> None:
    first, _ = converged
    assert first.returncode == 0, first.describe()
    for host in stand_in_hosts:
        recap = first.recap[host]
        assert recap.failed == 0, first.describe()
        assert recap.unreachable == 0, first.describe()
        assert recap.changed > 0, first.describe()


def test_second_run_changes_nothing(
    converged: tuple[PlaybookRun, PlaybookRun], stand_in_hosts: tuple[str, ...]
) -> None:
    _, second = converged
    assert second.returncode == 0, second.describe()
    for host in stand_in_hosts:
        assert second.recap[host].changed == 0, second.describe()
        assert second.recap[host].failed == 0, second.describe()


_RECEIVE_TOS = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(10)
data, anc, flags, addr = s.recvmsg(64, 64)
print(anc[0][2][0])
"""

_SEND_FROM = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
for _ in range(10):
    s.sendto(b"probe", (sys.argv[2], int(sys.argv[3])))
    time.sleep(0.3)
"""


@pytest.mark.parametrize(
    ("source_port", "dest_port", "tos"),
    [(PORTS.sip, PORTS.sip, 96), (30010, 30020, 184), (61001, PORTS.sip, 0)],
    ids=["sip-cs3", "rtp-ef", "other-unmarked"],
)
def test_dscp_marking_on_the_wire(
    converged: tuple[PlaybookRun, PlaybookRun], source_port: int, dest_port: int, tos: int
) -> None:
    script = (
        f"python3 -c '{_RECEIVE_TOS}' {dest_port} > /tmp/tos.out & pid=$!; sleep 0.5; "
        f"wait $pid; cat /tmp/tos.out"
    )
    # Receiver on ber in the background of a docker exec, sender on fra.
    receiver = subprocess.Popen(
        ["docker", "exec", BER_HOST, "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sender = in_host(
        FRA_HOST, "python3", "-c", _SEND_FROM, str(source_port), BER_ADDRESS,
        str(dest_port),
    )  # fmt: skip
    out, err = receiver.communicate(timeout=30)
    assert sender.returncode == 0, sender.stderr
    assert out.strip(), f"ber received nothing: {err}"
    assert int(out.strip().splitlines()[-1]) == tos


_CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except (TimeoutError, socket.timeout):
    print("dropped")
"""


def _verdict_from_here(address: str, port: int) -> str:
    """TCP connect from this machine (no platform host): refused = through, timeout = dropped."""
    with socket.socket() as s:
        s.settimeout(3)
        try:
            s.connect((address, port))
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "dropped"
    return "open"


def test_firewall_opens_voice_ports_to_everyone(converged: tuple[PlaybookRun, PlaybookRun]) -> None:
    assert (
        _verdict_from_here(FRA_ADDRESS, PORTS.sip_tls) == "refused"
    )  # TLS: through (nothing listens)
    assert _verdict_from_here(FRA_ADDRESS, PORTS.sip_wss) == "refused"  # WSS
    assert _verdict_from_here(FRA_ADDRESS, PORTS.app_https) == "refused"  # the portal's HTTPS


def test_firewall_keeps_internal_services_to_platform_hosts(
    converged: tuple[PlaybookRun, PlaybookRun],
) -> None:
    for port in (PORTS.db, PORTS.rpc, PORTS.app, PORTS.dmq):
        assert _verdict_from_here(FRA_ADDRESS, port) == "dropped", port
        from_ber = in_host(BER_HOST, "python3", "-c", _CONNECT, FRA_ADDRESS, str(port))
        assert from_ber.stdout.strip() == "refused", (port, from_ber.stdout, from_ber.stderr)
    assert _verdict_from_here(FRA_ADDRESS, 22) == "dropped"  # no admin networks in the lab


def test_tls_material_modes(converged: tuple[PlaybookRun, PlaybookRun]) -> None:
    listing = in_host(
        FRA_HOST, "stat", "-c", "%n %a %U",
        "/etc/pbx/tls", "/etc/pbx/tls/pbx.crt", "/etc/pbx/tls/pbx.key", "/etc/pbx/tls/pbx-ca.crt",
    )  # fmt: skip
    assert listing.stdout.split("\n")[:4] == [
        "/etc/pbx/tls 750 root",
        "/etc/pbx/tls/pbx.crt 644 root",
        "/etc/pbx/tls/pbx.key 600 root",
        "/etc/pbx/tls/pbx-ca.crt 644 root",
    ], listing.stdout


def test_tls_expiry_check_fails_on_short_validity(
    converged: tuple[PlaybookRun, PlaybookRun],
) -> None:
    tls = REPO / ".lab" / "labhosts" / "tls"
    run = run_playbook(
        "tests/ansible/playbooks/one_role.yml", INVENTORY,
        "-e", "role_under_test=tls_material",
        "-e", '{"tls_material_min_days": 4000}',
        "-e", f"tls_material_certificate_src={tls / 'server.crt'}",
        "-e", f"tls_material_private_key_src={tls / 'server.key'}",
    )  # fmt: skip
    assert run.returncode != 0, run.describe()
    assert "expires within" in run.output, run.describe()
    assert "4000 days" in run.output, run.describe()


def test_qos_budget_warns_and_can_fail(converged: tuple[PlaybookRun, PlaybookRun]) -> None:
    too_many = '{"voice_qos_planned_channels": 2000, "voice_qos_uplink_kbit": 100000}'
    warned = run_playbook(
        "tests/ansible/playbooks/one_role.yml", INVENTORY, "--check",
        "-e", "role_under_test=voice_qos", "-e", too_many,
    )  # fmt: skip
    assert warned.returncode == 0, warned.describe()
    assert "is below the" in warned.output, warned.describe()
    assert "200000 kbit/s" in warned.output, warned.describe()
    enforced = run_playbook(
        "tests/ansible/playbooks/one_role.yml", INVENTORY, "--check",
        "-e", "role_under_test=voice_qos", "-e", too_many,
        "-e", '{"voice_qos_enforce_budget": true}',
    )  # fmt: skip
    assert enforced.returncode != 0, enforced.describe()


def test_time_sync_ber_follows_fra(converged: tuple[PlaybookRun, PlaybookRun]) -> None:
    deadline = time.monotonic() + 90
    sources = ""
    while time.monotonic() < deadline:
        sources = in_host(BER_HOST, "chronyc", "-n", "sources").stdout
        if f"^* {FRA_ADDRESS}" in sources:
            return
        time.sleep(3)
    pytest.fail(f"ber never selected fra as its time source:\n{sources}")


_FETCH = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


def test_node_exporter_answers_the_platform_hosts_only(
    converged: tuple[PlaybookRun, PlaybookRun],
) -> None:
    """The host's metrics for the sites' Prometheus, on the internal address, firewalled."""
    url = f"http://{FRA_ADDRESS}:{PORTS.node_metrics}/metrics"
    fetched = in_host(BER_HOST, "python3", "-c", _FETCH, url)
    assert fetched.returncode == 0, fetched.stderr
    assert "node_cpu_seconds_total" in fetched.stdout
    assert "node_memory_MemAvailable_bytes" in fetched.stdout
    assert _verdict_from_here(FRA_ADDRESS, PORTS.node_metrics) == "dropped"
