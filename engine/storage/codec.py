"""How stored values are encoded: canonical JSON and the digests that compare them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


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
