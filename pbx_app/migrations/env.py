"""Alembic environment: always driven programmatically by pbx_app.db.migrate."""

from __future__ import annotations

from alembic import context

from pbx_app.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `python -m pbx_app migrate`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
