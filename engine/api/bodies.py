"""Request bodies: bounded in size before they are read, and strict JSON when parsed.

A body over ``api.max_body_bytes`` is refused with 413 as soon as its Content-Length says so,
or as soon as the bytes streamed so far pass the limit, so the server never holds more than
the limit of any body. JSON bodies must be UTF-8, nest at most ``MAX_JSON_DEPTH`` levels and
hold only what can be written back as JSON: no NaN or infinities, no unpaired surrogates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.storage.codec import MAX_JSON_DEPTH, repair_json


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reading passes it on as it is (413 JSON)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes "
                              "(api.max_body_bytes)")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` without reading them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is None:
            await _refuse(400, "Content-Length is not a number", scope, receive, send)
            return
        if declared > self.max_bytes:
            await _refuse(413, BodyTooLarge(self.max_bytes).detail, scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # chunked, or longer than it said
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as error:  # read outside FastAPI's body handling
            if started:
                raise
            await _refuse(413, error.detail, scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length (0 when absent), or None when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return 0


async def _refuse(status: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
    # The connection is closed after this answer: the unread body is never received.
    response = JSONResponse({"detail": detail}, status_code=status,
                            headers={"Connection": "close"})
    await response(scope, receive, send)


class InvalidJSON(HTTPException):
    """422 with FastAPI's validation error shape: ``[{"loc", "msg", "type"}]``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, errors)


def _invalid(loc: list[str | int], msg: str) -> InvalidJSON:
    return InvalidJSON([{"loc": ["body", *loc], "msg": msg, "type": "json_invalid"}])


def strict_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a request body, refusing what could not be stored and written back as JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _invalid([error.start], f"the body is not UTF-8: {error.reason}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid([error.pos], f"JSON decode error: {error.msg}") from None
    except RecursionError:
        raise _invalid([], f"nested deeper than {max_depth} levels") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise _invalid([], f"an integer has more than {sys.get_int_max_str_digits()} "
                           "digits") from None
    _, flaws = repair_json(value, max_depth=max_depth)
    if flaws:
        raise InvalidJSON([{"loc": ["body", *path], "msg": problem, "type": "json_invalid"}
                           for path, problem in flaws[:20]])
    return value


class StrictJSONRequest(Request):
    """A request whose ``json()`` is ``strict_json``: FastAPI parses bodies with it."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # A 1 MiB body of small values takes a quarter of a second to check: not on the
            # event loop, which serves every other request meanwhile.
            self._json = await run_in_threadpool(strict_json, await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by ``strict_json`` (the documented way to change
    how FastAPI reads a request: a custom Request in a custom route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
