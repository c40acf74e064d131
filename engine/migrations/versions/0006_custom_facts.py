"""custom_fact: custom facts kept per key, with their origin (file or push) and time

The ``custom`` namespace was a snapshot of the whole set per change, which the facts file
replaced on every run (losing pushes) and each push copied whole. Each service's latest
``custom`` snapshot is carried over key by key as pushed values dated from its collection
(the facts file's values are read again by the next run, and a newer value wins); the old
snapshots stay as history. A key with unpaired surrogates is carried over with U+FFFD, the
name reads showed it by.

Revision ID: 0006
Revises: 0005
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlmodel.sql.sqltypes import AutoString

import engine.storage.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    custom_fact = op.create_table('custom_fact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service', AutoString(length=253), nullable=False),
    sa.Column('key', AutoString(), nullable=False),
    sa.Column('origin', AutoString(length=8), nullable=False),
    sa.Column('value', engine.storage.types.JSONValue(), nullable=True),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('changed_at', engine.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_custom_fact_latest', 'custom_fact', ['service', 'key', 'origin', 'id'],
                    unique=False)
    op.create_index('ix_custom_fact_service', 'custom_fact', ['service', 'id'], unique=False)
    snapshot = sa.table('fact_snapshot', sa.column('id', sa.Integer()),
                        sa.column('service', sa.String()), sa.column('source', sa.String()),
                        sa.column('status', sa.String()), sa.column('facts', JSON_TYPE),
                        sa.column('collected_at', engine.storage.types.UTCDateTime()))
    newest = (sa.select(sa.func.max(snapshot.c.id)).where(snapshot.c.source == 'custom')
              .group_by(snapshot.c.service))
    connection = op.get_bind()
    rows = connection.execute(sa.select(snapshot.c.service, snapshot.c.facts,
                                        snapshot.c.collected_at)
                              .where(snapshot.c.id.in_(newest), snapshot.c.status == 'ok'))
    carried = [
        {'service': service, 'key': _unicode(str(key)), 'origin': 'push', 'value': value,
         'removed': False, 'size': len(json.dumps(value, default=str)), 'changed_at': at}
        for service, facts, at in rows for key, value in (facts or {}).items()
    ]
    for start in range(0, len(carried), 1000):
        op.bulk_insert(custom_fact, carried[start:start + 1000])


def _unicode(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def downgrade() -> None:
    op.drop_index('ix_custom_fact_service', table_name='custom_fact')
    op.drop_index('ix_custom_fact_latest', table_name='custom_fact')
    op.drop_table('custom_fact')
