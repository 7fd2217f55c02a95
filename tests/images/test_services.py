"""The proofs of each image, repeated against real containers on throwaway networks.

Networks `imgtest-<pid>-*` in 10.231.60.0/23 (not the lab's range), containers and volumes
named `imgtest-<pid>-*`; everything is removed afterwards. Health is polled with a short
`--health-interval` so the image's own `pbx-healthcheck` runs within seconds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import samples
from .conftest import docker, image

PREFIX = f"imgtest-{os.getpid()}"
SITE_NET, SITE = f"{PREFIX}-site", "10.231.60"
BACKBONE_NET, BACKBONE = f"{PREFIX}-backbone", "10.231.61"


def relocate(node: dict[str, Any]) -> dict[str, Any]:
    """A sample node moved onto this module's networks (10.231.1.x -> site, 10.231.0.x -> bb)."""
    text = json.dumps(node).replace("10.231.1.", f"{SITE}.").replace("10.231.0.", f"{BACKBONE}.")
    return dict(json.loads(text))


class Lab:
    def __init__(self) -> None:
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def run(self, name: str, img: str, ip: str, *args: str, backbone_ip: str = "") -> str:
        full = f"{PREFIX}-{name}"
        self.containers.append(full)
        docker("create", "--name", full, "--network", SITE_NET, "--ip", ip,
               "--health-interval", "2s", "--health-start-period", "60s",
               *args, img, check=True)  # fmt: skip
        if backbone_ip:
            docker("network", "connect", "--ip", backbone_ip, BACKBONE_NET, full, check=True)
        docker("start", full, check=True)
        return full

    def upload(self, container: str, path: str, content: str, tmp_path: Any) -> None:
        """Like the IaC layer: put the rendered file in place before the container starts."""
        local = tmp_path / os.path.basename(path)
        local.write_text(content)
        local.chmod(0o644)
        docker("cp", str(local), f"{container}:{path}", check=True)

    def wait_healthy(self, container: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = docker(
                "inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", container
            ).stdout.strip()
            if status == "running healthy":
                return docker("exec", container, "pbx-healthcheck").stdout.strip()
            if status.startswith("exited"):
                break
            time.sleep(1)
        logs = docker("logs", "--tail", "30", container)
        raise AssertionError(f"{container}: {status}\n{logs.stdout}{logs.stderr}")

    def remove(self) -> None:
        for container in reversed(self.containers):
            docker("rm", "-fv", container)
        for volume in self.volumes:
            docker("volume", "rm", volume)


@pytest.fixture(scope="module")
def lab(built_images: None) -> Iterator[Lab]:
    docker("network", "create", "--subnet", f"{SITE}.0/24", SITE_NET, check=True)
    docker("network", "create", "--subnet", f"{BACKBONE}.0/24", BACKBONE_NET, check=True)
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.remove()
        docker("network", "rm", SITE_NET, BACKBONE_NET)


def create_started(lab: Lab, name: str, img: str, ip: str, path: str, content: str,
                   tmp_path: Any, backbone_ip: str = "") -> str:  # fmt: skip
    full = f"{PREFIX}-{name}"
    lab.containers.append(full)
    docker("create", "--name", full, "--network", SITE_NET, "--ip", ip,
           "--health-interval", "2s", img, check=True)  # fmt: skip
    if backbone_ip:
        docker("network", "connect", "--ip", backbone_ip, BACKBONE_NET, full, check=True)
    lab.upload(full, path, content, tmp_path)
    docker("start", full, check=True)
    return full


NG_PING = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
host, port = sys.argv[1].rsplit(":", 1)
s.sendto(b"imgtest1 d7:command4:pinge", (host, int(port))); print(s.recv(999).decode())
"""


def test_rtpengine(lab, render, tmp_path):
    node = relocate(samples.RTPENGINE_FRA)
    relay = create_started(lab, "rtp", image("rtpengine"), node["interface"],
                           "/etc/rtpengine/rtpengine.conf",
                           render("rtpengine/rtpengine.conf.j2", node), tmp_path)  # fmt: skip
    assert "pong" in lab.wait_healthy(relay)
    # From another container (the kamailio image has python3), like a proxy would.
    client = f"{PREFIX}-rtp-client"
    lab.containers.append(client)
    pong = docker("run", "--name", client, "--network", SITE_NET, "--entrypoint", "python3",
                  image("kamailio"), "-c", NG_PING, node["ng_listen"])  # fmt: skip
    assert pong.stdout.strip() == "imgtest1 d6:result4:ponge", pong.stderr
    ctl = docker("exec", relay, "rtpengine-ctl", "-ip", "127.0.0.1", "-port", "9900",
                 "list", "numsessions")  # fmt: skip
    assert "Current sessions total: 0" in ctl.stdout, ctl.stdout + ctl.stderr


def test_labdns(lab, render, tmp_path):
    node = relocate(samples.DNS_FRA)
    dns = create_started(lab, "dns", image("labdns"), node["listen"], "/etc/dnsmasq.d/pbx.conf",
                         render("labdns/dnsmasq.conf.j2", node), tmp_path)  # fmt: skip
    assert "_sip._udp.pbx.lab" in lab.wait_healthy(dns)
    client = f"{PREFIX}-dns-client"
    lab.containers.append(client)
    answer = docker("run", "--name", client, "--network", SITE_NET, "--entrypoint", "dig",
                    image("labdns"), "+short", f"@{node['listen']}", "SRV",
                    "_sip._udp.pbx.lab")  # fmt: skip
    records = sorted(line.split() for line in answer.stdout.splitlines())
    assert records == sorted(
        [str(s["priority"]), str(s["weight"]), str(s["port"]), s["target"] + "."]
        for s in node["srv_records"]
        if s["name"] == "_sip._udp.pbx.lab"
    )


def test_patroni_pair_elects_one_leader_and_replicates_synchronously(lab, render, tmp_path):
    """One etcd member, two Patroni members: one leads, the other follows synchronously; a
    write on the leader is on the replica, which refuses writes; when the leader stops, the
    replica takes over."""
    etcd_ip = f"{BACKBONE}.45"
    etcd_node = {"name": "e1", "internal": etcd_ip, "cluster": PREFIX, "client_port": 2379,
                 "peer_port": 2380, "members": [{"name": "e1", "address": etcd_ip}]}  # fmt: skip
    lab.volumes.append(f"{PREFIX}-etcd")
    etcd = create_started(lab, "etcd", image("etcd"), f"{SITE}.45", "/etc/etcd/etcd.conf.yml",
                          render("etcd/etcd.conf.yml.j2", etcd_node), tmp_path,
                          backbone_ip=etcd_ip)  # fmt: skip
    assert "is healthy" in lab.wait_healthy(etcd)
    secrets = [
        "-e", "PBX_DB_PASSWORD=app-secret", "-e", "PBX_DB_KAMAILIO_PASSWORD=kam-secret",
        "-e", "PATRONI_REPLICATION_PASSWORD=repl-secret", "-e", "PATRONI_REWIND_PASSWORD=rw",
    ]  # fmt: skip
    members = {}
    for n in (1, 2):
        node = {"name": f"db{n}", "site": "s", "internal": f"{BACKBONE}.4{n}",
                "cluster": PREFIX, "rest_port": 8008, "db_port": 5432,
                "etcd_hosts": [f"{etcd_ip}:2379"], "allowed_cidrs": [f"{BACKBONE}.0/24"],
                "api_cidrs": [f"{BACKBONE}.0/24"]}  # fmt: skip
        name = f"{PREFIX}-db{n}"
        lab.containers.append(name)
        lab.volumes.append(name)
        docker("create", "--name", name, "--network", BACKBONE_NET, "--ip", node["internal"],
               "--health-interval", "2s", "-v", f"{name}:/var/lib/postgresql/data",
               *secrets, image("postgres"), check=True)  # fmt: skip
        lab.upload(name, "/etc/patroni/patroni.yml",
                   render("postgres/patroni.yml.j2", node), tmp_path)  # fmt: skip
        docker("start", name, check=True)
        members[name] = node["internal"]
    states = {name: lab.wait_healthy(name, timeout=150) for name in members}
    (leader,) = [n for n, s in states.items() if s.startswith("OK: leader")]
    (replica,) = [n for n in members if n != leader]
    deadline = time.monotonic() + 30
    while "synchronous to" not in states[leader] and time.monotonic() < deadline:
        time.sleep(1)
        states[leader] = docker("exec", leader, "pbx-healthcheck").stdout
    assert "synchronous to" in states[leader], states

    def psql(container: str, host: str, sql: str) -> Any:
        return docker("exec", "-e", "PGPASSWORD=app-secret", container, "psql", "-X", "-At",
                      "-h", host, "-U", "pbx", "-d", "pbx", "-c", sql)  # fmt: skip

    write = psql(replica, members[leader], "CREATE TABLE probe (note text); "
                 "INSERT INTO probe VALUES ('written on the leader')")  # fmt: skip
    assert write.returncode == 0, write.stderr
    # Synchronous (remote_apply): acknowledged means readable on the replica at once.
    read = psql(leader, members[replica], "SELECT note FROM probe")
    assert read.stdout.strip() == "written on the leader", read.stderr
    refused = psql(leader, members[replica], "INSERT INTO probe VALUES ('on the replica')")
    assert "read-only transaction" in refused.stderr
    # The API listens on the internal address only, and the kamailio role may only read.
    kam = docker("exec", "-e", "PGPASSWORD=kam-secret", leader, "psql", "-X", "-At", "-h",
                 members[leader], "-U", "kamailio", "-d", "pbx", "-c",
                 "CREATE TABLE nope (x int)")  # fmt: skip
    assert kam.returncode != 0
    # Patroni's own record (in etcd) names the replica the synchronous standby: only then may
    # it take over, and only then do its commits wait for it.
    deadline, roles = time.monotonic() + 30, ""
    while "sync_standby" not in roles and time.monotonic() < deadline:
        time.sleep(1)
        roles = docker(
            "exec", leader, "curl", "-s", f"http://{members[leader]}:8008/cluster"
        ).stdout
    assert "sync_standby" in roles, roles
    docker("kill", leader, check=True)  # a crash: the lock expires after its 20 s TTL
    deadline, state = time.monotonic() + 60, ""
    while not state.startswith("OK: leader") and time.monotonic() < deadline:
        time.sleep(1)
        state = docker("exec", replica, "pbx-healthcheck").stdout.strip()
    logs = docker("logs", "--tail", "25", replica)
    assert state.startswith("OK: leader"), f"{state}\n{logs.stdout}{logs.stderr}"
    after = psql(replica, members[replica], "INSERT INTO probe VALUES ('after failover')")
    assert after.returncode == 0, after.stderr


def test_smtpsink(lab):
    sink = lab.run("smtp", image("smtpsink"), f"{SITE}.25")
    assert lab.wait_healthy(sink).startswith("OK: SMTP")
    send = (
        "import smtplib\n"
        "from email.message import EmailMessage\n"
        "m = EmailMessage(); m['From'] = 'noreply@pbx.lab'; m['To'] = 'Anna <anna@kunde.example>'\n"
        "m['Subject'] = 'Willkommen: Passwort setzen'; m.set_content('Hallo Anna, ümlaut')\n"
        f"smtplib.SMTP('{SITE}.25', 25).send_message(m)\n"
    )
    client = f"{PREFIX}-smtp-client"
    lab.containers.append(client)
    sent = docker("run", "--name", client, "--network", SITE_NET, "--entrypoint", "python3",
                  image("smtpsink"), "-c", send)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    messages = json.loads(docker("exec", sink, "sink-messages", check=True).stdout)
    assert messages == [
        {
            "from": "noreply@pbx.lab",
            "to": "Anna <anna@kunde.example>",
            "subject": "Willkommen: Passwort setzen",
            "body": "Hallo Anna, ümlaut\n",
            "envelope_from": "noreply@pbx.lab",
            "envelope_to": ["anna@kunde.example"],
            "date": "",
            "message_id": "",
            "attachments": [],  # a fax's PDF would be listed here (tests/sip/test_fax.py)
        }
    ]
