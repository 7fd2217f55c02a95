"""Engines, transactions and migrations for PostgreSQL (lab, production) and SQLite (embedded).

Two engines: writes (every ``transaction()``, ``migrate()``) go to PBX_DATABASE_URL, which in the
platform names both Patroni members with ``target_session_attrs=read-write`` so that libpq
finds the leader wherever it is; reads (``read()``: the routing hot path, ``/healthz``) go to
PBX_DATABASE_READ_URL (``target_session_attrs=any``, local member first) when it is set, else to
the write engine. While no leader is reachable, ``transaction()`` raises
``errors.DatabaseUnavailable`` (HTTP 503) instead of hanging or failing with a 500, and the
connections that broke are dropped from the pool, so that the next request reconnects (to the
new leader after a failover) by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from pbx_app import errors

log = logging.getLogger("pbx_app.db")

# Any constant works; every pbx-app node uses the same one so only one migrates at a time.
MIGRATION_ADVISORY_LOCK_ID = 0x50_42_58_4D  # "PBXM"

# libpq parameters that keep a dead or cut-off peer from hanging a request; each applies only
# where the URL does not set it. connect_timeout counts per host of a multi-host URL (psycopg and
# libpq enforce at least 2 s); tcp_user_timeout (ms) ends a connection whose sent data stays
# unacknowledged, the keepalives one that went silent while idle (5 + 2 * 2 s).
PG_CONNECT_DEFAULTS: dict[str, int] = {
    "connect_timeout": 2,
    "tcp_user_timeout": 5000,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}

# Server errors that mean "this server cannot take the write (any more)", not "the request is
# wrong": read-only (a standby, a demoted leader), shut down or restarting, session terminated.
# Class 08 (connection exception) counts as well; so does any psycopg OperationalError without
# an SQLSTATE: refused or timed-out connects, libpq's target_session_attrs refusals ("session
# is read-only", "server is in hot standby mode"), a connection lost mid-request.
UNAVAILABLE_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03", "57P05"})

# /healthz waits at most this long for the write engine to reach a leader.
WRITABLE_PROBE_TIMEOUT = 2.5

# Execution option marking Database.snapshot()'s read-only transactions; its value
# REPEATABLE_READ (Database.read_snapshot()) makes the whole transaction one snapshot on
# PostgreSQL too (SQLite's deferred BEGIN always reads one).
SNAPSHOT_OPTION = "pbx_snapshot"
REPEATABLE_READ = "repeatable_read"

WRITE_UNAVAILABLE = "no writable database (leader) is reachable; retry later"
READ_UNAVAILABLE = "the database is unreachable; retry later"


def utcnow() -> datetime:
    """Naive UTC, the representation used in every table."""
    return datetime.now(UTC).replace(tzinfo=None)


def is_postgresql(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def pg_connect_args(url: str) -> dict[str, Any]:
    """The PG_CONNECT_DEFAULTS the URL does not set itself (connect_args would override it)."""
    query = make_url(url).query
    return {key: value for key, value in PG_CONNECT_DEFAULTS.items() if key not in query}


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the server is gone or cannot write, as opposed to an error
    of the statement itself (constraint, syntax, lock timeout, ...)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]
    if not isinstance(exc, psycopg.Error):
        return False
    sqlstate = exc.sqlstate
    if sqlstate:
        return sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES
    return isinstance(exc, psycopg.OperationalError)


def _handle_error(context: ExceptionContext) -> None:
    # Treat these as disconnects: SQLAlchemy then invalidates the connection and the rest of
    # the pool (all made before the error), so stale connections to a server that went away or
    # turned read-only are replaced by new ones, which libpq points at the current leader.
    if not context.is_disconnect and is_unavailable(context.original_exception):
        # Documented as settable in handle_error; the interface class declares it read-only.
        context.is_disconnect = True  # type: ignore[misc]


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below decide when a transaction starts.
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":
                return  # Database.read(): plain reads, no write lock
            if options.get(SNAPSHOT_OPTION):
                # Database.snapshot(): a deferred BEGIN reads one consistent view (WAL) and never
                # takes the write lock, so reads do not queue behind writers.
                conn.exec_driver_sql("BEGIN")
                return
            # IMMEDIATE takes the write lock up front: SQLite's equivalent of locking the customer
            # row, so count-then-insert is atomic there too.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args = pg_connect_args(url) if make_url(url).get_backend_name() == "postgresql" else {}
    engine = create_engine(
        url, pool_size=10, max_overflow=40, pool_pre_ping=True, connect_args=connect_args
    )
    event.listen(engine, "handle_error", _handle_error)

    @event.listens_for(engine, "begin")
    def _pg_begin(conn: Connection) -> None:
        # Not psycopg's read_only attribute: SQLAlchemy resets it to False, and psycopg then
        # starts every later transaction with READ WRITE, overriding a server that is read-only.
        snapshot = conn.get_execution_options().get(SNAPSHOT_OPTION)
        if snapshot == REPEATABLE_READ:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        elif snapshot:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


@dataclass(frozen=True)
class Health:
    readable: bool  # the read engine (the local member) answers
    writable: bool  # the write engine reaches a server that takes writes (the leader)


class Database:
    def __init__(self, url: str, read_url: str = "") -> None:
        self.url = url
        self.read_url = read_url or url
        self.engine = make_engine(url)
        self.read_engine = self.engine if self.read_url == url else make_engine(self.read_url)
        self._autocommit = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        # Read-only transactions; how, per backend: see make_engine.
        self._snapshot = self.engine.execution_options(**{SNAPSHOT_OPTION: True})
        self._read_snapshot = self.read_engine.execution_options(
            **{SNAPSHOT_OPTION: REPEATABLE_READ}
        )
        self._probe_lock = threading.Lock()
        self._probe: Future[bool] | None = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on the write engine (the leader). Raises errors.DatabaseUnavailable
        when no leader is reachable or the connection to it breaks."""
        with _unavailable_as_503("write", WRITE_UNAVAILABLE), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction on the write engine: one consistent view of what the API
        reads (read-your-writes included), without a write lock or a writable transaction, so
        reads never wait for writers (SQLite) and cannot write by mistake (PostgreSQL)."""
        with _unavailable_as_503("write", WRITE_UNAVAILABLE), self._snapshot.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Reads without a transaction of their own (autocommit) on the read engine: each
        statement is one round trip, no BEGIN/COMMIT. For hot paths such as Kamailio's routing
        questions; they keep working at a site cut off from the leader."""
        with _unavailable_as_503("read", READ_UNAVAILABLE), self._autocommit.connect() as conn:
            yield conn

    @contextmanager
    def read_snapshot(self) -> Iterator[Connection]:
        """A read-only transaction on the read engine that sees one snapshot throughout: for
        routing decisions that read several statements (a call plan); like ``read()`` it keeps
        working at a site cut off from the leader."""
        with _unavailable_as_503("read", READ_UNAVAILABLE), self._read_snapshot.begin() as conn:
            yield conn

    def ping(self) -> bool:
        """Whether the read engine answers."""
        try:
            with self.read_engine.connect() as conn:
                return conn.execute(text("SELECT 1")).scalar() == 1
        except Exception:
            return False

    def writable(self, timeout: float = WRITABLE_PROBE_TIMEOUT) -> bool:
        """Whether the write engine reaches a server that takes writes, waiting at most
        ``timeout`` seconds (a probe still connecting counts as not writable, and the next call
        waits for that probe instead of starting another)."""
        return self._wait(self._start_probe(), timeout)

    def health(self, timeout: float = WRITABLE_PROBE_TIMEOUT) -> Health:
        probe = self._start_probe()  # runs while the read engine is asked
        readable = self.ping()
        return Health(readable=readable, writable=self._wait(probe, timeout))

    def _start_probe(self) -> Future[bool]:
        with self._probe_lock:
            if self._probe is not None and not self._probe.done():
                return self._probe
            probe: Future[bool] = Future()
            self._probe = probe

        def run() -> None:
            try:
                probe.set_result(self._check_writable())
            except BaseException as exc:  # reported through the future
                probe.set_exception(exc)

        threading.Thread(target=run, name="pbx-db-writable-probe", daemon=True).start()
        return probe

    @staticmethod
    def _wait(probe: Future[bool], timeout: float) -> bool:
        try:
            return probe.result(timeout=timeout)
        except FutureTimeout:
            return False

    def _check_writable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                if not is_postgresql(conn):
                    return True
                # "on" on a standby (recovery) and where default_transaction_read_only is set.
                return conn.execute(text("SHOW transaction_read_only")).scalar() == "off"
        except Exception:
            return False

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


@contextmanager
def _unavailable_as_503(which: str, message: str) -> Iterator[None]:
    """A database that cannot be reached (or no longer leads) becomes DatabaseUnavailable;
    any other database error stays what it is."""
    try:
        yield
    except DBAPIError as exc:
        if not is_unavailable(exc):
            raise
        log.warning("%s database unavailable: %s", which, _first_line(exc.orig))
        raise errors.DatabaseUnavailable(message) from exc


def _first_line(exc: BaseException | None) -> str:
    lines = str(exc).strip().splitlines() if exc is not None else []
    return lines[0] if lines else type(exc).__name__


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade to the newest schema; on PostgreSQL serialised by an advisory lock so that several
    app nodes starting at once do not race each other."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if is_postgresql(conn):
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_ADVISORY_LOCK_ID}
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
