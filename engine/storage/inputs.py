"""The digest of the inputs each (service, scorecard) was last graded on (``result_input``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import delete, select, tuple_
from sqlmodel import Session, col

from engine.storage.database import bulk_insert, chunks, table_of
from engine.storage.models import ResultInput, ScorecardRecord, ServiceRecord

Key = tuple[int, int]  # (service id, scorecard id)


def stored_inputs(session: Session) -> dict[tuple[str, str], int]:
    """Every stored input digest, by (service name, scorecard name)."""
    query = (select(col(ServiceRecord.name), col(ScorecardRecord.name), col(ResultInput.digest))
             .join(ServiceRecord, col(ServiceRecord.id) == col(ResultInput.service_id))
             .join(ScorecardRecord, col(ScorecardRecord.id) == col(ResultInput.scorecard_id)))
    return {(service, card): digest for service, card, digest in session.execute(query)}


def replace_inputs(session: Session, *, digests: Mapping[Key, int | None]) -> None:
    """Set the digest of each key; None removes it (the key is graded again next run)."""
    keys = sorted(digests)
    drop_inputs(session, keys=keys)
    bulk_insert(session, table_of(ResultInput), ("service_id", "scorecard_id", "digest"),
                [(s, c, digests[(s, c)]) for s, c in keys if digests[(s, c)] is not None])


def drop_inputs(session: Session, *, keys: Iterable[Key]) -> None:
    table = table_of(ResultInput)
    for part in chunks(sorted(keys)):
        session.execute(delete(table).where(
            tuple_(table.c.service_id, table.c.scorecard_id).in_(part)))


def drop_inputs_outside(session: Session, *, services: Iterable[int],
                        scorecards: Iterable[int]) -> None:
    """Remove the digests of services and scorecards no longer in use."""
    table = table_of(ResultInput)
    keep_services, keep_cards = set(services), set(scorecards)
    gone = [(r.service_id, r.scorecard_id)
            for r in session.execute(select(table.c.service_id, table.c.scorecard_id))
            if r.service_id not in keep_services or r.scorecard_id not in keep_cards]
    drop_inputs(session, keys=gone)
