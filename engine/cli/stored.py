"""Where a read command finds its inputs with ``--config``: the settings' catalog and
scorecards (a broken one graded with its last good stored version) and the stored facts (the
facts file stored first), assembled as a server run assembles them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.database import require_database
from engine.cli.server import load_settings_or_exit

if TYPE_CHECKING:
    from engine.jobs.inputs import InputSources


def stored_sources(config: Path) -> InputSources:
    """The settings' input sources; exit 3 when their database cannot be read."""
    from engine.jobs.inputs import InputSources

    settings = load_settings_or_exit(config)
    require_database(settings, config)
    return InputSources.of_settings(settings)


__all__ = ["stored_sources"]
