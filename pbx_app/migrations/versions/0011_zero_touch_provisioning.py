"""Zero-touch provisioning (issue 18): device SIP and provisioning passwords sealed at rest, one
outstanding claim token per device, the certified models as data the operator keeps, a log of
every provisioning request, and the customer's time zone and language for its phones.

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-12 08:00:00
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The models certified before the list became data (pbx_app.services.devices), and the ATAs.
_SEED = (
    ("yealink-t54w", "yealink", "Yealink SIP-T54W"),
    ("yealink-t58w", "yealink", "Yealink SIP-T58W"),
    ("snom-d785", "snom", "Snom D785"),
    ("snom-d865", "snom", "Snom D865"),
    ("gigaset-maxwell-4", "generic", "Gigaset Maxwell 4"),
    ("grandstream-grp2615", "grandstream", "Grandstream GRP2615"),
    ("fanvil-x6u", "generic", "Fanvil X6U"),
    ("grandstream-ht812", "grandstream", "Grandstream HT812 (ATA, 2 FXS)"),
    ("grandstream-ht814", "grandstream", "Grandstream HT814 (ATA, 4 FXS)"),
)


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy on SQLite): the kamailio_subscriber view reads both.
    op.add_column("devices", sa.Column("sip_secret", sa.Text(), nullable=True))
    op.add_column("devices", sa.Column("prov_secret", sa.Text(), nullable=True))
    op.add_column("devices", sa.Column("claim_hash", sa.String(length=64), nullable=True))
    op.add_column("devices", sa.Column("claim_expires_at", sa.DateTime(), nullable=True))
    op.add_column(
        "customers",
        sa.Column(
            "time_zone", sa.String(length=64), nullable=False, server_default="Europe/Berlin"
        ),
    )
    op.add_column(
        "customers",
        sa.Column("language", sa.String(length=2), nullable=False, server_default="de"),
    )
    models = op.create_table(
        "device_models",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("certified", sa.Boolean(), nullable=False),
        sa.Column("firmware_url", sa.String(length=2000), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_device_models")),
    )
    now = datetime(2027, 1, 12, 8, 0)
    op.bulk_insert(
        models,
        [
            {
                "model": model,
                "vendor": model.split("-")[0],
                "label": label,
                "format": fmt,
                "certified": True,
                "firmware_url": None,
                "updated_at": now,
            }
            for model, fmt, label in _SEED
        ],
    )
    op.create_table(
        "provisioning_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("mac", sa.String(length=12), nullable=True),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("remote", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("auth", sa.String(length=12), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_provisioning_log_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_log")),
    )
    op.create_index("ix_provisioning_log_customer", "provisioning_log", ["customer_id", "id"])
    op.create_index("ix_provisioning_log_at", "provisioning_log", ["at"])


def downgrade() -> None:
    op.drop_table("provisioning_log")
    op.drop_table("device_models")
    for column in ("language", "time_zone"):
        op.drop_column("customers", column)
    for column in ("claim_expires_at", "claim_hash", "prov_secret", "sip_secret"):
        op.drop_column("devices", column)
