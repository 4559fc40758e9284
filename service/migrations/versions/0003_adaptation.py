"""online data mixing (issue 17): adaptation_events, trials.adapted, measurements.domains

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Existing studies adapt nothing: the new columns are NULL and the new table is empty for them.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'adaptation_events',
        sa.Column('study_id', sa.Integer(), sa.ForeignKey('studies.id', ondelete='CASCADE'), nullable=False),
        sa.Column('trial_number', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('event', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('study_id', 'trial_number', 'seq'),
    )
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adapted', JSON, nullable=True))
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('domains', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_column('domains')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('adapted')
    op.drop_table('adaptation_events')
