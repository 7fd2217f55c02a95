"""SQL for zero-touch provisioning: the operator's device models and the provisioning log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, select, update

from pbx_app.schema import device_models, devices, provisioning_log


def models(conn: Connection) -> list[RowMapping]:
    return list(conn.execute(select(device_models).order_by(device_models.c.model)).mappings())


def model(conn: Connection, name: str) -> RowMapping | None:
    q = select(device_models).where(device_models.c.model == name)
    return conn.execute(q).mappings().first()


def certified_models(conn: Connection) -> frozenset[str]:
    q = select(device_models.c.model).where(device_models.c.certified.is_(True))
    return frozenset(conn.execute(q).scalars())


def put_model(conn: Connection, values: dict[str, Any]) -> None:
    if model(conn, values["model"]) is None:
        conn.execute(insert(device_models).values(**values))
    else:
        q = update(device_models).where(device_models.c.model == values["model"])
        conn.execute(q.values(**values))


def delete_model(conn: Connection, name: str) -> bool:
    q = delete(device_models).where(device_models.c.model == name)
    return bool(conn.execute(q).rowcount)


def model_in_use(conn: Connection, name: str) -> bool:
    q = select(devices.c.id).where(devices.c.model == name).limit(1)
    return conn.execute(q).first() is not None


def device_by_claim(conn: Connection, claim_hash: str) -> RowMapping | None:
    q = select(devices).where(devices.c.claim_hash == claim_hash).with_for_update()
    return conn.execute(q).mappings().first()


def device_by_mac_for_update(conn: Connection, mac: str) -> RowMapping | None:
    q = select(devices).where(devices.c.mac == mac).with_for_update()
    return conn.execute(q).mappings().first()


def log(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(provisioning_log).values(**values))


def prune_log(conn: Connection, before: datetime) -> None:
    conn.execute(delete(provisioning_log).where(provisioning_log.c.at < before))


def log_entries(
    conn: Connection, customer_id: int | None, before_id: int | None, limit: int
) -> list[RowMapping]:
    q = select(provisioning_log).order_by(provisioning_log.c.id.desc()).limit(limit)
    if customer_id is not None:
        q = q.where(provisioning_log.c.customer_id == customer_id)
    if before_id is not None:
        q = q.where(provisioning_log.c.id < before_id)
    return list(conn.execute(q).mappings())


def sealed_after(conn: Connection, after_id: int, limit: int) -> list[RowMapping]:
    q = (
        select(devices.c.id, devices.c.sip_username, devices.c.sip_secret, devices.c.prov_secret)
        .where(devices.c.id > after_id)
        .where((devices.c.sip_secret.is_not(None)) | (devices.c.prov_secret.is_not(None)))
        .order_by(devices.c.id)
        .limit(limit)
    )
    return list(conn.execute(q).mappings())
