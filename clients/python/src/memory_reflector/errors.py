"""Exceptions raised by the Memory Reflector clients.

Every error answer of the service has the body ``{"error": CODE, "message": TEXT,
"field"?: FIELD, "retry_after_s"?: N}`` (``ErrorBody`` in the OpenAPI document). The clients
raise a subclass of :class:`ReflectorError` chosen by the HTTP status, carrying that body's
``code``, ``message`` and ``field``. Failures that never reached an answer (connection
refused, timeouts) raise :class:`ReflectorConnectionError`; ``status`` is ``None`` there.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "JobWaitTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReflectorConnectionError",
    "ReflectorError",
    "ReflectorTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "ValidationError",
]


class ReflectorError(Exception):
    """Base class of every error raised by this package.

    Attributes:
        status: The HTTP status of the answer, or ``None`` when there was no answer.
        code: The service's stable error code (``validation_failed``, ``not_found``…).
        message: The service's explanation, for a person.
        field: On a 422, the request field that is wrong (``timestamp``, ``limit``…).
        body: The decoded error body (empty when it was not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.body: dict[str, Any] = body or {}

    def __str__(self) -> str:
        parts = [str(self.status)] if self.status is not None else []
        if self.code:
            parts.append(self.code)
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, field={self.field!r})"
        )


class BadRequestError(ReflectorError):
    """400: the body is not JSON, not an object, or the operation does not apply."""


class AuthenticationError(ReflectorError):
    """401: no API key was sent, or the service does not know it."""


class PermissionDeniedError(ReflectorError):
    """403: the API key is valid but not allowed for this user or route."""


class NotFoundError(ReflectorError):
    """404: no such memory, job or dead job (for this user)."""


class ConflictError(ReflectorError):
    """409: an ``interaction_id`` reused with another body, or a duplicate memory."""


class PayloadTooLargeError(ReflectorError):
    """413: the request body exceeds the service's ``max_body_bytes``."""


class ValidationError(ReflectorError):
    """422: a field is missing, malformed or out of range; :attr:`field` names it."""


class RateLimitError(ReflectorError):
    """429: backpressure, the reflection backlog is at its ceiling; the turn was NOT stored.

    Attributes:
        retry_after: Seconds to wait before sending it again (from ``Retry-After``), if given.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailableError(ReflectorError):
    """503: the service cannot reach its store."""


class ServerError(ReflectorError):
    """Any other 5xx answer: a failure inside the service (details are in its log)."""


class ReflectorConnectionError(ReflectorError):
    """The request got no answer: connection refused or reset, DNS failure, protocol error."""


class ReflectorTimeoutError(ReflectorConnectionError, TimeoutError):
    """The request timed out (connecting, sending, or waiting for the answer); also a
    built-in ``TimeoutError``."""


class JobWaitTimeoutError(ReflectorError, TimeoutError):
    """``wait_for_job`` gave up: the job was still waiting or running at the deadline.

    Attributes:
        job_id: The job waited for.
        state: Its last seen state (``queued``, ``processing`` or ``retrying``).
    """

    def __init__(self, job_id: str, state: str, timeout: float) -> None:
        super().__init__(f"job {job_id} still {state} after {timeout:g} s", code="timeout")
        self.job_id = job_id
        self.state = state


_BY_STATUS: dict[int, type[ReflectorError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The delay a ``Retry-After`` header asks for, in seconds (``None`` if absent/invalid).

    Accepts both forms of RFC 9110: delay-seconds and an HTTP date.
    """
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_from_response(response: httpx.Response) -> ReflectorError:
    """Build the exception for an error answer of the service."""
    body: dict[str, Any] = {}
    try:
        decoded = json.loads(response.content)
        if isinstance(decoded, dict):
            body = decoded
    except ValueError:
        pass
    status = response.status_code
    message = body.get("message")
    if not isinstance(message, str):
        message = response.text.strip() or response.reason_phrase or f"HTTP {status}"
    code = body.get("error") if isinstance(body.get("error"), str) else None
    field = body.get("field") if isinstance(body.get("field"), str) else None
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ReflectorError)
    if cls is RateLimitError:
        retry_after = retry_after_seconds(response)
        if retry_after is None and isinstance(body.get("retry_after_s"), (int, float)):
            retry_after = float(body["retry_after_s"])
        return RateLimitError(
            message, retry_after=retry_after, status=status, code=code, field=field, body=body
        )
    return cls(message, status=status, code=code, field=field, body=body)
