"""Ring groups of a customer (issue 13): members (extensions, in order) ring by a strategy,
``parallel`` (all at once), ``hunt`` (one after another, in order) or ``roundrobin`` (one after
another, starting with the member after the one the previous call started with), each for
``member_timeout`` seconds; when nobody answers, the ``final`` target (default: reject 480).

Members ring their devices directly (their own rules do not apply inside the group). A group is
reached through call rules; an admin manages groups, every user of the customer may read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.repositories import call_rules as repo
from pbx_app.services import call_rules
from pbx_app.services.access import Actor, authorize

STRATEGIES = ("parallel", "hunt", "roundrobin")
MAX_MEMBERS = 100
DEFAULT_FINAL = call_rules.Target("reject", 480)


@dataclass(frozen=True)
class NewGroup:
    name: str
    strategy: str = "parallel"
    member_timeout: int = call_rules.DEFAULT_TIMEOUT
    members: list[str] = field(default_factory=list)
    final: call_rules.Target | None = None


def public(group: RowMapping, members: list[RowMapping]) -> dict[str, Any]:
    return {
        "id": group["id"],
        "name": group["name"],
        "strategy": group["strategy"],
        "member_timeout": group["member_timeout_s"],
        "members": [str(m["number"]) for m in members],
        "final": call_rules.public_target(group, "final", "final_number"),
    }


def _get(conn: Connection, customer_id: int, group_id: int) -> RowMapping:
    group = repo.get_group(conn, customer_id, group_id)
    if group is None:
        raise errors.NotFound(f"ring group {group_id} not found")
    return group


def _shown(conn: Connection, customer_id: int, group_id: int) -> dict[str, Any]:
    return public(_get(conn, customer_id, group_id), repo.members(conn, [group_id])[group_id])


def _strategy(value: str) -> str:
    if value not in STRATEGIES:
        raise errors.InvalidCallRule(f"one of {', '.join(STRATEGIES)}", "strategy")
    return value


def _timeout(value: int) -> int:
    if not call_rules.MIN_TIMEOUT <= value <= call_rules.MAX_TIMEOUT:
        raise errors.InvalidCallRule(
            f"between {call_rules.MIN_TIMEOUT} and {call_rules.MAX_TIMEOUT} seconds",
            "member_timeout",
        )
    return value


def _members(conn: Connection, customer_id: int, numbers: list[str]) -> list[int]:
    if len(numbers) > MAX_MEMBERS:
        raise errors.InvalidCallRule(f"at most {MAX_MEMBERS} members", "members")
    ids = repo.extension_ids(conn, customer_id, numbers)
    seen: set[str] = set()
    for i, number in enumerate(numbers):
        if number in seen:
            raise errors.InvalidCallRule(f"extension {number} is listed twice", f"members[{i}]")
        seen.add(number)
        if number not in ids:
            raise errors.NotFound(f"members[{i}]: extension {number} not found")
    return [ids[n] for n in numbers]


def _final(conn: Connection, customer_id: int, target: call_rules.Target | None) -> dict[str, Any]:
    columns = call_rules.target_columns(conn, customer_id, target or DEFAULT_FINAL, "final")
    return {f"final_{k.removeprefix('target_')}": v for k, v in columns.items()}


def _name_free(conn: Connection, customer_id: int, name: str, group_id: int | None) -> None:
    other = repo.group_by_name(conn, customer_id, name)
    if other is not None and other["id"] != group_id:
        raise errors.RingGroupNameInUse(f"a ring group named {name!r} exists already")


def create(
    conn: Connection, actor: Actor, customer_id: int, new: NewGroup, now: datetime
) -> dict[str, Any]:
    authorize(conn, actor, customer_id, now, write=True)
    values = {
        "customer_id": customer_id,
        "name": new.name,
        "strategy": _strategy(new.strategy),
        "member_timeout_s": _timeout(new.member_timeout),
        "rr_next": 0,
        "created_at": now,
        **_final(conn, customer_id, new.final),
    }
    member_ids = _members(conn, customer_id, new.members)
    _name_free(conn, customer_id, new.name, None)
    group_id = repo.insert_group(conn, values)
    repo.replace_members(conn, group_id, member_ids)
    return _shown(conn, customer_id, group_id)


def update(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    group_id: int,
    changes: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """``changes``: any of name, strategy, member_timeout, members (replaced), final (a
    Target; None: the default)."""
    authorize(conn, actor, customer_id, now, write=True)
    _get(conn, customer_id, group_id)
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        _name_free(conn, customer_id, changes["name"], group_id)
        values["name"] = changes["name"]
    if changes.get("strategy") is not None:
        values["strategy"] = _strategy(changes["strategy"])
        values["rr_next"] = 0
    if changes.get("member_timeout") is not None:
        values["member_timeout_s"] = _timeout(changes["member_timeout"])
    if "final" in changes:
        final = _final(conn, customer_id, changes["final"])
        call_rules.require_no_loop(conn, customer_id, ("group", group_id), [final])
        values.update(final)
    if changes.get("members") is not None:
        repo.replace_members(conn, group_id, _members(conn, customer_id, changes["members"]))
        values["rr_next"] = 0
    if values:
        repo.update_group(conn, group_id, values)
    return _shown(conn, customer_id, group_id)


def get(
    conn: Connection, actor: Actor, customer_id: int, group_id: int, now: datetime
) -> dict[str, Any]:
    authorize(conn, actor, customer_id, now)
    return _shown(conn, customer_id, group_id)


def list_(
    conn: Connection, actor: Actor, customer_id: int, now: datetime, limit: int, offset: int
) -> list[dict[str, Any]]:
    authorize(conn, actor, customer_id, now)
    groups = repo.list_groups(conn, customer_id, limit, offset)
    members = repo.members(conn, [int(g["id"]) for g in groups])
    return [public(g, members[int(g["id"])]) for g in groups]


def delete(conn: Connection, actor: Actor, customer_id: int, group_id: int, now: datetime) -> None:
    authorize(conn, actor, customer_id, now, write=True)
    _get(conn, customer_id, group_id)
    referrers = repo.group_referrers(conn, group_id)
    if referrers:
        raise errors.RingGroupInUse(
            f"calls are forwarded to this group by {', '.join(referrers[:10])}; change those "
            "rules first"
        )
    repo.delete_group(conn, group_id)
