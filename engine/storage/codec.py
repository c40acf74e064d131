"""How stored values are encoded: canonical JSON and the digests that compare them."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

# How deep a JSON value may nest (objects and arrays), in what the API accepts and shows.
MAX_JSON_DEPTH = 32


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def jsonable(value: Any) -> Any:
    """Evidence may hold datetimes; store what JSON can hold."""
    return json.loads(canonical_json(value))


def digest64(text_value: str) -> int:
    """A signed 64-bit digest (fits BIGINT) of a canonical text."""
    return int.from_bytes(hashlib.sha256(text_value.encode()).digest()[:8], "big", signed=True)


def digest256(value: Any) -> str:
    """The sha256 hex digest of a value's canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()



def _surrogate(text: str) -> str | None:
    """The first unpaired surrogate in ``text``, escaped (``\\ud800``), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"\\u{ord(text[error.start]):04x}"
    return None


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)


def _problem(value: Any, depth: int, max_depth: int) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return f"{name} is not a finite number"
    if isinstance(value, str) and (found := _surrogate(value)) is not None:
        return f"unpaired surrogate {found} is not Unicode text"
    if isinstance(value, dict | list) and depth > max_depth:
        return f"nested deeper than {max_depth} levels"
    return None


JsonPath = tuple[str | int, ...]


def repair_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[Any, list[tuple[JsonPath, str]]]:
    """A copy of a JSON value that can be written back as JSON, and what was wrong, by path.

    Unpaired surrogates (in keys and strings) become U+FFFD; NaN and infinities become null;
    objects and arrays nested deeper than ``max_depth`` become null. Recursion stops there,
    so a value of any depth is safe to pass.
    """
    flaws: list[tuple[JsonPath, str]] = []

    def visit(item: Any, path: JsonPath, depth: int) -> Any:
        problem = _problem(item, depth, max_depth)
        if problem is not None:
            flaws.append((path, problem))
            return _replace_surrogates(item) if isinstance(item, str) else None
        if isinstance(item, dict):
            copy: dict[str, Any] = {}
            for key, child in item.items():
                name = str(key)
                found = _surrogate(name)
                if found is not None:
                    name = _replace_surrogates(name)
                    flaws.append(((*path, name), f"unpaired surrogate {found} in the key is not "
                                  "Unicode text"))
                copy[name] = visit(child, (*path, name), depth + 1)
            return copy
        if isinstance(item, list):
            return [visit(child, (*path, index), depth + 1) for index, child in enumerate(item)]
        return item

    return visit(value, (), 1), flaws


def json_path(path: JsonPath) -> str:
    """``("a", "b", 0)`` -> ``a.b[0]``: where in a JSON value, for people."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
