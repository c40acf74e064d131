"""deliveries: every attempt to post a report or notification to Slack, and senders' claims

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import engine.storage.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', AutoString(length=8), nullable=False),
    sa.Column('key', AutoString(length=512), nullable=False),
    sa.Column('channel', AutoString(length=200), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('status', AutoString(length=8), nullable=False),
    sa.Column('error', AutoString(), nullable=True),
    sa.Column('attempted_at', engine.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_target', ['kind', 'key', 'channel', 'part'], unique=False)

    op.create_table('delivery_claim',
    sa.Column('kind', AutoString(length=8), nullable=False),
    sa.Column('key', AutoString(length=512), nullable=False),
    sa.Column('channel', AutoString(length=200), nullable=False),
    sa.Column('holder', AutoString(length=200), nullable=False),
    sa.Column('claimed_at', engine.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', engine.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'key', 'channel')
    )


def downgrade() -> None:
    op.drop_table('delivery_claim')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_target')
    op.drop_table('delivery')
