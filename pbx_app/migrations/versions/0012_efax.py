"""eFax (issue 20): a customer's fax numbers, every fax in and out with its document (the
outgoing ones are the gateways' job queue), and mail that carries a fax as its attachment.

Revision ID: 0012
Revises: 0011
Create Date: 2027-01-19 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fax_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("email_to", sa.String(length=1000), nullable=False),
        sa.Column("allowed_senders", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_fax_numbers_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fax_numbers")),
        sa.UniqueConstraint("number", name=op.f("uq_fax_numbers_number")),
    )
    op.create_index("ix_fax_numbers_customer", "fax_numbers", ["customer_id"])
    op.create_table(
        "faxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("fax_number_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("our_number", sa.String(length=16), nullable=False),
        sa.Column("remote_number", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("document_name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=4), nullable=False),
        sa.Column("notify", sa.String(length=254), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("bit_rate", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=5), nullable=False),
        sa.Column("remote_ident", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_faxes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["fax_number_id"],
            ["fax_numbers.id"],
            name=op.f("fk_faxes_fax_number_id_fax_numbers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faxes")),
    )
    op.create_index("ix_faxes_customer", "faxes", ["customer_id", "id"])
    op.create_index("ix_faxes_due", "faxes", ["status", "next_attempt_at"])
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("fax_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_mail_outbox_fax_id_faxes"), "faxes", ["fax_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_constraint(op.f("fk_mail_outbox_fax_id_faxes"), type_="foreignkey")
        batch.drop_column("fax_id")
    op.drop_index("ix_faxes_due", table_name="faxes")
    op.drop_index("ix_faxes_customer", table_name="faxes")
    op.drop_table("faxes")
    op.drop_index("ix_fax_numbers_customer", table_name="fax_numbers")
    op.drop_table("fax_numbers")
