"""Posting messages to Slack through slack_sdk: an incoming webhook or a bot token.

```yaml
report:
  slack:
    webhook_url_env: LEVELSET_SLACK_WEBHOOK_URL  # an incoming webhook (its own channel), or
    token_env: LEVELSET_SLACK_TOKEN              # a bot token: chat.postMessage to any channel
    channel: "#platform-standards"               # the summary's channel (bot token)
    teams: {payments: "#payments-eng"}           # a catalog owner's channel (bot token)
```

The webhook URL and the token come from the environment or a secret file the settings name
(a token wins over a webhook when both are there), never from the settings file. They are
never printed or logged: errors name the channel and Slack's error string only, and
slack_sdk's own logging (which shows URLs at debug level) is kept to critical messages.

Every request is counted, retries included. A 429 is retried after its ``Retry-After`` (if
no longer than ``max_retry_after_seconds``), a 5xx or a connection error (a refused
connection, a timeout) after an exponential backoff, each at most ``max_retries`` times.
Each request is over within ``timeout_seconds`` (connect, send and read together: see
``engine.notify.deadline``), and after ``breaker_failures`` posts in a row that failed for
want of Slack (5xx, 429, timeouts, connection errors) a poster tries no more: the deliveries
left are recorded as skipped and sent by the next attempt.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import Request

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookResponse

from core.errors import InputError, Problem, SettingsError
from core.inputfiles import SECRET_FILE, read_text
from engine.notify import deadline
from engine.reports.messages import Message
from engine.settings import SlackSettings

log = logging.getLogger("levelset.notify")

# slack_sdk logs request URLs (a webhook's secret) at debug level and every failed attempt at
# error level; delivery logs its own lines instead, without either.
_SDK_LOG = logging.getLogger("levelset.notify.slack_sdk")
_SDK_LOG.setLevel(logging.CRITICAL)

DEFAULT_API_URL = "https://slack.com/api/"
SUMMARY = "summary"
TEAM = "team:"
WEBHOOK_CHANNEL = "webhook"  # deliveries through an incoming webhook go to its own channel
SLACK_ERROR = re.compile(r"^[a-z][a-z0-9_]{0,79}$")  # invalid_blocks, channel_not_found...


class Mode(StrEnum):
    WEBHOOK = "webhook"  # an incoming webhook: one channel, chosen when it was created
    BOT = "bot"  # a bot token: chat.postMessage to any channel


@dataclass(frozen=True)
class Destination:
    """Where messages go: the mode, its secret (never shown) and the routing settings."""

    mode: Mode
    secret: str = field(repr=False)
    slack: SlackSettings = field(repr=False)


def _secret(env: str | None, file: Path | None, what: str) -> str | None:
    """A secret from the file the settings name (which must then hold one), or else from the
    environment variable they name (unset: not configured)."""
    if file is not None:
        try:
            value = read_text(file, SECRET_FILE).strip()
        except InputError as error:
            raise SettingsError([Problem(p.file, p.line, f"{what}: {p.message}")
                                 for p in error.problems]) from None
        if not value:
            raise SettingsError.single(file, None, f"{what}: the secret file is empty")
        return value
    if not env:
        return None
    return (os.environ.get(env) or "").strip() or None


def configured(slack: SlackSettings) -> bool:
    """Whether a webhook URL or a token is there to read (without reading a file)."""
    return any(file is not None or (env and (os.environ.get(env) or "").strip())
               for env, file in ((slack.token_env, slack.token_file),
                                 (slack.webhook_url_env, slack.webhook_url_file)))


def destination(slack: SlackSettings) -> Destination | None:
    """The configured destination (a token wins over a webhook), or None when neither is set.

    SettingsError when a secret file cannot be read, or when the routing needs what the mode
    cannot give: team channels without a bot token.
    """
    token = _secret(slack.token_env, slack.token_file, "report.slack.token_file")
    if token is not None:
        return Destination(Mode.BOT, token, slack)
    url = _secret(slack.webhook_url_env, slack.webhook_url_file, "report.slack.webhook_url_file")
    if url is None:
        return None
    if not url.startswith(("https://", "http://")):
        where = "report.slack.webhook_url_file" if slack.webhook_url_file else slack.webhook_url_env
        raise SettingsError([Problem(str(where), None, "the incoming webhook's URL is not an "
                                     "http(s) URL (it is not shown here: it is a secret)")])
    if slack.teams:
        raise SettingsError([Problem("report.slack.teams", None, (
            f"team channels ({', '.join(sorted(slack.teams))}) need a bot token "
            f"({slack.token_env or 'token_env'} or token_file): an incoming webhook posts "
            "to its own channel only"))])
    return Destination(Mode.WEBHOOK, url, slack)


def channel_for(slack: SlackSettings, mode: Mode | None, route: str) -> str:
    """The channel a message's route goes to; ``mode`` None previews (no secret configured).

    ``summary`` goes to ``slack.channel`` (bot token) or the webhook's own channel;
    ``team:<owner>`` to ``slack.teams[owner]``.
    """
    if route == SUMMARY:
        if mode == Mode.WEBHOOK or (mode is None and slack.channel is None):
            return WEBHOOK_CHANNEL
        if slack.channel is None:
            raise SettingsError([Problem("report.slack.channel", None, (
                "not set: with a bot token, the summary needs a channel "
                '(such as "#platform-standards")'))])
        return slack.channel
    owner = route.removeprefix(TEAM)
    if not route.startswith(TEAM) or owner not in slack.teams:
        raise SettingsError([Problem("report.slack.teams", None, (
            f"a message for {route!r} has no channel (teams: "
            f"{', '.join(sorted(slack.teams)) or 'none'})"))])
    if mode == Mode.WEBHOOK:
        raise SettingsError([Problem("report.slack.teams", None, (
            f"team {owner!r}: team channels need a bot token"))])
    return slack.teams[owner]


@dataclass(frozen=True)
class PostError:
    """Why a post failed: Slack's error string (or the connection's), never a URL or token.

    ``transient``: Slack could not be reached or was overloaded (5xx, 429, a timeout), so
    the next post is likely to fail too; otherwise Slack refused this message.
    """

    error: str
    transient: bool


class _Requests:
    """Requests sent, retries included (thread-safe: the same poster may serve threads)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self, why: str | None = None) -> None:
        with self.lock:
            self.count += 1
        if why is not None:
            log.info("slack: retrying after %s", why)


def _retry_after(response: HttpResponse | None) -> float | None:
    """The seconds a 429 asks to wait (1 when it does not say, as slack_sdk assumes)."""
    if response is None or response.status_code != 429:
        return None
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) and values else values
            try:
                return max(0.0, float(str(value).strip()))
            except ValueError:
                return 1.0
    return 1.0


class _ProportionalJitter(Jitter):
    """Up to half the wait again. slack_sdk's ``RandomJitter`` adds up to a whole second to
    every wait, whatever the backoff is set to."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random() / 2)


class _RateLimitRetry(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, bounded: a ``Retry-After`` longer than allowed is not waited
    for (the delivery fails and is retried at the next attempt), and no jitter is added."""

    def __init__(self, requests: _Requests, *, max_retries: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retries)
        self.requests, self.max_wait = requests, max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        wait = _retry_after(response)
        return wait is not None and wait <= self.max_wait

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        wait = _retry_after(response) or 0.0
        self.requests.add(f"HTTP 429 (Retry-After {wait:g} s)")
        state.next_attempt_requested = True
        time.sleep(wait)
        state.increment_current_attempt()


class _ServerErrorRetry(ServerErrorRetryHandler):
    """slack_sdk's 5xx handler, for every 5xx (a proxy's 502 and 504 too), counted."""

    def __init__(self, requests: _Requests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests = requests

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return response is not None and response.status_code >= 500

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        self.requests.add(f"HTTP {response.status_code if response else '5xx'}")
        super().prepare_for_next_attempt(state=state, request=request, response=response,
                                         error=error)


class _ConnectionRetry(ConnectionErrorRetryHandler):
    """slack_sdk's connection handler, also for timeouts and refused connections, counted."""

    def __init__(self, requests: _Requests, **kwargs: Any) -> None:
        super().__init__(error_types=[URLError, ConnectionError, TimeoutError, HTTPException],
                         **kwargs)
        self.requests = requests

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        self.requests.add(_connection_error(error) if error else "a connection error")
        super().prepare_for_next_attempt(state=state, request=request, response=response,
                                         error=error)


def _connection_error(error: BaseException) -> str:
    if isinstance(error, TimeoutError) or (isinstance(error, URLError)
                                           and isinstance(error.reason, TimeoutError)):
        return "timed out"
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, OSError) and reason.strerror:
        return f"connection failed: {reason.strerror}"
    return f"connection failed: {type(reason).__name__}"


class _BoundedWebhookClient(WebhookClient):
    """slack_sdk's webhook client, each request over by its deadline (``timeout``)."""

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        status, headers, body = deadline.send(req, float(self.timeout), self.ssl)
        return WebhookResponse(url=url, status_code=status,
                               body=body.decode(headers.get_content_charset() or "utf-8"),
                               headers=headers)  # type: ignore[arg-type]


class _BoundedWebClient(WebClient):
    """slack_sdk's Web API client, each request over by its deadline (``timeout``)."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        status, headers, body = deadline.send(req, float(self.timeout), self.ssl)
        return {"status": status, "headers": headers,
                "body": body.decode(headers.get_content_charset() or "utf-8")}


class SlackPoster:
    """Posts messages to one destination; ``requests`` counts what was sent, retries included.

    A breaker: after ``breaker_failures`` posts in a row failed for want of Slack, ``halted``
    says why, and ``post`` sends nothing more.
    """

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self._requests = _Requests()
        self.failures_in_a_row = 0
        slack = destination.slack
        backoff = BackoffRetryIntervalCalculator(backoff_factor=slack.backoff_seconds,
                                                 jitter=_ProportionalJitter())
        handlers: list[RetryHandler] = [
            _RateLimitRetry(self._requests, max_retries=slack.max_retries,
                            max_wait=slack.max_retry_after_seconds),
            _ServerErrorRetry(self._requests, max_retry_count=slack.max_retries,
                              interval_calculator=backoff),
            _ConnectionRetry(self._requests, max_retry_count=slack.max_retries,
                             interval_calculator=backoff),
        ]
        timeout: Any = slack.timeout_seconds  # urllib takes seconds as a float
        self._webhook: WebhookClient | None = None
        self._web: WebClient | None = None
        if destination.mode == Mode.WEBHOOK:
            self._webhook = _BoundedWebhookClient(destination.secret, timeout=timeout,
                                                  logger=_SDK_LOG, retry_handlers=handlers)
        else:
            base_url = (slack.api_url or DEFAULT_API_URL).rstrip("/") + "/"
            self._web = _BoundedWebClient(token=destination.secret, base_url=base_url,
                                          timeout=timeout, logger=_SDK_LOG,
                                          retry_handlers=handlers)

    @property
    def requests(self) -> int:
        return self._requests.count

    @property
    def halted(self) -> str | None:
        """Why nothing more is posted (the breaker is open), or None."""
        limit = self.destination.slack.breaker_failures
        if self.failures_in_a_row < limit:
            return None
        return (f"not tried: {self.failures_in_a_row} deliveries in a row failed for want of "
                "Slack; the next attempt sends it")

    def post(self, channel: str, message: Message) -> PostError | None:
        """Post ``message`` to ``channel`` (ignored by a webhook); None when Slack took it."""
        halted = self.halted
        if halted is not None:
            return PostError(halted, transient=True)
        failure = self._post(channel, message)
        with self._requests.lock:
            if failure is not None and failure.transient:
                self.failures_in_a_row += 1
            else:
                self.failures_in_a_row = 0
        return failure

    def _post(self, channel: str, message: Message) -> PostError | None:
        self._requests.add()
        try:
            if self._webhook is not None:
                response = self._webhook.send(text=message.text, blocks=message.blocks)
                if response.status_code == 200:
                    return None
                return self._refused(response.status_code, response.body)
            assert self._web is not None
            self._web.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            return None
        except SlackApiError as error:
            data = error.response.data if error.response is not None else None
            code = data.get("error") if isinstance(data, dict) else None
            status = error.response.status_code if error.response is not None else 0
            return self._refused(status, code if isinstance(code, str) else "")
        except Exception as error:  # urllib's and http.client's, after the retries ran out
            return PostError(self._redact(_connection_error(error)), transient=True)

    def _refused(self, status: int, body: str | None) -> PostError:
        text = (body or "").strip()
        error = text if SLACK_ERROR.match(text) else f"HTTP {status}"
        return PostError(self._redact(error), transient=status == 429 or status >= 500)

    def _redact(self, text: str) -> str:
        return text.replace(self.destination.secret, "[secret]")
