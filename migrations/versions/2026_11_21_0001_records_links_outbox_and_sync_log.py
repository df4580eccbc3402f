"""records, links, outbox and sync log

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the app's column types, so later model changes never rewrite history.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER = rowid on SQLite
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('records',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('data', JSON, nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('parent_kind', sa.String(length=32), nullable=True),
    sa.Column('parent_id', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records')),
    sa.UniqueConstraint('kind', 'external_id', name=op.f('uq_records_kind_external_id'))
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_parent', ['parent_kind', 'parent_id'], unique=False)

    op.create_table('sync_log',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('crm_id', sa.String(length=255), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('request', JSON, nullable=True),
    sa.Column('response', JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Double(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('bulk_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_log'))
    )
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.create_index('ix_sync_log_bulk_id', ['bulk_id'], unique=False)
        batch_op.create_index('ix_sync_log_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_sync_log_entity', ['entity_type', 'entity_id', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_provider', ['provider', 'id'], unique=False)
        batch_op.create_index('ix_sync_log_status', ['status', 'id'], unique=False)

    op.create_table('provider_links',
    sa.Column('record_id', BIG_ID, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('crm_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('confirmed_hash', sa.String(length=64), nullable=True),
    sa.Column('attempted_hash', sa.String(length=64), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_log_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_provider_links_record_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('record_id', 'provider', name=op.f('pk_provider_links'))
    )
    with op.batch_alter_table('provider_links', schema=None) as batch_op:
        batch_op.create_index('ix_provider_links_provider_status', ['provider', 'status'], unique=False)

    op.create_table('sync_jobs',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('record_id', BIG_ID, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('deferrals', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_token', sa.String(length=32), nullable=True),
    sa.Column('requeue', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('force', sa.Boolean(), server_default=sa.text('(false)'), nullable=False),
    sa.Column('bulk_id', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_sync_jobs_record_id_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_jobs')),
    sa.UniqueConstraint('record_id', 'provider', name=op.f('uq_sync_jobs_record_id_provider'))
    )
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_jobs_bulk_id', ['bulk_id'], unique=False)
        batch_op.create_index('ix_sync_jobs_due', ['status', 'run_after'], unique=False)
        batch_op.create_index('ix_sync_jobs_provider_status', ['provider', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sync_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_jobs_provider_status')
        batch_op.drop_index('ix_sync_jobs_due')
        batch_op.drop_index('ix_sync_jobs_bulk_id')

    op.drop_table('sync_jobs')
    with op.batch_alter_table('provider_links', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_links_provider_status')

    op.drop_table('provider_links')
    with op.batch_alter_table('sync_log', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_log_status')
        batch_op.drop_index('ix_sync_log_provider')
        batch_op.drop_index('ix_sync_log_entity')
        batch_op.drop_index('ix_sync_log_created_at')
        batch_op.drop_index('ix_sync_log_bulk_id')

    op.drop_table('sync_log')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_parent')

    op.drop_table('records')
