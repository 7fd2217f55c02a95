"""Shared helpers for the SIP core tests against the running lab (`make lab`).

Test devices are throwaway containers of `pbx/sipclient:lab` (sipp, baresip, tcpdump), named
`pbx-test-<pid>-*`, attached to a site network with addresses in 172.30.<site>.100-199 (free in
the topology) and that site's DNS server. Every container started here is removed at the end.
A missing lab or image is a failure, never a skip.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pbx_infra import topology
from pbx_infra.lab.declared import stack_config

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TENANT_FILE = REPO / ".lab" / "demo-tenant.json"
CA_FILE = REPO / ".lab" / "tls" / "ca.pem"
IMAGE = "pbx/sipclient:lab"
PREFIX = f"pbx-test-{os.getpid()}"


_PLATFORM = topology.load(json.loads(stack_config("lab")["pbx:platform"]))


def _site(name: str, index: int) -> dict[str, Any]:
    """A lab site as the tests reach it (addresses as in Pulumi.lab.yaml)."""
    prefix = f"172.30.{index}"
    return {
        "net": f"pbx-lab-{name}",
        "prefix": prefix,
        "dns": f"{prefix}.53",
        "proxies": [f"{prefix}.11", f"{prefix}.12"],
        "vip": str(_PLATFORM.sip_vip(name)),  # the site's shared SIP address (VRRP)
        "proxy_containers": [f"pbx-lab-{name}-sip-proxy-1", f"pbx-lab-{name}-sip-proxy-2"],
        "relay": f"pbx-lab-{name}-media-relay-1",
        "relay_ip": f"{prefix}.21",
    }


SITES = {"fra": _site("fra", 1), "ber": _site("ber", 2)}
ALL_PROXIES = [c for s in SITES.values() for c in s["proxy_containers"]]
CARRIER = "pbx-lab-fra-carrier"


def docker(
    *args: str, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"docker {' '.join(args)} timed out after {timeout}s") from e
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def wait_for(predicate: Any, timeout: float, interval: float = 0.5, what: str = "") -> Any:
    """Bounded polling: the predicate's first truthy value, or an AssertionError."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: {last!r}")


# ---- the lab ----------------------------------------------------------------------------------


def container_state(name: str) -> str:
    r = docker("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", name)
    return r.stdout.strip() if r.returncode == 0 else "missing"


def wait_proxies_healthy(names: list[str], timeout: float = 90) -> None:
    wait_for(
        lambda: all(container_state(n) == "running healthy" for n in names),
        timeout,
        1,
        f"healthy {names}",
    )


def kamcmd(container: str, *args: str) -> str:
    r = docker("exec", container, "kamcmd", *args, timeout=20)
    assert r.returncode == 0, f"kamcmd {args} on {container}: {r.stderr}"
    return r.stdout


def location_contacts(container: str, aor: str) -> list[str]:
    """Contact addresses of an AOR in a proxy's location table (empty when not found)."""
    r = docker("exec", container, "kamcmd", "ul.lookup", "location", f"{aor}@pbx.lab", timeout=20)
    if r.returncode != 0:
        return []
    return re.findall(r"Address:\s*(\S+)", r.stdout)


def only_binding(proxy: str, aor: str, marker: str) -> list[str] | None:
    """The AOR's bindings at `proxy` when there are some and all of them contain `marker`."""
    contacts = location_contacts(proxy, aor)
    return contacts if contacts and all(marker in c for c in contacts) else None


def clear_bindings(aor: str) -> None:
    """Remove every binding of an AOR on every proxy (management RPC). A UA that was killed
    leaves its binding until it expires (baresip's contact has a new port every run), and
    stale bindings count against the device's max_contacts and get the AOR's calls forked."""
    for proxy in ALL_PROXIES:
        docker("exec", proxy, "kamcmd", "ul.rm", "location", f"{aor}@pbx.lab", timeout=20)
    wait_for(
        lambda: not any(location_contacts(p, aor) for p in ALL_PROXIES),
        10,
        what=f"no bindings of {aor} left on any proxy",
    )


def relay_totals(relay: str) -> dict[str, int]:
    """rtpengine's cumulative counters (packets/bytes relayed, sessions)."""
    r = docker(
        "exec", relay, "rtpengine-ctl", "-ip", "127.0.0.1", "-port", "9900", "list", "totals"
    )
    assert r.returncode == 0, r.stderr
    values: dict[str, int] = {}
    section = ""
    for line in r.stdout.splitlines():
        if line.startswith("Total statistics"):
            section = "total:"
        elif line.startswith("Statistics over currently"):
            section = "current:"
        m = re.match(r"\s*(.+?)\s*:\s*(\d+)\s*$", line)
        if m:
            values[section + m.group(1)] = int(m.group(2))
    return values


def relay_calls(relay: str) -> str:
    """The Call-IDs a relay currently holds (rtpengine-ctl's session list)."""
    r = docker(
        "exec", relay, "rtpengine-ctl", "-ip", "127.0.0.1", "-port", "9900", "list", "sessions",
        "all",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


def unban(ip: str) -> None:
    """Lift a ban and failed-auth count for a test address on every proxy (management RPC)."""
    for proxy in ALL_PROXIES:
        docker("exec", proxy, "kamcmd", "htable.delete", "ipban", ip, timeout=20)
        docker("exec", proxy, "kamcmd", "htable.delete", "authfail", ip, timeout=20)


@pytest.fixture(scope="session")
def lab() -> dict[str, Any]:
    needed = ALL_PROXIES + [s["relay"] for s in SITES.values()]
    # A proxy restarted moments ago (an earlier failover test) gets a bounded grace period.
    deadline = time.monotonic() + 60
    while True:
        states = {n: container_state(n) for n in needed}
        bad = {n: s for n, s in states.items() if s != "running healthy"}
        if (
            not bad
            or time.monotonic() > deadline
            or any(s in ("missing", "exited") or s.startswith("exited") for s in bad.values())
        ):
            break
        time.sleep(1)
    assert not bad, f"lab not up/healthy (run `make lab`): {bad}"
    assert TENANT_FILE.exists(), f"{TENANT_FILE} missing (run `make lab`)"
    return SITES


@pytest.fixture(scope="session")
def sipclient_image() -> str:
    # Always through the build cache: an edited Dockerfile must not meet a stale image.
    docker("build", "-q", "-t", IMAGE, str(REPO / "sipclient"), timeout=600, check=True)
    return IMAGE


@pytest.fixture(scope="session")
def tenant() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TENANT_FILE.read_text())
    assert data.get("devices"), f"no devices in {TENANT_FILE}"
    return data


def aor_for(username: str) -> str:
    """A device's AOR, read from the app's view as the proxies see it."""
    for db in ("pbx-lab-fra-db", "pbx-lab-ber-db"):  # either member (one may be down)
        r = docker(
            "exec", "-u", "postgres", db, "psql", "-h", "/run/postgresql", "-X", "-At", "-d",
            "pbx", "-c", f"SELECT aor FROM kamailio_subscriber WHERE username = '{username}'",
        )  # fmt: skip
        aor = r.stdout.strip()
        if aor:
            break
    assert aor, f"no kamailio_subscriber row with an aor for {username}: {r.stderr}"
    return aor


@pytest.fixture(scope="session")
def aor_of() -> Any:
    """username -> AOR (aor_for as a fixture)."""
    return aor_for


def unique_call_id() -> str:
    """A sipp -cid_str that no earlier run produced. sipp's default (call number, pid, IP) repeats
    in every fresh container, so a new REGISTER would reuse the Call-ID of a binding an earlier
    run left behind with a CSeq that is not higher (the registrar refuses it as out of order),
    and a new call would reuse a Call-ID that rtpengine still holds in its delete delay."""
    return f"%u-%p-{time.time_ns():x}@%s"


# ---- test devices -----------------------------------------------------------------------------


@dataclass
class Device:
    """A test container on a site network; runs sipp/baresip/tcpdump inside."""

    name: str
    site: str
    ip: str
    extra_ips: dict[str, str] = field(default_factory=dict)

    def sh(self, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.name, "sh", "-c", script, timeout=timeout)

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
        port_opt = f"{proxy}:5061" if transport == "l1" else f"{proxy}:5060"
        log = f"/tmp/reg-{user}-{port}-{time.monotonic_ns()}.log"
        r = self.sh(
            f"printf 'SEQUENTIAL\\n{user};\\n' > /tmp/u-{user}.csv && "
            f"cd /etc/sipclient && timeout {timeout + 5} sipp {port_opt} -sf /scen/register.xml "
            f"-inf /tmp/u-{user}.csv -au {user} -ap '{password}' -set expires {expires} "
            f"-cid_str {call_id or unique_call_id()} "
            f"-t {transport} -i {ip or self.ip} -p {port} -m 1 -nostdin -timeout {timeout}s "
            # sipp's global -timeout does not end a run that is still retransmitting to a dead
            # target; a receive timeout does (a phone giving up on one SRV target).
            f"-recv_timeout {timeout * 1000} "
            f"-trace_logs -log_file {log} >/dev/null 2>&1; cat {log}",
            timeout=timeout + 15,
        )
        m = re.search(rf"STATUS {re.escape(user)} (\d+ [^\n]*)", r.stdout)
        return m.group(1).strip() if m else f"no final answer ({r.stdout.strip()} {r.stderr})"

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
    ) -> str:
        """Place one call (Call-ID `call_id`, else a fresh one); returns the INVITE's final
        status line."""
        log = f"/tmp/call-{port}-{time.monotonic_ns()}.log"
        r = self.sh(
            f"cd /tmp && timeout {int(timeout)} sipp {proxy}:5060 -sf /scen/call.xml -s {target} "
            f"-set caller {user} -set hold {hold_ms} -au {user} -ap '{password}' "
            f"-cid_str {call_id or unique_call_id()} "
            f"-i {ip or self.ip} -p {port} -m 1 -nostdin -timeout {int(timeout) - 2}s "
            f"-trace_logs -log_file {log} >/dev/null 2>&1; cat {log}",
            timeout=timeout + 10,
        )
        m = re.search(r"STATUS (\d+ [^\n]*)", r.stdout)
        return m.group(1).strip() if m else f"no final answer ({r.stdout.strip()} {r.stderr})"


class Devices:
    def __init__(self, image: str) -> None:
        self.image = image
        self.started: list[str] = []
        self.hosts = {site: itertools.count(110) for site in SITES}

    def next_ip(self, site: str) -> str:
        return f"{SITES[site]['prefix']}.{next(self.hosts[site])}"

    def start(self, label: str, site: str, ip: str = "", also: tuple[str, ...] = ()) -> Device:
        """A device in `site`; `also` joins further site networks (a device on the internet)."""
        ip = ip or self.next_ip(site)
        name = f"{PREFIX}-{label}"
        self.started.append(name)
        docker("rm", "-f", name)
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
        for address in [ip, *extra.values()]:
            unban(address)
        return Device(name, site, ip, extra)

    def remove_all(self) -> None:
        for name in reversed(self.started):
            docker("rm", "-f", name)


@pytest.fixture(scope="session")
def devices(lab: dict[str, Any], sipclient_image: str) -> Iterator[Devices]:
    # Containers of earlier, interrupted runs (our prefix only) would hold the addresses.
    stale = docker("ps", "-aq", "--filter", "name=^pbx-test-").stdout.split()
    if stale:
        docker("rm", "-f", *stale)
    pool = Devices(sipclient_image)
    try:
        yield pool
    finally:
        pool.remove_all()


def device_creds(tenant: dict[str, Any], index: int, key: str = "devices") -> tuple[str, str]:
    d = tenant[key][index]
    return d["sip_username"], d["sip_password"]


def extension_of(tenant: dict[str, Any], index: int, key: str = "devices") -> str:
    return str(tenant[key][index]["extension"])


BARESIP_CONFIG = """\
poll_method epoll
sip_listen {ip}:0
sip_cafile /ca.pem
sip_transports udp,tcp,tls
dns_server {dns}:53
audio_player aufile,{dir}/heard.wav
audio_source aufile,{dir}/tone.wav
audio_alert aufile,{dir}/alert.wav
audio_srate 8000
audio_channels 1
# No ringback tone: baresip 1.1 crashes now and then (core dump, "unsupported sample format")
# when the answer stops the ringback it plays on the aufile player.
ringback_disabled yes
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module srtp.so
module dtls_srtp.so
module_app account.so
module_app menu.so
"""


@contextmanager
def logs_on_failure(*logs: tuple[Device, str]) -> Iterator[None]:
    """A failed assertion inside also shows these (device, log path) logs' tails."""
    try:
        yield
    except AssertionError as e:
        shown = "\n".join(f"--- {d.name}:\n{d.sh(f'cat {f}').stdout[-2500:]}" for d, f in logs)
        raise AssertionError(f"{e}\n{shown}") from None


def start_baresip(
    device: Device,
    user: str,
    password: str,
    outbound: str,
    dial: str = "",
    seconds: int = 40,
    mediaenc: str = "srtp-mand",
) -> str:
    """Run baresip in the device for `seconds`: registers over `outbound`, auto-answers, and
    dials `dial` if given. Returns the path of its log inside the container."""
    directory = f"/tmp/bs-{user}"
    config = BARESIP_CONFIG.format(ip=device.ip, dns=SITES[device.site]["dns"], dir=directory)
    account = (
        f'<sip:{user}@pbx.lab;transport=tls>;auth_pass={password};outbound="{outbound}";'
        f"mediaenc={mediaenc};answermode=auto;regint=300;audio_codecs=PCMA\n"
    )
    dial_opt = f"-e '/dial {dial}'" if dial else ""
    tone = (
        "import math, struct, wave\n"
        f"w = wave.open('{directory}/tone.wav', 'wb'); w.setnchannels(1); w.setsampwidth(2)\n"
        "w.setframerate(8000)\n"
        "w.writeframes(b''.join(struct.pack('<h', int(8000 * math.sin(i / 8000 * 2 * math.pi "
        "* 440))) for i in range(8000 * 60)))\n"
    )
    r = device.sh(
        f'mkdir -p {directory} && python3 -c "{tone}" && '
        f"cat > {directory}/config <<'CFG'\n{config}CFG\n"
        f"cat > {directory}/accounts <<'ACC'\n{account}ACC\n"
        f"(timeout {seconds + 5} baresip -f {directory} {dial_opt} -t {seconds} "
        f"> {directory}/log.txt 2>&1 &)"
    )
    assert r.returncode == 0, r.stderr
    return f"{directory}/log.txt"
