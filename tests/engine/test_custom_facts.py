"""Custom facts from the facts file and from pushes, without a database: which value a rule
reads, what a push or a new reading of the file changes, the merge rule, declared facts
converted or refused at the door, and the limits of a push."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import FactsError
from engine.custom_facts import (
    MAX_KEY_LENGTH,
    MAX_PUSH_KEYS,
    CustomValue,
    FactsLimitError,
    apply,
    check_push,
    check_service,
    coerce_declared,
    merge,
    plan_file,
    plan_push,
    resolve,
)
from engine.facts import load_facts
from engine.storage.models import FactOrigin
from engine.vocabulary import custom_schema, vocabulary

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILE, PUSH = FactOrigin.FILE, FactOrigin.PUSH
DECLARED = {"coverage": {"type": "double"}, "on_call": {"type": "bool", "default": False},
            "incidents": {"type": "int"}}


def entry(key: str, origin: FactOrigin, value: object, hours: int, removed: bool = False) -> CustomValue:
    return CustomValue(key, origin, value, removed, T0 + timedelta(hours=hours))


def values(entries: list[CustomValue]) -> dict[str, object]:
    return {key: e.value for key, e in resolve(entries).items()}


def test_the_more_recent_of_the_file_and_a_push_wins_per_key() -> None:
    assert values([entry("coverage", FILE, 50.0, 0), entry("coverage", PUSH, 91.5, 1)]) == {
        "coverage": 91.5}
    assert values([entry("coverage", FILE, 60.0, 2), entry("coverage", PUSH, 91.5, 1)]) == {
        "coverage": 60.0}
    # At the same moment, the push wins: it was said on purpose.
    assert values([entry("coverage", FILE, 60.0, 1), entry("coverage", PUSH, 91.5, 1)]) == {
        "coverage": 91.5}
    resolved = resolve([entry("a", FILE, 1, 5), entry("b", PUSH, 2, 1)])
    assert {k: (e.origin, e.at.hour) for k, e in resolved.items()} == {"a": (FILE, 5), "b": (PUSH, 1)}


def test_a_key_the_file_drops_leaves_a_pushed_value_but_a_pushed_removal_hides_the_file() -> None:
    assert values([entry("coverage", FILE, None, 5, removed=True),
                   entry("coverage", PUSH, 91.5, 1)]) == {"coverage": 91.5}
    assert values([entry("coverage", FILE, 60.0, 1),
                   entry("coverage", PUSH, None, 2, removed=True)]) == {}
    # Until the file's value changes again, after the removal.
    assert values([entry("coverage", FILE, 70.0, 3),
                   entry("coverage", PUSH, None, 2, removed=True)]) == {"coverage": 70.0}


def test_objects_merge_at_every_depth_null_removes_and_lists_replace() -> None:
    current = {"freq": 3, "env": {"prod": True, "dev": True}, "regions": ["eu", "us"]}
    pushed = {"env": {"dev": None, "test": False}, "regions": ["eu"], "lead": {"hours": 2}}
    assert merge(current, pushed) == {"freq": 3, "env": {"prod": True, "test": False},
                                      "regions": ["eu"], "lead": {"hours": 2}}
    assert merge(5, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}  # nulls never stored
    assert merge({"a": 1}, [1, None]) == [1, None]  # a list is a value: replaced as given


def test_a_push_appends_only_what_it_changes() -> None:
    held = resolve([entry("coverage", PUSH, 91.5, 0), entry("tier", FILE, "1", 0),
                    entry("deploy", PUSH, {"freq": 3}, 0)])
    now = T0 + timedelta(hours=1)
    changes = plan_push(held, {"coverage": 91.5, "tier": "1", "deploy": {"lead": 2},
                               "gone": None, "new": True}, now)
    # coverage: the same pushed value, nothing; tier: the same value, but now pushed (it
    # outlives the file's); deploy: merged; gone: nothing held, nothing to remove.
    assert [(c.key, c.origin, c.value, c.removed) for c in changes] == [
        ("tier", PUSH, "1", False), ("deploy", PUSH, {"freq": 3, "lead": 2}, False),
        ("new", PUSH, True, False)]
    removal = plan_push(held, {"coverage": None}, now)
    assert [(c.key, c.removed) for c in removal] == [("coverage", True)]


def test_a_new_reading_of_the_file_appends_each_changed_key_dated_when_it_changed() -> None:
    held = {e.key: e for e in [entry("a", FILE, 1, 0), entry("b", FILE, {"x": 1}, 0),
                               entry("c", FILE, None, 0, removed=True)]}
    at = T0 + timedelta(days=1)
    changes = plan_file(held, {"a": 1, "b": {"x": 2}, "c": 3, "d": True}, at)
    assert [(c.key, c.value, c.removed) for c in changes] == [
        ("b", {"x": 2}, False), ("c", 3, False), ("d", True, False)]
    assert all(c.at == at and c.origin is FILE for c in changes)
    dropped = plan_file(held, {"b": {"x": 1}}, at)
    assert [(c.key, c.removed) for c in dropped] == [("a", True)]
    assert plan_file(held, {"a": True, "b": {"x": 1}}, at)[0].value is True  # 1 is not true


def test_declared_facts_convert_without_loss_or_are_refused_by_name() -> None:
    schema = custom_schema(DECLARED)
    converted, problems = coerce_declared(
        {"coverage": 41, "incidents": 3.0, "on_call": True}, schema)
    assert converted == {"coverage": 41.0, "incidents": 3, "on_call": True}
    assert isinstance(converted["coverage"], float) and isinstance(converted["incidents"], int)
    _, problems = coerce_declared({"coverge": 50.0, "coverage": "high", "incidents": 2.5,
                                   "on_call": 1}, schema)
    assert dict(problems) == {
        "coverge": 'not declared in custom_facts (did you mean "coverage"?); declared: '
                   "coverage, incidents, on_call",
        "coverage": "declared in custom_facts as double, got str 'high'",
        "incidents": "declared in custom_facts as int, got float 2.5 (not a whole number)",
        "on_call": "declared in custom_facts as bool, got int 1",
    }
    _, problems = coerce_declared({"coverage": 2**60}, schema)
    assert "beyond ±2^53" in problems[0][1]
    assert coerce_declared({"anything": 1}, custom_schema(None)) == ({"anything": 1}, [])


def test_a_facts_file_meets_the_declared_facts_with_file_line_and_key(tmp_path: Path) -> None:
    schemas = vocabulary(custom_facts=DECLARED)
    path = tmp_path / "facts.yaml"
    path.write_text("payments:\n  custom:\n    coverage: 41\n    on_call: true\n")
    assert load_facts(path, schemas)["payments"].values["custom"] == {"coverage": 41.0,
                                                                      "on_call": True}
    path.write_text("payments:\n  custom:\n    on_call: true\n    coverge: 50.0\n"
                    "    incidents: lots\n")
    with pytest.raises(FactsError) as raised:
        load_facts(path, schemas)
    assert [str(p) for p in raised.value.problems] == [
        f'{path}:4: service "payments": custom.coverge: not declared in custom_facts (did you '
        'mean "coverage"?); declared: coverage, incidents, on_call',
        f'{path}:5: service "payments": custom.incidents: declared in custom_facts as int, got '
        "str 'lots'",
    ]


def test_custom_facts_in_a_file_cannot_be_an_error(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text('{"payments": {"custom": {"$error": "down"}}}')
    with pytest.raises(FactsError, match='custom facts cannot be "\\$error"'):
        load_facts(path, vocabulary())


def test_a_push_over_a_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(FactsLimitError, match=f"at most {MAX_PUSH_KEYS:,} keys") as raised:
        check_push({f"k{i}": i for i in range(MAX_PUSH_KEYS + 1)})
    assert not raised.value.too_large
    with pytest.raises(FactsLimitError, match=f"at most {MAX_KEY_LENGTH} characters"):
        check_push({"k" * (MAX_KEY_LENGTH + 1): 1})
    with pytest.raises(FactsLimitError, match="per push") as raised:
        check_push({"blob": "x" * 1_100_000})
    assert raised.value.too_large
    check_push({f"k{i}": i for i in range(MAX_PUSH_KEYS)})


def test_a_service_over_its_limits_can_still_shrink(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.custom_facts as custom_facts

    monkeypatch.setattr(custom_facts, "MAX_SERVICE_KEYS", 2)
    before = resolve([entry("a", PUSH, 1, 0), entry("b", PUSH, 2, 0), entry("c", PUSH, 3, 0)])
    with pytest.raises(FactsLimitError, match='service "svc" would hold 4 custom facts; at most 2'):
        check_service("svc", before, resolve(apply(before.values(), [entry("d", PUSH, 4, 1)])))
    check_service("svc", before, resolve(apply(before.values(), [entry("a", PUSH, 9, 1)])))
    check_service("svc", before, resolve(apply(before.values(),
                                                [entry("a", PUSH, None, 1, removed=True)])))
