"""One error tree for the engine; the CLI and the service map these to exit codes / HTTP status."""

from __future__ import annotations


class LongisynthError(Exception):
    """Base class of every error longisynth raises on purpose.

    ``str(err)`` is one readable line meant for the user.
    """


class InvalidInputError(LongisynthError):
    """The scan, label map or a structured field is unusable (corrupt, 2D/4D, not HU, too big...).

    ``field``: the spec field at fault (dotted, e.g. ``growth.doubling_time_days``), when one is.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PromptNotUnderstoodError(LongisynthError):
    """The prompt contains words we could not place (see :attr:`unknown_words`)."""

    def __init__(self, message: str, unknown_words: list[str] | None = None) -> None:
        super().__init__(message)
        self.unknown_words: list[str] = list(unknown_words or [])


class LesionDoesNotFitError(LongisynthError):
    """The request cannot be satisfied in this anatomy (too big, outside field of view, wrong body part)."""


class ModelUnavailableError(LongisynthError):
    """A learned model was requested but its file is missing or corrupt."""


class PlausibilityError(LesionDoesNotFitError):
    """A hard plausibility rule failed (see the ``checks`` block); the study is not returned."""


class InputTooLargeError(InvalidInputError):
    """The scan is over a size limit (voxels, or decompressed bytes) given by the caller."""
