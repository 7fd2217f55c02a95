"""SQL for CTI: call events in seq order, webhooks and their deliveries, click-to-dial."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from pbx_app.db import is_postgresql
from pbx_app.schema import (
    call_events,
    click_to_dial,
    customers,
    devices,
    extensions,
    user_extensions,
    webhook_deliveries,
    webhooks,
)

# pg_advisory_xact_lock key of the event writers: commits happen in seq order.
_WRITER_LOCK = 0x43544931  # "CTI1"


def device_extension(conn: Connection, username: str) -> RowMapping | None:
    q = (
        select(extensions.c.id, extensions.c.customer_id, extensions.c.number)
        .select_from(devices.join(extensions, extensions.c.id == devices.c.extension_id))
        .where(devices.c.sip_username == username)
    )
    return conn.execute(q).mappings().first()


def extension(conn: Connection, customer_id: int, number: str) -> RowMapping | None:
    q = select(extensions.c.id, extensions.c.customer_id, extensions.c.number).where(
        extensions.c.customer_id == customer_id, extensions.c.number == number
    )
    return conn.execute(q).mappings().first()


def extension_row(conn: Connection, extension_id: int) -> RowMapping | None:
    q = select(extensions.c.id, extensions.c.customer_id, extensions.c.number).where(
        extensions.c.id == extension_id
    )
    return conn.execute(q).mappings().first()


def cti_levels(conn: Connection, customer_ids: Iterable[int]) -> dict[int, str]:
    ids = list(customer_ids)
    if not ids:
        return {}
    q = select(customers.c.id, customers.c.cti).where(customers.c.id.in_(ids))
    return {int(r.id): str(r.cti) for r in conn.execute(q)}


def crm_template(conn: Connection, customer_id: int) -> str | None:
    q = select(customers.c.crm_url_template).where(
        customers.c.id == customer_id, customers.c.cti == "premium"
    )
    return conn.execute(q).scalar()


def insert(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[RowMapping]:
    """Stores the events not stored yet (customer_id, event_key), in seq order; returns the new
    rows. On PostgreSQL the writers take turns (an advisory lock until commit), so commits
    follow seq: a reader never finds a row below a seq it already passed."""
    if not rows:
        return []
    postgres = is_postgresql(conn)
    if postgres:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _WRITER_LOCK})
    dialect = postgresql if postgres else sqlite
    stmt = (
        dialect.insert(call_events)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["customer_id", "event_key"])
        .returning(*call_events.c)
    )
    return sorted(conn.execute(stmt).mappings().all(), key=lambda r: int(r["seq"]))


def after(
    conn: Connection,
    seq: int,
    limit: int,
    customer_id: int | None = None,
    extension_ids: frozenset[int] | None = None,
) -> list[RowMapping]:
    q = select(call_events).where(call_events.c.seq > seq)
    if customer_id is not None:
        q = q.where(call_events.c.customer_id == customer_id)
    if extension_ids is not None:
        q = q.where(
            or_(
                call_events.c.caller_extension_id.in_(extension_ids),
                call_events.c.callee_extension_id.in_(extension_ids),
            )
        )
    return list(conn.execute(q.order_by(call_events.c.seq).limit(limit)).mappings())


def last_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(call_events.c.seq), 0))).scalar_one())


def prune(conn: Connection, before: datetime) -> int:
    result = conn.execute(delete(call_events).where(call_events.c.created_at < before))
    return int(result.rowcount or 0)


# --- webhooks ----------------------------------------------------------------------------------
def webhook_list(conn: Connection, customer_id: int) -> list[RowMapping]:
    q = select(webhooks).where(webhooks.c.customer_id == customer_id).order_by(webhooks.c.id)
    return list(conn.execute(q).mappings())


def webhook_get(conn: Connection, customer_id: int, webhook_id: int) -> RowMapping | None:
    q = select(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.customer_id == customer_id)
    return conn.execute(q).mappings().first()


def webhook_add(conn: Connection, row: dict[str, Any]) -> RowMapping:
    return conn.execute(webhooks.insert().values(**row).returning(*webhooks.c)).mappings().one()


def webhook_delete(conn: Connection, customer_id: int, webhook_id: int) -> bool:
    q = delete(webhooks).where(webhooks.c.id == webhook_id, webhooks.c.customer_id == customer_id)
    return bool(conn.execute(q).rowcount)


def webhook_count(conn: Connection, customer_id: int) -> int:
    q = select(func.count()).select_from(webhooks).where(webhooks.c.customer_id == customer_id)
    return int(conn.execute(q).scalar_one())


def queue_deliveries(conn: Connection, events: Sequence[RowMapping], now: datetime) -> int:
    """A pending delivery per new event and active webhook of its (CTI Premium) customer."""
    customer_ids = {int(e["customer_id"]) for e in events}
    if not customer_ids:
        return 0
    q = (
        select(webhooks.c.id, webhooks.c.customer_id)
        .select_from(webhooks.join(customers, customers.c.id == webhooks.c.customer_id))
        .where(
            webhooks.c.customer_id.in_(customer_ids),
            webhooks.c.active.is_(True),
            customers.c.cti == "premium",
        )
    )
    hooks: dict[int, list[int]] = {}
    for r in conn.execute(q):
        hooks.setdefault(int(r.customer_id), []).append(int(r.id))
    rows = [
        {
            "webhook_id": hook,
            "event_seq": int(e["seq"]),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": "",
            "created_at": now,
        }
        for e in events
        for hook in hooks.get(int(e["customer_id"]), [])
    ]
    if rows:
        conn.execute(webhook_deliveries.insert(), rows)
    return len(rows)


def claim_due(conn: Connection, now: datetime, until: datetime, limit: int) -> list[RowMapping]:
    """Pending deliveries that are due and not claimed by another node; claimed until
    ``until`` (a node that dies holding a claim leaves it to the others when it runs out)."""
    due = (
        select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.status == "pending",
            webhook_deliveries.c.next_attempt_at <= now,
            or_(
                webhook_deliveries.c.claimed_until.is_(None),
                webhook_deliveries.c.claimed_until < now,
            ),
        )
        .order_by(webhook_deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [int(i) for i in conn.execute(due).scalars()]
    if not ids:
        return []
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_(ids))
        .values(claimed_until=until)
    )
    q = (
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.attempts,
            webhooks.c.url,
            webhooks.c.secret,
            *call_events.c,
        )
        .select_from(
            webhook_deliveries.join(
                webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id
            ).join(call_events, call_events.c.seq == webhook_deliveries.c.event_seq)
        )
        .where(webhook_deliveries.c.id.in_(ids))
        .order_by(webhook_deliveries.c.id)
    )
    return list(conn.execute(q).mappings())


def delivery_done(conn: Connection, delivery_id: int, values: dict[str, Any]) -> None:
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(claimed_until=None, **values)
    )


def deliveries(conn: Connection, webhook_id: int, limit: int) -> list[RowMapping]:
    q = (
        select(webhook_deliveries)
        .where(webhook_deliveries.c.webhook_id == webhook_id)
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(q).mappings())


# --- click-to-dial -----------------------------------------------------------------------------
def ctd_add(conn: Connection, row: dict[str, Any]) -> RowMapping:
    stmt = click_to_dial.insert().values(**row).returning(*click_to_dial.c)
    return conn.execute(stmt).mappings().one()


def ctd_get(conn: Connection, ctd_id: int) -> RowMapping | None:
    return (
        conn.execute(select(click_to_dial).where(click_to_dial.c.id == ctd_id)).mappings().first()
    )


def ctd_update(conn: Connection, ctd_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(click_to_dial).where(click_to_dial.c.id == ctd_id).values(**values))


def user_extension_ids(conn: Connection, user_id: int) -> frozenset[int]:
    q = select(user_extensions.c.extension_id).where(user_extensions.c.user_id == user_id)
    return frozenset(int(i) for i in conn.execute(q).scalars())
