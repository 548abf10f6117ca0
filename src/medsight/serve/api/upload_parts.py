"""Read a multipart upload into memory: its files, zips expanded, every limit checked first.

Nothing of the upload touches the disk here: the original may hold patient data, and only
its de-identified form is ever stored (`deidentified_input`). Starlette would spool parts
over 1 MiB to a temporary file, so the form is parsed with the spool limit raised to the
upload limit (which `BodyLimit` already enforces on the whole body). File names sent by the
client are ignored: they often carry patient names.

Zips are expanded in memory with limits on member count and on the total uncompressed size
(declared sizes checked before reading, actual bytes counted while reading, so a zip that
lies about its sizes is still stopped). Nested zips and encrypted members are refused.
"""

from __future__ import annotations

import io
import zipfile

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from medsight.serve.api.body_limit import BodyTooLarge
from medsight.serve.api.errors import ApiError
from medsight.serve.settings import ServiceSettings

ZIP_MAGIC = b"PK\x03\x04"
FIELD = "files"


def _expand_zip(data: bytes, settings: ServiceSettings, budget: list[int]) -> list[bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise ApiError("invalid_input", "upload: the zip file cannot be read") from None
    if len(members) > settings.max_files:
        raise ApiError(
            "payload_too_large", f"upload: the zip holds over {settings.max_files} files"
        )
    declared = sum(m.file_size for m in members)
    if declared > budget[0]:
        raise ApiError(
            "payload_too_large",
            f"upload: the zip expands to {declared} bytes, over the limit of "
            f"{settings.max_decompressed_bytes}",
        )
    out = []
    for member in members:
        if member.flag_bits & 0x1:
            raise ApiError("invalid_input", "upload: encrypted zip members are not accepted")
        try:
            with archive.open(member) as f:
                content = f.read(budget[0] + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
            raise ApiError("invalid_input", "upload: a zip member cannot be read") from None
        budget[0] -= len(content)
        if budget[0] < 0:
            raise ApiError(
                "payload_too_large",
                f"upload: the zip expands past the limit of {settings.max_decompressed_bytes} "
                "bytes",
            )
        if content.startswith(ZIP_MAGIC):
            raise ApiError("unsupported_media_type", "upload: zips inside zips are not accepted")
        out.append(content)
    return out


async def read_upload(request: Request, settings: ServiceSettings) -> list[bytes]:
    """The uploaded files' contents (zip members in place of each zip), in upload order.

    Raises:
        ApiError: not multipart, no ``files`` part, too many files, a zip over the limits
            or unreadable.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            "unsupported_media_type",
            f"send multipart/form-data with one or more '{FIELD}' parts",
        )
    # parts stay in memory up to the body limit: an original must never be spooled to disk
    MultiPartParser.spool_max_size = settings.max_upload_bytes
    try:
        form = await request.form(
            max_files=settings.max_files, max_fields=16, max_part_size=64 * 1024
        )
    except (MultiPartException, HTTPException) as exc:  # Starlette wraps it in a 400
        if "Too many files" in str(getattr(exc, "detail", exc)):
            raise ApiError(
                "payload_too_large", f"upload: over {settings.max_files} files"
            ) from None
        raise ApiError("bad_request", "the multipart body cannot be parsed") from None
    except (BodyTooLarge, ApiError):
        raise
    except Exception as exc:  # the multipart parser raises several types for bad bodies
        # middleware reads the body in a task group: the limit may arrive wrapped
        if isinstance(exc, BaseExceptionGroup) and exc.subgroup(BodyTooLarge) is not None:
            raise BodyTooLarge from None
        raise ApiError("bad_request", "the multipart body cannot be parsed") from None
    try:
        parts = [p for p in form.getlist(FIELD) if isinstance(p, UploadFile)]
        if not parts:
            raise ApiError("bad_request", f"no file in the '{FIELD}' part(s)")
        budget = [settings.max_decompressed_bytes]
        files: list[bytes] = []
        for part in parts:
            data = await part.read()
            if data.startswith(ZIP_MAGIC):
                files += _expand_zip(data, settings, budget)
            else:
                files.append(data)
            if len(files) > settings.max_files:
                raise ApiError("payload_too_large", f"upload: over {settings.max_files} files")
        if not files:
            raise ApiError("bad_request", "the upload holds no files")
        return files
    finally:
        await form.close()
