"""The SIP benchmark's plan: where the load comes from, which demo devices, which rates.

Addresses come from labkit (the lab's topology): the load generator, the bare relay and the UAS
take the first of the benchmark's client host numbers on fra's network, the callers the rest.
Demo devices are leased (labkit.leases), so no test uses them.
"""

from __future__ import annotations

from typing import Any

from labkit.lab import BENCH_HOSTS, REPO, SITES, client_address
from labkit.leases import lease

RESULT = REPO / "bench" / "results" / "sip_core.json"
BARE_CONFIG = REPO / "bench" / "bare-relay.cfg"

SITE = "fra"
_HOSTS = [client_address(SITE, host) for host in BENCH_HOSTS]
CLIENT_IP, BARE_IP, UAS_IP = _HOSTS[:3]
SOURCES = _HOSTS[3:]  # callers
REG_SOURCES = [CLIENT_IP, UAS_IP, *SOURCES]  # the UAS starts after the REGISTER phase
OWN_IPS = [CLIENT_IP, BARE_IP, UAS_IP, *SOURCES]
FULL, FULL_CONTAINER = SITES[SITE]["proxies"][0], SITES[SITE]["proxy_containers"][0]
RELAY = SITES[SITE]["relay"]
UAS_PORT = 5071  # the callee's own SIP port (sipp UAS), in the load generator
WORK = "/tmp/bench"  # inside the load generator's container

DEVICES = lease(
    "SIP benchmark (bench/sip_bench.py)",
    callee=80,
    callers=range(81, 81 + len(SOURCES)),
    registrants=[*range(59, 70), *range(2, 10)],
)
assert len(DEVICES.many("registrants")) == len(REG_SOURCES)

# Per source: pike bans above 400 requests per 2 s; we send at most 85% of that, with at most 4
# transactions in flight (so retransmissions stay few, and so do open digest challenges).
SOURCE_BUDGET = 0.85 * 400 / 2
IN_FLIGHT = 4
REG_STEPS = (20, 35, 45, 55, 65, 75)  # REGISTER/s per source, 2 requests each (challenge)
REG_STEP_SECONDS = 5
REG_DRAIN_SECONDS = 5  # tm keeps finished DMQ transactions ~5 s: each step starts clean
BARE_REG_RATE, BARE_REG_SECONDS = 600, 3  # per source; the bare relay has no flood limit
CALL_REQS = 5  # INVITE, ACK (407), INVITE (credentials), ACK, BYE from the caller
LATENCY_SOURCES, LATENCY_RATE, LATENCY_CALLS = 4, 5, 20  # 20 calls/s for 4 s
BURST_RATE, BURST_CALLS_MAX = 30, 10  # per source: 510 calls/s offered, at most 170 calls
BARE_BURST_RATE, BARE_BURST_CALLS = 150, 100  # per source
PORT_MARGIN = 40  # relay ports left to everyone else
assert max(REG_STEPS) * 2 <= SOURCE_BUDGET
assert BURST_RATE * CALL_REQS <= SOURCE_BUDGET

CALL_EXTRA = "-s {ext} -set caller {{user}} -set hold 0"

DemoDevice = dict[str, Any]  # a demo device of .lab/demo-tenant.json
