"""webhook inbox and stripe owner state

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the app's column types, so later model changes never rewrite history.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER = rowid on SQLite
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('webhook_events',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=128), nullable=False),
    sa.Column('headers', JSON, nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('event_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner_id', sa.String(length=255), nullable=True),
    sa.Column('customer_id', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_webhook_events_source_external_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_due', ['status', 'run_after'], unique=False)
        batch_op.create_index('ix_webhook_events_owner_id', ['owner_id'], unique=False)
        batch_op.create_index('ix_webhook_events_customer_id', ['customer_id'], unique=False)

    op.create_table('stripe_owner_state',
    sa.Column('owner_id', sa.String(length=255), nullable=False),
    sa.Column('applied', JSON, nullable=False),
    sa.Column('counted_failures', JSON, nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner_id', name=op.f('pk_stripe_owner_state'))
    )


def downgrade() -> None:
    op.drop_table('stripe_owner_state')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_customer_id')
        batch_op.drop_index('ix_webhook_events_owner_id')
        batch_op.drop_index('ix_webhook_events_due')
    op.drop_table('webhook_events')
