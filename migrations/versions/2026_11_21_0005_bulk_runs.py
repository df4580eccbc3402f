"""bulk runs, and indexes for bulk, logs and retry

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0003'  # re-chained after main's 0001 -> 0002 -> 0004 -> 0003
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the app's JSON type.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('bulk_runs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('sync_type', sa.String(length=32), nullable=False),
    sa.Column('kinds', JSON, nullable=False),
    sa.Column('providers', JSON, nullable=False),
    sa.Column('only_failed', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('force', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=True),
    sa.Column('cursor_kind', sa.String(length=32), nullable=True),
    sa.Column('cursor_id', sa.BigInteger(), nullable=False),
    sa.Column('counts', JSON, nullable=False),
    sa.Column('results', JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('runner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bulk_runs'))
    )
    with op.batch_alter_table('bulk_runs', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_runs_status', ['status', 'lease_until'], unique=False)
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_kind_id', ['kind', 'id'], unique=False)
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_jobs_bulk_status', ['bulk_id', 'status'], unique=False)
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.create_index('ix_sync_log_job_id', ['job_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_log_job_id')
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_jobs_bulk_status')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_kind_id')
    with op.batch_alter_table('bulk_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_runs_status')
    op.drop_table('bulk_runs')
