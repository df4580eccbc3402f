"""deletions and erasure: deleted markers on records and the internal CRM's tables, the
operation of an outbox job, and the erasure runs (their audit rows)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# The internal CRM's tables that soft-delete (deleted_at) instead of losing the row.
SOFT_DELETED = (
    "crm_contacts",
    "crm_properties",
    "crm_enquiries",
    "crm_bookings",
    "crm_memberships",
    "crm_notes",
    "crm_activity_log",
)


def _when(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(_when("deleted_at"))
    with op.batch_alter_table("sync_jobs") as batch:
        batch.add_column(
            sa.Column("operation", sa.String(16), server_default="upsert", nullable=False)
        )
    for table in SOFT_DELETED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_when("deleted_at"))
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("email_hash", sa.String(64)),
        sa.Column("user_id_hash", sa.String(64)),
        sa.Column("subject", JSON),
        sa.Column("record_ids", JSON),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("providers", JSON, nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("requested_by", sa.String(64)),
        sa.Column("runner", sa.String(128)),
        _when("lease_until"),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("finished_at"),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
    )
    op.create_index("ix_erasures_status", "erasures", ["status", "lease_until"])
    op.create_index("ix_erasures_email_hash", "erasures", ["email_hash"])


def downgrade() -> None:
    op.drop_index("ix_erasures_email_hash", table_name="erasures")
    op.drop_index("ix_erasures_status", table_name="erasures")
    op.drop_table("erasures")
    for table in SOFT_DELETED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_at")
    with op.batch_alter_table("sync_jobs") as batch:
        batch.drop_column("operation")
    with op.batch_alter_table("records") as batch:
        batch.drop_column("deleted_at")
