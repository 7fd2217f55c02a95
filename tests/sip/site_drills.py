"""What the site-loss drills need besides phones: the database cluster as Patroni reports it,
a whole site's containers, and provisioning writers that keep the API busy at both sites."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import httpx

from pbx_infra import topology
from pbx_infra.lab.declared import stack_config
from pbx_infra.node_config import app_port
from pbx_infra.topology import ServiceKind

from .conftest import TENANT_FILE, docker, wait_for

PLATFORM = topology.load(json.loads(stack_config("lab")["pbx:platform"]))
DBS = {d.site: d for d in PLATFORM.instances(ServiceKind.DB)}


def site_containers(site: str) -> list[str]:
    """Every container of the platform in `site` (the test's phones are not the platform's)."""
    out = docker(
        "ps", "-a", "--format", "{{.Names}}",
        "--filter", f"label=pbx.platform={PLATFORM.name}", "--filter", f"label=pbx.site={site}",
    ).stdout  # fmt: skip
    names = sorted(out.split())
    assert names, f"no containers of site {site}"
    return names


def kill_site(site: str) -> float:
    """SIGKILL every container of `site` in one go; returns the monotonic time of the kill."""
    names = site_containers(site)
    started = time.monotonic()
    docker("kill", *names, check=True, timeout=60)
    return started


def start_site(site: str) -> None:
    docker("start", *site_containers(site), check=True, timeout=120)


def cluster(via: str | None = None) -> dict[str, dict[str, Any]]:
    """Patroni's members by name, as the first member that answers reports them."""
    sites = [via] if via else list(DBS)
    for site in sites:
        url = f"http://{DBS[site].reach}:{PLATFORM.ports.patroni}/cluster"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return {m["name"]: m for m in json.load(response)["members"]}
        except OSError:
            continue
    return {}


def leader(via: str | None = None) -> str | None:
    found = [n for n, m in cluster(via).items() if m["role"] == "leader"]
    return found[0] if len(found) == 1 else None


def healthy_pair() -> dict[str, dict[str, Any]] | None:
    """Both members up: one leader, the other its streaming synchronous standby."""
    members = cluster()
    roles = sorted(m["role"] for m in members.values())
    streaming = all(m["state"] in ("running", "streaming") for m in members.values())
    return members if roles == ["leader", "sync_standby"] and streaming else None


def lead_from(site: str) -> None:
    """Make `site`'s member the leader (a planned switchover), so a drill loses the leader."""
    wait_for(healthy_pair, 120, 1, "a leader and a synchronous standby")
    want = DBS[site].name
    current = leader()
    if current != want:
        r = docker(
            "exec", DBS[site].container_name(PLATFORM), "patronictl", "-c",
            "/etc/patroni/patroni.yml", "switchover", "--leader", str(current),
            "--candidate", want, "--force",
        )  # fmt: skip
        assert r.returncode == 0, f"switchover to {want}: {r.stdout} {r.stderr}"
    wait_for(lambda: leader() == want and healthy_pair(), 60, 1, f"{want} leading, in sync")


def app_base(site: str, ordinal: int = 1) -> str:
    app = PLATFORM.instances(ServiceKind.PBX_APP, site)[ordinal - 1]
    return f"http://{app.address}:{app_port(PLATFORM, app)}/api/v1"


def login(site: str) -> httpx.Client:
    demo = json.loads(TENANT_FILE.read_text())
    client = httpx.Client(base_url=app_base(site), timeout=10)

    def attempt() -> bool:
        try:
            r = client.post(
                "/auth/login",
                json={"email": demo["admin_email"], "password": demo["admin_password"]},
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    wait_for(attempt, 60, 1, f"an admin login at {site}")
    return client


@dataclass
class Writer(threading.Thread):
    """Stores a numbered sequence through one site's API (a location per number) and keeps
    what the API acknowledged, what it refused and how, and how long each answer took."""

    site: str
    tag: str
    acked: list[tuple[float, str]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    slowest_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True, name=f"writer-{self.site}")
        self.client = login(self.site)
        self.customer = json.loads(TENANT_FILE.read_text())["customer_id"]

    def run(self) -> None:
        area = {"fra": "069", "ber": "030"}.get(self.site, "069")
        n = 0
        while not self.stop.is_set():
            n += 1
            name = f"{self.tag}-{self.site}-{n}"
            body = {
                "name": name,
                "street": "Probestr. 1",
                "postal_code": "10115",
                "city": "Probe",
                "area_code": area,
            }
            sent = time.monotonic()
            try:
                r = self.client.post(f"/customers/{self.customer}/locations", json=body)
                outcome = str(r.status_code)
                if r.status_code == 503:
                    assert r.headers.get("retry-after"), "503 without Retry-After"
                    outcome = f"503 {r.json()['error']['code']}"
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            took = time.monotonic() - sent
            self.slowest_s = max(self.slowest_s, took)
            if outcome == "201":
                self.acked.append((time.monotonic(), name))
            else:
                self.refused[outcome] = self.refused.get(outcome, 0) + 1
                time.sleep(0.2)
            time.sleep(0.1)

    def finish(self) -> None:
        self.stop.set()
        self.join(30)

    def first_ack_after(self, moment: float) -> float | None:
        later = [t for t, _ in self.acked if t > moment]
        return later[0] - moment if later else None


def stored_names(site: str, tag: str) -> set[str]:
    """The sequence's locations as the API lists them now (through `site`)."""
    client = login(site)
    customer = json.loads(TENANT_FILE.read_text())["customer_id"]
    r = client.get(f"/customers/{customer}/locations")
    assert r.status_code == 200, r.text
    return {item["name"] for item in r.json()["items"] if item["name"].startswith(tag)}


def remove_sequence(site: str, tag: str) -> None:
    client = login(site)
    customer = json.loads(TENANT_FILE.read_text())["customer_id"]
    for item in client.get(f"/customers/{customer}/locations").json()["items"]:
        if item["name"].startswith(tag):
            client.delete(f"/customers/{customer}/locations/{item['id']}")


def bindings(proxy: str) -> list[tuple[str, str]]:
    """Every (AOR, contact address) in a proxy's location table."""
    out = docker("exec", proxy, "kamcmd", "ul.dump", timeout=30).stdout
    found: list[tuple[str, str]] = []
    aor = ""
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("AoR:"):
            aor = line.split(":", 1)[1].strip()
        elif line.startswith("Address:"):
            found.append((aor, line.split(":", 1)[1].strip()))
    return found
