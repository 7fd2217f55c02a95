"""What the site-loss drills need besides phones: the database cluster as Patroni reports it,
a whole site's containers, and provisioning writers that keep the API busy at both sites."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from typing import Any

import httpx

from labkit.docker import docker
from labkit.lab import PLATFORM, TENANT_FILE, app_base
from labkit.portal import keep_session
from labkit.wait import wait_for
from pbx_infra.topology import ServiceKind

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
        if r.status_code == 200:
            keep_session(client, r)
        return r.status_code == 200

    wait_for(attempt, 60, 1, f"an admin login at {site}")
    return client


class Writer:
    """Stores a numbered sequence through one site's API (a location per number) and keeps
    what the API acknowledged, what it refused and how, and its slowest answer."""

    def __init__(self, site: str, tag: str) -> None:
        self.site, self.tag = site, tag
        self.acked: list[tuple[float, str]] = []
        self.refused: dict[str, int] = {}
        self.slowest_s = 0.0
        self.stop = threading.Event()
        self.client = login(site)
        self.customer = json.loads(TENANT_FILE.read_text())["customer_id"]
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"writer-{site}")

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        area = PLATFORM.site(self.site).area_code
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
        self.thread.join(30)

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


def _backbone(site: str) -> dict[str, str]:
    """A place's containers on the backbone and their addresses there. The carriers are the
    PSTN's side of each interconnect: never cut."""
    backbone = PLATFORM.network_name(None)
    found = {}
    for inst in PLATFORM.instances(site=site):
        if inst.kind is ServiceKind.CARRIER:
            continue
        for network, address in inst.networks:
            if network == backbone:
                found[inst.container_name(PLATFORM)] = str(address)
    return found


def _drop(action: str, container: str, addresses: list[str]) -> None:
    """Insert (-I) or delete (-D) rules in the container's own network namespace that drop,
    silently, what it sends to `addresses`: peers see timeouts, as over a dead link."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", container, check=True).stdout.strip()
    for address in addresses:
        subprocess.run(
            ["nsenter", "-t", pid, "-n", "iptables", "-w", action, "OUTPUT", "-d",
             f"{address}/32", "-j", "DROP"],
            check=action == "-I",
            capture_output=True,
        )  # fmt: skip


def cut_backbone(site: str) -> tuple[dict[str, str], dict[str, str]]:
    """Cut the link between `site` and the rest (the other site and the witness): each side
    silently drops what it sends to the other, as over a failed WAN link. Traffic inside the
    site (its proxies' DMQ, its database and apps) is untouched."""
    inside, outside = _backbone(site), {}
    others = [s.name for s in PLATFORM.sites if s.name != site] + [PLATFORM.witness.name]
    for other in others:
        outside |= _backbone(other)
    for name in inside:
        _drop("-I", name, list(outside.values()))
    for name in outside:
        _drop("-I", name, list(inside.values()))
    return inside, outside


def heal_backbone(cut: tuple[dict[str, str], dict[str, str]]) -> None:
    inside, outside = cut
    for name in inside:
        _drop("-D", name, list(outside.values()))
    for name in outside:
        _drop("-D", name, list(inside.values()))


def writable(site: str) -> bool:
    """The site's member accepts writes now (asked over its own socket, so also while its
    site is cut off)."""
    r = docker(
        "exec", "-u", "postgres", DBS[site].container_name(PLATFORM), "psql", "-h",
        "/run/postgresql", "-XAtc", "select not pg_is_in_recovery()", timeout=10,
    )  # fmt: skip
    return r.stdout.strip() == "t"
