"""Call rules of an extension (issue 13): an ordered list, replaced whole and validated at once.

Kinds: ``caller`` (the caller's number or prefix, forwards at once), ``schedule`` (outside the
location's opening hours or on a public holiday of its state, forwards at once),
``unconditional``; then, when the extension rang: ``busy``, ``noanswer`` (after ``timeout``
seconds, 5..120) and ``unavailable`` (no device registered). The first three are tried in list
order, first match wins; each of the others applies at most once.

Targets: another extension of the customer, one of its ring groups, an external number (a
platform number rings its extension), or a reject with one of REJECT_CODES. A rule set that would
send a call in a circle, through extensions, groups (their final target) and the customer's own
numbers, is refused (409 rule_loop naming the circle); calls through other customers' numbers are
cut at call time (pbx_app.services.call_plan).

Caller patterns are stored normalised: E.164 (``+49...``) for public numbers in any dialled
form, or an extension number; a trailing ``*`` makes a prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping

from pbx_app import errors
from pbx_app.addressing import EMERGENCY_NUMBERS
from pbx_app.repositories import call_rules as repo
from pbx_app.repositories import routing as routing_repo
from pbx_app.services.access import Actor
from pbx_app.services.numbering import dialled_to_e164
from pbx_app.services.user_extensions import manageable_extension

KINDS = ("caller", "schedule", "unconditional", "busy", "noanswer", "unavailable")
ENTRY_KINDS = frozenset({"caller", "schedule", "unconditional"})
TARGET_KINDS = ("extension", "group", "external", "reject")
REJECT_CODES = {
    403: "Forbidden",
    404: "Not Found",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    600: "Busy Everywhere",
    603: "Decline",
}
MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 5, 120, 20
MAX_RULES = 20
MAX_MATCH = 17  # "+" and 15 digits, and "*"

_INTERNAL = re.compile(r"[1-9][0-9]{0,7}")
_PUBLIC = re.compile(r"\+[1-9][0-9]{0,14}")


@dataclass(frozen=True)
class Target:
    kind: str  # TARGET_KINDS
    value: str | int  # extension number, group id, dialled number, reject code


@dataclass(frozen=True)
class NewRule:
    kind: str
    target: Target
    match: str | None = None
    timeout: int | None = None


# --- caller patterns ---------------------------------------------------------------------------
def normalise_match(text: str, field: str) -> str:
    """``0171*`` -> ``+49171*``, ``0049...`` and ``+49...`` -> ``+49...``, ``10*`` stays."""
    prefix = text.endswith("*")
    digits = text[:-1] if prefix else text
    if digits.startswith("+"):
        number = digits
    elif digits.startswith("00"):
        number = "+" + digits[2:]
    elif digits.startswith("0"):
        number = "+49" + digits[1:]
    else:
        number = digits
    pattern = _PUBLIC if number.startswith("+") else _INTERNAL
    if not pattern.fullmatch(number) or (not prefix and number.startswith("+") and len(number) < 8):
        raise errors.InvalidCallRule(
            "expected a caller number or prefix: E.164 (+49...), national (0...), "
            "international (00...) or an extension number, a trailing * for a prefix",
            field,
        )
    return number + ("*" if prefix else "")


def caller_matches(pattern: str, number: str) -> bool:
    """``number``: the caller as the callee's customer sees it (an extension number, or E.164);
    empty when the caller withholds it (then nothing matches)."""
    if not number:
        return False
    if pattern.endswith("*"):
        return number.startswith(pattern[:-1])
    return number == pattern


# --- targets -----------------------------------------------------------------------------------
def target_columns(
    conn: Connection, customer_id: int, target: Target, field: str
) -> dict[str, Any]:
    """A target as stored (target_kind, target_value, target_extension_id, target_group_id);
    a target extension or group must be the customer's (404 otherwise)."""
    columns: dict[str, Any] = {
        "target_kind": target.kind,
        "target_value": None,
        "target_extension_id": None,
        "target_group_id": None,
    }
    if target.kind == "extension":
        found = repo.extension_ids(conn, customer_id, [str(target.value)])
        if not found:
            raise errors.NotFound(f"{field}: extension {target.value} not found")
        columns["target_extension_id"] = found[str(target.value)]
    elif target.kind == "group":
        if (
            not isinstance(target.value, int)
            or repo.get_group(conn, customer_id, target.value) is None
        ):
            raise errors.NotFound(f"{field}: ring group {target.value} not found")
        columns["target_group_id"] = target.value
    elif target.kind == "external":
        text = str(target.value)
        number = dialled_to_e164(text)
        if number is None or text in EMERGENCY_NUMBERS:
            raise errors.InvalidCallRule(
                "expected a public number: E.164 (+...), international (00...) or national "
                "(0...); not an emergency number",
                field,
            )
        columns["target_value"] = number
    elif target.kind == "reject":
        if target.value not in REJECT_CODES:
            codes = ", ".join(str(c) for c in REJECT_CODES)
            raise errors.InvalidCallRule(f"a reject answers one of {codes}", field)
        columns["target_value"] = str(target.value)
    else:
        raise errors.InvalidCallRule(f"a target is one of {', '.join(TARGET_KINDS)}", field)
    return columns


def public_target(row: RowMapping, prefix: str, number_key: str) -> dict[str, Any]:
    """The API form: {"extension": "101"}, {"group": 3}, {"external": "+49..."}, {"reject": 486}.
    ``prefix``: "target" (rules) or "final" (groups); a group's final extension that was
    deleted answers as the default, reject 480."""
    kind, value = row[f"{prefix}_kind"], row[f"{prefix}_value"]
    if kind == "extension" and row[number_key] is not None:
        return {"extension": str(row[number_key])}
    if kind == "group" and row[f"{prefix}_group_id"] is not None:
        return {"group": int(row[f"{prefix}_group_id"])}
    if kind == "external":
        return {"external": str(value)}
    if kind == "reject":
        return {"reject": int(value)}
    return {"reject": 480}


def public(row: RowMapping) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "match": row["match"],
        "timeout": row["timeout_s"],
        "target": public_target(row, "target", "target_number"),
    }


# --- read and replace --------------------------------------------------------------------------
def get(
    conn: Connection, actor: Actor, customer_id: int, extension_id: int, now: datetime
) -> list[dict[str, Any]]:
    manageable_extension(conn, actor, customer_id, extension_id, now, write=False)
    return [public(r) for r in repo.rules_of(conn, extension_id)]


def put(
    conn: Connection,
    actor: Actor,
    customer_id: int,
    extension_id: int,
    rules: list[NewRule],
    now: datetime,
) -> list[dict[str, Any]]:
    """Replaces the extension's rules: every rule is checked, and the whole set for circles,
    before anything is written."""
    manageable_extension(conn, actor, customer_id, extension_id, now, write=True)
    rows = validate(conn, customer_id, rules)
    require_no_loop(conn, customer_id, ("extension", extension_id), rows)
    repo.replace_rules(conn, extension_id, rows)
    return [public(r) for r in repo.rules_of(conn, extension_id)]


def validate(conn: Connection, customer_id: int, rules: list[NewRule]) -> list[dict[str, Any]]:
    if len(rules) > MAX_RULES:
        raise errors.InvalidCallRule(f"at most {MAX_RULES} rules per extension", "rules")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        field = f"rules[{i}]"
        if rule.kind not in KINDS:
            raise errors.InvalidCallRule(f"a rule kind is one of {', '.join(KINDS)}", field)
        if rule.kind != "caller" and rule.kind in seen:
            raise errors.InvalidCallRule(
                f"one {rule.kind} rule per extension (caller rules may repeat)", f"{field}.kind"
            )
        seen.add(rule.kind)
        match = None
        if rule.kind == "caller":
            if not rule.match:
                raise errors.InvalidCallRule("a caller rule needs a match", f"{field}.match")
            match = normalise_match(rule.match, f"{field}.match")
        elif rule.match is not None:
            raise errors.InvalidCallRule("only a caller rule has a match", f"{field}.match")
        timeout = None
        if rule.kind == "noanswer":
            timeout = DEFAULT_TIMEOUT if rule.timeout is None else rule.timeout
            if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
                raise errors.InvalidCallRule(
                    f"between {MIN_TIMEOUT} and {MAX_TIMEOUT} seconds", f"{field}.timeout"
                )
        elif rule.timeout is not None:
            raise errors.InvalidCallRule("only a noanswer rule has a timeout", f"{field}.timeout")
        target = target_columns(conn, customer_id, rule.target, f"{field}.target")
        rows.append({"kind": rule.kind, "match": match, "timeout_s": timeout, **target})
    return rows


# --- circles -----------------------------------------------------------------------------------
Node = tuple[str, int]  # ("extension", id) or ("group", id)


def _edge(
    conn: Connection, customer_id: int, row: RowMapping | dict[str, Any], prefix: str
) -> Node | None:
    kind = row[f"{prefix}_kind"]
    if kind == "extension" and row[f"{prefix}_extension_id"] is not None:
        return ("extension", int(row[f"{prefix}_extension_id"]))
    if kind == "group" and row[f"{prefix}_group_id"] is not None:
        return ("group", int(row[f"{prefix}_group_id"]))
    if kind == "external":
        owner = own_did_extension(conn, customer_id, str(row[f"{prefix}_value"]))
        return None if owner is None else ("extension", owner)
    return None


def own_did_extension(conn: Connection, customer_id: int, number: str) -> int | None:
    """The customer's own extension that ``number`` (E.164) rings, if any."""
    rows = routing_repo.public_number(conn, number)
    owner = routing_repo.did_owner(rows)
    mine = {r["extension_id"] for r in rows if r["customer_id"] == customer_id}
    return owner if owner in mine else None


def successors(
    conn: Connection,
    customer_id: int,
    node: Node,
    proposed: dict[Node, list[dict[str, Any]]],
) -> list[Node]:
    """Where a call at ``node`` may go next: an extension's rule targets, a group's final
    target; ``proposed`` replaces what the database holds for the node being changed."""
    kind, ident = node
    rows: list[Any]
    if node in proposed:
        rows = proposed[node]
    elif kind == "extension":
        rows = repo.rules_of(conn, ident)
    else:
        rows = [g for g in [repo.get_group(conn, customer_id, ident)] if g is not None]
    prefix = "target" if kind == "extension" else "final"
    found = (_edge(conn, customer_id, row, prefix) for row in rows)
    return [n for n in found if n is not None]


def require_no_loop(
    conn: Connection, customer_id: int, start: Node, rows: list[dict[str, Any]]
) -> None:
    """Refuses (errors.RuleLoop) if ``start`` with its new ``rows`` (rules, or a group's
    final target as one row with final_* keys) reaches itself again. The rest of the graph has
    no circle (each change was checked), so a new one passes through ``start``."""
    proposed = {start: rows}
    path: list[Node] = [start]
    pending: list[list[Node]] = [successors(conn, customer_id, start, proposed)]
    done: set[Node] = set()
    while pending:
        if not pending[-1]:
            pending.pop()
            done.add(path.pop())
            continue
        node = pending[-1].pop(0)
        if node == start:
            raise errors.RuleLoop(_labels(conn, customer_id, [*path, start]))
        if node in done or node in path:
            continue
        path.append(node)
        pending.append(successors(conn, customer_id, node, proposed))


def _labels(conn: Connection, customer_id: int, nodes: list[Node]) -> list[str]:
    numbers = repo.extension_numbers(conn, [i for k, i in nodes if k == "extension"])
    labels = []
    for kind, ident in nodes:
        if kind == "extension":
            labels.append(f"extension {numbers.get(ident, ident)}")
        else:
            group = repo.get_group(conn, customer_id, ident)
            labels.append(f"group {ident}" + (f" ({group['name']})" if group else ""))
    return labels
