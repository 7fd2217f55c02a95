"""SQL for Kamailio's routing questions: one statement for the caller, one for the target.

Every lookup hits a unique index: devices.sip_username, extensions (customer_id, number),
extensions.geo_number, head_numbers.number. Statements are built once at import.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    literal,
    select,
    union_all,
)

from pbx_app.schema import customers, devices, extensions, head_numbers

# A head number with a block of 10**k numbers has k suffix digits: len(str(block_size)) == k + 1.
_e = extensions.alias("e")
_e2 = extensions.alias("e2")
_h = head_numbers.alias("h")
_d = devices.alias("d")
_c = customers.alias("c")


# --- caller: the authenticated device, its extension, customer, and outgoing caller ID -----------
_implicit_did = _h.c.number + _e.c.number


def _first_head(value: Any, *conditions: Any) -> Any:
    q = select(value).where(_h.c.customer_id == _d.c.customer_id, *conditions)
    return q.order_by(_h.c.id).limit(1).correlate(_d, _e).scalar_subquery()


# The extension's DID: its geo_number, else head number + extension number (a head number at
# the extension's location whose block width is the extension's length, and not claimed as
# another extension's geo_number); without a DID, the customer's first head number (one at the
# extension's location first). COALESCE stops at the first hit (no ORDER BY on outer columns:
# SQLite cannot do that).
_caller_id = func.coalesce(
    _e.c.geo_number,
    _first_head(
        _implicit_did,
        _h.c.location_id == _e.c.location_id,
        func.length(cast(_h.c.block_size, String)) == func.length(_e.c.number) + 1,
        ~exists().where(_e2.c.geo_number == _implicit_did).correlate_except(_e2),
    ),
    _first_head(_h.c.number, _h.c.location_id == _e.c.location_id),
    _first_head(_h.c.number),
)
_CALLER = (
    select(
        _d.c.customer_id,
        _e.c.number.label("extension"),
        _c.c.srtp_required,
        _c.c.trial_ends_at,
        _caller_id.label("caller_id"),
    )
    .select_from(_d.join(_e, _e.c.id == _d.c.extension_id).join(_c, _c.c.id == _d.c.customer_id))
    .where(_d.c.sip_username == bindparam("username"))
)


def caller(conn: Connection, username: str) -> RowMapping | None:
    return conn.execute(_CALLER, {"username": username}).mappings().first()


# --- target: an extension of one customer ---------------------------------------------------
_EXTENSION = (
    select(_e.c.number, _c.c.id.label("customer_id"), _c.c.srtp_required, _c.c.trial_ends_at)
    .select_from(_e.join(_c, _c.c.id == _e.c.customer_id))
    .where(_e.c.customer_id == bindparam("customer_id"), _e.c.number == bindparam("number"))
)


def extension(conn: Connection, customer_id: int, number: str) -> RowMapping | None:
    params = {"customer_id": customer_id, "number": number}
    return conn.execute(_EXTENSION, params).mappings().first()


# --- target: a device username (someone dialled sip:other-100@...) ---------------------------
_DEVICE = (
    select(_e.c.number, _c.c.id.label("customer_id"), _c.c.srtp_required, _c.c.trial_ends_at)
    .select_from(_d.join(_e, _e.c.id == _d.c.extension_id).join(_c, _c.c.id == _d.c.customer_id))
    .where(_d.c.sip_username == bindparam("username"))
)


def device_extension(conn: Connection, username: str) -> RowMapping | None:
    return conn.execute(_DEVICE, {"username": username}).mappings().first()


# --- target: a public number (E.164) ---------------------------------------------------------
_n = bindparam("number", type_=String)
# tier 1: an extension's explicit DID (geo_number)
_explicit = (
    select(
        literal(1).label("tier"),
        _e.c.customer_id,
        _e.c.number,
        _c.c.srtp_required,
        _c.c.trial_ends_at,
    )
    .select_from(_e.join(_c, _c.c.id == _e.c.customer_id))
    .where(_e.c.geo_number == _n)
)
# tier 2: inside a head number block: head number + extension number (see _fallback_caller_id);
# a row with number NULL means "owned on the platform, but no extension answers it".
_suffix_length = func.length(_n) - func.length(_h.c.number)
_in_block = (
    select(
        literal(2).label("tier"),
        _h.c.customer_id,
        _e.c.number,
        _c.c.srtp_required,
        _c.c.trial_ends_at,
    )
    .select_from(
        _h.join(_c, _c.c.id == _h.c.customer_id).outerjoin(
            _e,
            and_(
                _e.c.customer_id == _h.c.customer_id,
                _e.c.number == func.substr(_n, func.length(_h.c.number) + 1),
                _e.c.location_id == _h.c.location_id,
                _e.c.geo_number.is_(None),
                func.length(cast(_h.c.block_size, String)) == _suffix_length + 1,
            ),
        )
    )
    .where(_h.c.number.in_(bindparam("prefixes", expanding=True)))
)
_PUBLIC = union_all(_explicit, _in_block)


def public_number(conn: Connection, number: str) -> list[RowMapping]:
    """Rows for ``number`` (E.164): tier 1 explicit DID, tier 2 head number blocks it is in."""
    prefixes = [number[:i] for i in range(4, len(number) + 1)]
    return list(conn.execute(_PUBLIC, {"number": number, "prefixes": prefixes}).mappings())
