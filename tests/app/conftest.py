"""Fixtures: PostgreSQL (a throwaway cluster or $PBX_TEST_DATABASE_URL) and SQLite databases,
an in-process SMTP sink, a real HTTP server on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from labkit.pg_cluster import ThrowawayCluster, free_port
from labkit.portal import keep_session
from pbx_app.app import create_app
from pbx_app.db import Database, utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.outbox import OutboxSender
from pbx_app.repositories import users as users_repo
from pbx_app.services import customers
from pbx_app.services.access import SYSTEM, Role
from pbx_app.services.users import set_password_directly
from pbx_app.settings import Settings

PASSWORD = "correct horse battery staple"


# --- PostgreSQL --------------------------------------------------------------------------------
class PgServer:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.template = f"pbx_tpl_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        db = Database(self.url(self.template))
        db.migrate()
        db.dispose()

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def new_database(self) -> str:
        name = f"pbx_t_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("PBX_TEST_DATABASE_URL")
    cluster: ThrowawayCluster | None = None
    if not url:
        cluster = ThrowawayCluster()  # raises (the test fails) if the binaries are missing
        cluster.start()
        url = cluster.url()
    server = PgServer(url)
    try:
        yield server
    finally:
        server.drop(server.template)
        server.admin.dispose()
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[Database]:
    name = pg_server.new_database()
    db = Database(pg_server.url(name))
    try:
        yield db
    finally:
        db.dispose()
        pg_server.drop(name)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'pbx.db'}")
    db.migrate()
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """Rules hold on both backends."""
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    result: Database = request.getfixturevalue(fixture)
    return result


@pytest.fixture(autouse=True)
def _stop_outbox_senders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An app served without its lifespan (a TestClient outside ``with``) starts its outbox
    sender on first use; stop those at the end of the test, before its database goes."""
    started: list[OutboxSender] = []
    wake = OutboxSender.wake

    def tracked(self: OutboxSender) -> None:
        started.append(self)
        wake(self)

    monkeypatch.setattr(OutboxSender, "wake", tracked)
    yield
    for sender in started:
        sender.stop()


# --- SMTP sink ---------------------------------------------------------------------------------
@dataclass
class SmtpSink:
    port: int
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append(message_from_bytes(envelope.original_content))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A loopback port that accepts TCP but never answers: a peer that hangs, not refuses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"127.0.0.1:{s.getsockname()[1]}"


# --- application -------------------------------------------------------------------------------
def make_settings(db: Database, smtp_port: int = 1, **kw: Any) -> Settings:
    kw.setdefault("database_read_url", "" if db.read_url == db.url else db.read_url)
    kw.setdefault("sip_sites", ("fra:069", "ber:030"))
    return Settings(
        database_url=db.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        mail_from="pbx@lab.test",
        public_url=kw.pop("public_url", "http://127.0.0.1:8000"),
        sip_domain="sip.lab.test",
        secret_key="test-secret",
        site="fra",
        node_name="pbx-app-fra-1",
        mail_retry_seconds=kw.pop("mail_retry_seconds", 0.2),
        **kw,
    )


def new_customer(db: Database, name: str = "", **kw: Any) -> int:
    values: dict[str, Any] = {
        "name": name or f"Customer {uuid.uuid4().hex[:6]}",
        "tariff": "basic",
        "contract_start": date(2026, 1, 1),
    }
    values.update(kw)
    with db.transaction() as conn:
        return int(customers.create(conn, SYSTEM, customers.NewCustomer(**values), utcnow())["id"])


def new_user(db: Database, email: str, role: Role, customer_id: int | None) -> int:
    with db.transaction() as conn:
        user_id = users_repo.insert(
            conn,
            {
                "customer_id": customer_id,
                "email": email,
                "display_name": "",
                "role": role.value,
                "password_hash": None,
                "created_at": utcnow(),
            },
        )
        set_password_directly(conn, user_id, PASSWORD, utcnow())
    return user_id


def login(client: TestClient, email: str) -> TestClient:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    keep_session(client, r)
    return client


def token_for(db: Database, settings: Settings, email: str) -> str:
    """A bearer token for an existing user, made through the API's own login + token flow."""
    app = create_app(settings, db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
    with TestClient(app) as c:
        login(c, email)
        r = c.post("/api/v1/tokens", json={"name": "test"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@dataclass
class LiveServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread


def start_server(db: Database, settings: Settings) -> LiveServer:
    port = free_port()
    app = create_app(settings, db, SmtpMailer("127.0.0.1", settings.smtp_port, "x@y.z"))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=15)


# --- two tenants and an operator, logged in through the API -------------------------------------
@dataclass
class Api:
    db: Database
    operator: TestClient
    admin_a: TestClient
    admin_b: TestClient
    a: int
    b: int
    loc_a: int
    loc_b: int
    token_a: str


def client_for(db: Database, **settings: Any) -> TestClient:
    config = make_settings(db, **settings)
    app = create_app(config, db, SmtpMailer("127.0.0.1", config.smtp_port, "x@y.z"))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    a = new_customer(db, booked_licences=20)
    b = new_customer(db)
    new_user(db, "op@platform.test", Role.OPERATOR, None)
    new_user(db, "admin@a.test", Role.CUSTOMER_ADMIN, a)
    new_user(db, "admin@b.test", Role.CUSTOMER_ADMIN, b)
    clients = [
        login(client_for(db), e) for e in ("op@platform.test", "admin@a.test", "admin@b.test")
    ]
    loc = {
        "name": "Frankfurt",
        "street": "Main 1",
        "postal_code": "60329",
        "city": "Frankfurt",
        "area_code": "069",
    }
    loc_a = clients[1].post(f"/api/v1/customers/{a}/locations", json=loc).json()["id"]
    loc_b = clients[2].post(f"/api/v1/customers/{b}/locations", json=loc).json()["id"]
    token_a = token_for(db, make_settings(db), "admin@a.test")
    yield Api(db, clients[0], clients[1], clients[2], a, b, loc_a, loc_b, token_a)
    for c in clients:
        c.close()


def error_code(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    return str(body["error"]["code"])
