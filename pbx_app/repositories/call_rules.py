"""SQL for call rules and ring groups (issue 13), as the API reads and writes them.

Every statement uses an index: rules by (extension_id, position), members by (group_id,
position), extensions and groups by primary key or (customer_id, number|name); the references
to a group by their own indexes (target_group_id, final_group_id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, RowMapping, delete, select, update

from pbx_app.schema import call_rules, extensions, ring_group_members, ring_groups

_target = extensions.alias("target")
_owner = extensions.alias("owner")
_member = extensions.alias("member")


# --- rules -------------------------------------------------------------------------------------
def rules_of(conn: Connection, extension_id: int) -> list[RowMapping]:
    """The extension's rules in order, each with its target extension's number (or None)."""
    q = (
        select(call_rules, _target.c.number.label("target_number"))
        .select_from(
            call_rules.outerjoin(_target, _target.c.id == call_rules.c.target_extension_id)
        )
        .where(call_rules.c.extension_id == extension_id)
        .order_by(call_rules.c.position)
    )
    return list(conn.execute(q).mappings())


def replace_rules(conn: Connection, extension_id: int, rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(call_rules).where(call_rules.c.extension_id == extension_id))
    if rows:
        conn.execute(
            call_rules.insert(),
            [{**row, "extension_id": extension_id, "position": i} for i, row in enumerate(rows)],
        )


# --- extensions by number and by id ------------------------------------------------------------
def extension_ids(conn: Connection, customer_id: int, numbers: list[str]) -> dict[str, int]:
    if not numbers:
        return {}
    q = select(extensions.c.number, extensions.c.id).where(
        extensions.c.customer_id == customer_id, extensions.c.number.in_(numbers)
    )
    return {str(n): int(i) for n, i in conn.execute(q).all()}


def extension_numbers(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    q = select(extensions.c.id, extensions.c.number).where(extensions.c.id.in_(ids))
    return {int(i): str(n) for i, n in conn.execute(q).all()}


# --- ring groups -------------------------------------------------------------------------------
_GROUP = select(ring_groups, _target.c.number.label("final_number")).select_from(
    ring_groups.outerjoin(_target, _target.c.id == ring_groups.c.final_extension_id)
)


def insert_group(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(ring_groups.insert().values(**values)).inserted_primary_key[0])


def get_group(conn: Connection, customer_id: int, group_id: int) -> RowMapping | None:
    q = _GROUP.where(ring_groups.c.customer_id == customer_id, ring_groups.c.id == group_id)
    return conn.execute(q).mappings().first()


def group_by_name(conn: Connection, customer_id: int, name: str) -> RowMapping | None:
    q = select(ring_groups.c.id).where(
        ring_groups.c.customer_id == customer_id, ring_groups.c.name == name
    )
    return conn.execute(q).mappings().first()


def list_groups(conn: Connection, customer_id: int, limit: int, offset: int) -> list[RowMapping]:
    q = (
        _GROUP.where(ring_groups.c.customer_id == customer_id)
        .order_by(ring_groups.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list(conn.execute(q).mappings())


def update_group(conn: Connection, group_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(ring_groups).where(ring_groups.c.id == group_id).values(**values))


def delete_group(conn: Connection, group_id: int) -> None:
    conn.execute(delete(ring_groups).where(ring_groups.c.id == group_id))


def members(conn: Connection, group_ids: list[int]) -> dict[int, list[RowMapping]]:
    """Members of each group in order: extension_id and number."""
    out: dict[int, list[RowMapping]] = {g: [] for g in group_ids}
    if not group_ids:
        return out
    q = (
        select(ring_group_members.c.group_id, ring_group_members.c.extension_id, _member.c.number)
        .select_from(
            ring_group_members.join(_member, _member.c.id == ring_group_members.c.extension_id)
        )
        .where(ring_group_members.c.group_id.in_(group_ids))
        .order_by(ring_group_members.c.group_id, ring_group_members.c.position)
    )
    for row in conn.execute(q).mappings():
        out[int(row["group_id"])].append(row)
    return out


def replace_members(conn: Connection, group_id: int, extension_ids: list[int]) -> None:
    conn.execute(delete(ring_group_members).where(ring_group_members.c.group_id == group_id))
    if extension_ids:
        conn.execute(
            ring_group_members.insert(),
            [
                {"group_id": group_id, "position": i, "extension_id": e}
                for i, e in enumerate(extension_ids)
            ],
        )


def group_referrers(conn: Connection, group_id: int) -> list[str]:
    """Who forwards to the group: "extension 100" (its rules), "group 7" (final target)."""
    by_rules = (
        select(_owner.c.number)
        .select_from(call_rules.join(_owner, _owner.c.id == call_rules.c.extension_id))
        .where(call_rules.c.target_group_id == group_id)
        .distinct()
    )
    by_groups = select(ring_groups.c.id).where(ring_groups.c.final_group_id == group_id)
    names = [f"extension {n}" for n in conn.execute(by_rules).scalars()]
    return sorted(names) + [f"group {g}" for g in conn.execute(by_groups).scalars()]
