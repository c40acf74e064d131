"""A local HTTP server that answers like Slack: an incoming webhook and ``chat.postMessage``.

As Slack does: the webhook answers ``ok`` (text/plain), or ``invalid_blocks`` with HTTP 400
for a message over Block Kit's limits (more than 50 blocks, a section's text over 3,000
characters, a header's over 150); ``chat.postMessage`` answers 200 with JSON,
``{"ok": true, "channel": ..., "ts": ...}`` or ``{"ok": false, "error": ...}``
(``invalid_auth``, ``invalid_blocks``, ``channel_not_found`` for a channel it does not know
when given a list). Faults are queued by the tests: 429 with ``Retry-After``, 500, and a hang
(the answer comes after the client's timeout). Three modes misbehave for every request:
``fail_forever`` (500), ``hang_forever`` (no answer for an hour) and ``trickle`` (the
message is taken, and the answer comes one byte at a time). Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.realparts.httpserver import LocalHTTPServer, Reply, Request

WEBHOOK_PATH = "/services/T0LEVELSET/B0REPORT/Zm9yLXRlc3RzLW9ubHktMDEyMzQ1"
API_PREFIX = "/api/"
TOKEN = "xoxb-1111-2222-standin-secret-token-0123"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150


@dataclass(frozen=True)
class Post:
    """A message Slack accepted."""

    via: str  # "webhook" or "api"
    channel: str  # the webhook's own channel for "webhook"
    text: str
    blocks: list[dict[str, Any]]
    ts: str


def over_limits(blocks: list[dict[str, Any]]) -> str | None:
    """Why Slack would refuse these blocks as ``invalid_blocks``, or None."""
    if len(blocks) > MAX_BLOCKS:
        return f"{len(blocks)} blocks (at most {MAX_BLOCKS})"
    for index, block in enumerate(blocks):
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "section" and len(text) > MAX_SECTION_TEXT:
            return f"block {index}: section text of {len(text)} characters"
        if block.get("type") == "header" and len(text) > MAX_HEADER_TEXT:
            return f"block {index}: header text of {len(text)} characters"
        for field in block.get("fields") or ():
            if len(field.get("text", "")) > 2000:
                return f"block {index}: a field of over 2,000 characters"
    return None


def rate_limited(retry_after: float = 0) -> Reply:
    """Slack's answer when a client posts too fast (the same for both endpoints)."""
    return Reply(429, json.dumps({"ok": False, "error": "ratelimited"}).encode(),
                 {"Retry-After": f"{retry_after:g}", "Content-Type": "application/json"})


def server_error() -> Reply:
    return Reply(500, b"internal_error", {"Content-Type": "text/plain"})


def hang(seconds: float) -> Reply:
    """An answer that comes only after ``seconds`` (a client gives up before)."""
    return Reply(503, b"too late", {"Content-Type": "text/plain"}, delay=seconds)


class SlackStandIn:
    def __init__(self, *, token: str = TOKEN, channels: Collection[str] | None = None,
                 webhook_channel: str = "#webhook-channel") -> None:
        self.token = token
        self.channels = set(channels) if channels is not None else None
        self.webhook_channel = webhook_channel
        self.posts: list[Post] = []
        self._faults: deque[Reply] = deque()
        self._always: Reply | None = None
        self._lock = threading.Lock()
        self._ts = 0
        self.delay = 0.0  # seconds before each normal answer (to make two senders overlap)
        self.trickle_seconds = 0.0  # seconds between the bytes of each normal answer
        self.server = LocalHTTPServer(self._answer)

    # -- what tests use ---------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"{self.server.url}{WEBHOOK_PATH}"

    @property
    def api_url(self) -> str:
        return f"{self.server.url}{API_PREFIX}"

    @contextmanager
    def running(self) -> Iterator[SlackStandIn]:
        with self.server.running():
            yield self

    def fault(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, once each, in order."""
        with self._lock:
            self._faults.extend(replies)

    def fail_always(self, reply: Reply | None) -> None:
        """Answer every request with ``reply`` (None: answer normally again)."""
        with self._lock:
            self._always = reply

    def fail_forever(self) -> None:
        """Slack answering 500 to everything."""
        self.fail_always(server_error())

    def hang_forever(self) -> None:
        """Slack taking requests and answering none (for an hour)."""
        self.fail_always(hang(3600))

    def trickle(self, seconds_per_byte: float) -> None:
        """Slack taking each message, then sending its answer one byte every
        ``seconds_per_byte`` (0: at once again)."""
        self.trickle_seconds = seconds_per_byte

    @property
    def requests(self) -> list[Request]:
        return [exchange.request for exchange in self.server.exchanges]

    def count(self, status: int | None = None) -> int:
        return self.server.count(status)

    def channels_posted(self) -> list[str]:
        return [post.channel for post in self.posts]

    def raw_traffic(self) -> str:
        """Every request's target, headers and body as text (to look for what must not leak)."""
        return "\n".join(f"{r.target} {r.headers} {r.body.decode('utf-8', 'replace')}"
                         for r in self.requests)

    # -- Slack ----------------------------------------------------------------------------

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._always is not None:
                return self._always
        if request.method != "POST":
            return Reply(405, b"invalid_method", {"Content-Type": "text/plain"})
        if request.path == WEBHOOK_PATH:
            return self._slowly(self._webhook(request))
        if request.path == f"{API_PREFIX}chat.postMessage":
            return self._slowly(self._post_message(request))
        if request.path.startswith("/services/"):
            return Reply(404, b"no_service", {"Content-Type": "text/plain"})
        return self._json({"ok": False, "error": "unknown_method"})

    def _slowly(self, reply: Reply) -> Reply:
        reply.trickle = self.trickle_seconds
        return reply

    def _webhook(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply(400, b"invalid_payload", {"Content-Type": "text/plain"})
        if over_limits(body.get("blocks") or []):
            return Reply(400, b"invalid_blocks", {"Content-Type": "text/plain"})
        self._accept("webhook", self.webhook_channel, body)
        return Reply(200, b"ok", {"Content-Type": "text/plain"}, delay=self.delay)

    def _post_message(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._json({"ok": False, "error": "invalid_auth"})
        try:
            body = json.loads(request.body)
        except ValueError:
            return self._json({"ok": False, "error": "invalid_json"})
        channel = body.get("channel")
        if not channel:
            return self._json({"ok": False, "error": "channel_not_found"})
        if self.channels is not None and channel not in self.channels:
            return self._json({"ok": False, "error": "channel_not_found"})
        if over_limits(body.get("blocks") or []):
            return self._json({"ok": False, "error": "invalid_blocks"})
        post = self._accept("api", channel, body)
        return self._json({"ok": True, "channel": channel, "ts": post.ts,
                           "message": {"text": post.text, "blocks": post.blocks}})

    def _accept(self, via: str, channel: str, body: dict[str, Any]) -> Post:
        with self._lock:
            self._ts += 1
            post = Post(via, channel, body.get("text", ""), body.get("blocks") or [],
                        f"1700000000.{self._ts:06d}")
            self.posts.append(post)
        return post

    def _json(self, body: dict[str, Any]) -> Reply:
        return Reply(200, json.dumps(body).encode(),
                     {"Content-Type": "application/json; charset=utf-8"}, delay=self.delay)
