"""Every input file is read within bounds: size, kind of file, documents, depth, aliases."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.errors import InputError
from core.inputfiles import (
    CATALOG_FILE,
    FACTS_FILE,
    SCORECARD_FILE,
    SETTINGS_FILE,
    ReadLimits,
    read_text,
    walk_files,
)
from engine.jsonsource import parse_json
from engine.yamlsource import load_documents, load_file
from tests.hostile.generators import alias_bomb

SMALL = ReadLimits("test", 100, "LEVELSET_TEST_FILE_BYTES", max_documents=3, max_depth=4,
                   max_alias_nodes=50)


def refusal(call: object) -> str:
    with pytest.raises(InputError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


# --- size and kind of file ----------------------------------------------------------------------


def test_a_50_mb_scorecard_is_refused_by_its_size_before_it_is_read(tmp_path: Path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: no 50 MB written
    started = time.monotonic()
    message = refusal(lambda: load_file(big, SCORECARD_FILE))
    assert time.monotonic() - started < 0.5
    assert message == (f"{big}: scorecard file is 50 MiB (52,428,800 bytes), larger than the "
                       "limit of 1 MiB (1,048,576 bytes) (set LEVELSET_MAX_SCORECARD_FILE_BYTES "
                       "to raise it)")


def test_each_kind_has_its_own_size_limit():
    assert SCORECARD_FILE.max_bytes == SETTINGS_FILE.max_bytes == 1024 * 1024
    assert CATALOG_FILE.max_bytes == 16 * 1024 * 1024
    assert FACTS_FILE.max_bytes == 64 * 1024 * 1024
    assert FACTS_FILE.size_variable == "LEVELSET_MAX_FACTS_FILE_BYTES"


def test_the_size_limit_is_raised_or_lowered_by_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    file = tmp_path / "facts.yaml"
    file.write_text("a: 1\n" * 30)
    assert "larger than the limit of 100 bytes" in refusal(lambda: read_text(file, SMALL))
    monkeypatch.setenv("LEVELSET_TEST_FILE_BYTES", "1_000")
    assert read_text(file, SMALL).startswith("a: 1")
    monkeypatch.setenv("LEVELSET_TEST_FILE_BYTES", "lots")
    assert refusal(lambda: read_text(file, SMALL)) == (
        "LEVELSET_TEST_FILE_BYTES: 'lots' is not a positive number of bytes")


def test_text_read_elsewhere_is_held_to_the_same_size_limit():
    assert "test file is 101 bytes, larger than the limit of 100 bytes" in refusal(
        lambda: load_documents("#" * 101, "fetched.yaml", SMALL))


def test_device_files_and_fifos_are_refused_without_reading(tmp_path: Path):
    assert refusal(lambda: read_text(Path("/dev/zero"), CATALOG_FILE)) == (
        "/dev/zero: a character device, not a regular file: only regular files are read")
    fifo = tmp_path / "facts.json"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    assert "a FIFO, not a regular file" in refusal(lambda: read_text(fifo, FACTS_FILE))
    assert "a directory, not a regular file" in refusal(lambda: read_text(tmp_path, FACTS_FILE))


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(tmp_path: Path):
    file = tmp_path / "a.yaml"
    file.write_bytes(b"name: caf\xe9\n")
    assert refusal(lambda: read_text(file, SCORECARD_FILE)) == (
        f"{file}: cannot read file: not UTF-8 text (invalid continuation byte at byte 9)")


# --- YAML: documents, depth, aliases ------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "spec: " + "[" * 1000 + "]" * 1000 + "\n",
    "".join("  " * i + f"k{i}:\n" for i in range(1000)) + "  " * 1000 + "v: 1\n",
    "[" * 100_000,
], ids=["flow", "block", "unclosed"])
def test_deep_yaml_is_refused_at_the_line_it_goes_too_deep(text: str):
    message = refusal(lambda: load_documents(text, "deep.yaml", FACTS_FILE))
    line = 65 if text.startswith("k0") else 1
    assert message == f"deep.yaml:{line}: nesting deeper than 64 levels"


def test_nesting_up_to_the_limit_loads():
    text = "[" * 64 + "1" + "]" * 64
    value = load_documents(text, "ok.yaml", FACTS_FILE)[0]
    for _ in range(63):
        value = value[0]
    assert value == [1]


def test_an_alias_bomb_is_refused_before_it_expands():
    started = time.monotonic()
    message = refusal(lambda: load_documents(alias_bomb(), "facts.yaml", FACTS_FILE))
    assert time.monotonic() - started < 0.5
    assert message == "facts.yaml:5: aliases expand to more than 10,000 nodes"


def test_aliases_that_expand_a_little_are_read():
    text = "base: &base {owner: team-a, tags: [a, b]}\none: *base\ntwo: *base\n"
    document = load_documents(text, "a.yaml", SMALL)[0]
    assert document["two"] == {"owner": "team-a", "tags": ["a", "b"]}


def test_aliases_count_their_nested_expansion():
    # *a adds 4 nodes, *b 13 (itself and its three *a): 3 * 4 + 2 * 13 = 38, then 51 > 50.
    text = "a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: [*b, *b]\nd: *b\n"
    assert refusal(lambda: load_documents(text, "a.yaml", SMALL)) == (
        "a.yaml:4: aliases expand to more than 50 nodes")


def test_aliases_cannot_stack_nesting_past_the_depth_limit():
    # Expanded, d holds b which holds a: the root mapping, two lists, b's list and a's: 5 > 4.
    text = "a: &a [1]\nb: &b [*a]\nc: [*b]\n"
    assert load_documents(text, "a.yaml", SMALL)[0]["c"] == [[[1]]]
    assert refusal(lambda: load_documents(text + "d: [[*b]]\n", "a.yaml", SMALL)) == (
        'a.yaml:4: nesting deeper than 4 levels (with alias "*b" expanded)')


def test_a_recursive_alias_is_refused():
    assert refusal(lambda: load_documents("a: &a [1, *a]\n", "a.yaml", SMALL)) == (
        'a.yaml:1: alias "*a" refers to a node that contains it (recursive structures are not read)')


def test_too_many_documents_are_refused_at_the_first_one_over():
    text = "".join(f"---\nn: {i}\n" for i in range(5))
    assert refusal(lambda: load_documents(text, "many.yaml", SMALL)) == (
        "many.yaml:7: more than 3 documents in one test file")


# --- JSON ---------------------------------------------------------------------------------------


def test_json_keeps_the_lines_of_the_outer_keys():
    text = '{\n  "payments": {\n    "github": {"stars": 3},\n    "prometheus": {}\n  }\n}\n'
    document = parse_json(text, "facts.json", FACTS_FILE)
    assert document.line_of("payments") == 2
    assert document["payments"].line_of("prometheus") == 4
    assert document["payments"]["github"] == {"stars": 3}


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": {"b": ' + "[" * 2000 + "]" * 2000 + "}}", "f.json:1: nesting deeper than 64 levels"),
    ('{"a":\n {"b": {"c": NaN}}}', "f.json:2: a.b: NaN is not valid JSON"),
    ('{"a": {"b": {"c": -Infinity}}}', "f.json:1: a.b: -Infinity is not valid JSON"),
    ('{"a": {},\n "a": {}}', 'f.json:2: duplicate key "a" (first defined on line 1)'),
    ('{"a": {"b": {"c": 1, "c": 2}}}', 'f.json:1: a.b: duplicate key "c"'),
    ('{"a": {"b": 1,\n}}', "f.json:2: invalid JSON: expecting a key in double quotes"),
    ('{"a": {"b": [1,\n 2,,]}}', "f.json:2: invalid JSON: Expecting value"),
    ('{"a": {}}\n[]', "f.json:2: invalid JSON: extra data after the document"),
    ("", "f.json:1: invalid JSON: Expecting value"),
], ids=["deep", "nan", "infinity", "duplicate-outer", "duplicate-inner", "trailing-comma",
        "inner-syntax", "extra-data", "empty"])
def test_bad_json_is_refused_with_its_line(text: str, expected: str):
    assert refusal(lambda: parse_json(text, "f.json", FACTS_FILE)).startswith(expected)


def test_brackets_inside_json_strings_do_not_count_as_nesting():
    text = '{"a": {"b": "' + "[" * 2000 + '\\" {"}}'
    assert parse_json(text, "f.json", FACTS_FILE)["a"]["b"].startswith("[[[")


# --- directories and symbolic links -------------------------------------------------------------


def test_dangling_links_and_loops_in_a_directory_are_reported_not_skipped(tmp_path: Path):
    (tmp_path / "good.yaml").write_text("a: 1\n")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "missing.txt")  # not a file we read
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path)
    walk = walk_files([tmp_path])
    assert walk.files == [tmp_path / "good.yaml"]
    assert [str(p) for p in walk.problems] == [
        f"{tmp_path}/gone.yaml: dangling symbolic link (-> {tmp_path}/missing.yaml, which does "
        "not exist); not read",
        f"{tmp_path}/loop.yaml: symbolic link loop (-> {tmp_path}/loop.yaml); not read",
        f"{tmp_path}/sub/back: symbolic link loop: leads back to {tmp_path}, a folder that holds "
        "it; not searched",
    ]


def test_linked_files_and_folders_are_followed_and_hidden_ones_skipped(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "common.yaml").write_text("a: 1\n")
    root = tmp_path / "root"
    (root / "..2026_01_01").mkdir(parents=True)  # a Kubernetes ConfigMap's copy
    (root / "..2026_01_01" / "x.yaml").write_text("a: 1\n")
    (root / "linked").symlink_to(shared)
    (root / "one.yml").symlink_to(shared / "common.yaml")
    walk = walk_files([root])
    assert walk.problems == []
    assert walk.files == [root / "linked" / "common.yaml", root / "one.yml"]


def test_libyaml_and_the_python_parser_read_the_same_values_and_lines():
    from engine.yamlsource import _parse_in_python, parse_documents

    text = ("a: &x {b: [1, 2.5, true, null, '2026-01-01']}\nc: *x\n"
            "d:\n  <<: *x\n  e: |\n    text\n---\n- k: v\n  n: 3\n")
    fast = parse_documents(text, "t.yaml", FACTS_FILE)
    slow = _parse_in_python(text, "t.yaml", FACTS_FILE)
    assert fast == slow
    assert [d.line for d in fast] == [d.line for d in slow]
    assert fast[0].key_lines == slow[0].key_lines == {"a": 1, "c": 2, "d": 3}
    assert fast[0]["d"].key_lines == slow[0]["d"].key_lines
    assert fast[1].item_lines == slow[1].item_lines == [8]
