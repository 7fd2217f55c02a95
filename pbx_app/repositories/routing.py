"""SQL for Kamailio's routing questions: the caller, the target, and (issue 13) the rules,
groups and numbers a call plan follows.

Every lookup hits an index: devices.sip_username, extensions by id, (customer_id, number) and
geo_number, head_numbers.number, call_rules (extension_id, position), ring_group_members
(group_id, position), ring_groups by id; none scans a customer's extensions, so a decision costs
the same at 100 and at 249,000 extensions. Statements are built once at import.
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
    update,
)

from pbx_app.schema import (
    call_rules,
    customers,
    devices,
    extensions,
    fax_numbers,
    head_numbers,
    locations,
    ring_group_members,
    ring_groups,
)

# A head number with a block of 10**k numbers has k suffix digits: len(str(block_size)) == k + 1.
_e = extensions.alias("e")
_e2 = extensions.alias("e2")
_h = head_numbers.alias("h")
_d = devices.alias("d")
_c = customers.alias("c")
_l = locations.alias("l")


# --- caller: the authenticated device, its extension, customer, and outgoing caller ID -----------
_implicit_did = _h.c.number + _e.c.number


def _first_head(value: Any, *conditions: Any) -> Any:
    q = select(value).where(_h.c.customer_id == _e.c.customer_id, *conditions)
    return q.order_by(_h.c.id).limit(1).correlate(_e).scalar_subquery()


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
# An extension as a call plan sees it: its customer, location (opening hours, holidays,
# emergency data) and caller ID settings; "did" is its own number by the DID rule above.
_NODE_COLUMNS = (
    _e.c.id,
    _e.c.number,
    _e.c.number.label("extension"),
    _e.c.customer_id,
    _e.c.caller_id.label("own_caller_id"),
    _e.c.clir,
    _c.c.srtp_required,
    _c.c.trial_ends_at,
    _c.c.contract_ends_on,
    _c.c.service_numbers_allowed,
    _c.c.default_caller_id,
    _c.c.cti,
    _c.c.crm_url_template,
    _l.c.street,
    _l.c.postal_code,
    _l.c.city,
    _l.c.area_code,
    _l.c.opening_hours,
    _l.c.state,
    _caller_id.label("did"),
)
_NODE_FROM = _e.join(_c, _c.c.id == _e.c.customer_id).join(_l, _l.c.id == _e.c.location_id)
_NODE = select(*_NODE_COLUMNS).select_from(_NODE_FROM)
# The device's extension by a scalar subquery: evaluated once, then a primary key lookup (a
# join could let the planner walk the extensions in id order to meet a few devices).
_device_extension = (
    select(_d.c.extension_id).where(_d.c.sip_username == bindparam("username")).scalar_subquery()
)
_CALLER = _NODE.where(_e.c.id == _device_extension)


def caller(conn: Connection, username: str) -> RowMapping | None:
    """The calling device's extension (as ``node``), or None."""
    return conn.execute(_CALLER, {"username": username}).mappings().first()


# --- target: an extension of one customer ---------------------------------------------------
_EXTENSION = _NODE.where(
    _e.c.customer_id == bindparam("customer_id"), _e.c.number == bindparam("number")
)
_EXTENSION_BY_ID = _NODE.where(_e.c.id == bindparam("id"))


def extension(conn: Connection, customer_id: int, number: str) -> RowMapping | None:
    params = {"customer_id": customer_id, "number": number}
    return conn.execute(_EXTENSION, params).mappings().first()


def extension_by_id(conn: Connection, extension_id: int) -> RowMapping | None:
    return conn.execute(_EXTENSION_BY_ID, {"id": extension_id}).mappings().first()


# --- target: a device username (someone dialled sip:other-100@...) ---------------------------
def device_extension(conn: Connection, username: str) -> RowMapping | None:
    return conn.execute(_CALLER, {"username": username}).mappings().first()


# --- call plans: rules, groups, round robin ----------------------------------------------------
_RULES = (
    select(
        call_rules.c.kind,
        call_rules.c.match,
        call_rules.c.timeout_s,
        call_rules.c.target_kind,
        call_rules.c.target_value,
        call_rules.c.target_extension_id,
        call_rules.c.target_group_id,
    )
    .where(call_rules.c.extension_id == bindparam("extension_id"))
    .order_by(call_rules.c.position)
)


def rules(conn: Connection, extension_id: int) -> list[RowMapping]:
    return list(conn.execute(_RULES, {"extension_id": extension_id}).mappings())


_GROUP = select(ring_groups).where(ring_groups.c.id == bindparam("id"))
_MEMBERS = (
    select(ring_group_members.c.extension_id)
    .where(ring_group_members.c.group_id == bindparam("id"))
    .order_by(ring_group_members.c.position)
)
# By primary key, one by one in effect: a join could let the planner walk the extensions.
_MEMBER_AORS = select(extensions.c.id, extensions.c.customer_id, extensions.c.number).where(
    extensions.c.id.in_(bindparam("ids", expanding=True))
)


def group(conn: Connection, group_id: int) -> RowMapping | None:
    return conn.execute(_GROUP, {"id": group_id}).mappings().first()


def group_members(conn: Connection, group_id: int) -> list[RowMapping]:
    """The members in order: customer_id and number of each."""
    ids = list(conn.execute(_MEMBERS, {"id": group_id}).scalars())
    if not ids:
        return []
    found = {r["id"]: r for r in conn.execute(_MEMBER_AORS, {"ids": ids}).mappings()}
    return [found[i] for i in ids if i in found]


def advance_round_robin(conn: Connection, group_id: int, members: int) -> int:
    """Where this call starts (0..members-1); the next one starts one further. One atomic
    UPDATE ... RETURNING: concurrent calls each get their own start."""
    q = (
        update(ring_groups)
        .where(ring_groups.c.id == group_id)
        .values(rr_next=(ring_groups.c.rr_next + 1) % members)
        .returning(ring_groups.c.rr_next)
    )
    after = conn.execute(q).scalar()
    return 0 if after is None else (int(after) - 1) % members


# --- target: a public number (E.164) ---------------------------------------------------------
_n = bindparam("number", type_=String)
# tier 1: an extension's explicit DID (geo_number)
_explicit = (
    select(
        literal(1).label("tier"),
        _e.c.customer_id,
        _e.c.id.label("extension_id"),
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
        _e.c.id.label("extension_id"),
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


def did_owner(rows: list[RowMapping]) -> int | None:
    """The extension a public number rings, from ``public_number``'s rows: an explicit DID
    before a number in a head number block."""
    for tier in (1, 2):
        for row in rows:
            if row["tier"] == tier and row["extension_id"] is not None:
                return int(row["extension_id"])
    return None


def fax_number(conn: Connection, number: str) -> RowMapping | None:
    """The fax number ``number`` (E.164) with what decides whether it takes calls: its
    customer's eFax option and contract state."""
    q = (
        select(
            fax_numbers.c.number,
            fax_numbers.c.customer_id,
            fax_numbers.c.relay_t38,
            _c.c.efax,
            _c.c.trial_ends_at,
            _c.c.contract_ends_on,
            _c.c.cti,
        )
        .select_from(fax_numbers.join(_c, _c.c.id == fax_numbers.c.customer_id))
        .where(fax_numbers.c.number == number)
    )
    return conn.execute(q).mappings().first()
