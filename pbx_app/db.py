"""Engine, transactions and migrations for PostgreSQL (lab, production) and SQLite (embedded)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text

# Any constant works; every pbx-app node uses the same one so only one migrates at a time.
MIGRATION_ADVISORY_LOCK_ID = 0x50_42_58_4D  # "PBXM"


def utcnow() -> datetime:
    """Naive UTC, the representation used in every table."""
    return datetime.now(UTC).replace(tzinfo=None)


def is_postgresql(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


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
            if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return  # Database.read(): plain reads, no write lock
            # IMMEDIATE takes the write lock up front: SQLite's equivalent of locking the customer
            # row, so count-then-insert is atomic there too.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=40, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """Reads without a transaction of their own (autocommit): each statement is one round
        trip, no BEGIN/COMMIT. For hot paths such as Kamailio's routing questions."""
        with self._autocommit.connect() as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT 1")).scalar() == 1
        except Exception:
            return False

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


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
