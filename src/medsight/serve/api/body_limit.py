"""ASGI middleware: refuse request bodies over the upload limit before reading them whole.

A declared Content-Length over the limit is refused at once (413, nothing read); a body
without one (chunked) is counted as it streams and cut off at the limit. Written by hand
because neither Starlette nor uvicorn bound the request body size.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medsight.serve.api.errors import ApiError


class BodyTooLarge(Exception):
    """Raised inside ``receive`` when a streamed body passes the limit."""


async def send_error(send: Send, error: ApiError) -> None:
    """Send ``error`` as a JSON response on a raw ASGI connection."""
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Wraps an ASGI app so no HTTP request body exceeds ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = ApiError(
            "payload_too_large", f"request body over the limit of {self.max_bytes} bytes"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, ApiError("bad_request", "invalid Content-Length"))
                    return
                if declared > self.max_bytes:
                    await send_error(send, too_large)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, too_large)

    def __repr__(self) -> str:  # pragma: no cover
        return f"BodyLimit(max_bytes={self.max_bytes})"


__all__: list[Any] = ["BodyLimit", "send_error"]
