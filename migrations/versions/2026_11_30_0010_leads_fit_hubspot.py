"""leads fit what HubSpot sends: free-text contact fields as TEXT (HubSpot's text properties hold
up to 65,536 characters), and deleted / merged markers for HubSpot's deletion and merge webhooks

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# column -> its former size
WIDENED = {
    "first_name": 255,
    "last_name": 255,
    "phone_raw": 64,
    "company": 255,
    "crm_status": 128,
    "crm_stage": 128,
    "crm_owner": 255,
}


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        for name, size in WIDENED.items():
            batch.alter_column(name, type_=sa.Text(), existing_type=sa.String(size))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("merged_into_id", BIG_ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("merged_into_id")
        batch.drop_column("deleted_at")
        for name, size in WIDENED.items():
            batch.alter_column(name, type_=sa.String(size), existing_type=sa.Text())
