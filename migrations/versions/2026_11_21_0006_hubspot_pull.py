"""pull from HubSpot: leads (pulled contacts), their CRM ids, cursors and pull runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _when(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("crm_source", sa.String(32), nullable=False),
        sa.Column("crm_id", sa.String(64), nullable=False),
        sa.Column("first_name", sa.String(255)),
        sa.Column("last_name", sa.String(255)),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(32)),
        sa.Column("phone_raw", sa.String(64)),
        sa.Column("company", sa.String(255)),
        sa.Column("lead_type", sa.String(64)),
        sa.Column("crm_status", sa.String(128)),
        sa.Column("crm_stage", sa.String(128)),
        sa.Column("crm_description", sa.Text()),
        sa.Column("crm_owner", sa.String(255)),
        sa.Column("crm_owner_email", sa.String(320)),
        _when("crm_last_activity_at"),
        _when("crm_modified_at"),
        sa.Column("record_id", sa.String(255)),
        sa.Column("properties", JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        _when("last_crm_sync_at", nullable=False),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_leads"),
    )
    op.create_index("ix_leads_phone", "leads", ["phone"])
    op.create_index("ix_leads_email", "leads", ["email"])
    op.create_index("ix_leads_record_id", "leads", ["record_id"])
    op.create_table(
        "lead_crm_ids",
        sa.Column("crm_source", sa.String(32), nullable=False),
        sa.Column("crm_id", sa.String(64), nullable=False),
        sa.Column("lead_id", BIG_ID, nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name="fk_lead_crm_ids_lead_id_leads", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("crm_source", "crm_id", name="pk_lead_crm_ids"),
    )
    op.create_index("ix_lead_crm_ids_lead_id", "lead_crm_ids", ["lead_id"])
    op.create_table(
        "pull_cursors",
        sa.Column("provider", sa.String(32), nullable=False),
        _when("modified_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_pull_cursors"),
    )
    op.create_table(
        "pull_runs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("period", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text()),
        _when("started_at", nullable=False),
        _when("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_pull_runs"),
        sa.UniqueConstraint("provider", "period", name="uq_pull_runs_provider_period"),
    )
    op.create_index("ix_pull_runs_provider_id", "pull_runs", ["provider", "id"])


def downgrade() -> None:
    op.drop_index("ix_pull_runs_provider_id", table_name="pull_runs")
    op.drop_table("pull_runs")
    op.drop_table("pull_cursors")
    op.drop_index("ix_lead_crm_ids_lead_id", table_name="lead_crm_ids")
    op.drop_table("lead_crm_ids")
    op.drop_index("ix_leads_record_id", table_name="leads")
    op.drop_index("ix_leads_email", table_name="leads")
    op.drop_index("ix_leads_phone", table_name="leads")
    op.drop_table("leads")
