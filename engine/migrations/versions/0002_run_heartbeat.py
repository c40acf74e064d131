"""evaluation runs keep a heartbeat: a run whose process died is reaped when its lease ends

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import engine.storage.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evaluation_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', engine.storage.types.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evaluation_run', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
