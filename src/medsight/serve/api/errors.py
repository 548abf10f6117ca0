"""`ApiError`: what the service answers when a request cannot be served, as stable JSON.

Every error response is ``{"error": {"code": CODE, "message": MESSAGE}}`` with a code from
`CODES` (stable: clients branch on it) and a one-line human message that never contains
patient data or an uploaded file's name.
"""

from __future__ import annotations

#: code -> HTTP status
CODES: dict[str, int] = {
    "bad_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "quarantined": 422,
    "csrf_failed": 403,
    "rate_limited": 429,
    "internal": 500,
    "queue_full": 503,
    "busy": 503,
    "audit_unavailable": 503,
    "not_ready": 503,
}


class ApiError(Exception):
    """An error response: status from the code, plus optional headers (Retry-After, ...)."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.status = CODES[code]
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}
