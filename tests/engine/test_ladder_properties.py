"""Properties of the level ladder, run through the real CEL pipeline."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from core.service import Service
from engine.evaluation import RuleStatus, ServiceFacts, evaluate
from engine.scorecard import Exemption, Level, Rule, Scorecard
from engine.vocabulary import vocabulary
from rules.expression import Expression

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SCHEMAS = vocabulary()
SERVICE = Service(name="svc", owner="team", lifecycle="production")

# How a rule's fact is set up, and the status that must come out of it.
FACT_SETUPS = {
    "pass": (True, RuleStatus.PASS),
    "fail": (False, RuleStatus.FAIL),
    "unknown": (None, RuleStatus.UNKNOWN),  # absent
    "error": ("not a bool", RuleStatus.ERROR),
    "exempt": (False, RuleStatus.EXEMPT),
}

rule_specs = st.lists(
    st.tuples(
        st.sampled_from(sorted(FACT_SETUPS)),
        st.one_of(st.none(), st.integers(min_value=0, max_value=3)),  # level index or none
        st.integers(min_value=1, max_value=5),  # weight
    ),
    min_size=1,
    max_size=12,
)


def build(specs: list[tuple[str, int | None, int]], level_count: int = 4):
    levels = tuple(Level(f"L{i}", i + 1) for i in range(level_count))
    rules, custom, exemptions = [], {}, []
    for index, (kind, level, weight) in enumerate(specs):
        name = f"r{index}"
        rules.append(Rule(
            name=name,
            expression=Expression.compile(f"custom.{name} == true", SCHEMAS),
            level=levels[level % level_count].name if level is not None else None,
            weight=float(weight),
        ))
        value, _ = FACT_SETUPS[kind]
        if value is not None:
            custom[name] = value
        if kind == "exempt":
            exemptions.append(Exemption("svc", name, "reason", date(2026, 11, 27)))
    # A string compared to a bool is a type error in CEL, which makes "error" rules.
    for rule, (kind, _, _) in zip(rules, specs, strict=True):
        if kind == "error":
            object.__setattr__(rule, "expression", Expression.compile(
                f"custom.{rule.name} > 1", SCHEMAS))
    card = Scorecard(name="card", levels=levels, rules=tuple(rules), exemptions=tuple(exemptions))
    facts = {"svc": ServiceFacts(values={"custom": custom})}
    return card, facts


def grade(specs):
    card, facts = build(specs)
    [result] = evaluate([SERVICE], facts, [card], SCHEMAS, NOW).results
    return card, result


@settings(max_examples=300, deadline=None)
@given(rule_specs)
def test_each_rule_gets_the_status_its_facts_call_for(specs):
    _, result = grade(specs)
    assert [r.status for r in result.rules] == [FACT_SETUPS[kind][1] for kind, _, _ in specs]


@settings(max_examples=300, deadline=None)
@given(rule_specs)
def test_level_is_the_highest_whose_rules_and_all_lower_rules_are_satisfied(specs):
    card, result = grade(specs)
    satisfied = {"pass", "exempt"}

    def reachable(rank: int) -> bool:
        return all(
            kind in satisfied
            for kind, level, _ in specs
            if level is not None and (level % 4) + 1 <= rank
        )

    expected_rank = max((lvl.rank for lvl in card.levels if reachable(lvl.rank)), default=0)
    assert card.rank_of(result.level) == expected_rank
    # Every level below the reached one is reachable too: the ladder has no gaps.
    assert all(reachable(rank) for rank in range(1, expected_rank + 1))


@settings(max_examples=200, deadline=None)
@given(rule_specs, st.sampled_from(["fail", "unknown", "error"]), st.integers(0, 3))
def test_an_unsatisfied_rule_never_raises_the_level_and_caps_it_below_its_own(specs, kind, level):
    card, before = grade(specs)
    _, after = grade([*specs, (kind, level, 1)])
    assert card.rank_of(after.level) <= card.rank_of(before.level)
    assert card.rank_of(after.level) < level + 1


@settings(max_examples=200, deadline=None)
@given(rule_specs)
def test_score_is_the_weighted_share_of_satisfied_rules(specs):
    _, result = grade(specs)
    total = sum(weight for _, _, weight in specs)
    passed = sum(weight for kind, _, weight in specs if kind in ("pass", "exempt"))
    assert result.score == round(100 * passed / total, 2)
    assert 0 <= result.score <= 100


@settings(max_examples=150, deadline=None)
@given(rule_specs)
def test_exempting_a_failing_rule_never_lowers_the_level(specs):
    card, before = grade(specs)
    _, after = grade([("exempt" if kind == "fail" else kind, lvl, w) for kind, lvl, w in specs])
    assert card.rank_of(after.level) >= card.rank_of(before.level)


def test_unknown_fact_blocks_level_but_is_not_a_failure():
    _, result = grade([("pass", 0, 1), ("unknown", 1, 1)])
    assert result.level == "L0"
    assert result.rules[1].status is RuleStatus.UNKNOWN
    assert "no data for custom.r1" in result.rules[1].message
