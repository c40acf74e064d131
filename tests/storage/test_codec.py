"""Stored JSON values: what cannot be written back as JSON is found and repaired, by path."""

from __future__ import annotations

import json

from engine.storage.codec import json_path, repair_json


def test_clean_values_come_back_equal_with_no_flaws() -> None:
    value = {"a": [1, 2.5, None, True, "\U0001f600"], "b": {"c": "text"}}
    assert repair_json(value) == (value, [])


def test_surrogates_nan_infinities_and_depth_are_repaired_and_named() -> None:
    deep: object = "x"
    for _ in range(950):
        deep = [deep]
    stored = {"s": "a\ud800b", "k\udc00": 1, "n": float("nan"), "i": [float("-inf")], "d": deep}
    shown, flaws = repair_json(stored)
    assert shown["s"] == "a\ufffdb" and shown["k\ufffd"] == 1 and shown["n"] is None
    assert shown["i"] == [None]
    assert {json_path(path): problem for path, problem in flaws} == {
        "s": "unpaired surrogate \\ud800 is not Unicode text",
        "k\ufffd": "unpaired surrogate \\udc00 in the key is not Unicode text",
        "n": "NaN is not a finite number",
        "i[0]": "-Infinity is not a finite number",
        "d" + "[0]" * 31: "nested deeper than 32 levels",
    }
    json.dumps(shown, allow_nan=False).encode("utf-8")  # now JSON in every sense


def test_paths_read_as_people_write_them() -> None:
    assert json_path(("a", "b", 0, "c")) == "a.b[0].c"
    assert json_path(()) == ""
