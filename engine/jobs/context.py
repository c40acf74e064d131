"""What every job needs of the settings: the fact vocabulary and a migrated database."""

from __future__ import annotations

import logging

from core.schema import FactSchema
from engine.settings import Settings
from engine.storage.database import engine_for, migrate
from engine.vocabulary import vocabulary

log = logging.getLogger("levelset.jobs")

def schemas_for(settings: Settings) -> dict[str, FactSchema]:
    return vocabulary(settings.collector_settings, settings.custom_facts)


def prepare_database(settings: Settings) -> None:
    migrate(engine_for(settings.database_url))
