"""result inputs: the digest of what each (service, scorecard) was last graded on, and how
many results a run evaluated

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('result_input',
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('scorecard_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('service_id', 'scorecard_id')
    )
    with op.batch_alter_table('evaluation_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evaluated', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('evaluation_run', schema=None) as batch_op:
        batch_op.drop_column('evaluated')
    op.drop_table('result_input')
