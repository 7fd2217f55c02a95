"""Request body base and the response shapes the OpenAPI document publishes.

Response models mirror the services' ``public()`` functions: a handler's dict passes through
its route's ``response_model``, so a key added there must be added here too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from pbx_app.pricing import CtiLevel, DiscountName, TariffName
from pbx_app.provisioning_formats import LanguageCode, TimeZoneName

RoleName = Literal["operator", "customer_admin", "user"]
PortingState = Literal["draft", "submitted", "confirmed", "completed", "rejected", "cancelled"]


class Body(BaseModel):
    """Base for request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------------
class ValidationProblem(BaseModel):
    location: list[str] = Field(description='where, e.g. ["body", "email"]')
    message: str
    type: str


class ImportProblem(BaseModel):
    row: int = Field(description="1-based row number in the file")
    code: str
    message: str


class ErrorDetail(BaseModel):
    # Further members may follow for some codes; clients must ignore the ones they do not know.
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="stable, machine-readable, e.g. not_found, email_in_use")
    message: str = Field(description="for people; wording may change")
    # Absent (never null) where no product rule applies: SkipJsonSchema keeps null out.
    rule: str | SkipJsonSchema[None] = Field(
        default=None, description="the product rule enforced, e.g. R14"
    )
    details: list[ValidationProblem] | SkipJsonSchema[None] = Field(
        default=None, description="validation_failed: at most 20 problems"
    )
    rows: list[ImportProblem] | SkipJsonSchema[None] = Field(
        default=None, description="import_invalid: the invalid rows, at most 100"
    )
    field: str | SkipJsonSchema[None] = Field(
        default=None,
        description="invalid_schedule, invalid_call_rule: the value at fault, e.g. "
        "opening_hours.mon[0] or rules[2].target",
    )
    cycle: list[str] | SkipJsonSchema[None] = Field(
        default=None,
        description="rule_loop: the circle the rules would make, first and last the same, "
        'e.g. ["extension 100", "group 3 (Sales)", "extension 100"]',
    )


class ErrorResponse(BaseModel):
    """Every error status answers this body."""

    error: ErrorDetail


# --- resources ----------------------------------------------------------------------------------
Item = TypeVar("Item")


class Items(BaseModel, Generic[Item]):
    items: list[Item]


class Customer(BaseModel):
    id: int
    name: str
    tariff: TariffName
    business_option: bool = Field(
        description="the Business Option new extensions get; setting it books or cancels the "
        "option for every extension of the customer (R4)"
    )
    srtp_required: bool
    sip_domain: str | None
    contract_start: date
    term_months: int
    trial: bool
    trial_ends_at: datetime | None = Field(description="UTC")
    trial_expired: bool
    booked_licences: int
    booked_extensions: int = Field(description="the base package's 5 plus the booked licences")
    extension_count: int
    head_number_count: int
    activation_high_water_mark: int
    monthly_price_eur: str = Field(description="euros, a decimal number as text")
    default_caller_id: str | None = Field(
        description="the number shown outside for extensions without a caller_id of their own"
    )
    monthly_licences_cents: int = Field(
        description="base package (discounts applied) and further extensions per month, net"
    )
    discounts: list[DiscountName] = Field(description="on the base package, combinable (R16)")
    cti: CtiLevel
    efax: bool
    flat_rate: str | None = Field(description="the flat rate booked, a name in the price list")
    service_numbers_allowed: bool = Field(
        description="calls to service numbers (premium rate) are put through; else refused"
    )
    billing_starts_on: date | None = Field(
        description="the first day charged; null while a trial runs (R19)"
    )
    notice_given_on: date | None = Field(description="when the base package's notice arrived")
    contract_ends_on: date | None = Field(
        description="the last contract day after a notice (R18): the end of a term"
    )
    time_zone: TimeZoneName = Field(description="what the customer's phones show (provisioning)")
    language: LanguageCode = Field(description="the language of the customer's phones")


class LicenceChange(BaseModel):
    booked_extensions_before: int = Field(description="booked (and billed) today, before")
    booked_extensions_after: int
    effective_on: date = Field(
        description="today for an increase; the 1st of next month for a cancellation (R18)"
    )
    activation_fees: int = Field(description="how many activation fees this change charged")
    activation_fee_eur: str = Field(description="euros, a decimal number as text")
    high_water_mark: int


class Location(BaseModel):
    id: int
    name: str
    street: str
    postal_code: str
    city: str
    area_code: str
    opening_hours: dict[str, list[str]] | None = Field(
        description='per weekday (mon..sun) intervals "HH:MM-HH:MM", Europe/Berlin; a weekday '
        "left out is closed; null: always open"
    )
    state: str | None = Field(
        description="German state code for public holidays (closed on them); null: none"
    )


class HeadNumber(BaseModel):
    id: int
    location_id: int
    number: str
    area_code: str
    block_size: Literal[1, 10, 100, 1000, 10000]


class Extension(BaseModel):
    id: int
    location_id: int
    number: str
    display_name: str
    geo_number: str | None
    device_count: int
    caller_id: str | None = Field(description="the number shown outside; null: the default")
    clir: bool = Field(description="the number is withheld on calls that leave the customer")
    business_option: bool = Field(
        description="the Business Option is booked for this extension: up to 3 devices and the "
        "browser phone (R4)"
    )


# --- call rules and ring groups (issue 13) ----------------------------------------------------
RejectCode = Literal[403, 404, 480, 486, 600, 603]


class ExtensionTarget(Body):
    extension: str = Field(
        strict=True,
        pattern=r"^[1-9][0-9]{1,7}$",
        description="an extension number of the customer (its rules apply in turn)",
    )


class GroupTarget(Body):
    group: int = Field(strict=True, ge=1, le=2_147_483_647, description="a ring group's id")


class ExternalTarget(Body):
    external: str = Field(
        strict=True,
        pattern=r"^(\+|00|0)[1-9][0-9]{5,14}$",
        description="a public number, dialled E.164, international or national; leaves through "
        "the trunk with the forwarding extension's caller ID, or rings the platform extension "
        "that holds it",
    )


class RejectTarget(Body):
    reject: RejectCode = Field(description="the SIP answer")


Target = ExtensionTarget | GroupTarget | ExternalTarget | RejectTarget


class CallRule(BaseModel):
    kind: Literal["caller", "schedule", "unconditional", "busy", "noanswer", "unavailable"]
    match: str | None = Field(
        description="kind caller: the caller's number (E.164) or extension number, a trailing "
        "* for a prefix"
    )
    timeout: int | None = Field(description="kind noanswer: seconds the extension rings")
    target: Target


class CallRules(BaseModel):
    extension_id: int
    rules: list[CallRule] = Field(
        description="in order: the first matching caller, schedule or unconditional rule "
        "forwards at once; busy, noanswer, unavailable apply when the extension rang"
    )


class RingGroup(BaseModel):
    id: int
    name: str
    strategy: Literal["parallel", "hunt", "roundrobin"]
    member_timeout: int = Field(description="seconds each member (parallel: all) rings")
    members: list[str] = Field(description="extension numbers, in ringing order")
    final: Target = Field(description="where the call goes when no member answers")


class Device(BaseModel):
    id: int
    extension_id: int
    sip_username: str
    realm: str
    sip_domain: str = Field(description="the SIP realm the device registers in")
    mac: str | None = Field(description="12 lowercase hex digits")
    model: str | None
    certified: bool = Field(description="zero-touch provisioning by MAC (R10)")


class DeviceCredentials(Device):
    sip_password: str = Field(description="shown once: only a hash is stored")


class User(BaseModel):
    id: int
    customer_id: int | None = Field(description="null for operators")
    email: str
    display_name: str
    role: RoleName
    password_set: bool


class UserEnvelope(BaseModel):
    user: User


class UserExtensions(BaseModel):
    user_id: int
    extension_ids: list[int] = Field(description="the extensions whose call rules the user manages")


class AuditEvent(BaseModel):
    id: int
    kind: Literal["login", "login_failed", "login_throttled", "ported_in", "ported_out"]
    user_id: int | None = Field(
        description="None when the e-mail matched no user, or for a port the scheduler completed"
    )
    email: str = Field(
        description="As typed at login (normalised); empty if not an address, and for ports"
    )
    source: str = Field(description="The client's address (IPv6: its /64); for ports: porting")
    at: str = Field(description="UTC, ISO 8601")
    detail: str = Field(
        description="ported_in / ported_out: the numbers that came or went (to or from another "
        "customer of the platform) by a completed porting request; empty for logins"
    )


class LoginResult(BaseModel):
    user: User
    csrf_token: str = Field(
        description="Send as the X-CSRF-Token header with every write that the session "
        "cookie authenticates (also readable from the pbx_csrf cookie)."
    )


class Me(BaseModel):
    user: User | None
    role: RoleName
    extension_ids: list[int] = Field(
        description="the extensions whose call rules this user manages (an admin: all of the "
        "customer's, listed or not)"
    )


class ApiToken(BaseModel):
    id: int
    name: str


class NewApiToken(ApiToken):
    token: str = Field(description="shown once; send it as Authorization: Bearer <token>")


class PortingEvent(BaseModel):
    from_state: PortingState | None
    to_state: PortingState
    actor_user_id: int | None
    note: str
    at: datetime = Field(description="UTC")


class PortingRequestSummary(BaseModel):
    id: int
    location_id: int
    numbers: list[str]
    extensions: dict[str, str] = Field(
        description="number -> the extension (number) it rings once the port is complete; a "
        "block ported whole from another customer of the platform has none: its numbers ring "
        "the extensions by their numbers (head number + extension number)"
    )
    donor_carrier: str
    requested_date: date
    state: PortingState


class PortingRequest(PortingRequestSummary):
    events: list[PortingEvent] = Field(description="the audit trail, oldest first")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    writable: bool = Field(description="whether a leader is reachable for writes right now")
    node: str
    site: str
