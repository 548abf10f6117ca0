"""``multipart/related`` bodies (RFC 2387) as DICOMweb uses them: split a STOW-RS request,
write a WADO-RS response.

Written here rather than taken from a library: python-multipart (Starlette's parser) reads
``multipart/form-data`` only, and `email.parser` would copy every part through its text
machinery. A body is split on its delimiters (``CRLF--BOUNDARY``, RFC 2046 section 5.1.1)
into parts that are views of the body, not copies, so a large STOW request is held in
memory once. The parts are all located, and counted against the limit, before any is
used, so a request over the limit is refused before anything of it is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

CRLF = b"\r\n"
#: RFC 2046 allows 1 to 70 characters; Orthanc's DICOMweb client sends 73 (a UUID twice), so
#: longer ones are tolerated, up to a bound that keeps the search for them cheap
MAX_BOUNDARY = 256
#: header lines of one part (a DICOMweb part has one or two: Content-Type, Content-Length)
MAX_PART_HEADERS = 32


class MultipartError(ValueError):
    """The body is not a well-formed multipart body; the message says what is wrong."""


class TooManyParts(MultipartError):
    """The body holds more parts than allowed."""


@dataclass(frozen=True)
class MediaType:
    """A parsed Content-Type header: ``type/subtype`` (lower case) and its parameters."""

    media_type: str
    params: dict[str, str]


@dataclass(frozen=True)
class Part:
    """One part of a multipart body.

    Attributes:
        media_type: the part's Content-Type without parameters, lower case; empty when the
            part has no Content-Type header (it then has the body's ``type`` parameter).
        content: the part's bytes, a view of the body (no copy).
    """

    media_type: str
    content: memoryview


def parse_media_type(header: str) -> MediaType:
    """``type/subtype`` and parameters (names lower case, quotes removed) of a header value."""
    message = Message()
    message["content-type"] = header
    params: dict[str, str] = {}
    for name, value in message.get_params(failobj=[])[1:]:
        params[name.lower()] = value if isinstance(value, str) else str(value[2])
    media_type = header.split(";", 1)[0].strip().lower()
    return MediaType(media_type, params)


def _part_header(raw: memoryview) -> str:
    """The media type (no parameters, lower case) named by a part's header block."""
    lines = bytes(raw).decode("latin-1").split("\r\n")
    if len(lines) > MAX_PART_HEADERS:
        raise MultipartError("a part has too many header lines")
    media_type = ""
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise MultipartError("a part has a malformed header line")
        if name.strip().lower() == "content-type":
            media_type = value.split(";", 1)[0].strip().lower()
    return media_type


def split_related(body: bytes, boundary: str, max_parts: int) -> list[Part]:
    """The parts of a multipart body, in order.

    A preamble before the first delimiter and an epilogue after the last are ignored, as
    RFC 2046 says; header lines must end in CRLF.

    Args:
        body: the whole request body.
        boundary: the ``boundary`` parameter of its Content-Type.
        max_parts: the most parts accepted.

    Raises:
        TooManyParts: more than ``max_parts`` parts.
        MultipartError: a boundary that RFC 2046 does not allow, no delimiter, a part
            without the blank line after its headers, or no closing delimiter.
    """
    if not 1 <= len(boundary) <= MAX_BOUNDARY or not boundary.isascii():
        raise MultipartError(f"the boundary must be 1 to {MAX_BOUNDARY} ASCII characters")
    dash = b"--" + boundary.encode("ascii")
    delimiter = CRLF + dash
    view = memoryview(body)
    if body.startswith(dash):
        at = len(dash)
    else:
        found = body.find(delimiter)
        if found < 0:
            raise MultipartError("the body holds no boundary delimiter")
        at = found + len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", at):
            return parts  # the close delimiter; what follows is the epilogue
        line_end = body.find(CRLF, at)
        if line_end < 0 or body[at:line_end].strip(b" \t"):
            raise MultipartError("a boundary delimiter is not followed by a line break")
        start = line_end + len(CRLF)
        end = body.find(delimiter, start)
        if end < 0:
            raise MultipartError("the body has no closing boundary delimiter")
        if len(parts) == max_parts:
            raise TooManyParts(f"the body holds over {max_parts} parts")
        if body.startswith(CRLF, start):  # no header lines
            media_type, content_start = "", start + len(CRLF)
        else:
            blank = body.find(CRLF + CRLF, start, end)
            if blank < 0:
                raise MultipartError("a part has no blank line after its headers")
            media_type = _part_header(view[start:blank])
            content_start = blank + 2 * len(CRLF)
        parts.append(Part(media_type, view[content_start:end]))
        at = end + len(delimiter)


def new_boundary(contents: Sequence[bytes]) -> str:
    """A random boundary that occurs in none of ``contents``."""
    while True:
        boundary = f"medsight-{secrets.token_hex(16)}"
        if not any(boundary.encode() in content for content in contents):
            return boundary


def related_body(parts: Sequence[tuple[str, bytes]], boundary: str) -> bytes:
    """A multipart body of ``(Content-Type, content)`` parts, closed by the final delimiter."""
    chunks: list[bytes] = []
    for content_type, content in parts:
        head = f"--{boundary}\r\nContent-Type: {content_type}\r\n"
        head += f"Content-Length: {len(content)}\r\n\r\n"
        chunks += [head.encode("ascii"), content, CRLF]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)
