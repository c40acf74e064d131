"""Bad scorecards: each problem is reported with file, line and field, and none hides another."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.loading import load_scorecards, parse_scorecard
from tests.hostile.generators import alias_bomb

GOOD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata:
  name: prod
spec:
  levels: [Bronze, Silver]
  rules:
    - name: has-readme
      level: Bronze
      expression: github.has_readme
    - name: reviewed
      level: Silver
      expression: github.branch_protection.required_reviews >= 1
"""


def problems_of(text: str) -> list[str]:
    scorecard, problems = parse_scorecard(text, "prod.yaml")
    assert scorecard is None
    return [str(p) for p in problems]


def test_good_scorecard_loads_with_levels_in_order_and_a_content_hash():
    scorecard, problems = parse_scorecard(GOOD, "prod.yaml")
    assert problems == []
    assert scorecard is not None
    assert scorecard.level_names == ["Bronze", "Silver"]
    assert [r.name for r in scorecard.rules] == ["has-readme", "reviewed"]
    assert len(scorecard.content_hash) == 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: [\n", "prod.yaml:2: invalid YAML"),
        (GOOD.replace("  name: prod\n", "  name: prod\n  name: other\n"),
         'prod.yaml:5: invalid YAML: duplicate key "name" (first defined on line 4)'),
        (GOOD.replace("  levels:", "  colour: red\n  levels:"), "prod.yaml:6: spec.colour: unknown field"),
        (GOOD.replace("level: Silver", "level: Silvr"),
         'prod.yaml:12: rule "reviewed": unknown level "Silvr" (levels: Bronze, Silver)'),
        (GOOD.replace("name: reviewed", "name: has-readme"),
         'prod.yaml:11: rule "has-readme": duplicate rule name (first on line 8)'),
        (GOOD.replace(">= 1", ">= "), 'prod.yaml:13: rule "reviewed": CEL syntax error'),
        (GOOD.replace("github.has_readme", "github.has_reame"),
         'prod.yaml:10: rule "has-readme": unknown fact "github.has_reame": the github collector '
         'does not provide it (did you mean "github.has_readme"?)'),
        (GOOD.replace("github.has_readme", "githb.has_readme"),
         'prod.yaml:10: rule "has-readme": unknown name "githb"'),
        (GOOD + "  exemptions:\n    - {service: a, rule: has-readme, reason: r, expires: 2027-02-30}\n",
         "prod.yaml:15: spec.exemptions[0].expires: '2027-02-30' is not a valid date (YYYY-MM-DD)"),
        (GOOD + "  exemptions:\n    - {service: a, rule: nope, reason: r, expires: 2027-02-01}\n",
         'prod.yaml:15: exemption for "a": unknown rule "nope"'),
        (GOOD + "  exemptions:\n    - {service: a, rule: has-readme, reason: r}\n",
         "prod.yaml:15: spec.exemptions[0].expires: required field is missing"),
        (GOOD.replace("name: prod", "name: Prod_1"), "prod.yaml:4: metadata.name: 'Prod_1' must match"),
        (GOOD.replace("levels: [Bronze, Silver]", "levels: [Bronze, bronze]"),
         'prod.yaml:6: level "bronze" is listed twice'),
        (GOOD.replace("kind: Scorecard", "kind: Scorecards"), "prod.yaml:2: kind: Input should be 'Scorecard'"),
        (GOOD + "---\n" + GOOD, "prod.yaml: expected one scorecard document, found 2"),
    ],
    ids=[
        "malformed-yaml", "duplicate-key", "unknown-field", "unknown-level", "duplicate-rule",
        "cel-syntax", "unknown-fact", "unknown-namespace", "bad-date", "exemption-unknown-rule",
        "exemption-without-expiry", "bad-name", "duplicate-level", "wrong-kind", "two-documents",
    ],
)
def test_bad_input_is_reported_with_file_line_and_field(text: str, expected: str):
    problems = problems_of(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_syntax_error_in_a_block_expression_points_at_its_line():
    text = GOOD.replace(
        "expression: github.branch_protection.required_reviews >= 1",
        "expression: |\n        github.archived == false &&\n          && true",
    )
    assert any(p.startswith("prod.yaml:15: rule") for p in problems_of(text)), problems_of(text)


def test_every_problem_of_a_file_is_reported_together():
    text = GOOD.replace("level: Silver", "level: Silvr").replace("github.has_readme", "github.nope")
    assert len(problems_of(text)) == 2


def test_one_bad_file_never_stops_the_others(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(GOOD.replace("level: Silver", "level: Platinum"))
    (tmp_path / "b.yaml").write_text(GOOD.replace("name: prod", "name: other").replace(">= 1", ">="))
    (tmp_path / "c.yaml").write_text(GOOD.replace("name: prod", "name: fine"))
    loaded = load_scorecards(tmp_path)
    assert sorted(loaded.scorecards) == ["fine"]
    files = sorted({Path(p.file).name for p in loaded.problems})
    assert files == ["a.yaml", "b.yaml"]


def test_duplicate_scorecard_names_across_files_are_rejected(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    loaded = load_scorecards(tmp_path)
    assert list(loaded.scorecards) == ["prod"]
    assert 'scorecard "prod" is already defined in' in str(loaded.problems[0])


def test_free_form_custom_namespace_accepts_any_fact():
    scorecard, problems = parse_scorecard(GOOD.replace("github.has_readme", "custom.anything.at_all"),
                                          "prod.yaml")
    assert problems == [] and scorecard is not None


def test_shipped_scorecards_are_valid(root: Path):
    loaded = load_scorecards(root / "scorecards")
    assert loaded.problems == []
    assert sorted(loaded.scorecards) == ["ownership", "production-readiness", "security"]


def test_scorecards_past_a_limit_are_refused_and_the_others_load(tmp_path: Path):
    (tmp_path / "fine.yaml").write_text(GOOD)
    (tmp_path / "deep.yaml").write_text(GOOD.replace("name: prod", "name: deep") + "  extra: "
                                        + "[" * 1000 + "]" * 1000 + "\n")
    with (tmp_path / "big.yaml").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    loaded = load_scorecards(tmp_path)
    assert list(loaded.scorecards) == ["prod"]
    assert [(Path(p.file).name, p.line, p.message.split(" (")[0]) for p in loaded.problems] == [
        ("big.yaml", None, "scorecard file is 50 MiB"),
        ("deep.yaml", 14, "nesting deeper than 64 levels"),
        ("gone.yaml", None, "dangling symbolic link"),
        ("loop.yaml", None, "symbolic link loop"),
    ]


def test_a_stored_or_posted_scorecard_text_has_the_same_limits():
    assert problems_of(GOOD + "#" * (1024 * 1024)) == [
        "prod.yaml: scorecard file is 1 MiB (1,048,870 bytes), larger than the limit of 1 MiB "
        "(1,048,576 bytes) (set LEVELSET_MAX_SCORECARD_FILE_BYTES to raise it)"]
    assert problems_of(alias_bomb()) == ["prod.yaml:5: aliases expand to more than 10,000 nodes"]


def test_every_problem_of_a_file_is_reported_in_one_run():
    """Structure, names, levels, types and syntax: four mistakes, one run."""
    text = (GOOD.replace("      expression: github.has_readme\n",
                         "      expression: github.has_reame\n      weight: heavy\n")
            .replace("level: Silver", "level: Silvr")
            .replace("required_reviews >= 1", "required_reviews >= 1.5 + 1")
            .replace("  levels:", "  colour: red\n  levels:"))
    found = problems_of(text)
    assert any("spec.colour: unknown field" in p for p in found), found
    assert any("weight: Input should be a valid number" in p for p in found), found
    assert any('unknown fact "github.has_reame"' in p for p in found), found
    assert any('unknown level "Silvr"' in p for p in found), found
    assert any('type error in "1.5 + 1"' in p for p in found), found
    assert found == sorted(found, key=lambda p: int(p.split(":")[1]))


def test_a_syntax_error_is_one_readable_line_with_a_caret_under_the_column():
    found = problems_of(GOOD.replace(">= 1", ">= "))
    assert len(found) == 1
    first, source, caret = found[0].split("\n")
    assert first == ('prod.yaml:13: rule "reviewed": CEL syntax error at column 45: the expression '
                     "ends where an operand or a closing bracket is expected")
    assert "expecting" not in found[0] and "NUM_FLOAT" not in found[0]
    assert source.strip() == "github.branch_protection.required_reviews >="
    assert caret.index("^") == source.index("github") + 44


def test_a_level_without_rules_of_its_own_is_refused_at_its_line():
    bronze_only = GOOD.replace("levels: [Bronze, Silver]", "levels: [Bronze, Silver, Gold]") \
        .replace("level: Silver", "level: Bronze")
    assert problems_of(bronze_only) == [
        'prod.yaml:6: level "Gold" has no rules of its own: every service at Silver would be '
        "Gold (give it a rule, or remove the level)",
        'prod.yaml:6: level "Silver" has no rules of its own: every service at Bronze would be '
        "Silver (give it a rule, or remove the level)",
    ]
    block = GOOD.replace("levels: [Bronze, Silver]", "levels:\n    - Bronze\n    - name: Silver\n"
                         "    - Gold").replace("level: Silver", "level: gold")
    assert problems_of(block) == [
        'prod.yaml:8: level "Silver" has no rules of its own: every service at Bronze would be '
        "Silver (give it a rule, or remove the level)"]
    score_only = GOOD.replace("      level: Bronze\n", "").replace("      level: Silver\n", "")
    assert problems_of(score_only)[0].startswith(
        'prod.yaml:6: level "Bronze" has no rules of its own: every service would be Bronze')
