"""Loading scorecards, in stages that each report every problem with file and line.

1. YAML, rejecting duplicate keys; 2. structure against the schema (unknown fields, types,
dates); 3. each CEL expression compiled; 4. cross-references: levels, rule names, exemptions,
and every fact a rule reads checked against its namespace's schema. One bad file never hides
the problems of another, and a broken file is never half-loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from core.errors import InputError, Problem, ScorecardError
from core.inputfiles import SCORECARD_FILE, read_text, walk_files
from core.schema import FactSchema
from engine.scorecard import (
    Exemption,
    ExemptionSpec,
    Level,
    LevelSpec,
    Rule,
    RuleSpec,
    Scorecard,
    ScorecardDocument,
)
from engine.vocabulary import vocabulary as default_vocabulary
from engine.yamlsource import Node, NodeList, line_for, load_documents
from rules import typecheck
from rules.expression import Expression, ExpressionError
from rules.limits import MAX_WEIGHT


@dataclass
class ScorecardSet:
    """The scorecards that loaded cleanly, and the problems of those that did not."""

    scorecards: dict[str, Scorecard] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    def require_valid(self) -> ScorecardSet:
        if self.problems:
            raise ScorecardError(self.problems)
        return self


def _format_loc(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_OUT_OF_BOUNDS = frozenset({"finite_number", "greater_than", "less_than_equal"})


def _schema_problems(file: str, doc: Any, error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        # pydantic adds the union member tried ("str", "LevelSpec") to loc; drop those.
        loc = [p for p in item["loc"] if not ((isinstance(p, str) and p[:1].isupper()) or p in (
            "str", "date", "function-after", "literal['levelset.dev/v1']", "literal['Scorecard']"))]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            message = "required field is missing"
            loc_line = line_for(doc, loc[:-1])
            problems.append(Problem(file, loc_line, f"{_format_loc(loc)}: {message}"))
            continue
        elif item["type"].startswith("date"):
            message = f"{item['input']!r} is not a valid date (YYYY-MM-DD)"
        elif item["type"] == "string_pattern_mismatch":
            message = f"{item['input']!r} must match {item['ctx']['pattern']}"
        elif loc[-1:] == ["weight"] and item["type"] in _OUT_OF_BOUNDS:
            message = (f"{item['input']} is not a valid weight: a weight is a finite number "
                       f"more than 0 and at most {MAX_WEIGHT:,.0f}")
        problems.append(Problem(file, line_for(doc, loc), f"{_format_loc(loc)}: {message}"))
    # A union of str | LevelSpec reports both branches; keep one line per place and field.
    unique: dict[tuple[int | None, str], Problem] = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.message.split(":")[0]), problem)
    return list(unique.values())


def _compile(
    file: str, line: int | None, where: str, source: str, schemas: Mapping[str, FactSchema]
) -> tuple[Expression | None, list[Problem]]:
    try:
        expression = Expression.compile(source, schemas.keys())
    except ExpressionError as error:
        # A block scalar (`expression: |`) starts on the line after its key.
        offset = error.line - (0 if "\n" in source.rstrip("\n") else 1)
        return None, [Problem(file, line + offset if line else line, f"{where}: {error.message}")]
    problems = []
    for name in sorted(expression.names - set(schemas)):
        known = ", ".join(sorted([*schemas, "now"]))
        problems.append(Problem(file, line, f'{where}: unknown name "{name}" (known: {known})'))
    for ref in expression.references:
        message = schemas[ref.path[0]].check(ref.path)
        if message:
            problems.append(Problem(file, line, f"{where}: {message}"))
    if not problems:
        problems = _type_problems(file, line, where, source, schemas)
    return expression, problems


def _type_problems(
    file: str, line: int | None, where: str, source: str, schemas: Mapping[str, FactSchema]
) -> list[Problem]:
    """Each type error of an expression, on its line: the sub-expression and the fix."""
    problems = []
    block = 0 if "\n" in source.rstrip("\n") else 1
    for found in typecheck.check(source, typecheck.Environment(schemas)):
        offset = source.count("\n", 0, found.start) + 1 - block
        problems.append(Problem(file, line + offset if line else line, f"{where}: {found.describe()}"))
    return problems


@dataclass
class _Parts:
    """The parts of a scorecard's spec that later stages check, each with its index."""

    filter: str | None = None
    levels: list[tuple[int, str | LevelSpec]] = field(default_factory=list)
    rules: list[tuple[int, RuleSpec]] = field(default_factory=list)
    exemptions: list[tuple[int, ExemptionSpec]] = field(default_factory=list)

    @classmethod
    def of(cls, parsed: ScorecardDocument) -> _Parts:
        spec = parsed.spec
        return cls(spec.filter, list(enumerate(spec.levels)), list(enumerate(spec.rules)),
                   list(enumerate(spec.exemptions)))

    @classmethod
    def lenient(cls, doc: Node) -> _Parts:
        """The parts of a document with structure problems that can still be checked: the
        levels, rules and exemptions that are well formed, and the name, level and expression
        of a rule whose other fields are not (its structure problems are already reported)."""
        spec = doc.get("spec")
        parts = cls()
        if not isinstance(spec, Node):
            return parts
        parts.filter = spec["filter"] if isinstance(spec.get("filter"), str) else None
        for index, item in enumerate(_items(spec, "levels")):
            if isinstance(item, str) and item.strip():
                parts.levels.append((index, item.strip()))
            elif isinstance(item, Node) and _valid(LevelSpec, item):
                parts.levels.append((index, LevelSpec.model_validate(item)))
        for index, item in enumerate(_items(spec, "rules")):
            if not isinstance(item, Node):
                continue
            name, expression, level = (item.get(k) for k in ("name", "expression", "level"))
            if isinstance(name, str) and isinstance(expression, str) and expression.strip():
                parts.rules.append((index, RuleSpec.model_construct(
                    name=name.strip(), expression=expression.strip(),
                    level=level.strip() if isinstance(level, str) else None)))
        for index, item in enumerate(_items(spec, "exemptions")):
            if isinstance(item, Node) and _valid(ExemptionSpec, item):
                parts.exemptions.append((index, ExemptionSpec.model_validate(item)))
        return parts


def _items(spec: Node, key: str) -> list[Any]:
    value = spec.get(key)
    return value if isinstance(value, list) else []


def _valid(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _levels_without_rules(
    path: str, levels: Sequence[Level], parts: _Parts, line: Callable[..., int | None]
) -> list[Problem]:
    """A level no rule is on is reached by every service that reaches the level below it:
    a gate at that level would pass on nothing. Refused, at the level's line (not checked
    while a rule names an unknown level: that rule was probably meant for it)."""
    named = {spec.level.lower() for _, spec in parts.rules if spec.level is not None}
    if named - {level.name.lower() for level in levels}:
        return []
    index_of = {
        (item.name if isinstance(item, LevelSpec) else item).lower(): index
        for index, item in parts.levels
    }
    problems = []
    for position, level in enumerate(levels):
        if level.name.lower() in named:
            continue
        below = (f"every service at {levels[position - 1].name}" if position
                 else "every service")
        problems.append(Problem(path, line("levels", index_of[level.name.lower()]),
                                f'level "{level.name}" has no rules of its own: {below} would be '
                                f"{level.name} (give it a rule, or remove the level)"))
    return problems


def parse_scorecard(
    text: str, path: str, schemas: Mapping[str, FactSchema] | None = None
) -> tuple[Scorecard | None, list[Problem]]:
    """One scorecard file's text to a Scorecard, or the problems that prevent it."""
    schemas = schemas if schemas is not None else default_vocabulary()
    try:
        documents = load_documents(text, path, SCORECARD_FILE)
    except InputError as error:
        return None, error.problems
    if len(documents) != 1:
        return None, [Problem(path, None, f"expected one scorecard document, found {len(documents)}")]
    doc = documents[0]
    if not isinstance(doc, Node):
        return None, [Problem(path, getattr(doc, "line", 1), "a scorecard must be a mapping")]
    # Every stage that can run does: a structure problem in one rule does not hide an unknown
    # fact or a type error in another, so a file with four mistakes takes one run.
    problems: list[Problem] = []
    parsed: ScorecardDocument | None = None
    try:
        parsed = ScorecardDocument.model_validate(doc)
    except ValidationError as error:
        problems.extend(_schema_problems(path, doc, error))
    parts = _Parts.of(parsed) if parsed is not None else _Parts.lenient(doc)
    spec_node = doc.get("spec")

    def line(*loc: str | int) -> int | None:
        return line_for(spec_node, loc) if isinstance(spec_node, Node) else doc.line

    levels: list[Level] = []
    for index, item in parts.levels:
        spec = item if isinstance(item, LevelSpec) else LevelSpec(name=item)
        if any(level.name.lower() == spec.name.lower() for level in levels):
            problems.append(Problem(path, line("levels", index), f'level "{spec.name}" is listed twice'))
            continue
        levels.append(Level(spec.name, len(levels) + 1, spec.description, spec.color))
    level_names = [level.name for level in levels]

    filter_expression = None
    if parts.filter:
        filter_expression, found = _compile(path, line("filter"), "filter", parts.filter, schemas)
        problems.extend(found)

    rules: list[Rule] = []
    seen: dict[str, int | None] = {}
    rule_nodes = spec_node.get("rules") if isinstance(spec_node, Node) else None
    for index, spec_rule in parts.rules:
        rule_line = rule_nodes.line_of(index) if isinstance(rule_nodes, NodeList) else line("rules")
        where = f'rule "{spec_rule.name}"'
        if spec_rule.name in seen:
            problems.append(Problem(path, rule_line, f"{where}: duplicate rule name "
                                    f"(first on line {seen[spec_rule.name]})"))
            continue
        seen[spec_rule.name] = rule_line
        level_name = spec_rule.level
        if level_name is not None:
            match = next((n for n in level_names if n.lower() == level_name.lower()), None)
            if match is None:
                problems.append(Problem(path, line("rules", index, "level"), f'{where}: unknown level '
                                        f'"{level_name}" (levels: {", ".join(level_names)})'))
            level_name = match
        expression, found = _compile(
            path, line("rules", index, "expression"), where, spec_rule.expression, schemas
        )
        problems.extend(found)
        if expression is not None:
            rules.append(Rule(
                name=spec_rule.name, expression=expression, level=level_name,
                weight=float(spec_rule.weight), title=spec_rule.title,
                description=spec_rule.description, remediation=spec_rule.remediation,
                line=rule_line,
            ))

    problems.extend(_levels_without_rules(path, levels, parts, line))

    exemptions = []
    for index, spec_exemption in parts.exemptions:
        if spec_exemption.rule is not None and spec_exemption.rule not in seen:
            problems.append(Problem(path, line("exemptions", index, "rule"),
                                    f'exemption for "{spec_exemption.service}": unknown rule '
                                    f'"{spec_exemption.rule}"'))
            continue
        exemptions.append(Exemption(spec_exemption.service, spec_exemption.rule,
                                    spec_exemption.reason, spec_exemption.expires))

    if problems or parsed is None:
        return None, sorted(problems)
    meta = parsed.metadata
    return Scorecard(
        name=meta.name, title=meta.title, description=meta.description, owner=meta.owner,
        levels=tuple(levels), rules=tuple(rules), filter=filter_expression,
        filter_line=line("filter") if filter_expression is not None else None,
        exemptions=tuple(exemptions), path=path,
        content_hash=hashlib.sha256(text.encode()).hexdigest(), source_text=text,
    ), []


def load_scorecards(
    paths: Sequence[Path] | Path, schemas: Mapping[str, FactSchema] | None = None
) -> ScorecardSet:
    """Every scorecard under ``paths``; problems of all files are collected, none is skipped."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    result = ScorecardSet()
    first_seen: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            result.problems.append(Problem(str(root), None, "path does not exist"))
    walk = walk_files([r for r in roots if r.exists()])
    result.problems.extend(walk.problems)
    for file in walk.files:
        result.files += 1
        try:
            text = read_text(file, SCORECARD_FILE)
        except InputError as error:
            result.problems.extend(error.problems)
            continue
        scorecard, problems = parse_scorecard(text, str(file), schemas)
        result.problems.extend(problems)
        if scorecard is None:
            continue
        if scorecard.name in first_seen:
            result.problems.append(Problem(str(file), None, f'scorecard "{scorecard.name}" is '
                                           f"already defined in {first_seen[scorecard.name]}"))
            continue
        first_seen[scorecard.name] = str(file)
        result.scorecards[scorecard.name] = scorecard
    result.problems.sort()
    return result
