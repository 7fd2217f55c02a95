"""Call rules per extension and ring groups per customer (issue 13)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from pbx_app.api.deps import Ctx, CurrentActor, Id, Limit, Name, Offset, now
from pbx_app.api.errors import AUTHENTICATED, JSON_BODY, NOT_FOUND, error_responses
from pbx_app.api.models import (
    Body,
    CallRules,
    ExtensionTarget,
    ExternalTarget,
    GroupTarget,
    Items,
    RejectTarget,
    RingGroup,
    Target,
)
from pbx_app.services import call_rules as rules_service
from pbx_app.services import ring_groups as groups_service

router = APIRouter(tags=["call rules"], responses=error_responses(AUTHENTICATED, NOT_FOUND))

Timeout = Annotated[
    int,
    Field(
        strict=True,
        ge=rules_service.MIN_TIMEOUT,
        le=rules_service.MAX_TIMEOUT,
        description="seconds",
    ),
]
MatchText = Annotated[
    str,
    Field(
        strict=True,
        pattern=r"^(\+|00|0)?[0-9]{1,15}\*?$",
        description="the caller's number: E.164 (+49...), national (0...), international "
        "(00...) or an extension number; a trailing * matches a prefix (0171* any caller from "
        "0171...). Calls within the customer match the caller's extension number, others its "
        "public number; a caller who withholds the number matches nothing.",
    ),
]
RULE_ERRORS = {
    409: "rule_loop: the rules would forward calls in a circle (cycle names it)",
    422: "validation_failed, or invalid_call_rule (field names the rule and value)",
}


class CallerRule(Body):
    kind: Literal["caller"]
    match: MatchText
    target: Target


class PlainRule(Body):
    kind: Literal["schedule", "unconditional", "busy", "unavailable"]
    target: Target


class NoAnswerRule(Body):
    kind: Literal["noanswer"]
    timeout: Timeout = rules_service.DEFAULT_TIMEOUT
    target: Target


Rule = Annotated[CallerRule | PlainRule | NoAnswerRule, Field(discriminator="kind")]


class CallRulesUpdate(Body):
    rules: Annotated[list[Rule], Field(max_length=rules_service.MAX_RULES)]


def target(value: Target) -> rules_service.Target:
    if isinstance(value, ExtensionTarget):
        return rules_service.Target("extension", value.extension)
    if isinstance(value, GroupTarget):
        return rules_service.Target("group", value.group)
    if isinstance(value, ExternalTarget):
        return rules_service.Target("external", value.external)
    assert isinstance(value, RejectTarget)
    return rules_service.Target("reject", value.reject)


def _rule(rule: CallerRule | PlainRule | NoAnswerRule) -> rules_service.NewRule:
    return rules_service.NewRule(
        kind=rule.kind,
        target=target(rule.target),
        match=rule.match if isinstance(rule, CallerRule) else None,
        timeout=rule.timeout if isinstance(rule, NoAnswerRule) else None,
    )


RULES_PATH = "/customers/{customer_id}/extensions/{extension_id}/call-rules"


@router.get(RULES_PATH, response_model=CallRules)
def get_call_rules(
    customer_id: Id, extension_id: Id, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    """An admin reads any extension's rules, a user those of their own extensions."""
    with ctx.db.snapshot() as conn:
        rules = rules_service.get(conn, actor, customer_id, extension_id, now())
    return {"extension_id": extension_id, "rules": rules}


@router.put(RULES_PATH, response_model=CallRules, responses=error_responses(JSON_BODY, RULE_ERRORS))
def put_call_rules(
    customer_id: Id, extension_id: Id, body: CallRulesUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    """Replaces the whole list; nothing is written unless every rule is valid and the set
    makes no circle."""
    with ctx.db.transaction() as conn:
        rules = rules_service.put(
            conn, actor, customer_id, extension_id, [_rule(r) for r in body.rules], now()
        )
    return {"extension_id": extension_id, "rules": rules}


# --- ring groups -----------------------------------------------------------------------------
Strategy = Literal["parallel", "hunt", "roundrobin"]
Members = Annotated[
    list[Annotated[str, Field(strict=True, pattern=r"^[1-9][0-9]{1,7}$")]],
    Field(max_length=groups_service.MAX_MEMBERS, description="extension numbers, in order"),
]
GROUP_ERRORS = {
    409: "ring_group_name_in_use; rule_loop: the final target would close a circle",
    422: "validation_failed, or invalid_call_rule (field names the value)",
}


class RingGroupCreate(Body):
    name: Name
    strategy: Strategy = "parallel"
    member_timeout: Timeout = rules_service.DEFAULT_TIMEOUT
    members: Members = Field(default_factory=list)
    final: Target | None = Field(default=None, description="absent or null: reject 480")


class RingGroupUpdate(Body):
    name: Name | None = None
    strategy: Strategy | None = None
    member_timeout: Timeout | None = None
    members: Members | None = Field(default=None, description="replaces the members")
    final: Target | None = Field(default=None, description="null: reject 480")


GROUPS_PATH = "/customers/{customer_id}/ring-groups"
GROUP_PATH = GROUPS_PATH + "/{group_id}"


@router.post(
    GROUPS_PATH,
    status_code=201,
    response_model=RingGroup,
    responses=error_responses(JSON_BODY, GROUP_ERRORS),
)
def create_ring_group(
    customer_id: Id, body: RingGroupCreate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    new = groups_service.NewGroup(
        name=body.name,
        strategy=body.strategy,
        member_timeout=body.member_timeout,
        members=list(body.members),
        final=target(body.final) if body.final else None,
    )
    with ctx.db.transaction() as conn:
        return groups_service.create(conn, actor, customer_id, new, now())


@router.get(GROUPS_PATH, response_model=Items[RingGroup])
def list_ring_groups(
    customer_id: Id, actor: CurrentActor, ctx: Ctx, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return {"items": groups_service.list_(conn, actor, customer_id, now(), limit, offset)}


@router.get(GROUP_PATH, response_model=RingGroup)
def get_ring_group(customer_id: Id, group_id: Id, actor: CurrentActor, ctx: Ctx) -> dict[str, Any]:
    with ctx.db.snapshot() as conn:
        return groups_service.get(conn, actor, customer_id, group_id, now())


@router.patch(
    GROUP_PATH, response_model=RingGroup, responses=error_responses(JSON_BODY, GROUP_ERRORS)
)
def update_ring_group(
    customer_id: Id, group_id: Id, body: RingGroupUpdate, actor: CurrentActor, ctx: Ctx
) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "name": body.name,
        "strategy": body.strategy,
        "member_timeout": body.member_timeout,
        "members": body.members,
    }
    if "final" in body.model_fields_set:
        changes["final"] = target(body.final) if body.final else None
    with ctx.db.transaction() as conn:
        return groups_service.update(conn, actor, customer_id, group_id, changes, now())


@router.delete(
    GROUP_PATH,
    status_code=204,
    response_model=None,
    responses=error_responses({409: "ring_group_in_use: call rules or groups forward to it"}),
)
def delete_ring_group(customer_id: Id, group_id: Id, actor: CurrentActor, ctx: Ctx) -> None:
    with ctx.db.transaction() as conn:
        groups_service.delete(conn, actor, customer_id, group_id, now())
