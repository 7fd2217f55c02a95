"""The SIP benchmark's plan: where the load comes from, which devices, which rate ladders.

Addresses come from labkit (the lab's topology): the load generator, the bare baseline and the
UAS take the first of the benchmark's client host numbers on fra's network, the load processes
the rest. The lab lists these addresses as trusted sources (topology `trusted_sources`), so the
proxies' flood limit does not ban them; digest auth and everything else still applies. Demo
devices are leased (labkit.leases), so no test uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labkit.lab import BENCH_HOSTS, REPO, SITES, client_address
from labkit.leases import lease

RESULT = REPO / "bench" / "results" / "sip_core.json"
PICTURE = REPO / "bench" / "results" / "sip_ladders.png"
BARE_CONFIG = REPO / "bench" / "bare.cfg"

SITE = "fra"
_HOSTS = [client_address(SITE, host) for host in BENCH_HOSTS]
CLIENT_IP, BARE_IP, UAS_IP = _HOSTS[:3]
SOURCES = _HOSTS[3:]  # one address per load process
OWN_IPS = [CLIENT_IP, BARE_IP, UAS_IP, *SOURCES]
FULL, FULL_CONTAINER = SITES[SITE]["proxies"][0], SITES[SITE]["proxy_containers"][0]
RELAY = SITES[SITE]["relay"]
UAS_PORT = 5071  # the callee's own SIP port (sipp UAS), in the load generator
WORK = "/tmp/bench"  # inside the load generator's container

# Load processes (sipp, one source address and one device each). The generator check runs the
# bare baseline once more with one process more: if that raises its figure by more than
# GENERATOR_MARGIN, the baseline was bound by the generator and no ratio is reported.
PROCESSES = 4
GENERATOR_MARGIN = 0.10

DEVICES = lease(
    "SIP benchmark (bench/sip_bench.py)",
    callers=range(81, 81 + PROCESSES + 1),
    callees=[80, *range(81 + PROCESSES + 1, 81 + 2 * PROCESSES + 1)],
    registrants=range(59, 59 + PROCESSES + 1),
)

# Bare baseline users (bench/bare.cfg): b<i> with password pw<i>, realm pbx.lab.
BARE_USERS = [{"sip_username": f"b{i}", "sip_password": f"pw{i}"} for i in range(PROCESSES + 1)]
BARE_CALLEES = [
    {"sip_username": f"b{i}", "sip_password": f"pw{i}"} for i in range(190, 191 + PROCESSES)
]


@dataclass(frozen=True)
class Ladder:
    """Offered rates (operations/s, all processes together): start, times `factor` per step,
    until a step does not hold; then one step between the last that held and the first that did
    not. A step lasts `seconds` (sustained, not a burst)."""

    start: float
    factor: float = 1.5
    seconds: int = 20
    max_steps: int = 9

    def rates(self) -> list[float]:
        return [round(self.start * self.factor**i) for i in range(self.max_steps)]


REGISTER_BARE = Ladder(2000)
REGISTER_FULL = Ladder(250)
CALLS_BARE = Ladder(250)
CALLS_FULL = Ladder(40)
HOLD_S = 3  # seconds a call stays up (both sides)
DRAIN_S = 4  # between steps: retransmissions and tm's finished transactions (~5 s) settle

# A step holds when, over its whole length: under 1 % of its operations failed, it completed at
# least 95 % of the offered rate, and no backlog grew (median latency of its last fifth at most
# twice that of its first fifth, or within 20 ms of it).
MAX_FAILED = 0.01
MIN_ACHIEVED = 0.95
BACKLOG_FACTOR, BACKLOG_SLACK_MS = 2.0, 20.0

PORT_MARGIN = 200  # relay ports left to everyone else
PORTS_PER_CALL = 4  # RTP + RTCP on each side of the relay

# sipp arguments of a call: the callee, the caller (for the From), the hold time (ms).
CALL_EXTRA = "-s {{callee}} -set caller {{sip_username}} -d {hold}"

DemoDevice = dict[str, Any]  # a demo device of .lab/demo-tenant.json
