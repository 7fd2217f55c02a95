"""CTI for office software: who may use what, and the customer's CTI settings.

Reading of the price list's two CTI options (pbx_app.pricing: cti_standard_cents,
cti_premium_cents, booked per customer as ``customers.cti``):
- CTI Standard: click-to-dial and call events (WebSocket and HTTP) for the customer's users;
- CTI Premium: Standard plus the CRM lookup (the caller's record in the ringing event) and
  webhooks (events pushed to the customer's own servers).
A customer admin sees every event of the customer; a user those of the extensions they manage
(user_extensions); operators name the customer. Nobody ever sees another customer's events.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update

from pbx_app import errors, outbound
from pbx_app.repositories import call_events as repo
from pbx_app.schema import click_to_dial, customers, devices
from pbx_app.services.access import Actor, Role, authorize
from pbx_app.services.call_events import Scope

MAX_WEBHOOKS = 10
# What may be dialled: digits with an optional leading + (E.164 or national), or an internal
# number; *, # for service codes (the routing decides what they reach).
TARGET = re.compile(r"^\+?[0-9*#]{1,32}$")
CTD_ACTIVE = ("calling_you", "connecting")
CTD_STALE = timedelta(minutes=3)  # a request older than this no longer blocks a new one


def require(customer: RowMapping, premium: bool = False) -> None:
    level = customer["cti"]
    if level == "none":
        raise errors.CtiNotBooked("CTI is not booked for this customer (price list option)")
    if premium and level != "premium":
        raise errors.CtiPremiumRequired("the CRM lookup and webhooks need CTI Premium")


def settings(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> dict[str, Any]:
    customer = authorize(conn, actor, customer_id, now)
    return {"cti": customer["cti"], "crm_url_template": customer["crm_url_template"]}


def set_crm(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    template: str | None,
    deny: tuple[outbound.Network, ...],
    now: datetime,
) -> dict[str, Any]:
    customer = authorize(conn, actor, customer_id, now, write=True)
    if template:
        require(customer, premium=True)
        if "{number}" not in template:
            raise errors.UrlRefused("the template must contain {number}", field="crm_url_template")
        check_url(template.replace("{number}", "0"), deny, "crm_url_template")
    conn.execute(
        update(customers).where(customers.c.id == customer_id).values(crm_url_template=template)
    )
    return {"cti": customer["cti"], "crm_url_template": template}


def check_url(url: str, deny: tuple[outbound.Network, ...], field: str) -> None:
    """The URL's form and, for a literal address, where it points (names are checked again at
    every request, where they resolve then)."""
    try:
        outbound.check(url, deny, resolve=False)
    except outbound.UrlRefused as exc:
        raise errors.UrlRefused(str(exc), field=field) from None


# --- webhooks ----------------------------------------------------------------------------------
def webhooks(conn: Connection, actor: Actor, customer_id: int, now: datetime) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    _admin(actor)
    return repo.webhook_list(conn, customer_id)


def add_webhook(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    url: str,
    secret: str,
    deny: tuple[outbound.Network, ...],
    now: datetime,
) -> RowMapping:
    customer = authorize(conn, actor, customer_id, now, write=True)
    require(customer, premium=True)
    check_url(url, deny, "url")
    if repo.webhook_count(conn, customer_id) >= MAX_WEBHOOKS:
        raise errors.Conflict(f"at most {MAX_WEBHOOKS} webhooks per customer")
    return repo.webhook_add(
        conn,
        {
            "customer_id": customer_id,
            "url": url,
            "secret": secret,
            "active": True,
            "created_at": now,
        },
    )


def delete_webhook(
    conn: Connection, actor: Actor, customer_id: int, webhook_id: int, now: datetime
) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    if not repo.webhook_delete(conn, customer_id, webhook_id):
        raise errors.NotFound(f"webhook {webhook_id} not found")


def deliveries(
    conn: Connection, actor: Actor, customer_id: int, webhook_id: int, now: datetime
) -> list[RowMapping]:
    authorize(conn, actor, customer_id, now)
    _admin(actor)
    if repo.webhook_get(conn, customer_id, webhook_id) is None:
        raise errors.NotFound(f"webhook {webhook_id} not found")
    return repo.deliveries(conn, webhook_id, 200)


def _admin(actor: Actor) -> None:
    if actor.role is Role.USER:
        raise errors.PermissionDenied("only a customer admin or an operator may see webhooks")


# --- events ------------------------------------------------------------------------------------
def scope(conn: Connection, actor: Actor, customer_id: int | None, now: datetime) -> Scope:
    """Whose events ``actor`` sees; CtiNotBooked when the customer has no CTI."""
    if customer_id is None:
        if actor.customer_id is None:
            raise errors.PermissionDenied("an operator names the customer (customer_id)")
        customer_id = actor.customer_id
    customer = authorize(conn, actor, customer_id, now)
    require(customer)
    if actor.role is Role.USER:
        assert actor.user_id is not None
        return Scope(customer_id, repo.user_extension_ids(conn, actor.user_id))
    return Scope(customer_id)


# --- click-to-dial -----------------------------------------------------------------------------
def start_click_to_dial(
    conn: Connection, actor: Actor, target: str, extension_id: int | None, now: datetime
) -> RowMapping:
    """Checks and records a click-to-dial request of ``actor``; the dialer carries it out."""
    if actor.customer_id is None or actor.user_id is None:
        raise errors.PermissionDenied("click-to-dial is for the users of a customer")
    customer = authorize(conn, actor, actor.customer_id, now)
    require(customer)
    target = target.strip()
    if not TARGET.fullmatch(target):
        raise errors.TargetInvalid(
            "target: a number of digits (a leading + for E.164; * and # for service codes)",
            field="target",
        )
    mine = repo.user_extension_ids(conn, actor.user_id)
    if extension_id is None:
        if len(mine) != 1:
            raise errors.ExtensionRequired(
                "name the extension (extension_id): you manage "
                + ("none" if not mine else f"{len(mine)}"),
                field="extension_id",
            )
        extension_id = next(iter(mine))
    elif extension_id not in mine and actor.role is Role.USER:
        raise errors.PermissionDenied("you can click-to-dial only from your own extensions")
    ext = repo.extension_row(conn, extension_id)
    if ext is None or int(ext["customer_id"]) != actor.customer_id:
        raise errors.NotFound(f"extension {extension_id} not found")
    has_device = conn.execute(
        select(devices.c.id).where(devices.c.extension_id == extension_id).limit(1)
    ).first()
    if has_device is None:
        raise errors.NoDevice(f"extension {ext['number']} has no device to ring")
    busy = conn.execute(
        select(click_to_dial.c.id).where(
            click_to_dial.c.user_id == actor.user_id,
            click_to_dial.c.status.in_(CTD_ACTIVE),
            click_to_dial.c.created_at > now - CTD_STALE,
        )
    ).first()
    if busy is not None:
        raise errors.ClickToDialBusy(f"click-to-dial {busy.id} of yours is still under way")
    return repo.ctd_add(
        conn,
        {
            "customer_id": actor.customer_id,
            "user_id": actor.user_id,
            "extension_id": extension_id,
            "target": target,
            "status": "calling_you",
            "cause": "",
            "call_id": "",
            "created_at": now,
            "updated_at": now,
        },
    )


def get_click_to_dial(conn: Connection, actor: Actor, ctd_id: int, now: datetime) -> RowMapping:
    row = repo.ctd_get(conn, ctd_id)
    if row is None or (int(row["customer_id"]) != actor.customer_id and not actor.is_operator):
        raise errors.NotFound(f"click-to-dial {ctd_id} not found")
    if actor.role is Role.USER and row["user_id"] != actor.user_id:
        raise errors.NotFound(f"click-to-dial {ctd_id} not found")
    return row


def public_ctd(row: RowMapping) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "status": row["status"],
        "cause": row["cause"],
        "target": row["target"],
        "extension_id": int(row["extension_id"]),
        "created_at": row["created_at"].isoformat(timespec="seconds") + "Z",
        "updated_at": row["updated_at"].isoformat(timespec="seconds") + "Z",
    }
