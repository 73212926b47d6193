"""One table from engine errors to HTTP statuses, and the JSON error body (service/API.md)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from longisynth.errors import (
    InputTooLargeError,
    InvalidInputError,
    LesionDoesNotFitError,
    LongisynthError,
    ModelUnavailableError,
    PromptNotUnderstoodError,
)


class ApiError(Exception):
    """An error answered as JSON with a status (and ``Retry-After`` for 429/503)."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        field: str | None = None,
        unknown_words: list[str] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.field, self.unknown_words, self.retry_after_s = field, list(unknown_words or []), retry_after_s

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "message": self.message,
                "field": self.field,
                "unknown_words": self.unknown_words,
            }
        }

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


# Order matters: subclasses before their bases.
_TABLE: list[tuple[type[LongisynthError], int, str]] = [
    (InputTooLargeError, 413, "payload_too_large"),
    (PromptNotUnderstoodError, 422, "prompt_not_understood"),
    (LesionDoesNotFitError, 422, "lesion_does_not_fit"),
    (InvalidInputError, 422, "invalid_input"),
    (ModelUnavailableError, 503, "service_unavailable"),
    (LongisynthError, 422, "invalid_input"),
]


def from_engine(exc: LongisynthError) -> ApiError:
    """The API error for an engine error (message passed through: it is meant for users)."""
    for cls, status, type_ in _TABLE:
        if isinstance(exc, cls):
            words = exc.unknown_words if isinstance(exc, PromptNotUnderstoodError) else None
            field = exc.field if isinstance(exc, InvalidInputError) else None
            return ApiError(
                status,
                type_,
                str(exc),
                field=field,
                unknown_words=words,
                retry_after_s=30 if status == 503 else None,
            )
    raise AssertionError("unreachable: LongisynthError is in the table")
