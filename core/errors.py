"""The exception tree. Every error a user can cause names where it happened."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.redaction import redact


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input, scoped to file, line and (where known) field."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        """Shown to people: a URL's user info (a database URL, an endpoint) is never in it."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return redact(f"{where}: {self.message}")


class LevelsetError(Exception):
    """Base of every error Levelset raises on purpose."""


class InputError(LevelsetError):
    """Bad user input: one or more problems, each with file and line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str | Path, line: int | None, message: str) -> InputError:
        return cls([Problem(str(file), line, message)])


class ScorecardError(InputError):
    """A scorecard file is malformed or inconsistent."""


class CatalogError(InputError):
    """A catalog entity is malformed."""


class FactsError(InputError):
    """A facts file is malformed."""


class SettingsError(InputError):
    """The settings file or environment is malformed."""


class NotFoundError(LevelsetError):
    """A service, scorecard, level or run that does not exist was asked for."""


class CollectorError(LevelsetError):
    """A collector could not produce facts (network, permission, rate limit, bad response)."""


class StorageError(LevelsetError):
    """The database could not be read or written."""


def did_you_mean(name: str, known: Sequence[str], cutoff: float = 0.6) -> str:
    """``did you mean "x"?`` for the closest of ``known`` to a misspelt ``name``, or ""."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return f'did you mean "{close[0]}"?' if close else ""
