"""One error tree: every failure the client raises is a :class:`LongisynthClientError`.

::

    LongisynthClientError
    ├── APIConnectionError            the server could not be reached / the connection broke
    │   └── APITimeoutError           connect or read timeout
    ├── APIStatusError                the server answered 4xx/5xx (or a job failed with that error)
    │   ├── AuthenticationError       401
    │   ├── NotFoundError             404
    │   ├── ConflictError             409 (job result asked for before the job succeeded)
    │   ├── PayloadTooLargeError      413
    │   ├── UnsupportedMediaTypeError 415
    │   ├── UnprocessableError        422
    │   │   ├── PromptNotUnderstoodError  type ``prompt_not_understood``
    │   │   └── LesionDoesNotFitError     type ``lesion_does_not_fit``
    │   ├── RateLimitError            429
    │   ├── ServiceUnavailableError   503
    │   └── InternalServerError       other 5xx
    ├── JobCancelledError             a waited-for job was cancelled
    └── JobTimeoutError               ``wait_job(timeout=...)`` ran out (also a ``TimeoutError``)
"""

from __future__ import annotations

import json
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConflictError",
    "InternalServerError",
    "JobCancelledError",
    "JobTimeoutError",
    "LesionDoesNotFitError",
    "LongisynthClientError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PromptNotUnderstoodError",
    "RateLimitError",
    "ServiceUnavailableError",
    "UnprocessableError",
    "UnsupportedMediaTypeError",
]


class LongisynthClientError(Exception):
    """Base of every error raised by ``longisynth_client``."""


class APIConnectionError(LongisynthClientError):
    """The request did not get an HTTP response (DNS, refused connection, broken stream...)."""

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APITimeoutError(APIConnectionError):
    """The request timed out (connect 10 s / read 600 s by default)."""

    def __init__(self, message: str = "Request timed out.", *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class APIStatusError(LongisynthClientError):
    """The server answered with an error status; carries the server's ``error`` object.

    Attributes:
        status_code: HTTP status (for a failed job: the status that error type maps to).
        error_type: ``error.type`` of the body (``invalid_input``, ``not_found``...), or ``None``.
        message: ``error.message``, or the raw text body when it was not JSON.
        field: ``error.field`` (the offending request field), or ``None``.
        unknown_words: ``error.unknown_words`` (prompt words not understood), possibly empty.
        response: the :class:`httpx.Response` (for a failed job: the ``GET /jobs/{id}`` response).
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        status_code: int | None = None,
        error_type: str | None = None,
        field: str | None = None,
        unknown_words: list[str] | None = None,
    ) -> None:
        self.status_code = response.status_code if status_code is None else status_code
        self.error_type = error_type
        self.message = message
        self.field = field
        self.unknown_words = list(unknown_words or [])
        self.response = response
        prefix = f"{self.status_code} {error_type}" if error_type else str(self.status_code)
        text = f"{prefix}: {message}"
        if field:
            text += f" (field: {field})"
        if self.unknown_words:
            text += f" (unknown words: {', '.join(self.unknown_words)})"
        super().__init__(text)


class AuthenticationError(APIStatusError):
    """401: API keys are configured on the server and the key is missing or wrong."""


class NotFoundError(APIStatusError):
    """404: unknown job id (or path)."""


class ConflictError(APIStatusError):
    """409: e.g. ``GET /jobs/{id}/result`` before the job succeeded."""


class PayloadTooLargeError(APIStatusError):
    """413: upload over the server's limit, or too many voxels (``field`` names it)."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: the scan is not ``.nii``, ``.nii.gz`` or a ``.zip`` of a DICOM series."""


class UnprocessableError(APIStatusError):
    """422: invalid input or spec field, or an engine error."""


class PromptNotUnderstoodError(UnprocessableError):
    """422 ``prompt_not_understood``: see ``unknown_words``."""


class LesionDoesNotFitError(UnprocessableError):
    """422 ``lesion_does_not_fit``: the requested lesion does not fit the anatomy."""


class RateLimitError(APIStatusError):
    """429: the generation queue is full (retried automatically, honouring ``Retry-After``)."""


class ServiceUnavailableError(APIStatusError):
    """503: the server is not ready or shutting down (retried automatically)."""


class InternalServerError(APIStatusError):
    """5xx other than 503: a server bug."""


class JobCancelledError(LongisynthClientError):
    """The job being waited for was cancelled."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id


class JobTimeoutError(LongisynthClientError, TimeoutError):
    """``wait_job`` gave up after its ``timeout``; the job itself keeps running on the server."""

    def __init__(self, job_id: str, timeout: float, status: str) -> None:
        super().__init__(f"job {job_id} still {status} after {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout
        self.status = status


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}
_BY_TYPE_422: dict[str, type[APIStatusError]] = {
    "prompt_not_understood": PromptNotUnderstoodError,
    "lesion_does_not_fit": LesionDoesNotFitError,
}
STATUS_OF_TYPE: dict[str, int] = {
    "unauthorized": 401,
    "not_found": 404,
    "job_not_finished": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "prompt_not_understood": 422,
    "lesion_does_not_fit": 422,
    "too_many_requests": 429,
    "service_unavailable": 503,
    "internal": 500,
}
"""HTTP status of each API.md error type (used for the error object of a failed job)."""


def error_class(status_code: int, error_type: str | None) -> type[APIStatusError]:
    """The exception class for a status and ``error.type``."""
    if status_code == 422 and error_type in _BY_TYPE_422:
        return _BY_TYPE_422[error_type]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


def error_from_object(
    error: dict[str, Any], *, response: httpx.Response, status_code: int | None = None
) -> APIStatusError:
    """An exception from an API.md ``error`` object (``type``, ``message``, ``field``, ``unknown_words``)."""
    error_type = error.get("type")
    error_type = str(error_type) if error_type is not None else None
    if status_code is None:
        status_code = STATUS_OF_TYPE.get(error_type or "", 500)
    message = str(error.get("message") or response.reason_phrase or "error")
    field = error.get("field")
    words = error.get("unknown_words") or []
    cls = error_class(status_code, error_type)
    return cls(
        message,
        response=response,
        status_code=status_code,
        error_type=error_type,
        field=str(field) if field is not None else None,
        unknown_words=[str(w) for w in words] if isinstance(words, list) else [],
    )


def error_from_response(response: httpx.Response) -> APIStatusError:
    """An exception for an error response: the JSON ``error`` object, or the text body."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return error_from_object(body["error"], response=response, status_code=response.status_code)
    text = response.text.strip() if response.content else ""
    message = text[:2000] or response.reason_phrase or f"HTTP {response.status_code}"
    return error_class(response.status_code, None)(message, response=response)
