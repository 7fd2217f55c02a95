"""The database pair (Patroni, one member per site): writes go to the leader through a
multi-host URL (target_session_attrs=read-write), reads to the local member (PBX_DATABASE_READ_URL).
While no leader is reachable every write answers 503 database_unavailable with Retry-After, quickly;
/healthz and the routing endpoint keep answering from the read URL; after a restart or a failover
the next write succeeds without restarting the app. Real PostgreSQL throughout."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from labkit.pg_cluster import ThrowawayCluster, free_port
from pbx_app import errors
from pbx_app.addressing import aor
from pbx_app.app import create_app
from pbx_app.db import Database, pg_connect_args, utcnow
from pbx_app.mail import SmtpMailer
from pbx_app.repositories import extensions as extensions_repo
from pbx_app.services import call_rules, devices, extensions, locations, ring_groups
from pbx_app.services.access import SYSTEM, Role
from pbx_app.settings import Settings
from tests.app.conftest import PgServer, make_settings, new_customer, new_user, token_for

TOKEN = "internal-test-token-0123456789"


# --- helpers ---------------------------------------------------------------------------------
def with_query(url: str, **params: str) -> str:
    return make_url(url).update_query_dict(params).render_as_string(hide_password=False)


def with_port(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def endpoint(url: str) -> str:
    u = make_url(url)
    return f"{u.host or '127.0.0.1'}:{u.port or 5432}"


def multihost(url: str, hosts: list[str], **params: str) -> str:
    """SQLAlchemy's multi-host form for psycopg, as the platform writes it:
    postgresql+psycopg://user@/db?host=h1:p1&host=h2:p2&target_session_attrs=..."""
    u = make_url(url)
    auth = quote(u.username or "", safe="")
    if u.password:
        auth += ":" + quote(str(u.password), safe="")
    query = "&".join([*(f"host={h}" for h in hosts), *(f"{k}={v}" for k, v in params.items())])
    return f"postgresql+psycopg://{auth}@/{u.database}?{query}"


@dataclass
class Tenant:
    customer: int
    device: str
    operator_token: str


def seed(db: Database) -> Tenant:
    """A customer with extension 100 and its device, and an operator's API token."""
    cid = new_customer(db)
    device = f"d-{uuid.uuid4().hex[:8]}"
    with db.transaction() as conn:
        site = locations.NewLocation("Frankfurt", "Main 1", "60329", "Frankfurt", "069")
        loc = int(locations.create(conn, SYSTEM, cid, site, utcnow())["id"])
        new = extensions.NewExtension(location_id=loc, number="100")
        ext = int(extensions.create(conn, SYSTEM, cid, new, utcnow())["id"])
        dev = devices.NewDevice(sip_username=device, sip_password="x" * 20)
        devices.create(conn, SYSTEM, cid, ext, dev, utcnow(), "pbx.lab")
    email = f"op-{uuid.uuid4().hex[:6]}@platform.test"
    new_user(db, email, Role.OPERATOR, None)
    return Tenant(cid, device, token_for(db, make_settings(db), email))


class App:
    """The app on a Database of its own (write URL, read URL), as a TestClient."""

    def __init__(self, tenant: Tenant, url: str, read_url: str = "") -> None:
        self.tenant = tenant
        self.db = Database(url, read_url)
        settings = make_settings(self.db, internal_token=TOKEN)
        app = create_app(settings, self.db, SmtpMailer("127.0.0.1", 1, "x@y.z"))
        self.client = TestClient(app, raise_server_exceptions=False)

    def write(self) -> Any:
        """A POST that writes: an operator creates a customer."""
        return self.client.post(
            "/api/v1/customers",
            json={
                "name": f"C {uuid.uuid4().hex[:6]}",
                "tariff": "basic",
                "contract_start": "2026-11-25",
            },
            headers={"Authorization": f"Bearer {self.tenant.operator_token}"},
        )

    def route(self) -> Any:
        return self.client.get(
            "/internal/v1/route",
            params={"caller": self.tenant.device, "target": "100"},
            headers={"X-PBX-Internal-Token": TOKEN},
        )

    def close(self) -> None:
        self.client.close()
        self.db.dispose()


def timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def assert_write_refused(app: App, within: float = 6.0) -> None:
    r, elapsed = timed(app.write)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"]["code"] == "database_unavailable"
    assert "leader" in body["error"]["message"]
    assert r.headers["retry-after"] == "5"
    assert elapsed < within, f"the refusal took {elapsed:.1f} s"


def assert_reads_still_work(app: App, writable: bool) -> None:
    r, elapsed = timed(lambda: app.client.get("/healthz"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "writable": writable,
        "node": "pbx-app-fra-1",
        "site": "fra",
    }
    assert elapsed < 3.5, f"/healthz took {elapsed:.1f} s"
    r = app.route()
    assert r.status_code == 200, r.text
    own = aor(app.tenant.customer, "100")
    assert r.json() == {
        "action": "local",
        "aor": own,
        "customer_id": app.tenant.customer,
        "srtp_required": False,
        "ttl": 2,
        "privacy": False,
        "steps": [
            {
                "ring": [own],
                "timeout": 0,
                "busy": -1,
                "noanswer": -1,
                "unavailable": -1,
                "diversion": "",
            }
        ],
    }


def set_read_only(pg_server: PgServer, db: Database, on: bool) -> None:
    """What a standby (or a demoted leader) looks like to new sessions: read-only by default."""
    name = make_url(db.url).database
    change = (
        "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    )
    with pg_server.admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" {change}'))


# --- no leader reachable -----------------------------------------------------------------------
@pytest.mark.parametrize("case", ["refused", "hangs", "standby", "read_only"])
def test_without_a_leader_writes_get_503_and_reads_keep_working(
    case: str, pg_server: PgServer, pg_db: Database, silent_port: str
) -> None:
    tenant = seed(pg_db)
    if case == "refused":  # the leader's port is closed
        app = App(tenant, with_port(pg_db.url, free_port()), pg_db.url)
    elif case == "hangs":  # one member accepts TCP and never answers, the other is down
        hosts = [silent_port, f"127.0.0.1:{free_port()}"]
        url = multihost(pg_db.url, hosts, target_session_attrs="read-write")
        app = App(tenant, url, pg_db.url)
    elif case == "standby":  # libpq refuses the only member: "session is read-only"
        set_read_only(pg_server, pg_db, True)
        app = App(tenant, with_query(pg_db.url, target_session_attrs="read-write"), pg_db.url)
    else:  # no target_session_attrs: the INSERT itself fails, SQLSTATE 25006; one engine
        set_read_only(pg_server, pg_db, True)
        app = App(tenant, pg_db.url)
    try:
        assert_write_refused(app)
        assert_reads_still_work(app, writable=False)
        assert_write_refused(app)  # and again: nothing stuck in the pool
        if case in ("standby", "read_only"):
            # The member becomes (or another one is) the leader: the next write succeeds,
            # without an app restart, although the pool held read-only sessions (read_only:
            # the 25006 discarded them; they would stay read-only after the RESET).
            set_read_only(pg_server, pg_db, False)
            r = app.write()
            assert r.status_code == 201, r.text
            assert_reads_still_work(app, writable=True)
    finally:
        app.close()


def test_without_any_database_routing_and_healthz_answer_503(pg_db: Database) -> None:
    tenant = seed(pg_db)
    app = App(tenant, with_port(pg_db.url, free_port()), with_port(pg_db.url, free_port()))
    try:
        r = app.route()
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable"
        assert r.headers["retry-after"] == "5"
        r, elapsed = timed(lambda: app.client.get("/healthz"))
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
        assert r.json()["writable"] is False
        assert elapsed < 3.5
        assert_write_refused(app)
    finally:
        app.close()


def test_a_connection_lost_mid_transaction_is_503_and_the_next_one_reconnects(
    pg_db: Database,
) -> None:
    def terminated_mid_transaction() -> None:
        with pg_db.transaction() as conn:
            conn.execute(text("SELECT 1"))
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))  # 57P01

    with pytest.raises(errors.DatabaseUnavailable):
        terminated_mid_transaction()
    with pg_db.transaction() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_statement_errors_are_not_turned_into_503(pg_db: Database) -> None:
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError), pg_db.transaction() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))


# --- multi-host URLs ---------------------------------------------------------------------------
def test_multi_host_urls_skip_a_dead_first_member(pg_db: Database) -> None:
    tenant = seed(pg_db)
    dead = f"127.0.0.1:{free_port()}"
    hosts = [dead, endpoint(pg_db.url)]
    app = App(
        tenant,
        multihost(pg_db.url, hosts, target_session_attrs="read-write"),
        multihost(pg_db.url, hosts, target_session_attrs="any"),
    )
    try:
        assert app.db.read_engine is not app.db.engine
        for _ in range(2):
            r = app.write()
            assert r.status_code == 201, r.text
        assert_reads_still_work(app, writable=True)
    finally:
        app.close()


def test_connect_args_bound_every_wait_unless_the_url_sets_them(pg_db: Database) -> None:
    assert pg_connect_args("postgresql+psycopg://u@/d?host=a:1&host=b:2&connect_timeout=7") == {
        "tcp_user_timeout": 5000,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
    }
    db = Database(with_query(pg_db.url, connect_timeout="7"), pg_db.url)
    try:
        with db.engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["connect_timeout"] == "7"
        assert params["tcp_user_timeout"] == "5000"
        assert (params["keepalives_idle"], params["keepalives_count"]) == ("5", "2")
        with db.read_engine.connect() as conn:
            params = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
        assert params["connect_timeout"] == "2"
        assert params["keepalives_interval"] == "2"
    finally:
        db.dispose()


def test_the_read_url_setting(pg_db: Database) -> None:
    read_url = with_query(pg_db.url, target_session_attrs="any")
    env = {"PBX_DATABASE_URL": pg_db.url, "PBX_DATABASE_READ_URL": read_url}
    settings = Settings.from_env(env)
    assert (settings.database_url, settings.database_read_url) == (pg_db.url, read_url)
    assert Settings.from_env({"PBX_DATABASE_URL": pg_db.url}).database_read_url == ""
    app = create_app(settings, mailer=SmtpMailer("127.0.0.1", 1, "x@y.z"))
    db: Database = app.state.ctx.db
    try:
        assert (db.url, db.read_url) == (pg_db.url, read_url)
        assert db.read_engine is not db.engine
        with TestClient(app) as c:
            assert c.get("/healthz").json()["writable"] is True
    finally:
        db.dispose()
    single = Database(pg_db.url)
    assert single.read_engine is single.engine
    assert single.read_url == pg_db.url
    single.dispose()


# --- restart and failover of a real primary/standby pair ----------------------------------------
@dataclass
class Pair:
    leader: ThrowawayCluster
    standby: ThrowawayCluster


@pytest.fixture
def pair() -> Iterator[Pair]:
    leader = ThrowawayCluster()
    standby = ThrowawayCluster()
    try:
        leader.start()
        admin = create_engine(leader.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE pbx"))
        admin.dispose()
        yield Pair(leader, standby)
    finally:
        for cluster in (standby, leader):
            cluster.stop()


def test_restart_and_failover_need_no_app_restart(pair: Pair) -> None:
    setup = Database(pair.leader.url("pbx"))
    setup.migrate()
    tenant = seed(setup)  # before the base backup: the standby starts with it
    setup.dispose()
    pair.standby.start_standby(pair.leader)
    # This node's site is the standby's: its member first in both URLs.
    hosts = [endpoint(pair.standby.url("pbx")), endpoint(pair.leader.url("pbx"))]
    app = App(
        tenant,
        multihost(pair.leader.url("pbx"), hosts, target_session_attrs="read-write"),
        multihost(pair.leader.url("pbx"), hosts, target_session_attrs="any"),
    )
    try:
        r = app.write()  # libpq skips the standby ("server is in hot standby mode")
        assert r.status_code == 201, r.text
        assert_reads_still_work(app, writable=True)

        pair.leader.halt()  # pooled connections to the leader break
        assert_write_refused(app)
        assert_reads_still_work(app, writable=False)  # from the standby

        pair.leader.resume()  # restarted: the next write reconnects by itself
        r = app.write()
        assert r.status_code == 201, r.text

        pair.leader.halt()  # failover: the standby is promoted
        pair.standby.promote()
        r = app.write()
        assert r.status_code == 201, r.text
        assert_reads_still_work(app, writable=True)
    finally:
        app.close()


def test_without_a_leader_a_round_robin_group_still_rings(pg_db: Database) -> None:
    """The one write of a routing decision (issue 13) cannot be made: the group starts with its
    first member, the call still rings."""
    tenant = seed(pg_db)
    with pg_db.transaction() as conn:
        ext = extensions_repo.id_by_number(conn, tenant.customer, "100")
        row = extensions_repo.get(conn, tenant.customer, ext)
        assert row is not None
        new = extensions.NewExtension(location_id=int(row["location_id"]), number="101")
        extensions.create(conn, SYSTEM, tenant.customer, new, utcnow())
        group = ring_groups.NewGroup("Desk", "roundrobin", 10, ["100", "101"])
        group_id = int(ring_groups.create(conn, SYSTEM, tenant.customer, group, utcnow())["id"])
    app = App(tenant, with_port(pg_db.url, free_port()), pg_db.url)
    try:
        with pg_db.transaction() as conn:
            rule = call_rules.NewRule("unconditional", call_rules.Target("group", group_id))
            call_rules.put(conn, SYSTEM, tenant.customer, ext, [rule], utcnow())
        for _ in range(2):
            r = app.route()
            assert r.status_code == 200, r.text
            assert r.json()["steps"][0]["ring"] == [aor(tenant.customer, "100")]
    finally:
        app.close()
