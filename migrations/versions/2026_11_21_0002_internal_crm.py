"""the internal CRM: contacts, properties and links, enquiries, bookings, memberships, notes,
interactions and the activity log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the app's column types, so later model changes never rewrite history.
UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
MONEY = sa.Numeric(precision=14, scale=2, asdecimal=False)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table('crm_contacts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('company_name', sa.Text(), nullable=True),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('city', sa.Text(), nullable=True),
    sa.Column('state', sa.Text(), nullable=True),
    sa.Column('postcode', sa.String(length=32), nullable=True),
    sa.Column('country', sa.Text(), nullable=True),
    sa.Column('signup_date', UTC_TIME, nullable=True),
    sa.Column('last_activity_date', UTC_TIME, nullable=True),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_contacts')),
    sa.UniqueConstraint('user_id', name=op.f('uq_crm_contacts_user_id'))
    )
    op.create_index('ix_crm_contacts_created', 'crm_contacts', ['created_at', 'id'], unique=False)
    op.create_index('ix_crm_contacts_email', 'crm_contacts', ['email'], unique=False)
    op.create_index('ix_crm_contacts_status_created', 'crm_contacts', ['status', 'created_at', 'id'], unique=False)
    op.create_index('ix_crm_contacts_type_created', 'crm_contacts', ['type', 'created_at', 'id'], unique=False)
    op.create_index('uq_crm_contacts_guest_email', 'crm_contacts', ['email'], unique=True, sqlite_where=sa.text("type = 'guest'"), postgresql_where=sa.text("type = 'guest'"))
    if _is_postgres():
        # Contact search is a substring ILIKE over name and email: trigram GIN indexes serve
        # it on PostgreSQL (pg_trgm is a trusted extension: the database owner may create it).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index('ix_crm_contacts_name_trgm', 'crm_contacts', ['name'], unique=False, postgresql_using='gin', postgresql_ops={'name': 'gin_trgm_ops'})
        op.create_index('ix_crm_contacts_email_trgm', 'crm_contacts', ['email'], unique=False, postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'})
    op.create_table('crm_activity_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('activity_id', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.String(length=36), nullable=True),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=True),
    sa.Column('activity_type', sa.String(length=64), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('performed_by', sa.String(length=255), nullable=True),
    sa.Column('occurred_at', UTC_TIME, nullable=False),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_activity_log_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_activity_log')),
    sa.UniqueConstraint('activity_id', name=op.f('uq_crm_activity_log_activity_id'))
    )
    op.create_index(op.f('ix_crm_activity_log_activity_type'), 'crm_activity_log', ['activity_type'], unique=False)
    op.create_index('ix_crm_activity_log_contact_occurred', 'crm_activity_log', ['contact_id', 'occurred_at'], unique=False)
    op.create_index('ix_crm_activity_log_entity', 'crm_activity_log', ['entity_type', 'entity_id'], unique=False)
    op.create_index(op.f('ix_crm_activity_log_occurred_at'), 'crm_activity_log', ['occurred_at'], unique=False)
    op.create_table('crm_memberships',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=False),
    sa.Column('contact_id', sa.String(length=36), nullable=False),
    sa.Column('plan_tier', sa.String(length=16), nullable=True),
    sa.Column('billing_cycle', sa.String(length=32), nullable=True),
    sa.Column('plan_price', MONEY, nullable=True),
    sa.Column('start_date', UTC_TIME, nullable=True),
    sa.Column('end_date', UTC_TIME, nullable=True),
    sa.Column('renewal_date', UTC_TIME, nullable=True),
    sa.Column('cancelled_date', UTC_TIME, nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('stripe_customer_id', sa.String(length=255), nullable=True),
    sa.Column('stripe_subscription_id', sa.String(length=255), nullable=True),
    sa.Column('last_payment_date', UTC_TIME, nullable=True),
    sa.Column('last_payment_amount', MONEY, nullable=True),
    sa.Column('next_payment_date', UTC_TIME, nullable=True),
    sa.Column('auto_renew', sa.Boolean(), nullable=True),
    sa.Column('payment_failure_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_memberships_contact_id_crm_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_memberships')),
    sa.UniqueConstraint('user_id', name=op.f('uq_crm_memberships_user_id'))
    )
    op.create_index(op.f('ix_crm_memberships_contact_id'), 'crm_memberships', ['contact_id'], unique=False)
    op.create_index(op.f('ix_crm_memberships_plan_tier'), 'crm_memberships', ['plan_tier'], unique=False)
    op.create_index(op.f('ix_crm_memberships_status'), 'crm_memberships', ['status'], unique=False)
    op.create_index(op.f('ix_crm_memberships_stripe_customer_id'), 'crm_memberships', ['stripe_customer_id'], unique=False)
    op.create_index(op.f('ix_crm_memberships_stripe_subscription_id'), 'crm_memberships', ['stripe_subscription_id'], unique=False)
    op.create_table('crm_notes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('note_id', sa.String(length=255), nullable=True),
    sa.Column('contact_id', sa.String(length=36), nullable=False),
    sa.Column('note_type', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('reminder_date', UTC_TIME, nullable=True),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_notes_contact_id_crm_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_notes')),
    sa.UniqueConstraint('note_id', name=op.f('uq_crm_notes_note_id'))
    )
    op.create_index('ix_crm_notes_contact_created', 'crm_notes', ['contact_id', 'created_at'], unique=False)
    op.create_table('crm_properties',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('property_id', sa.String(length=255), nullable=False),
    sa.Column('owner_contact_id', sa.String(length=36), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('city', sa.Text(), nullable=True),
    sa.Column('postcode', sa.String(length=32), nullable=True),
    sa.Column('country', sa.Text(), nullable=True),
    sa.Column('bedrooms', sa.Integer(), nullable=True),
    sa.Column('bathrooms', sa.Integer(), nullable=True),
    sa.Column('guests', sa.Integer(), nullable=True),
    sa.Column('price_per_night', MONEY, nullable=True),
    sa.Column('listing_status', sa.String(length=16), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('slug', sa.Text(), nullable=True),
    sa.Column('main_image', sa.Text(), nullable=True),
    sa.Column('plan', sa.String(length=64), nullable=True),
    sa.Column('enquiry_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['owner_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_properties_owner_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_properties')),
    sa.UniqueConstraint('property_id', name=op.f('uq_crm_properties_property_id'))
    )
    op.create_index(op.f('ix_crm_properties_listing_status'), 'crm_properties', ['listing_status'], unique=False)
    op.create_index(op.f('ix_crm_properties_owner_contact_id'), 'crm_properties', ['owner_contact_id'], unique=False)
    op.create_table('crm_bookings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('booking_id', sa.String(length=255), nullable=False),
    sa.Column('crm_property_id', sa.String(length=36), nullable=True),
    sa.Column('owner_contact_id', sa.String(length=36), nullable=True),
    sa.Column('guest_contact_id', sa.String(length=36), nullable=True),
    sa.Column('guest_name', sa.Text(), nullable=True),
    sa.Column('guest_email', sa.String(length=320), nullable=True),
    sa.Column('guest_phone', sa.String(length=32), nullable=True),
    sa.Column('check_in', sa.Date(), nullable=True),
    sa.Column('check_out', sa.Date(), nullable=True),
    sa.Column('guests', sa.Integer(), nullable=True),
    sa.Column('total_price', MONEY, nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('payment_status', sa.String(length=32), nullable=True),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['crm_property_id'], ['crm_properties.id'], name=op.f('fk_crm_bookings_crm_property_id_crm_properties'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guest_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_bookings_guest_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_bookings_owner_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_bookings')),
    sa.UniqueConstraint('booking_id', name=op.f('uq_crm_bookings_booking_id'))
    )
    op.create_index(op.f('ix_crm_bookings_crm_property_id'), 'crm_bookings', ['crm_property_id'], unique=False)
    op.create_index(op.f('ix_crm_bookings_guest_contact_id'), 'crm_bookings', ['guest_contact_id'], unique=False)
    op.create_index(op.f('ix_crm_bookings_owner_contact_id'), 'crm_bookings', ['owner_contact_id'], unique=False)
    op.create_index(op.f('ix_crm_bookings_status'), 'crm_bookings', ['status'], unique=False)
    op.create_table('crm_enquiries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('enquiry_id', sa.String(length=255), nullable=False),
    sa.Column('crm_property_id', sa.String(length=36), nullable=True),
    sa.Column('owner_contact_id', sa.String(length=36), nullable=True),
    sa.Column('guest_contact_id', sa.String(length=36), nullable=True),
    sa.Column('guest_name', sa.Text(), nullable=True),
    sa.Column('guest_email', sa.String(length=320), nullable=True),
    sa.Column('guest_phone', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('check_in', sa.Date(), nullable=True),
    sa.Column('check_out', sa.Date(), nullable=True),
    sa.Column('guests', sa.Integer(), nullable=True),
    sa.Column('metadata', JSON, nullable=True),
    sa.Column('status_changed_at', UTC_TIME, nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['crm_property_id'], ['crm_properties.id'], name=op.f('fk_crm_enquiries_crm_property_id_crm_properties'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['guest_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_enquiries_guest_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_enquiries_owner_contact_id_crm_contacts'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_enquiries')),
    sa.UniqueConstraint('enquiry_id', name=op.f('uq_crm_enquiries_enquiry_id'))
    )
    op.create_index('ix_crm_enquiries_created', 'crm_enquiries', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_crm_enquiries_crm_property_id'), 'crm_enquiries', ['crm_property_id'], unique=False)
    op.create_index(op.f('ix_crm_enquiries_guest_contact_id'), 'crm_enquiries', ['guest_contact_id'], unique=False)
    op.create_index(op.f('ix_crm_enquiries_owner_contact_id'), 'crm_enquiries', ['owner_contact_id'], unique=False)
    op.create_index('ix_crm_enquiries_status_created', 'crm_enquiries', ['status', 'created_at', 'id'], unique=False)
    op.create_table('crm_property_links',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('owner_contact_id', sa.String(length=36), nullable=False),
    sa.Column('crm_property_id', sa.String(length=36), nullable=False),
    sa.Column('link_status', sa.String(length=16), nullable=False),
    sa.Column('linked_at', UTC_TIME, nullable=False),
    sa.Column('updated_at', UTC_TIME, nullable=False),
    sa.ForeignKeyConstraint(['crm_property_id'], ['crm_properties.id'], name=op.f('fk_crm_property_links_crm_property_id_crm_properties'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_property_links_owner_contact_id_crm_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_property_links')),
    sa.UniqueConstraint('owner_contact_id', 'crm_property_id', name=op.f('uq_crm_property_links_owner_contact_id_crm_property_id'))
    )
    op.create_index(op.f('ix_crm_property_links_crm_property_id'), 'crm_property_links', ['crm_property_id'], unique=False)
    op.create_table('crm_interactions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('contact_id', sa.String(length=36), nullable=False),
    sa.Column('crm_property_id', sa.String(length=36), nullable=True),
    sa.Column('crm_enquiry_id', sa.String(length=36), nullable=True),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('content', sa.Text(), nullable=True),
    sa.Column('direction', sa.String(length=16), nullable=True),
    sa.Column('initiated_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', UTC_TIME, nullable=False),
    sa.Column('read_at', UTC_TIME, nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['crm_contacts.id'], name=op.f('fk_crm_interactions_contact_id_crm_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['crm_enquiry_id'], ['crm_enquiries.id'], name=op.f('fk_crm_interactions_crm_enquiry_id_crm_enquiries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['crm_property_id'], ['crm_properties.id'], name=op.f('fk_crm_interactions_crm_property_id_crm_properties'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_interactions'))
    )
    op.create_index('ix_crm_interactions_contact_created', 'crm_interactions', ['contact_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_crm_interactions_crm_enquiry_id'), 'crm_interactions', ['crm_enquiry_id'], unique=False)
    op.create_index(op.f('ix_crm_interactions_crm_property_id'), 'crm_interactions', ['crm_property_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_crm_interactions_crm_property_id'), table_name='crm_interactions')
    op.drop_index(op.f('ix_crm_interactions_crm_enquiry_id'), table_name='crm_interactions')
    op.drop_index('ix_crm_interactions_contact_created', table_name='crm_interactions')
    op.drop_table('crm_interactions')
    op.drop_index(op.f('ix_crm_property_links_crm_property_id'), table_name='crm_property_links')
    op.drop_table('crm_property_links')
    op.drop_index('ix_crm_enquiries_status_created', table_name='crm_enquiries')
    op.drop_index(op.f('ix_crm_enquiries_owner_contact_id'), table_name='crm_enquiries')
    op.drop_index(op.f('ix_crm_enquiries_guest_contact_id'), table_name='crm_enquiries')
    op.drop_index(op.f('ix_crm_enquiries_crm_property_id'), table_name='crm_enquiries')
    op.drop_index('ix_crm_enquiries_created', table_name='crm_enquiries')
    op.drop_table('crm_enquiries')
    op.drop_index(op.f('ix_crm_bookings_status'), table_name='crm_bookings')
    op.drop_index(op.f('ix_crm_bookings_owner_contact_id'), table_name='crm_bookings')
    op.drop_index(op.f('ix_crm_bookings_guest_contact_id'), table_name='crm_bookings')
    op.drop_index(op.f('ix_crm_bookings_crm_property_id'), table_name='crm_bookings')
    op.drop_table('crm_bookings')
    op.drop_index(op.f('ix_crm_properties_owner_contact_id'), table_name='crm_properties')
    op.drop_index(op.f('ix_crm_properties_listing_status'), table_name='crm_properties')
    op.drop_table('crm_properties')
    op.drop_index('ix_crm_notes_contact_created', table_name='crm_notes')
    op.drop_table('crm_notes')
    op.drop_index(op.f('ix_crm_memberships_stripe_subscription_id'), table_name='crm_memberships')
    op.drop_index(op.f('ix_crm_memberships_stripe_customer_id'), table_name='crm_memberships')
    op.drop_index(op.f('ix_crm_memberships_status'), table_name='crm_memberships')
    op.drop_index(op.f('ix_crm_memberships_plan_tier'), table_name='crm_memberships')
    op.drop_index(op.f('ix_crm_memberships_contact_id'), table_name='crm_memberships')
    op.drop_table('crm_memberships')
    op.drop_index(op.f('ix_crm_activity_log_occurred_at'), table_name='crm_activity_log')
    op.drop_index('ix_crm_activity_log_entity', table_name='crm_activity_log')
    op.drop_index('ix_crm_activity_log_contact_occurred', table_name='crm_activity_log')
    op.drop_index(op.f('ix_crm_activity_log_activity_type'), table_name='crm_activity_log')
    op.drop_table('crm_activity_log')
    if _is_postgres():
        op.drop_index('ix_crm_contacts_name_trgm', table_name='crm_contacts')
        op.drop_index('ix_crm_contacts_email_trgm', table_name='crm_contacts')
    op.drop_index('uq_crm_contacts_guest_email', table_name='crm_contacts', sqlite_where=sa.text("type = 'guest'"), postgresql_where=sa.text("type = 'guest'"))
    op.drop_index('ix_crm_contacts_type_created', table_name='crm_contacts')
    op.drop_index('ix_crm_contacts_status_created', table_name='crm_contacts')
    op.drop_index('ix_crm_contacts_email', table_name='crm_contacts')
    op.drop_index('ix_crm_contacts_created', table_name='crm_contacts')
    op.drop_table('crm_contacts')
