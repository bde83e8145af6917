"""Error answers that always render, and the request-size limit.

FastAPI's own 422 echoes the input, and JSON cannot carry every input: ``NaN`` is not
JSON, and a lone surrogate cannot be encoded as UTF-8, so such a request used to get a
500 while its error was being written. Here every error body is made JSON-safe first
(non-finite numbers and unencodable text become their escaped text) and written as
ASCII. A body larger than ``limits.MAX_BODY_BYTES`` is refused with 413 before anything
reads it, so no input can grow into an etcd request too large to store.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchlive.limits import MAX_BODY_BYTES

# 422 by number: Starlette renamed its constant (UNPROCESSABLE_ENTITY -> _CONTENT) and warns on the old one.
UNPROCESSABLE = 422

__all__ = ["BodyLimit", "SafeJSONResponse", "install_error_handlers", "json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` with everything JSON cannot carry replaced by text that says what it was."""
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(str(value))


class SafeJSONResponse(JSONResponse):
    """A JSON response that renders whatever it is given (ASCII, no NaN)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(json_safe(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


async def _validation_error(request: Request, err: Exception) -> SafeJSONResponse:
    assert isinstance(err, RequestValidationError)
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg", "input", "ctx")} for e in err.errors()]
    return SafeJSONResponse({"detail": detail}, status_code=UNPROCESSABLE)


async def _http_error(request: Request, err: Exception) -> SafeJSONResponse:
    assert isinstance(err, StarletteHTTPException)
    return SafeJSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every 4xx of ``app`` rendered by ``SafeJSONResponse``; bodies capped by ``BodyLimit``."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        # A streamed (chunked) body is read here, up to the limit, then handed on.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = SafeJSONResponse(
            {"detail": f"request body larger than {self.limit} bytes"},
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
        await response(scope, receive, send)
