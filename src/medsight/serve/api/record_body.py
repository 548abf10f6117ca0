"""Read a patient record's JSON body into memory under the record size limit.

A record is parsed whole, and parsed JSON takes several times its size in memory, so the
limit (``max_record_bytes``, and never more than ``max_upload_bytes``) is checked against the
declared Content-Length before a byte is read, then counted while the body streams (a body
sent without a length is cut off at the limit).
"""

from __future__ import annotations

from fastapi import Request

from medsight.serve.api.errors import ApiError
from medsight.serve.settings import ServiceSettings


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters (``charset=``)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_record_body(request: Request, settings: ServiceSettings) -> bytes:
    """The body, at most the record limit.

    Raises:
        ApiError: ``payload_too_large`` (declared or counted), ``bad_request`` for a
            Content-Length that is not a number, ``invalid_input`` for an empty body.
    """
    limit = min(settings.max_record_bytes, settings.max_upload_bytes)
    too_large = ApiError("payload_too_large", f"a patient record is limited to {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise ApiError("bad_request", "invalid Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    if size == 0:
        raise ApiError("invalid_input", "the request body is empty")
    return b"".join(chunks)
