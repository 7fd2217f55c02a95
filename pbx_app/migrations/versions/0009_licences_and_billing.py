"""Licences and billing (R16-R19): discounts and options on the customer, the base package's
notice, the first charged day; licence bookings and plan changes with the day each takes effect;
the operator's price lists; monthly invoices; call records found by arrival. The former tariffs
"mobile" (Basic less 9.80) and "all_ip" (50.00) become Basic with the mobile discount and Premium
with the All-IP discount: discounts on the base package, never tariffs of their own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-28 08:00:00
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copy of pbx_app.pricing.DEFAULT at this migration: the list in force from 2000-01-01.
_DEFAULT_PRICE_LIST = """
{
 "vat_percent": "19",
 "activation_fee_cents": 990,
 "increment": {
  "first_seconds": 60,
  "next_seconds": 60
 },
 "tariffs": {
  "basic": {
   "base_package_cents": 3500,
   "per_extension_cents": 680,
   "minute_cents": {
    "national": "1.9",
    "mobile": "12.9",
    "europe": "4.9",
    "world": "29.9",
    "service": "99",
    "freephone": "0"
   }
  },
  "standard": {
   "base_package_cents": 4700,
   "per_extension_cents": 880,
   "minute_cents": {
    "national": "1.5",
    "mobile": "9.9",
    "europe": "3.9",
    "world": "24.9",
    "service": "99",
    "freephone": "0"
   }
  },
  "premium": {
   "base_package_cents": 5900,
   "per_extension_cents": 1080,
   "minute_cents": {
    "national": "0.9",
    "mobile": "6.9",
    "europe": "2.9",
    "world": "19.9",
    "service": "99",
    "freephone": "0"
   }
  }
 },
 "discounts": {
  "mobile": {
   "base_package_off_cents": 980
  },
  "all_ip": {
   "base_package_off_cents": 900
  }
 },
 "options": {
  "business_option_per_extension_cents": 300,
  "cti_standard_cents": 990,
  "cti_premium_cents": 1990,
  "efax_cents": 490
 },
 "flat_rates": {
  "national": {
   "per_extension_cents": 490,
   "zones": [
    "national"
   ]
  },
  "national_mobile": {
   "per_extension_cents": 1490,
   "zones": [
    "national",
    "mobile"
   ]
  }
 },
 "zones": [
  {
   "name": "national",
   "prefixes": [
    "+49"
   ],
   "refused_unless_allowed": false
  },
  {
   "name": "mobile",
   "prefixes": [
    "+4915",
    "+4916",
    "+4917"
   ],
   "refused_unless_allowed": false
  },
  {
   "name": "service",
   "prefixes": [
    "+49900",
    "+49180",
    "+49137",
    "+49118",
    "+49700"
   ],
   "refused_unless_allowed": true
  },
  {
   "name": "freephone",
   "prefixes": [
    "+49800"
   ],
   "refused_unless_allowed": false
  },
  {
   "name": "europe",
   "prefixes": [
    "+30",
    "+31",
    "+32",
    "+33",
    "+34",
    "+351",
    "+352",
    "+353",
    "+354",
    "+356",
    "+357",
    "+358",
    "+359",
    "+36",
    "+370",
    "+371",
    "+372",
    "+385",
    "+386",
    "+39",
    "+40",
    "+41",
    "+420",
    "+421",
    "+423",
    "+43",
    "+44",
    "+45",
    "+46",
    "+47",
    "+48"
   ],
   "refused_unless_allowed": false
  },
  {
   "name": "world",
   "prefixes": [
    "+"
   ],
   "refused_unless_allowed": false
  }
 ]
}
"""


def _customer_columns() -> list[sa.Column[Any]]:
    # New objects per run: a Column joins the table alembic builds for it and cannot join two.
    return [
        sa.Column("discount_mobile", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("discount_all_ip", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("cti", sa.String(length=10), nullable=False, server_default="none"),
        sa.Column("efax", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("flat_rate", sa.String(length=40), nullable=True),
        sa.Column(
            "service_numbers_allowed", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
        sa.Column("billing_starts_on", sa.Date(), nullable=True),
        sa.Column("notice_given_on", sa.Date(), nullable=True),
        sa.Column("contract_ends_on", sa.Date(), nullable=True),
    ]


def upgrade() -> None:
    for column in _customer_columns():
        op.add_column("customers", column)
    op.execute(
        "UPDATE customers SET discount_mobile = (tariff = 'mobile'), "
        "discount_all_ip = (tariff = 'all_ip') WHERE tariff IN ('mobile', 'all_ip')"
    )
    # "mobile" was Basic's prices less 9.80 on the base package: Basic with the discount.
    # "all_ip" was 50.00 EUR for the base package: Premium (59.00) with the All-IP discount; its
    # further extensions now cost Premium's price (the old table gave them Basic's).
    op.execute("UPDATE customers SET tariff = 'basic' WHERE tariff = 'mobile'")
    op.execute("UPDATE customers SET tariff = 'premium' WHERE tariff = 'all_ip'")
    # Customers of before this migration keep calling service numbers as they could.
    op.execute("UPDATE customers SET service_numbers_allowed = true")
    op.execute(
        "UPDATE customers SET billing_starts_on = contract_start WHERE trial_ends_at IS NULL"
    )
    op.create_table(
        "licence_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("booked_extensions", sa.Integer(), nullable=False),
        sa.Column("activation_fees", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_licence_bookings_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_bookings")),
    )
    op.create_index(
        "ix_licence_bookings_customer_effective",
        "licence_bookings",
        ["customer_id", "effective_on"],
    )
    op.execute(
        "INSERT INTO licence_bookings "
        "(customer_id, effective_on, booked_extensions, activation_fees, requested_at) "
        "SELECT id, contract_start, 5 + booked_licences, activation_fees_charged, created_at "
        "FROM customers"
    )
    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("tariff", sa.String(length=20), nullable=False),
        sa.Column("discount_mobile", sa.Boolean(), nullable=False),
        sa.Column("discount_all_ip", sa.Boolean(), nullable=False),
        sa.Column("cti", sa.String(length=10), nullable=False),
        sa.Column("efax", sa.Boolean(), nullable=False),
        sa.Column("flat_rate", sa.String(length=40), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_plan_changes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_changes")),
    )
    op.create_index(
        "ix_plan_changes_customer_effective", "plan_changes", ["customer_id", "effective_on"]
    )
    op.execute(
        "INSERT INTO plan_changes (customer_id, effective_on, tariff, discount_mobile, "
        "discount_all_ip, cti, efax, flat_rate, requested_at) "
        "SELECT id, contract_start, tariff, discount_mobile, discount_all_ip, cti, efax, "
        "flat_rate, created_at FROM customers"
    )
    op.create_index("ix_call_records_received", "call_records", ["received_at"])
    price_lists = op.create_table(
        "price_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_lists")),
        sa.UniqueConstraint("valid_from", name=op.f("uq_price_lists_valid_from")),
    )
    op.bulk_insert(
        price_lists,
        [
            {
                "valid_from": datetime(2000, 1, 1).date(),
                "document": _DEFAULT_PRICE_LIST.strip(),
                "created_at": datetime(2000, 1, 1),
            }
        ],
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("net_cents", sa.BigInteger(), nullable=False),
        sa.Column("vat_cents", sa.BigInteger(), nullable=False),
        sa.Column("gross_cents", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("customer_id", "period", name="uq_invoices_customer_period"),
    )


def downgrade() -> None:
    op.drop_table("invoices")
    op.drop_table("price_lists")
    op.drop_index("ix_call_records_received", table_name="call_records")
    op.drop_index("ix_plan_changes_customer_effective", table_name="plan_changes")
    op.drop_table("plan_changes")
    op.drop_index("ix_licence_bookings_customer_effective", table_name="licence_bookings")
    op.drop_table("licence_bookings")
    op.execute("UPDATE customers SET tariff = 'mobile' WHERE discount_mobile")
    op.execute(
        "UPDATE customers SET tariff = 'all_ip' WHERE discount_all_ip AND NOT discount_mobile"
    )
    for column in reversed(_customer_columns()):
        op.drop_column("customers", column.name)
