"""Conditional requests for GitHub: an ETag cache below PyGithub.

Every GET goes out with ``If-None-Match`` when an earlier answer for the same URL is cached.
GitHub answers ``304 Not Modified`` for an unchanged resource, and a 304 does not count
against the rate limit; the cached body is then handed to PyGithub as if it were a 200, so
an unchanged repository costs no rate limit on later runs.

The cache is pluggable: :class:`MemoryETagCache` (one process), :class:`JsonFileETagCache`
(kept between runs in a JSON file, ``cache_path``), and the engine's database cache
(``engine/storage/http_cache.py``), which the engine gives the collector by default. Each
holds response bodies, never credentials. GraphQL queries are POSTs and are never cached:
the REST requests left (the organisation's alert lists) are the ones made conditional.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from requests.structures import CaseInsensitiveDict

from collectors.http import CountingAdapter, RequestCounter

# Headers kept with a cached body: what PyGithub reads besides the body (pagination).
_KEPT_HEADERS = ("content-type", "link", "etag", "last-modified")


@dataclass(frozen=True)
class CachedResponse:
    etag: str
    body: str
    headers: dict[str, str]


class ETagCache(Protocol):
    def get(self, key: str) -> CachedResponse | None: ...

    def put(self, key: str, value: CachedResponse) -> None: ...

    def save(self) -> None: ...


class MemoryETagCache:
    """ETags and bodies in a dict, for as long as the collector object lives."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedResponse] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, value: CachedResponse) -> None:
        with self._lock:
            self._entries[key] = value

    def save(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._entries)


class JsonFileETagCache(MemoryETagCache):
    """The memory cache, loaded from and saved to a JSON file (written atomically).

    An unreadable or corrupt file is treated as empty: the next run simply costs full
    requests once.
    """

    VERSION = 1

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("version") == self.VERSION:
                for key, entry in raw.get("entries", {}).items():
                    self._entries[key] = CachedResponse(**entry)
        except (OSError, ValueError, TypeError, AttributeError):
            self._entries = {}

    def save(self) -> None:
        with self._lock:
            data = {"version": self.VERSION,
                    "entries": {k: asdict(v) for k, v in self._entries.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def cache_key(request: requests.PreparedRequest) -> str:
    # The media type changes the body (raw file vs JSON), so it is part of the key.
    accept = request.headers.get("Accept", "")
    if isinstance(accept, bytes):
        accept = accept.decode("latin-1")
    return f"{accept} {request.url}"


class ConditionalAdapter(CountingAdapter):
    """Counts requests, makes every GET conditional and answers 304s from the cache."""

    def __init__(self, counter: RequestCounter, cache: ETagCache, **kwargs: Any) -> None:
        self.cache = cache
        super().__init__(counter, **kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
             ) -> requests.Response:
        if request.method != "GET" or "If-None-Match" in request.headers:
            return super().send(request, *args, **kwargs)
        key = cache_key(request)
        cached = self.cache.get(key)
        if cached is not None:
            request.headers["If-None-Match"] = cached.etag
        response = super().send(request, *args, **kwargs)
        if response.status_code == 304 and cached is not None:
            self.counter.saw_not_modified()
            return _replay(cached, response)
        etag = response.headers.get("ETag")
        if response.status_code == 200 and etag:
            kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
            self.cache.put(key, CachedResponse(etag, response.text, kept))
        return response


def _replay(cached: CachedResponse, not_modified: requests.Response) -> requests.Response:
    """A 200 with the cached body and the fresh headers of the 304 (rate limit, date)."""
    response = requests.Response()
    response.status_code = 200
    response.reason = "OK"
    headers = CaseInsensitiveDict(cached.headers)
    for name, value in not_modified.headers.items():
        if name.lower() not in ("content-length", "content-type", "transfer-encoding"):
            headers[name] = value
    response.headers = headers
    response._content = cached.body.encode("utf-8")
    response.encoding = "utf-8"
    response.url = not_modified.url
    response.request = not_modified.request
    response.raw = not_modified.raw
    response.elapsed = not_modified.elapsed
    response.connection = not_modified.connection
    return response
