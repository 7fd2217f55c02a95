"""The migrations build the schema pbx_app.schema declares: tables, columns, types, indexes,
unique and foreign keys (alembic's autogenerate comparison), on both databases. A migration
that forgets a column, or a schema change without its migration, fails here."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pbx_app import schema
from pbx_app.db import Database


def _inline_sqlite_fk(diff: Any) -> bool:
    """SQLite adds a column with a foreign key only inline (``ADD COLUMN ... REFERENCES``), and
    SQLAlchemy reads such a key back without its name and ON DELETE. Its cascade is checked by
    behaviour where it matters (deleting a user deletes their browser phones)."""
    kind, fk = diff[0], diff[1]
    return kind in {"remove_fk", "add_fk"} and [c.name for c in fk.columns] == ["user_id"]


def test_migrated_database_matches_the_declared_schema(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, schema.metadata)
    if db.engine.dialect.name == "sqlite":
        diffs = [d for d in diffs if not (isinstance(d, tuple) and _inline_sqlite_fk(d))]
    assert diffs == [], "migrations and pbx_app/schema.py disagree:\n" + "\n".join(map(str, diffs))


def test_the_newest_migration_downgrades_and_upgrades_again(db: Database) -> None:
    from alembic import command

    from pbx_app.db import alembic_config

    cfg = alembic_config()
    for target in ("-1", "head"):
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if target == "-1" else command.upgrade)(cfg, target)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, schema.metadata)
    if db.engine.dialect.name == "sqlite":
        diffs = [d for d in diffs if not (isinstance(d, tuple) and _inline_sqlite_fk(d))]
    assert diffs == [], "after a downgrade and an upgrade:\n" + "\n".join(map(str, diffs))
