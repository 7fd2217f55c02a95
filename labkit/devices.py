"""Test devices: throwaway containers of the SIP client image (sipp, baresip, tcpdump) on a site
network, at client addresses of the lab (labkit.lab.TEST_HOSTS) with that site's DNS server.
Every container a pool starts is removed by remove_all(). Also: the demo tenant's credentials,
and AORs as the proxies see them."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .control import unban
from .docker import docker, remove, shell
from .lab import (
    CA_FILE,
    DB_CONTAINERS,
    SCENARIOS,
    SIPCLIENT_DIR,
    SIPCLIENT_IMAGE,
    SITES,
    TEST_HOSTS,
    client_address,
    sip_target,
)
from .wait import wait_for

PREFIX = f"pbx-test-{os.getpid()}"  # this process's test containers
STALE = "^pbx-test-"  # any test process's


def build_sipclient() -> str:
    """The client image, always through the build cache: an edited Dockerfile must not meet a
    stale image."""
    docker("build", "-q", "-t", SIPCLIENT_IMAGE, str(SIPCLIENT_DIR), timeout=600, check=True)
    return SIPCLIENT_IMAGE


def unique_call_id() -> str:
    """A sipp -cid_str that no earlier run produced. sipp's default (call number, pid, IP) repeats
    in every fresh container, so a new REGISTER would reuse the Call-ID of a binding an earlier
    run left behind with a CSeq that is not higher (the registrar refuses it as out of order),
    and a new call would reuse a Call-ID that rtpengine still holds in its delete delay."""
    return f"%u-%p-{time.time_ns():x}@%s"


@dataclass(frozen=True)
class PlacedCall:
    """A call a test device placed (Device.call): its Call-ID and the final answer it got."""

    call_id: str
    status: str
    user: str
    target: str
    proxy: str


# Every call placed in this process, in order: labkit.call_records checks that each has its
# call record.
PLACED: list[PlacedCall] = []


def device_creds(tenant: dict[str, Any], index: int, key: str = "devices") -> tuple[str, str]:
    d = tenant[key][index]
    return d["sip_username"], d["sip_password"]


def extension_of(tenant: dict[str, Any], index: int, key: str = "devices") -> str:
    return str(tenant[key][index]["extension"])


def aor_for(username: str) -> str:
    """A device's AOR, read from the app's view as the proxies see it."""
    aor, r = "", None
    query = f"SELECT aor FROM kamailio_subscriber WHERE username = '{username}'"  # noqa: S608 (demo names)
    for db in DB_CONTAINERS:  # either member (one may be down)
        r = docker(
            "exec", "-u", "postgres", db, "psql", "-h", "/run/postgresql", "-X", "-At", "-d",
            "pbx", "-c", query,
        )  # fmt: skip
        aor = r.stdout.strip()
        if aor:
            break
    assert aor, f"no kamailio_subscriber row with an aor for {username}: {r and r.stderr}"
    return aor


def _status(pattern: str, r: subprocess.CompletedProcess[str]) -> str:
    m = re.search(pattern, r.stdout)
    return m.group(1).strip() if m else f"no final answer ({r.stdout.strip()} {r.stderr})"


@dataclass
class Device:
    """A test container on a site network; runs sipp/baresip/tcpdump inside."""

    name: str
    site: str
    ip: str
    extra_ips: dict[str, str] = field(default_factory=dict)

    def sh(self, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return shell(self.name, script, timeout=timeout)

    def register(
        self,
        user: str,
        password: str,
        proxy: str,
        transport: str = "u1",
        port: int = 5070,
        expires: int = 300,
        ip: str = "",
        timeout: int = 15,
        call_id: str = "",
    ) -> str:
        """REGISTER with digest auth (Call-ID `call_id`, else a fresh one, as after a reboot);
        returns the final status line ("200 OK", ...)."""
        log = f"/tmp/reg-{user}-{port}-{time.monotonic_ns()}.log"
        r = self.sh(
            f"printf 'SEQUENTIAL\\n{user};\\n' > /tmp/u-{user}.csv && "
            f"cd /etc/sipclient && timeout {timeout + 5} sipp "
            f"{sip_target(proxy, tls=transport == 'l1')} -sf /scen/register.xml "
            f"-inf /tmp/u-{user}.csv -au {user} -ap '{password}' -set expires {expires} "
            f"-cid_str {call_id or unique_call_id()} "
            f"-t {transport} -i {ip or self.ip} -p {port} -m 1 -nostdin -timeout {timeout}s "
            # sipp's global -timeout does not end a run that is still retransmitting to a dead
            # target; a receive timeout does (a phone giving up on one SRV target).
            f"-recv_timeout {timeout * 1000} "
            f"-trace_logs -log_file {log} >/dev/null 2>&1; cat {log}",
            timeout=timeout + 15,
        )
        return _status(rf"STATUS {re.escape(user)} (\d+ [^\n]*)", r)

    def answer(self, port: int = 5070, ip: str = "", scenario: str = "answer") -> None:
        """Answer one call on `port` in the background, echoing RTP (scenarios/answer.xml; or
        another UAS scenario, e.g. "busy"). Returns once the answering sipp listens (an INVITE
        arriving before that would go unanswered)."""
        address = f"{ip or self.ip}:{port}"
        # The previous sipp on this port (a registration, an earlier answerer) must be gone.
        wait_for(lambda: not self.udp_bound(address), 15, what=f"{address} free in {self.name}")
        self.sh(
            f"cd /tmp && rm -f /tmp/ans-{port}.log && (timeout 120 sipp -sf /scen/{scenario}.xml "
            f"-i {ip or self.ip} -p {port} -aa -rtp_echo -nostdin -trace_logs "
            f"-log_file /tmp/ans-{port}.log > /dev/null 2>&1 &)"
        )
        wait_for(lambda: self.udp_bound(address), 15, what=f"sipp answering on {address}")

    def stop_answering(self, port: int = 5070) -> None:
        """End a UAS that answer() started on `port` and is still waiting (a call that never
        came: it went elsewhere), so the port can take the next one."""
        self.sh(f"pkill -f 'sipp -sf /scen/[a-z_]*.xml -i [0-9.]* -p {port} ' || true")
        wait_for(
            lambda: not self.udp_bound(f"{self.ip}:{port}"), 15, what=f"{port} free in {self.name}"
        )

    def udp_bound(self, address: str) -> bool:
        port = address.rsplit(":", 1)[1]
        bound = self.sh(f"ss -Hlun 'sport = :{port}'").stdout
        return any(address in line for line in bound.splitlines())

    def answered(self, port: int = 5070) -> str:
        return self.sh(f"cat /tmp/ans-{port}.log 2>/dev/null").stdout

    def call(
        self,
        target: str,
        user: str,
        password: str,
        proxy: str,
        hold_ms: int = 2000,
        port: int = 5080,
        ip: str = "",
        timeout: float = 30,
        call_id: str = "",
        scenario: str = "call",
        sets: dict[str, str] | None = None,
    ) -> str:
        """Place one call (Call-ID `call_id`, else a fresh one; scenarios/`scenario`.xml, a
        UAC with call.xml's variables and `sets`); returns the INVITE's final status line."""
        log = f"/tmp/call-{port}-{time.monotonic_ns()}.log"
        extra = "".join(f" -set {k} '{v}'" for k, v in (sets or {}).items())
        # A Call-ID known here (one call per sipp run), so its call record can be found.
        call_id = call_id or f"{uuid.uuid4().hex}@{ip or self.ip}"
        r = self.sh(
            f"cd /tmp && timeout {int(timeout)} sipp {sip_target(proxy)} -sf /scen/{scenario}.xml "
            f"-s '{target}' -set caller {user} -set hold {hold_ms}{extra} "
            f"-au {user} -ap '{password}' "
            f"-cid_str {call_id} "
            f"-i {ip or self.ip} -p {port} -m 1 -nostdin -timeout {int(timeout) - 2}s "
            f"-trace_logs -log_file {log} >/dev/null 2>&1; cat {log}",
            timeout=timeout + 10,
        )
        status = _status(r"STATUS (\d+ [^\n]*)", r)
        PLACED.append(PlacedCall(call_id, status, user, target, proxy))
        return status


class Devices:
    """A pool of devices named `<prefix>-<label>`, at client addresses from `hosts`."""

    def __init__(
        self, image: str = SIPCLIENT_IMAGE, prefix: str = PREFIX, hosts: Iterable[int] = TEST_HOSTS
    ) -> None:
        self.image, self.prefix = image, prefix
        self.started: list[str] = []
        self.hosts = {site: iter(hosts) for site in SITES}

    def next_ip(self, site: str) -> str:
        return client_address(site, next(self.hosts[site]))

    def start(self, label: str, site: str, ip: str = "", also: tuple[str, ...] = ()) -> Device:
        """A device in `site`; `also` joins further site networks (a device on the internet)."""
        ip = ip or self.next_ip(site)
        name = self.claim(label)
        docker(
            "create", "--name", name, "--network", SITES[site]["net"], "--ip", ip,
            "--dns", SITES[site]["dns"], "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
            "-v", f"{SCENARIOS}:/scen:ro", "-v", f"{CA_FILE}:/ca.pem:ro",
            self.image,
        )  # fmt: skip
        extra = {}
        for other in also:
            extra_ip = self.next_ip(other)
            docker("network", "connect", "--ip", extra_ip, SITES[other]["net"], name, check=True)
            extra[other] = extra_ip
        docker("start", name, check=True)
        # A ban left by an earlier run (flood/auth tests reuse addresses) must not leak in.
        unban(ip, *extra.values())
        return Device(name, site, ip, extra)

    def claim(self, label: str) -> str:
        """A container name of this pool, free (an older one removed) and removed at the end."""
        name = f"{self.prefix}-{label}"
        self.started.append(name)
        remove(name)
        return name

    def tcpdump(self, label: str, netns_of: str, *args: str, volumes: tuple[str, ...] = ()) -> str:
        """tcpdump with `args` in another container's network namespace, once it listens;
        returns the capture container (its output in `docker logs`)."""
        name = self.claim(f"cap-{label}")
        mounts = [a for v in volumes for a in ("-v", v)]
        docker(
            "run", "-d", "--name", name, "--network", f"container:{netns_of}", *mounts,
            "--entrypoint", "tcpdump", self.image, *args,
            check=True,
        )  # fmt: skip
        wait_for(lambda: "listening on" in docker("logs", name).stderr, 10, what=f"{name}")
        return name

    def capture(self, netns_of: str, label: str, bpf: str, *flags: str) -> str:
        """A text capture (default: verbose, shows the TOS byte) of `bpf` in `netns_of`."""
        return self.tcpdump(label, netns_of, "-i", "any", "-nn", *(flags or ("-v",)), "-l", bpf)

    def remove_all(self) -> None:
        for name in reversed(self.started):
            remove(name)

    @staticmethod
    def remove_stale() -> None:
        """Containers of earlier, interrupted test runs would hold the addresses."""
        stale = docker("ps", "-aq", "--filter", f"name={STALE}").stdout.split()
        if stale:
            remove(*stale)


def scenario_text(name: str) -> str:
    """A sipp scenario of labkit/scenarios, for a container that does not mount them."""
    return (SCENARIOS / f"{name}.xml").read_text()


def logged_time(log: str, event: str) -> float | None:
    """When a scenario logged `event` ("INVITE", "CANCEL", "ARRIVED": "<event> <s> <us>", the
    values of sipp's gettimeofday), in seconds since the epoch; None if it did not."""
    m = re.search(rf"^{event} (\d+)(?:\.\d+)? (\d+)(?:\.\d+)?$", log, re.M)
    return int(m.group(1)) + int(m.group(2)) / 1e6 if m else None


def logged_diversion(log: str) -> str:
    """The Diversion header a scenario logged for the INVITE it received ('' without one)."""
    m = re.search(r"^DIVERSION Diversion: ?(.*)$", log, re.M)
    return m.group(1).strip() if m else ""
