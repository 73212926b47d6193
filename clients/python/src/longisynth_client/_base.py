"""What :class:`Client` and :class:`AsyncClient` share: configuration, retry policy, error mapping."""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import httpx

from longisynth_client._constants import (
    DEFAULT_BASE_URL,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_JITTER,
    RETRY_STATUS_CODES,
)
from longisynth_client._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    JobCancelledError,
    error_from_object,
)
from longisynth_client._models import JobStatus
from longisynth_client._version import __version__
from longisynth_client.bundle import Bundle

_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


def job_path(job_id: str, suffix: str = "") -> str:
    """``/jobs/{id}`` with the id percent-encoded."""
    return f"/jobs/{quote(str(job_id), safe='')}{suffix}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header (delta-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = parsed.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def filename_of(response: httpx.Response, fallback: str) -> str:
    """The bundle's file name from ``Content-Disposition`` (base name only), else ``fallback``."""
    match = _FILENAME.search(response.headers.get("Content-Disposition", ""))
    name = PurePosixPath(match.group(1).replace("\\", "/")).name if match else ""
    return name if name and name not in {".", ".."} else fallback


class _BaseClient:
    """Configuration and policy shared by the sync and async clients (no I/O here)."""

    def __init__(
        self,
        base_url: str | httpx.URL | None,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = httpx.URL(str(base_url or os.environ.get("LONGISYNTH_BASE_URL") or DEFAULT_BASE_URL))
        self.api_key = api_key if api_key is not None else os.environ.get("LONGISYNTH_API_KEY")
        self.timeout: httpx.Timeout = (
            timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        )
        self.max_retries = max_retries

    def _headers(self) -> dict[str, str]:
        headers = {
            "User-Agent": f"longisynth-client/{__version__}",
            "Accept": "application/json, application/zip",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _retry_delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before retry number ``attempt + 1``: ``Retry-After`` if given, else backoff."""
        if response is not None:
            after = parse_retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, MAX_RETRY_AFTER)
        delay = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
        return delay * (1.0 - RETRY_JITTER * random.random())

    def _retry_status(self, response: httpx.Response, attempt: int, retry_busy: bool) -> bool:
        return retry_busy and response.status_code in RETRY_STATUS_CODES and attempt < self.max_retries

    def _retry_transport(self, exc: httpx.TransportError, attempt: int, idempotent: bool) -> bool:
        """Transport errors are retried for idempotent requests and uploads; a non-idempotent
        request (``POST /jobs``) only when the connection was never made (nothing was sent)."""
        if attempt >= self.max_retries:
            return False
        return idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)

    @staticmethod
    def _transport_error(exc: httpx.TransportError) -> APIConnectionError:
        try:
            request: httpx.Request | None = exc.request
        except RuntimeError:  # raised by httpx when the error has no request attached
            request = None
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"Request timed out: {exc}", request=request)
        return APIConnectionError(f"Connection error: {exc}", request=request)

    @staticmethod
    def _bundle(response: httpx.Response, fallback: str) -> Bundle:
        return Bundle(response.content, filename=filename_of(response, fallback))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        body = response.json()
        if not isinstance(body, dict):
            raise APIStatusError(f"expected a JSON object, got {type(body).__name__}", response=response)
        return body

    @staticmethod
    def _raise_for_outcome(status: JobStatus, response: httpx.Response) -> None:
        """Raise the job's error when it failed, :class:`JobCancelledError` when cancelled."""
        if status.status == "cancelled":
            raise JobCancelledError(status.id)
        if status.status == "failed":
            err = status.error.model_dump() if status.error else {"type": "internal", "message": "job failed"}
            raise error_from_object(err, response=response)
