"""Facts files: JSON or YAML, every problem with file and line, every file bounded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.errors import FactsError
from engine.facts import load_facts
from engine.vocabulary import vocabulary
from tests.hostile.generators import alias_bomb


def refusal(path: Path) -> list[str]:
    with pytest.raises(FactsError) as caught:
        load_facts(path, vocabulary())
    return [str(p) for p in caught.value.problems]


def test_json_and_yaml_facts_read_the_same(tmp_path: Path):
    facts = {"payments": {"github": {"has_readme": True}, "prometheus": {"$error": "down"}}}
    (tmp_path / "facts.json").write_text(json.dumps(facts, indent=2))
    (tmp_path / "facts.yaml").write_text("payments:\n  github: {has_readme: true}\n"
                                         "  prometheus: {$error: down}\n")
    for name in ("facts.json", "facts.yaml"):
        loaded = load_facts(tmp_path / name, vocabulary())["payments"]
        assert loaded.values == {"github": {"has_readme": True}}
        assert loaded.failures == {"prometheus": "down"}


def test_a_large_json_facts_file_is_read_as_json(tmp_path: Path):
    """About 2.5 MB: a minute through the YAML loader, well under a second as JSON (the speed
    itself is a benchmark's business, not a test's)."""
    facts = {f"svc-{i}": {"github": {"has_readme": True, "topics": ["a", "b"], "stars": i}}
             for i in range(20_000)}
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts, indent=2))
    loaded = load_facts(path, vocabulary())
    assert loaded["svc-19999"].values["github"]["stars"] == 19_999


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("facts.json", '{"payments": {"github": {"x": ' + "[" * 1000 + "]" * 1000 + "}}}",
     "facts.json:1: nesting deeper than 64 levels"),
    ("facts.yaml", "payments:\n  github:\n    x: " + "[" * 1000 + "]" * 1000 + "\n",
     "facts.yaml:3: nesting deeper than 64 levels"),
    ("facts.yaml", alias_bomb(), "facts.yaml:5: aliases expand to more than 10,000 nodes"),
    ("facts.json", '{\n "payments": {\n  "github": {"stars": NaN}}}',
     "facts.json:3: payments.github: NaN is not valid JSON"),
], ids=["deep-json", "deep-yaml", "alias-bomb", "nan"])
def test_facts_past_a_limit_are_refused_with_file_and_line(tmp_path: Path, name: str, text: str,
                                                            expected: str):
    path = tmp_path / name
    path.write_text(text)
    started = time.monotonic()
    problems = refusal(path)
    assert time.monotonic() - started < 1
    assert problems[0].startswith(f"{tmp_path}/{expected}"), problems


def test_the_facts_size_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "facts.json"
    path.write_text('{"payments": {"github": {"has_readme": true}}}')
    monkeypatch.setenv("LEVELSET_MAX_FACTS_FILE_BYTES", "20")
    assert refusal(path) == [f"{path}: facts file is 46 bytes, larger than the limit of 20 bytes "
                             "(set LEVELSET_MAX_FACTS_FILE_BYTES to raise it)"]
    monkeypatch.setenv("LEVELSET_MAX_FACTS_FILE_BYTES", "100")
    assert load_facts(path, vocabulary())["payments"].values["github"] == {"has_readme": True}


def test_a_device_file_is_not_read_as_facts():
    assert refusal(Path("/dev/zero")) == [
        "/dev/zero: a character device, not a regular file: only regular files are read"]
