"""HTTPS for people next to plain HTTP for the platform: one process serves the same app on
both ports with one lifespan; cookies are Secure and HSTS is sent on answers over https only;
the portal's CSP lets the browser phone reach the proxies' WebSockets."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from labkit.pg_cluster import free_port
from pbx_app.app import create_app, html_csp
from pbx_app.db import Database
from pbx_app.mail import SmtpMailer
from pbx_app.services.access import Role
from pbx_app.settings import Settings
from pbx_infra import tls, topology
from pbx_infra.lab.declared import stack_config
from tests.app.conftest import PASSWORD, make_settings, new_customer, new_user

REPO = Path(__file__).resolve().parents[2]
WSS = ("wss://172.30.1.11:8443", "wss://172.30.2.11:8443")


def test_https_settings_are_read_and_checked() -> None:
    env = {
        "PBX_HTTPS_LISTEN": "0.0.0.0:9443",
        "PBX_TLS_CERT_FILE": "/etc/pbx-app/tls/server.pem",
        "PBX_TLS_KEY_FILE": "/etc/pbx-app/tls/server.key",
        "PBX_WSS_URLS": ",".join(WSS),
    }
    settings = Settings.from_env(env)
    assert (settings.https_host, settings.https_port) == ("0.0.0.0", 9443)
    assert settings.wss_urls == WSS
    with pytest.raises(ValueError, match="PBX_TLS_CERT_FILE and PBX_TLS_KEY_FILE"):
        Settings.from_env({"PBX_HTTPS_LISTEN": "0.0.0.0:9443"})
    with pytest.raises(ValueError, match="PBX_HTTPS_LISTEN must be host:port"):
        Settings.from_env(env | {"PBX_HTTPS_LISTEN": "9443"})
    # The URLs go into a CSP header: anything but a plain wss:// URL is refused at start.
    for bad in ("ws://172.30.1.11:8443", "wss://x; script-src *", "https://a.test"):
        with pytest.raises(ValueError, match="PBX_WSS_URLS"):
            Settings.from_env(env | {"PBX_WSS_URLS": bad})
    assert Settings.from_env({}).wss_urls == ()


def _client(db: Database, scheme: str, **kw: object) -> TestClient:
    settings = make_settings(db, public_url="https://portal.pbx.test:9443", **kw)
    app = create_app(settings, db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    return TestClient(app, base_url=f"{scheme}://portal.pbx.test", raise_server_exceptions=False)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_cookies_and_hsts_follow_the_port_the_request_came_over(
    sqlite_db: Database, scheme: str
) -> None:
    """PBX_PUBLIC_URL is https in the platform; a login over the internal plain port still
    gets cookies it can send back (no Secure), and no HSTS that would be a lie there."""
    customer = new_customer(sqlite_db)
    new_user(sqlite_db, "admin@https.test", Role.CUSTOMER_ADMIN, customer)
    client = _client(sqlite_db, scheme)
    r = client.post("/api/v1/auth/login", json={"email": "admin@https.test", "password": PASSWORD})
    assert r.status_code == 200, r.text
    for cookie in r.headers.get_list("set-cookie"):
        attributes = {a.strip().lower() for a in cookie.split(";")}
        assert ("secure" in attributes) is (scheme == "https"), cookie
    assert ("strict-transport-security" in r.headers) is (scheme == "https")
    # The session works on the port it was made on (the client sends Secure cookies over
    # https only, as a browser does).
    assert client.get("/api/v1/me").status_code == 200
    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert out.status_code == 204
    for cookie in out.headers.get_list("set-cookie"):
        assert ("secure" in cookie.lower()) is (scheme == "https"), cookie


def test_pages_may_connect_to_the_proxies_websockets_only(sqlite_db: Database) -> None:
    page = _client(sqlite_db, "https", wss_urls=WSS).get("/set-password?token=abcdefghijk")
    csp = page.headers["content-security-policy"]
    assert f"connect-src 'self' {WSS[0]} {WSS[1]};" in csp
    assert csp == html_csp(WSS)
    assert "script-src 'self';" in csp  # nothing else widened
    bare = _client(sqlite_db, "https").get("/set-password?token=abcdefghijk")
    assert "connect-src 'self';" in bare.headers["content-security-policy"]


# --- the real process: python -m pbx_app serve on two ports ----------------------------------


@dataclass
class Node:
    process: subprocess.Popen[str]
    http: str
    https: str
    ca: Path
    log: Path

    def logged(self) -> str:
        return self.log.read_text()


def _lab_tls(directory: Path) -> tls.TlsMaterial:
    platform = topology.load(json.loads(stack_config("lab")["pbx:platform"]))
    return tls.lab_material(platform, directory)


@pytest.fixture
def node(tmp_path: Path, sqlite_db: Database) -> Iterator[Node]:
    material = _lab_tls(tmp_path / "tls")
    customer = new_customer(sqlite_db)
    new_user(sqlite_db, "user@https.test", Role.CUSTOMER_ADMIN, customer)
    http_port, https_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PBX_DATABASE_URL": sqlite_db.url,
        "PBX_LISTEN": f"127.0.0.1:{http_port}",
        "PBX_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "PBX_TLS_CERT_FILE": str(tmp_path / "tls" / "server.pem"),
        "PBX_TLS_KEY_FILE": str(tmp_path / "tls" / "server.key"),
        "PBX_PUBLIC_URL": f"https://127.0.0.1:{https_port}",
        "PBX_SMTP_PORT": "1",
        "PBX_PORTING_POLL_SECONDS": "0",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pbx_app", "serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    live = Node(
        process,
        f"http://127.0.0.1:{http_port}",
        f"https://127.0.0.1:{https_port}",
        tmp_path / "tls" / "ca.pem",
        log,
    )
    assert material.ca_certificate == live.ca.read_text()
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in live.logged():
            assert process.poll() is None, live.logged()
            assert time.monotonic() < deadline, live.logged()
            time.sleep(0.1)
        yield live
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _chain_only(ca: Path) -> ssl.SSLContext:
    """Trusts the lab CA; the name is not checked because the test reaches the node over
    127.0.0.1, which no platform certificate names (tests/iac checks the names)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    return context


def test_one_process_serves_both_ports_with_one_lifespan(node: Node) -> None:
    with (
        httpx.Client(base_url=node.http, timeout=10) as plain,
        httpx.Client(base_url=node.https, timeout=10, verify=_chain_only(node.ca)) as secure,
    ):
        for client in (plain, secure):
            assert client.get("/healthz").json()["database"] == "ok"
            r = client.post(
                "/api/v1/auth/login", json={"email": "user@https.test", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
        # Over plain HTTP nothing pretends to be secure; over HTTPS everything does.
        assert "strict-transport-security" not in plain.get("/healthz").headers
        assert "max-age" in secure.get("/healthz").headers["strict-transport-security"]
    with pytest.raises(httpx.TransportError):  # the HTTPS port speaks TLS only
        httpx.get(f"http://{node.https.removeprefix('https://')}/healthz", timeout=5)
    node.process.send_signal(signal.SIGTERM)
    assert node.process.wait(20) == 0, node.logged()
    log = node.logged()
    assert log.count("Application startup complete.") == 1, log
    assert log.count("Application shutdown complete.") == 1, log
    assert f"listening on {node.http}, {node.https}" in log, log


def test_metrics_are_served_on_the_plain_internal_port_only(node: Node) -> None:
    with httpx.Client(base_url=node.http, timeout=10) as plain:
        assert plain.get("/healthz").status_code == 200
        r = plain.get("/metrics")
        assert r.status_code == 200, r.text
        assert 'pbx_http_requests_total{method="GET",route="/healthz",status="200"}' in r.text
    with httpx.Client(base_url=node.https, timeout=10, verify=_chain_only(node.ca)) as secure:
        assert secure.get("/metrics").status_code == 404


def test_healthcheck_asks_both_ports(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    from pbx_app.__main__ import main

    https_port = node.https.rsplit(":", 1)[1]
    monkeypatch.setenv("PBX_LISTEN", node.http.removeprefix("http://"))
    monkeypatch.setenv("PBX_HTTPS_LISTEN", f"127.0.0.1:{https_port}")
    monkeypatch.setenv("PBX_TLS_CERT_FILE", "unused-by-the-check")
    monkeypatch.setenv("PBX_TLS_KEY_FILE", "unused-by-the-check")
    assert main(["healthcheck"]) == 0
    # Only the HTTPS listener gone: the node is not healthy.
    monkeypatch.setenv("PBX_HTTPS_LISTEN", f"127.0.0.1:{free_port()}")
    assert main(["healthcheck"]) == 1


def test_a_key_that_does_not_load_stops_the_node_before_it_serves(tmp_path: Path) -> None:
    (tmp_path / "server.pem").write_text("not a certificate")
    env = {
        "PATH": os.environ["PATH"],
        "PBX_DATABASE_URL": f"sqlite:///{tmp_path / 'pbx.db'}",
        "PBX_LISTEN": f"127.0.0.1:{free_port()}",
        "PBX_HTTPS_LISTEN": f"127.0.0.1:{free_port()}",
        "PBX_TLS_CERT_FILE": str(tmp_path / "server.pem"),
        "PBX_TLS_KEY_FILE": str(tmp_path / "server.pem"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pbx_app", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Application startup complete" not in done.stderr + done.stdout
