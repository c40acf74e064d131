"""HTTP requests that end by a deadline: connect, send and read together, not each read.

urllib's ``timeout`` bounds every socket operation on its own, so a server that answers one
byte every few seconds holds a request for as long as it likes. Here each request gets a
deadline: its sockets are watched, and when the deadline passes they are shut down, which
ends whatever read or write is waiting; the request then fails with ``TimeoutError``.
slack_sdk's clients send through ``send`` (see ``engine.notify.slack``), so every try of a
post, retries included, lasts at most ``timeout_seconds``.
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
import time
import urllib.request
from email.message import Message as HeaderMessage
from functools import partial
from http.client import HTTPConnection, HTTPSConnection
from typing import Any
from urllib.error import HTTPError


class Deadline:
    """The moment a request must be over by; shuts its sockets down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left; TimeoutError when there are none."""
        left = self.at - time.monotonic()
        if left <= 0 or self.expired:
            raise TimeoutError(f"no complete answer within {self.seconds:g} s")
        return left

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def close(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already: nothing is waiting on it
        sock.shutdown(socket.SHUT_RDWR)


class _Bounded:
    """A connection whose socket is watched by a deadline, and whose connect waits no
    longer than the deadline leaves."""

    deadline: Deadline
    timeout: float | None
    _create_connection: Any

    def _bind(self, deadline: Deadline) -> None:
        self.deadline = deadline
        create = self._create_connection
        self._create_connection = lambda *args, **kwargs: deadline.watch(create(*args, **kwargs))

    def connect(self) -> None:
        self.timeout = self.deadline.left()
        super().connect()  # type: ignore[misc]


class _HTTPConnection(_Bounded, HTTPConnection):
    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bind(deadline)


class _HTTPSConnection(_Bounded, HTTPSConnection):
    def __init__(self, *args: Any, deadline: Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bind(deadline)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(partial(_HTTPConnection, deadline=self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: Deadline, context: ssl.SSLContext | None) -> None:
        super().__init__(context=context)
        self.deadline, self.tls = deadline, context

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(partial(_HTTPSConnection, deadline=self.deadline), req,
                            context=self.tls)


def send(request: urllib.request.Request, seconds: float,
         context: ssl.SSLContext | None = None) -> tuple[int, HeaderMessage, bytes]:
    """``request`` sent and its whole answer read within ``seconds``: (status, headers, body).

    An answer that is not 2xx raises urllib's ``HTTPError`` (its body read already, as
    slack_sdk expects); a request not over by the deadline raises ``TimeoutError``.
    """
    deadline = Deadline(seconds)
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline, context))
    try:
        try:
            with opener.open(request, timeout=seconds) as response:
                return response.status, response.headers, response.read()
        except HTTPError as error:
            body = error.read()
            raise HTTPError(error.url, error.code, error.msg, error.headers,
                            io.BytesIO(body)) from None
    except HTTPError:
        raise
    except Exception as error:
        if deadline.expired:
            raise TimeoutError(f"no complete answer within {seconds:g} s") from error
        raise
    finally:
        deadline.close()
