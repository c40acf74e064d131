"""What a scorecard is: levels, rules with CEL expressions, a filter and exemptions.

Two layers: the ``*Spec`` pydantic models describe the YAML file (and give the JSON Schema
that editors validate against); the frozen dataclasses are the compiled, checked scorecard
that evaluation uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rules.expression import Expression
from rules.limits import MAX_WEIGHT

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
API_VERSION = "levelset.dev/v1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=63)]


class LevelSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    description: str | None = None
    color: Annotated[str | None, Field(pattern=r"^#[0-9a-fA-F]{6}$")] = None


class RuleSpec(_Strict):
    name: Annotated[Name, Field(description="Unique within the scorecard, [a-z0-9-].")]
    title: str | None = None
    description: str | None = None
    level: Annotated[
        str | None, Field(description="A level of spec.levels; omitted: counts for the score only.")
    ] = None
    weight: Annotated[float, Field(
        gt=0, le=MAX_WEIGHT, allow_inf_nan=False,
        description=f"Share of the score: more than 0, at most {MAX_WEIGHT:,.0f}; default 1.",
    )] = 1
    expression: Annotated[str, Field(min_length=1, description="CEL; true means the rule passes.")]
    remediation: Annotated[str | None, Field(description="What to do when the rule fails.")] = None


class ExemptionSpec(_Strict):
    service: Annotated[str, Field(min_length=1)]
    rule: Annotated[
        str | None, Field(description="A rule of this scorecard; omitted: every rule.")
    ] = None
    reason: Annotated[str, Field(min_length=1)]
    expires: Annotated[date, Field(description="Last day the exemption applies (YYYY-MM-DD).")]


class ScorecardSpecBody(_Strict):
    filter: Annotated[
        str | None, Field(description="CEL over the service's facts; false: not graded.")
    ] = None
    levels: Annotated[
        list[str | LevelSpec], Field(min_length=1, description="Lowest first.")
    ]
    rules: Annotated[list[RuleSpec], Field(min_length=1)]
    exemptions: list[ExemptionSpec] = []


class MetadataSpec(_Strict):
    name: Name
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    labels: dict[str, str] = {}


class ScorecardDocument(_Strict):
    """One scorecard file."""

    apiVersion: Literal["levelset.dev/v1"]
    kind: Literal["Scorecard"]
    metadata: MetadataSpec
    spec: ScorecardSpecBody


@dataclass(frozen=True)
class Level:
    name: str
    rank: int  # 1 for the lowest level
    description: str | None = None
    color: str | None = None


@dataclass(frozen=True, eq=False)
class Rule:
    name: str
    expression: Expression
    level: str | None = None
    weight: float = 1.0
    title: str | None = None
    description: str | None = None
    remediation: str | None = None
    line: int | None = None

    @property
    def display(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class Exemption:
    service: str
    rule: str | None
    reason: str
    expires: date

    def covers(self, service: str, rule: str) -> bool:
        return self.service == service and (self.rule is None or self.rule == rule)

    def active_on(self, day: date) -> bool:
        return day <= self.expires


@dataclass(frozen=True, eq=False)
class Scorecard:
    name: str
    levels: tuple[Level, ...]
    rules: tuple[Rule, ...]
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    filter: Expression | None = None
    filter_line: int | None = None  # where the filter is in its file
    exemptions: tuple[Exemption, ...] = ()
    path: str = ""
    content_hash: str = ""  # sha256 of the file's text: the version a result was produced by
    source_text: str = ""

    def level(self, name: str) -> Level | None:
        """A level by name; case-insensitive so `--min-level gold` works."""
        for level in self.levels:
            if level.name.lower() == name.lower():
                return level
        return None

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def rank_of(self, level_name: str | None) -> int:
        if level_name is None:
            return 0
        level = self.level(level_name)
        return level.rank if level else 0

    def exemptions_for(self, service: str) -> tuple[Exemption, ...]:
        return self._exemptions_by_service.get(service, ())

    @cached_property
    def _exemptions_by_service(self) -> dict[str, tuple[Exemption, ...]]:
        by_service: dict[str, list[Exemption]] = {}
        for exemption in self.exemptions:
            by_service.setdefault(exemption.service, []).append(exemption)
        return {service: tuple(items) for service, items in by_service.items()}

    @property
    def level_names(self) -> list[str]:
        return [level.name for level in self.levels]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
