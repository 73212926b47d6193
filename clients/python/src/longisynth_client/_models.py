"""Typed JSON bodies of the job endpoints (API.md → Endpoints)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class _Body(BaseModel):
    # Unknown keys are kept (a newer server may add some) rather than rejected.
    model_config = ConfigDict(extra="allow")


class ErrorInfo(_Body):
    """The API's ``error`` object."""

    type: str = "internal"
    message: str = ""
    field: str | None = None
    unknown_words: list[str] = Field(default_factory=list)


class Job(_Body):
    """Answer of ``POST /jobs``."""

    id: str
    status: JobState = "queued"


class JobStatus(_Body):
    """Answer of ``GET /jobs/{id}``."""

    id: str
    status: JobState
    stage: str | None = None
    progress: float = 0.0
    error: ErrorInfo | None = None

    @property
    def done(self) -> bool:
        """The job has stopped (succeeded, failed or cancelled)."""
        return self.status in TERMINAL_STATES
