"""api_tokens.expires_at: optional token expiry (issue 14)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Existing tokens get NULL, i.e. they keep never expiring: a migration must not lock anyone out.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite alters a table by copying it (env.py turns it on there only)
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
