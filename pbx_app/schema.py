"""Database tables (SQLAlchemy Core). Alembic migrations in pbx_app/migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# All timestamps are naive UTC, identical on PostgreSQL and SQLite.
customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("tariff", String(20), nullable=False),
    Column("business_option", Boolean, nullable=False, default=False),
    # R2: the customer's media policy; Kamailio reads it from kamailio_subscriber / the route API.
    Column("srtp_required", Boolean, nullable=False, default=False),
    Column("sip_domain", String(253), nullable=True, unique=True),
    Column("contract_start", Date, nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("trial_ends_at", DateTime, nullable=True),
    # Extra extension licences booked on top of the base package (R16).
    Column("booked_licences", Integer, nullable=False, default=0),
    # R17: highest number of booked extensions ever; activation fees are due only above it.
    Column("activation_high_water_mark", Integer, nullable=False),
    Column("activation_fees_charged", Integer, nullable=False, default=0),
    # Counters kept in the same transaction as the rows they count, under the customer row lock,
    # so limits (R14, R15) are checked in O(1) and atomically.
    Column("extension_count", Integer, nullable=False, default=0),
    Column("head_number_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    # The number shown outside when an extension has no caller_id of its own; must be a number
    # the customer holds (checked when set, and again at call time).
    Column("default_caller_id", String(16), nullable=True),
    # R16: discounts on the base package (combinable) and the options booked for the customer.
    Column("discount_mobile", Boolean, nullable=False, default=False, server_default=false()),
    Column("discount_all_ip", Boolean, nullable=False, default=False, server_default=false()),
    Column("cti", String(10), nullable=False, default="none", server_default="none"),
    Column("efax", Boolean, nullable=False, default=False, server_default=false()),
    Column("flat_rate", String(40), nullable=True),
    # CTI Premium: the customer's CRM, asked for the caller of an incoming call ("{number}").
    Column("crm_url_template", String(2000), nullable=True),
    Column(
        "service_numbers_allowed", Boolean, nullable=False, default=False, server_default=false()
    ),
    # R18/R19: the first day charged (NULL while a trial runs or after it expired unconverted),
    # and the last day of a contract the base package's notice ended.
    Column("billing_starts_on", Date, nullable=True),
    Column("notice_given_on", Date, nullable=True),
    Column("contract_ends_on", Date, nullable=True),
    # What the customer's phones are provisioned with (pbx_app.provisioning).
    Column(
        "time_zone",
        String(64),
        nullable=False,
        default="Europe/Berlin",
        server_default="Europe/Berlin",
    ),
    Column("language", String(2), nullable=False, default="de", server_default="de"),
)

locations = Table(
    "locations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("street", String(200), nullable=False),
    Column("postal_code", String(5), nullable=False),
    Column("city", String(100), nullable=False),
    Column("area_code", String(6), nullable=False),
    Column("created_at", DateTime, nullable=False),
    # Per weekday intervals in Europe/Berlin, as JSON (pbx_app.services.calendar); NULL: always
    # open. state: German state code for public holidays; NULL: no holidays.
    Column("opening_hours", Text, nullable=True),
    Column("state", String(2), nullable=True),
    UniqueConstraint("customer_id", "name", name="uq_locations_customer_name"),
)

head_numbers = Table(
    "head_numbers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("location_id", Integer, ForeignKey("locations.id"), nullable=False),
    Column("number", String(16), nullable=False, unique=True),
    Column("area_code", String(6), nullable=False),
    Column("block_size", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_head_numbers_customer", "customer_id"),
)

extensions = Table(
    "extensions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("location_id", Integer, ForeignKey("locations.id"), nullable=False),
    Column("number", String(8), nullable=False),
    Column("display_name", String(100), nullable=False, default=""),
    Column("geo_number", String(16), nullable=True, unique=True),
    Column("device_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    # The number shown outside (a number the customer holds); NULL: the customer's default, else
    # the extension's own DID. clir: withhold it on calls that leave the customer.
    Column("caller_id", String(16), nullable=True),
    Column("clir", Boolean, nullable=False, default=False, server_default=false()),
    # The Business Option (R4), booked per extension: up to 3 devices instead of 1, and the
    # browser phone (WSS registrations are refused without it).
    Column("business_option", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("customer_id", "number", name="uq_extensions_customer_number"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column(
        "extension_id", Integer, ForeignKey("extensions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("sip_username", String(64), nullable=False, unique=True),
    Column("realm", String(253), nullable=False),
    # Kamailio auth_db: ha1 = md5(username:realm:password),
    # ha1b = md5(username@domain:realm:password).
    Column("ha1", String(32), nullable=False),
    Column("ha1b", String(32), nullable=False),
    Column("mac", String(12), nullable=True, unique=True),
    Column("model", String(64), nullable=True),
    Column("created_at", DateTime, nullable=False),
    # "phone" (a desk phone, softphone or ATA an admin set up) or "browser": the portal's
    # browser phone of one user on one extension, its credentials handed out by the app.
    Column("kind", String(16), nullable=False, default="phone", server_default="phone"),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    # The SIP password and the phone's provisioning password, sealed (pbx_app.vault): a phone
    # provisioned again gets the same ones. NULL: set before sealing existed (or a browser phone).
    Column("sip_secret", Text, nullable=True),
    Column("prov_secret", Text, nullable=True),
    # The outstanding one-time claim token (its HMAC) of a phone without a vendor certificate.
    Column("claim_hash", String(64), nullable=True),
    Column("claim_expires_at", DateTime, nullable=True),
    Index("ix_devices_extension", "extension_id"),
    # One browser phone per user and extension; phones have no user (NULLs never collide).
    Index("uq_devices_user_extension", "user_id", "extension_id", unique=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False, default=""),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("password_set_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # session (portal cookie), api (integration bearer token), password_set (e-mailed link)
    Column("kind", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False, default=""),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
)

porting_requests = Table(
    "porting_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("location_id", Integer, ForeignKey("locations.id"), nullable=False),
    Column("numbers", Text, nullable=False),
    Column("donor_carrier", String(100), nullable=False),
    Column("requested_date", Date, nullable=False),
    Column("state", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # What each number becomes on completion (JSON, pbx_app.services.porting.Target).
    Column("targets", Text, nullable=False, default="{}"),
    # The scheduler (pbx_app.porting_scheduler): after a failed completion, when to try again
    # and why it failed.
    Column("next_attempt_at", DateTime, nullable=True),
    Column("last_error", String(300), nullable=False, default=""),
    Index("ix_porting_requests_state_requested_date", "state", "requested_date"),
)

porting_events = Table(
    "porting_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "porting_request_id",
        Integer,
        ForeignKey("porting_requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("from_state", String(20), nullable=True),
    Column("to_state", String(20), nullable=False),
    Column("actor_user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("note", String(500), nullable=False, default=""),
    Column("at", DateTime, nullable=False),
)

billing_events = Table(
    "billing_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("booked_before", Integer, nullable=False),
    Column("booked_after", Integer, nullable=False),
    Column("activation_fees", Integer, nullable=False),
    Column("amount_eur", Numeric(10, 2), nullable=False),
    Column("at", DateTime, nullable=False),
)

# R16-R18: the booked extensions (base package included) from each day on; an increase takes
# effect at once, a cancellation on the first day of the next month. Invoices prorate by it.
licence_bookings = Table(
    "licence_bookings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("effective_on", Date, nullable=False),
    Column("booked_extensions", Integer, nullable=False),
    Column("activation_fees", Integer, nullable=False),
    Column("requested_at", DateTime, nullable=False),
    Index("ix_licence_bookings_customer_effective", "customer_id", "effective_on"),
)

# R16: the customer's plan (tariff, discounts, options) from each day on, written with every
# change of it: invoices price each day by the plan of that day.
plan_changes = Table(
    "plan_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("effective_on", Date, nullable=False),
    Column("tariff", String(20), nullable=False),
    Column("discount_mobile", Boolean, nullable=False),
    Column("discount_all_ip", Boolean, nullable=False),
    Column("cti", String(10), nullable=False),
    Column("efax", Boolean, nullable=False),
    Column("flat_rate", String(40), nullable=True),
    Column("requested_at", DateTime, nullable=False),
    Index("ix_plan_changes_customer_effective", "customer_id", "effective_on"),
)

# The operator's price lists (pbx_app.pricing): the one in force on a day is the latest
# valid_from on or before it; lists in force are never changed.
price_lists = Table(
    "price_lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("valid_from", Date, nullable=False, unique=True),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# Monthly invoices (pbx_app.invoicing): one per customer and month, kept when the customer goes
# (no foreign key: the document names the customer); the document holds every line, so a later
# price change never alters an issued invoice.
invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("customer_id", Integer, nullable=False),
    Column("period", Date, nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("gross_cents", BigInteger, nullable=False),
    Column("document", Text, nullable=False),
    UniqueConstraint("customer_id", "period", name="uq_invoices_customer_period"),
)

# Failed logins per account ("account:<e-mail>") and per source ("source:<address>"), shared by
# every app node of both sites: pbx_app.services.login_throttle.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime, nullable=False),
    Column("blocked_until", DateTime, nullable=True),
)

# Who logged in, or tried to, per customer (customer_id NULL: an operator or an unknown e-mail);
# numbers that came or went by a completed port (kinds ported_in, ported_out; detail names them).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(30), nullable=False),
    Column("email", String(254), nullable=False),
    Column("source", String(64), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("detail", String(500), nullable=False, default=""),
    Index("ix_audit_events_customer_at", "customer_id", "at"),
)

# Mail waits here, written in the transaction of the change it reports, and leaves through
# pbx_app.outbox's sender, outside any transaction: a slow relay never holds the database.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False, index=True),
    Column("claimed_until", DateTime, nullable=True),
    Column("last_error", String(300), nullable=False, default=""),
    Column("failed_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    # A fax's PDF goes along as the attachment (read when the mail is sent, not copied).
    Column("fax_id", Integer, ForeignKey("faxes.id", ondelete="CASCADE"), nullable=True),
)

# --- call rules (issue 13) ------------------------------------------------------------------------
# Which extensions a user manages (many-to-many); an admin manages all of the customer's.
user_extensions = Table(
    "user_extensions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "extension_id",
        Integer,
        ForeignKey("extensions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index("ix_user_extensions_extension", "extension_id"),
)

# A target (of a rule, or a group's final target) is one of: an extension (target_extension_id),
# a group (target_group_id), an external number (target_value, E.164) or a reject (target_value,
# the SIP code). A rule to an extension goes with it; a group in use cannot be deleted.
ring_groups = Table(
    "ring_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    # parallel | hunt | roundrobin
    Column("strategy", String(12), nullable=False),
    Column("member_timeout_s", Integer, nullable=False),
    Column("final_kind", String(10), nullable=False),
    Column("final_value", String(16), nullable=True),
    Column(
        "final_extension_id",
        Integer,
        ForeignKey("extensions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("final_group_id", Integer, ForeignKey("ring_groups.id"), nullable=True),
    # Round robin: the member the next call starts with (modulo the member count); the one
    # value a routing decision writes (UPDATE ... RETURNING, atomic).
    Column("rr_next", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("customer_id", "name", name="uq_ring_groups_customer_name"),
    Index("ix_ring_groups_final_extension", "final_extension_id"),
    Index("ix_ring_groups_final_group", "final_group_id"),
)

ring_group_members = Table(
    "ring_group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("ring_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column(
        "extension_id", Integer, ForeignKey("extensions.id", ondelete="CASCADE"), nullable=False
    ),
    UniqueConstraint("group_id", "extension_id", name="uq_ring_group_members_group_extension"),
    Index("ix_ring_group_members_extension", "extension_id"),
)

# An extension's ordered rules. kind: caller | schedule | unconditional | busy | noanswer |
# unavailable; match: the caller number or prefix (kind caller, normalised: E.164 or an
# extension number, a trailing * for a prefix); timeout_s: kind noanswer.
call_rules = Table(
    "call_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "extension_id", Integer, ForeignKey("extensions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("match", String(20), nullable=True),
    Column("timeout_s", Integer, nullable=True),
    Column("target_kind", String(10), nullable=False),
    Column("target_value", String(16), nullable=True),
    Column(
        "target_extension_id",
        Integer,
        ForeignKey("extensions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("target_group_id", Integer, ForeignKey("ring_groups.id"), nullable=True),
    UniqueConstraint("extension_id", "position", name="uq_call_rules_extension_position"),
    Index("ix_call_rules_target_extension", "target_extension_id"),
    Index("ix_call_rules_target_group", "target_group_id"),
)

# One row per call (CDR), written by the Kamailio proxy where the call entered the platform and
# delivered by that node's spool shipper (kamailio/pbx-cdr-shipper) through
# POST /internal/v1/call-records. A batch may arrive twice (the shipper retries until the app
# confirms): the identity below makes the second insert a no-op. No foreign key to customers:
# ingest never refuses a record for the customer it names, and records are an archive.
call_records = Table(
    "call_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("node", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("call_id", String(255), nullable=False),
    Column("from_tag", String(128), nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("answered_at", DateTime, nullable=True),
    Column("ended_at", DateTime, nullable=False),
    # The tenant the call belongs to: the calling device's customer, or for a call from the
    # carrier the called customer; callee_customer_id: the called customer of a local plan.
    Column("customer_id", Integer, nullable=True),
    Column("callee_customer_id", Integer, nullable=True),
    Column("source", String(10), nullable=False),
    Column("caller", String(128), nullable=False),
    Column("caller_id", String(64), nullable=False),
    Column("dialled", String(128), nullable=False),
    Column("resolved", String(512), nullable=False),
    Column("answered_by", String(256), nullable=False),
    Column("diversions", Integer, nullable=False),
    Column("relay", String(64), nullable=False),
    Column("sip_code", Integer, nullable=False),
    Column("reason", String(128), nullable=False),
    Column("received_at", DateTime, nullable=False),
    UniqueConstraint("node", "call_id", "from_tag", "started_at", name="uq_call_records_identity"),
    Index("ix_call_records_customer_started", "customer_id", "started_at"),
    Index("ix_call_records_callee_customer_started", "callee_customer_id", "started_at"),
    Index("ix_call_records_started", "started_at"),
    # The invoice run reads the records that arrived since the previous month's end.
    Index("ix_call_records_received", "received_at"),
)

# The usernames whose kamailio_subscriber row changed, written by PostgreSQL triggers on
# devices, extensions and customers (migration 0008), read by the proxies to drop those
# devices from their credential caches (kamailio.cfg route[CRED_POLL], by ``tx``: the writing
# transaction). Kept for an hour (pbx_app.credential_changes.prune).
credential_changes = Table(
    "credential_changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("tx", BigInteger, nullable=False),
    Column("changed_at", DateTime, nullable=False),
    Index("ix_credential_changes_tx", "tx"),
    Index("ix_credential_changes_changed_at", "changed_at"),
)

# --- CTI (issue 17) -------------------------------------------------------------------------------
# Call events as each customer sees them (a call between two customers is two rows). ``seq``
# orders them platform-wide; clients resume after the last one they acknowledged. Rows are
# written in seq order (the writer holds an advisory lock on PostgreSQL, SQLite has one writer),
# so a reader that saw seq N never later finds a new row below N. Kept for EVENT_RETENTION.
call_events = Table(
    "call_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    # What makes the event one event: a second proxy or a resent batch reporting it again is
    # a no-op (the same call's "ended" from two proxies, a held per CSeq).
    Column("event_key", String(300), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("call_id", String(255), nullable=False),
    Column("direction", String(10), nullable=False),
    Column("from_number", String(128), nullable=False),
    Column("to_number", String(128), nullable=False),
    Column("caller_extension_id", Integer, nullable=True),
    Column("callee_extension_id", Integer, nullable=True),
    # JSON: crm (name, company, link), code/reason of an end, refer_to of a transfer.
    Column("data", Text, nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("customer_id", "event_key", name="uq_call_events_customer_key"),
    Index("ix_call_events_customer_seq", "customer_id", "seq"),
    Index("ix_call_events_created", "created_at"),
)

# A customer's webhook endpoints (CTI Premium); the secret signs every delivery (HMAC-SHA256).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_webhooks_customer", "customer_id"),
)

# One row per event and webhook: the delivery log and the retry queue in one.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column(
        "event_seq",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("call_events.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    # pending (due at next_attempt_at), delivered, failed (attempts used up)
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime, nullable=False),
    Column("claimed_until", DateTime, nullable=True),
    Column("last_code", Integer, nullable=True),
    Column("last_error", String(300), nullable=False, default=""),
    Column("delivered_at", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

# Click-to-dial requests: who asked, what, and how far it got (the API shows the state).
click_to_dial = Table(
    "click_to_dial",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column(
        "extension_id", Integer, ForeignKey("extensions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("target", String(64), nullable=False),
    # calling_you -> connecting (the device took the REFER) -> connected | failed
    Column("status", String(12), nullable=False),
    Column("cause", String(200), nullable=False, default=""),
    Column("call_id", String(255), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_click_to_dial_customer", "customer_id", "id"),
)


# Phone models the operator keeps: certified ones are provisioned (zero touch) in their vendor's
# format; others ("hardware only") are configured by hand and get nothing (R10).
device_models = Table(
    "device_models",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("vendor", String(32), nullable=False),
    Column("label", String(100), nullable=False),
    # pbx_app.provisioning_formats.FORMATS: yealink | snom | grandstream | generic
    Column("format", String(16), nullable=False),
    Column("certified", Boolean, nullable=False),
    Column("firmware_url", String(2000), nullable=True),
    Column("updated_at", DateTime, nullable=False),
)

# Every request a phone makes to the provisioning service, served or refused, and why.
provisioning_log = Table(
    "provisioning_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("mac", String(12), nullable=True),
    Column("path", String(200), nullable=False),
    Column("remote", String(45), nullable=False),
    Column("user_agent", String(300), nullable=False),
    Column("auth", String(12), nullable=False),  # certificate | token | password | none
    Column("outcome", String(8), nullable=False),  # served | refused
    Column("reason", String(40), nullable=False),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=True),
    Column("device_id", Integer, nullable=True),
    Index("ix_provisioning_log_customer", "customer_id", "id"),
    Index("ix_provisioning_log_at", "at"),
)


# --- eFax (issue 20) ------------------------------------------------------------------------------
# Numbers of a customer that the fax gateways answer, where their faxes are mailed, and who may
# send faxes by mail from them.
fax_numbers = Table(
    "fax_numbers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("number", String(16), nullable=False, unique=True),  # E.164
    Column("email_to", String(1000), nullable=False, default=""),  # comma-separated
    Column("allowed_senders", String(1000), nullable=False, default=""),  # comma-separated
    Column("created_at", DateTime, nullable=False),
    # The media relay turns a caller's G.711 into T.38 towards the gateway (rtpengine T.38=force):
    # for callers whose own line is too poor for a fax over audio.
    Column("relay_t38", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_fax_numbers_customer", "customer_id"),
)

# Every fax, in and out: the job queue of outgoing ones (a lease per gateway, so that the other
# site's gateway takes over a job whose gateway died) and the archive, with the document (PDF)
# in the replicated database, never on a node's disk.
faxes = Table(
    "faxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column(
        "fax_number_id", Integer, ForeignKey("fax_numbers.id", ondelete="SET NULL"), nullable=True
    ),
    Column("direction", String(3), nullable=False),  # in | out
    Column("our_number", String(16), nullable=False),
    Column("remote_number", String(32), nullable=False),
    # out: queued -> sending -> sent | queued (a retry) | failed; in: received | failed
    Column("status", String(8), nullable=False),
    Column("cause", String(200), nullable=False, default=""),
    Column("pages", Integer, nullable=False, default=0),
    Column("document", LargeBinary, nullable=True),
    Column("document_name", String(200), nullable=False, default=""),
    Column("source", String(4), nullable=False),  # api | mail | call
    Column("notify", String(254), nullable=False, default=""),  # who gets the status mail
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("next_attempt_at", DateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime, nullable=True),
    Column("seconds", Integer, nullable=False, default=0),
    Column("bit_rate", Integer, nullable=False, default=0),
    Column("transport", String(5), nullable=False, default=""),  # audio | t38
    Column("remote_ident", String(40), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("completed_at", DateTime, nullable=True),
    Index("ix_faxes_customer", "customer_id", "id"),
    Index("ix_faxes_due", "status", "next_attempt_at"),
)
