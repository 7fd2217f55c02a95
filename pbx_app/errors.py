"""One exception type per violated product rule.

Services raise these; the HTTP layer maps them to a status in one table (pbx_app.api.errors).
Each carries a stable machine-readable ``code`` and the requirement (``rule``) it enforces.
"""

from __future__ import annotations

from pbx_app.addressing import EMERGENCY_NUMBERS


class DomainError(Exception):
    code = "domain_error"
    rule = ""

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        # Further members of the error body (pbx_app.api.errors), e.g. the field at fault.
        self.extra = extra


# --- authentication / authorisation ---------------------------------------------------------
class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    rule = "R6"


class LoginThrottled(DomainError):
    """Too many failed logins for this account or from this source: try again after
    ``retry_after`` seconds (never for good: an attacker must not lock the real user out)."""

    code = "login_throttled"
    rule = "R6"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidEmail(DomainError):
    """Input that is not an e-mail address: a bad request, not a failed login (a 401 would
    log a portal's admin out)."""

    code = "invalid_email"
    rule = "R6"


class NotAuthenticated(DomainError):
    code = "not_authenticated"
    rule = "R6"


class PermissionDenied(DomainError):
    code = "permission_denied"


class CsrfFailed(DomainError):
    """A write authenticated by the session cookie without the session's X-CSRF-Token header:
    possibly a page on another site making the browser send it."""

    code = "csrf_failed"


class CustomerScopeViolation(DomainError):
    code = "customer_scope_violation"


class PasswordLinkInvalid(DomainError):
    code = "password_link_invalid"
    rule = "R6"


class PasswordTooWeak(DomainError):
    code = "password_too_weak"
    rule = "R6"


# --- existence / uniqueness -----------------------------------------------------------------
class NotFound(DomainError):
    code = "not_found"


class EmailInUse(DomainError):
    code = "email_in_use"
    rule = "R6"


class ExtensionNumberInUse(DomainError):
    code = "extension_number_in_use"


class NumberInUse(DomainError):
    code = "number_in_use"


class LocationNameInUse(DomainError):
    code = "location_name_in_use"


class SipUsernameInUse(DomainError):
    code = "sip_username_in_use"


class MacInUse(DomainError):
    code = "mac_in_use"
    rule = "R10"


class LocationInUse(DomainError):
    code = "location_in_use"
    rule = "R13"


class Conflict(DomainError):
    code = "conflict"


# --- product limits and rules ---------------------------------------------------------------
class ExtensionLimitReached(DomainError):
    code = "extension_limit_reached"
    rule = "R14"


class ExtensionLicencesExhausted(DomainError):
    code = "extension_licences_exhausted"
    rule = "R16"


class HeadNumberLimitReached(DomainError):
    code = "head_number_limit_reached"
    rule = "R15"


class DeviceLimitReached(DomainError):
    code = "device_limit_reached"
    rule = "R4"


class BusinessOptionRequired(DomainError):
    """A browser phone (or a future app) on an extension without the Business Option."""

    code = "business_option_required"
    rule = "R4"


class NumberAreaMismatch(DomainError):
    code = "number_area_mismatch"
    rule = "R13"


class NumberNotOwned(DomainError):
    code = "number_not_owned"
    rule = "R13"


class ExtensionNumberReserved(DomainError):
    code = "extension_number_reserved"
    rule = f"emergency numbers {'/'.join(sorted(EMERGENCY_NUMBERS))}"


class InvalidAreaCode(DomainError):
    code = "invalid_area_code"
    rule = "R13"


class TrialExpired(DomainError):
    code = "trial_expired"
    rule = "R19"


class DeviceNotCertified(DomainError):
    code = "device_not_certified"
    rule = "R10"


class DeviceHasNoMac(DomainError):
    code = "device_has_no_mac"
    rule = "R10"


class DeviceModelInUse(DomainError):
    code = "device_model_in_use"


class PortingTransitionInvalid(DomainError):
    code = "porting_transition_invalid"
    rule = "R12"


class PortingPartialBlock(DomainError):
    """A number inside a block another customer of the platform holds: a block is ported whole
    (the request names its head number), never split."""

    code = "porting_partial_block"
    rule = "R12"


class PortingTargetInvalid(DomainError):
    """The extension a ported number is to ring is missing, unknown, not at the request's
    location, or already has a public number of its own."""

    code = "porting_target_invalid"
    rule = "R12"


class LicenceCountInvalid(DomainError):
    code = "licence_count_invalid"
    rule = "R16"


class NoticeAlreadyGiven(DomainError):
    code = "notice_already_given"
    rule = "R18"


class NoticeDateInvalid(DomainError):
    code = "notice_date_invalid"
    rule = "R18"


class ContractEnded(DomainError):
    code = "contract_ended"
    rule = "R18"


class PriceListInForce(DomainError):
    code = "price_list_in_force"
    rule = "R16"


class OptionUnknown(DomainError):
    code = "option_unknown"
    rule = "R16"


class InvoicePeriodOpen(DomainError):
    code = "invoice_period_open"
    rule = "R16"


class ImportInvalid(DomainError):
    code = "import_invalid"

    def __init__(self, message: str, rows: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []


class ServiceBusy(DomainError):
    """Password hashing is saturated on this node (a login flood): nothing was done."""

    code = "service_busy"
    retry_after = 1


class InvalidNumberFormat(DomainError):
    code = "invalid_number_format"


# --- call rules, ring groups, caller ID (issue 13) ----------------------------------------------
class InvalidSchedule(DomainError):
    """Opening hours or a holiday state that cannot be read; ``field`` names the value."""

    code = "invalid_schedule"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class InvalidCallRule(DomainError):
    """A call rule or ring group that cannot work; ``field`` names the value."""

    code = "invalid_call_rule"

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class RuleLoop(DomainError):
    """The rules (with the ring groups' final targets) would forward a call in a circle;
    ``cycle`` names it, first and last the same."""

    code = "rule_loop"

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(
            "these rules would forward calls in a circle: " + " -> ".join(cycle), cycle=cycle
        )


class RingGroupInUse(DomainError):
    code = "ring_group_in_use"


class RingGroupNameInUse(DomainError):
    code = "ring_group_name_in_use"


class CallerIdNotHeld(DomainError):
    """A caller ID must be a number the customer holds: inside one of its head number blocks."""

    code = "caller_id_not_held"


# --- internal API (Kamailio -> app) ---------------------------------------------------------
class InternalApiDisabled(DomainError):
    """PBX_INTERNAL_TOKEN is not set: the internal API refuses every request."""

    code = "internal_api_disabled"
    rule = "R2"


class InternalTokenInvalid(DomainError):
    """X-PBX-Internal-Token is missing or does not match PBX_INTERNAL_TOKEN."""

    code = "internal_token_invalid"
    rule = "R2"


# --- database availability ------------------------------------------------------------------
class DatabaseUnavailable(DomainError):
    """No writable database (leader) is reachable, or the connection to it broke (a failover,
    a site cut off from the leader): nothing was written; the client should retry later."""

    code = "database_unavailable"
    retry_after = 5  # seconds, sent as Retry-After


# --- CTI (issue 17) -------------------------------------------------------------------------------
class CtiNotBooked(DomainError):
    """The customer has no CTI option: no click-to-dial, no call events."""

    code = "cti_not_booked"
    rule = "R16"


class CtiPremiumRequired(DomainError):
    """CRM lookup and webhooks come with CTI Premium."""

    code = "cti_premium_required"
    rule = "R16"


class CtiUnavailable(DomainError):
    code = "cti_unavailable"
    retry_after = 5


class ReportBatchInvalid(DomainError):
    code = "validation_failed"


class UrlRefused(DomainError):
    """A webhook or CRM URL the platform will not call (its scheme, or where it points)."""

    code = "url_refused"


class TargetInvalid(DomainError):
    code = "target_invalid"


class ExtensionRequired(DomainError):
    code = "extension_required"


class NoDevice(DomainError):
    code = "no_device"


class ClickToDialBusy(DomainError):
    code = "click_to_dial_in_progress"


# --- eFax (issue 20) ------------------------------------------------------------------------------
class EfaxNotBooked(DomainError):
    """The customer has not booked eFax: no fax numbers, no faxes."""

    code = "efax_not_booked"
    rule = "R8"


class DocumentTypeUnsupported(DomainError):
    code = "document_type_unsupported"


class DocumentTooLarge(DomainError):
    code = "document_too_large"


class TooManyAddresses(DomainError):
    code = "too_many_addresses"


class SenderNotAllowed(DomainError):
    """A mail to the fax service from an address no fax number allows."""

    code = "sender_not_allowed"


class LeaseLost(DomainError):
    """A gateway reports on a fax job another gateway has taken over (its lease ran out)."""

    code = "lease_lost"


class FaxReportInvalid(DomainError):
    """A gateway's report that cannot be read."""

    code = "validation_failed"


class FormInvalid(DomainError):
    """A multipart/form-data body that is missing, unreadable or lacks a field."""

    code = "form_invalid"
