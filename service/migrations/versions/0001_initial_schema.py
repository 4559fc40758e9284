"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Self-contained on purpose (no imports from service.models): a migration describes the schema as it was
at its revision, not as the models are today.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# column types as of this revision
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STUDY_STATE = sa.Enum('pending', 'running', 'paused', 'completed', 'failed', 'cancelled', name='studystate',
                      native_enum=False, length=16)
TRIAL_STATE = sa.Enum('pending', 'running', 'paused', 'stopped', 'completed', 'failed', name='trialstate',
                      native_enum=False, length=16)

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('revoked_at', TIMESTAMP, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_tenant'), ['tenant'], unique=False)

    op.create_table('studies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', STUDY_STATE, nullable=False),
    sa.Column('spec', JSON, nullable=False),
    sa.Column('n_trials', sa.Integer(), nullable=False),
    sa.Column('n_events', sa.Integer(), nullable=False),
    sa.Column('n_measurements', sa.BigInteger(), nullable=False),
    sa.Column('cost_spent', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.Column('started_at', TIMESTAMP, nullable=True),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.create_index('ix_studies_tenant_name', ['tenant', 'name'], unique=False)
        batch_op.create_index('ix_studies_tenant_state', ['tenant', 'state'], unique=False)

    op.create_table('scheduler_events',
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('study_id', 'seq')
    )
    op.create_table('trials',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('params', JSON, nullable=False),
    sa.Column('size', sa.String(length=200), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('start_step', sa.Integer(), nullable=False),
    sa.Column('replicate', sa.Integer(), nullable=False),
    sa.Column('state', TRIAL_STATE, nullable=False),
    sa.Column('client_id', sa.String(length=200), nullable=True),
    sa.Column('cpus', sa.Float(), nullable=False),
    sa.Column('gpus', sa.Float(), nullable=False),
    sa.Column('checkpoint', sa.Text(), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.Column('finished_at', TIMESTAMP, nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['studies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('study_id', 'number', name='uq_trials_study_number'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.create_index('ix_trials_study_client', ['study_id', 'client_id'], unique=False)
        batch_op.create_index('ix_trials_study_state', ['study_id', 'state'], unique=False)

    op.create_table('measurements',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('non_finite', sa.String(length=8), nullable=True),
    sa.Column('metrics', JSON, nullable=True),
    sa.Column('elapsed_seconds', sa.Float(), nullable=True),
    sa.Column('cost', sa.Float(), nullable=False),
    sa.Column('study_cost', sa.Float(), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('trial_id', 'step')
    )


def downgrade() -> None:
    op.drop_table('measurements')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index('ix_trials_study_state')
        batch_op.drop_index('ix_trials_study_client')

    op.drop_table('trials')
    op.drop_table('scheduler_events')
    with op.batch_alter_table('studies', schema=None) as batch_op:
        batch_op.drop_index('ix_studies_tenant_state')
        batch_op.drop_index('ix_studies_tenant_name')

    op.drop_table('studies')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_tenant'))

    op.drop_table('api_tokens')
