"""Counting the HTTP requests a collector really sends, retries included.

``requests`` hands each attempt to a urllib3 connection pool; the pools made here count
every attempt as it goes on the wire, so a retried 503 counts twice and a timed-out
request counts once, whatever the client library on top does.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ReadTimeoutError


class RequestCounter:
    """Thread-safe tallies of requests sent and of 304 answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.not_modified = 0

    def sent(self) -> None:
        with self._lock:
            self.requests += 1

    def saw_not_modified(self) -> None:
        with self._lock:
            self.not_modified += 1


def _counting_pool(
    base: type[HTTPConnectionPool], counter: RequestCounter
) -> type[HTTPConnectionPool]:
    class CountingPool(base):  # type: ignore[valid-type,misc]
        def _make_request(self, *args: Any, **kwargs: Any) -> Any:
            counter.sent()
            return super()._make_request(*args, **kwargs)

    return CountingPool


class CountingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connection pools count each request attempt."""

    def __init__(self, counter: RequestCounter, **kwargs: Any) -> None:
        self.counter = counter
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _counting_pool(HTTPConnectionPool, self.counter),
            "https": _counting_pool(HTTPSConnectionPool, self.counter),
        }


def is_timeout(error: requests.exceptions.RequestException) -> bool:
    """A timeout, also when urllib3's retries wrapped it into a ``ConnectionError``."""
    if isinstance(error, requests.exceptions.Timeout):
        return True
    inner = error.args[0] if error.args else None
    return isinstance(getattr(inner, "reason", None), TimeoutError | ReadTimeoutError)


def connection_reason(error: requests.exceptions.RequestException) -> str:
    """``cannot connect (NewConnectionError)``: the socket-level cause, without the URL."""
    inner = error.args[0] if error.args else None
    cause = getattr(inner, "reason", None) or inner
    return f"cannot connect ({type(cause).__name__})" if cause is not None else "cannot connect"


def counting_session(
    counter: RequestCounter, adapter: HTTPAdapter | None = None
) -> requests.Session:
    """A session whose every request is counted by ``counter``."""
    session = requests.Session()
    adapter = adapter or CountingAdapter(counter)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
