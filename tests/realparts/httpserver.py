"""A small threaded HTTP server on 127.0.0.1 that answers with a Python function.

It records every request with the status it got, so tests can count what a client really
sent. Used for the GitHub stand-in and for a fault-injecting proxy in front of moto.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


def free_port() -> int:
    """A loopback port nothing listens on (the socket that found it is closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    target: str = ""  # path with query, as sent


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)
    trickle: float = 0.0  # seconds between the answer's bytes, sent one at a time


@dataclass
class Exchange:
    request: Request
    status: int


class LocalHTTPServer:
    def __init__(self, respond: Callable[[Request], Reply]) -> None:
        self.respond = respond
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to each answer

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command, path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"", target=self.path)
                reply = outer.respond(request)
                with outer._lock:
                    outer.exchanges.append(Exchange(request, reply.status))
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.trickle:
                    self._trickle(reply)
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        if name.lower() not in ("content-length", "transfer-encoding",
                                                "connection"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if reply.body and self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def _trickle(self, reply: Reply) -> None:
                """The whole answer, status line first, one byte at a time, until it is
                sent or the client hangs up."""
                self.close_connection = True
                head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
                head += [f"{name}: {value}" for name, value in reply.headers.items()
                         if name.lower() not in ("content-length", "transfer-encoding")]
                head.append(f"Content-Length: {len(reply.body)}")
                raw = ("\r\n".join(head) + "\r\n\r\n").encode() + reply.body
                try:
                    for index in range(len(raw)):
                        self.wfile.write(raw[index:index + 1])
                        self.wfile.flush()
                        time.sleep(reply.trickle)
                except OSError:
                    pass  # the client gave up

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def count(self, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for e in self.exchanges if status is None or e.status == status)

    @contextmanager
    def running(self) -> Iterator[LocalHTTPServer]:
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                  daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def forward(upstream: str, request: Request) -> Reply:
    """Send ``request`` on to ``upstream`` (``http://host:port``) and return its answer."""
    host = urlsplit(upstream)
    connection = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=30)
    try:
        headers = {k: v for k, v in request.headers.items() if k != "host"}
        headers["host"] = host.netloc
        connection.request(request.method, request.target, body=request.body or None,
                           headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()
