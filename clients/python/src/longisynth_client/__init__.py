"""Python SDK of the longisynth HTTP service.

>>> from longisynth_client import Client
>>> with Client("http://127.0.0.1:3000") as client:  # doctest: +SKIP
...     bundle = client.generate("chest_ct.nii.gz", prompt="8 mm solid nodule, right upper lobe", seed=1)
...     bundle.save("out/")
"""

from longisynth_client._client import AsyncClient, Client
from longisynth_client._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    InternalServerError,
    JobCancelledError,
    JobTimeoutError,
    LesionDoesNotFitError,
    LongisynthClientError,
    NotFoundError,
    PayloadTooLargeError,
    PromptNotUnderstoodError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableError,
    UnsupportedMediaTypeError,
)
from longisynth_client._models import ErrorInfo, Job, JobStatus
from longisynth_client._version import __version__
from longisynth_client.bundle import Bundle, Timepoint

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "Bundle",
    "Client",
    "ConflictError",
    "ErrorInfo",
    "InternalServerError",
    "Job",
    "JobCancelledError",
    "JobStatus",
    "JobTimeoutError",
    "LesionDoesNotFitError",
    "LongisynthClientError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PromptNotUnderstoodError",
    "RateLimitError",
    "ServiceUnavailableError",
    "Timepoint",
    "UnprocessableError",
    "UnsupportedMediaTypeError",
    "__version__",
]
