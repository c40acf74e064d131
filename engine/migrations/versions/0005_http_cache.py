"""http_cache: collectors' conditional-request cache (GitHub ETags), shared by every process

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString

import engine.storage.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('http_cache',
    sa.Column('source', AutoString(length=32), nullable=False),
    sa.Column('key_digest', AutoString(length=64), nullable=False),
    sa.Column('etag', AutoString(length=512), nullable=False),
    sa.Column('body', AutoString(), nullable=False),
    sa.Column('headers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('used_at', engine.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'key_digest')
    )


def downgrade() -> None:
    op.drop_table('http_cache')
