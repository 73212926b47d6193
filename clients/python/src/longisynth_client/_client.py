"""The sync :class:`Client` and its async twin :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any, Self

import httpx

from longisynth_client._base import _BaseClient, job_path
from longisynth_client._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from longisynth_client._exceptions import JobTimeoutError, error_from_response
from longisynth_client._models import Job, JobStatus
from longisynth_client._progress import ProgressBar
from longisynth_client._upload import (
    Body,
    BodyFactory,
    PathLike,
    SpecLike,
    aiter_chunks,
    demo_json,
    generate_form,
    iter_chunks,
)
from longisynth_client.bundle import Bundle

__all__ = ["AsyncClient", "Client"]


def _sleep(seconds: float) -> None:
    """Sleep between retries and polls (patched in tests)."""
    time.sleep(seconds)


async def _asleep(seconds: float) -> None:
    """Async twin of :func:`_sleep` (patched in tests)."""
    await asyncio.sleep(seconds)


class Client(_BaseClient):
    """Synchronous client of the longisynth HTTP API.

    Args:
        base_url: e.g. ``http://127.0.0.1:3000`` (default: ``$LONGISYNTH_BASE_URL`` or that).
        api_key: sent as ``Authorization: Bearer <key>`` (default: ``$LONGISYNTH_API_KEY``).
        timeout: seconds or an :class:`httpx.Timeout` (default connect 10 s, read 600 s).
        max_retries: retries on 429/503 and on connection errors (default 2).
        transport: an httpx transport (e.g. :class:`httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        base_url: str | httpx.URL | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: BodyFactory | None = None,
        idempotent: bool = True,
        retry_busy: bool = True,
        bar: ProgressBar | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise from the error tree."""
        attempt = 0
        while True:
            encoded = body() if body is not None else Body()
            content: Any = encoded.content
            if bar is not None and body is not None:
                content = iter_chunks(encoded.content, bar.upload)
            try:
                response = self._http.request(method, path, content=content, headers=encoded.headers)
            except httpx.TransportError as exc:
                if not self._retry_transport(exc, attempt, idempotent):
                    raise self._transport_error(exc) from exc
                _sleep(self._retry_delay(attempt, None))
                attempt += 1
                continue
            if response.is_success:
                return response
            if not self._retry_status(response, attempt, retry_busy):
                raise error_from_response(response)
            _sleep(self._retry_delay(attempt, response))
            attempt += 1
            if bar is not None:
                bar.message(f"server busy ({response.status_code}), retry {attempt}/{self.max_retries}")

    def _upload(self, path: str, body: BodyFactory, progress: bool, idempotent: bool) -> httpx.Response:
        bar = ProgressBar() if progress else None
        try:
            return self._request("POST", path, body=body, idempotent=idempotent, bar=bar)
        finally:
            if bar is not None:
                bar.close()

    def generate(
        self,
        scan: PathLike,
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        labels: PathLike | None = None,
        seed: int | None = None,
        contrast: str | None = None,
        lenient: bool = False,
        progress: bool = False,
    ) -> Bundle:
        """``POST /generate``: simulate a lesion in ``scan`` and return the bundle.

        Args:
            scan: a ``.nii``/``.nii.gz`` file, a ``.zip`` of one DICOM series, or a DICOM folder
                (zipped in memory).
            prompt: free text, e.g. ``"6 mm solid nodule in the right upper lobe doubling in 200 days"``.
            spec: ``LesionSpec`` fields as a dict or a pydantic model.
            labels: optional NIfTI label map on the scan's grid (e.g. TotalSegmentator lobes).
            seed: same seed, same study.
            contrast: MRI contrast of the scan (``t1``, ``t1c``, ``t2``, ``flair``).
            lenient: let the server ignore prompt words it does not understand.
            progress: show upload progress on stderr.
        """
        form = generate_form(
            scan, prompt=prompt, spec=spec, labels=labels, seed=seed, contrast=contrast, lenient=lenient
        )
        return self._bundle(self._upload("/generate", form, progress, True), "longisynth-bundle.zip")

    def generate_demo(
        self,
        kind: str = "lung",
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        seed: int | None = None,
    ) -> Bundle:
        """``POST /generate/demo``: a study on the server's built-in phantom (``lung`` or ``glioma``)."""
        body = demo_json(kind, prompt=prompt, spec=spec, seed=seed)
        return self._bundle(self._request("POST", "/generate/demo", body=body), f"longisynth-demo-{kind}.zip")

    def submit_job(
        self,
        scan: PathLike,
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        labels: PathLike | None = None,
        seed: int | None = None,
        contrast: str | None = None,
        lenient: bool = False,
        progress: bool = False,
    ) -> Job:
        """``POST /jobs``: queue a generation (same arguments as :meth:`generate`)."""
        form = generate_form(
            scan, prompt=prompt, spec=spec, labels=labels, seed=seed, contrast=contrast, lenient=lenient
        )
        return Job.model_validate(self._json(self._upload("/jobs", form, progress, False)))

    def submit_demo_job(
        self,
        kind: str = "lung",
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        seed: int | None = None,
    ) -> Job:
        """``POST /jobs`` with the JSON body of ``/generate/demo`` plus ``"demo": true``."""
        body = demo_json(kind, prompt=prompt, spec=spec, seed=seed, demo_flag=True)
        return Job.model_validate(self._json(self._request("POST", "/jobs", body=body, idempotent=False)))

    def _get_job(self, job_id: str) -> tuple[JobStatus, httpx.Response]:
        response = self._request("GET", job_path(job_id))
        return JobStatus.model_validate(self._json(response)), response

    def get_job(self, job_id: str) -> JobStatus:
        """``GET /jobs/{id}``: status, stage and progress of a job."""
        return self._get_job(job_id)[0]

    def cancel_job(self, job_id: str) -> JobStatus:
        """``DELETE /jobs/{id}``: cancel (a running job stops at its next stage)."""
        return JobStatus.model_validate(self._json(self._request("DELETE", job_path(job_id))))

    def job_result(self, job_id: str) -> Bundle:
        """``GET /jobs/{id}/result``: the bundle of a succeeded job (409 before that)."""
        response = self._request("GET", job_path(job_id, "/result"))
        return self._bundle(response, f"longisynth-job-{job_id}.zip")

    def wait_job(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: bool = False
    ) -> Bundle:
        """Poll a job until it stops; return its bundle.

        Raises:
            APIStatusError: the job failed (the subclass of its error type, e.g.
                :class:`LesionDoesNotFitError`).
            JobCancelledError: the job was cancelled.
            JobTimeoutError: still not done after ``timeout`` seconds (the job keeps running).
        """
        bar = ProgressBar() if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                status, response = self._get_job(job_id)
                if bar is not None:
                    bar.stage(status.stage, status.progress)
                if status.done:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise JobTimeoutError(job_id, float(timeout or 0.0), status.status)
                _sleep(poll_interval if deadline is None else min(poll_interval, deadline - now))
        finally:
            if bar is not None:
                bar.close()
        self._raise_for_outcome(status, response)
        return self.job_result(job_id)

    def health(self) -> dict[str, Any]:
        """``GET /healthz`` (liveness)."""
        return self._json(self._request("GET", "/healthz"))

    def ready(self) -> dict[str, Any]:
        """``GET /readyz``: execution provider and model. Not retried: a 503 raises
        :class:`ServiceUnavailableError` at once, so this reports the state right now."""
        return self._json(self._request("GET", "/readyz", retry_busy=False))


class AsyncClient(_BaseClient):
    """Asynchronous twin of :class:`Client` (same arguments, same methods, awaitable)."""

    def __init__(
        self,
        base_url: str | httpx.URL | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: BodyFactory | None = None,
        idempotent: bool = True,
        retry_busy: bool = True,
        bar: ProgressBar | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise from the error tree."""
        attempt = 0
        while True:
            encoded = body() if body is not None else Body()
            content: Any = encoded.content
            if bar is not None and body is not None:
                content = aiter_chunks(encoded.content, bar.upload)
            try:
                response = await self._http.request(method, path, content=content, headers=encoded.headers)
            except httpx.TransportError as exc:
                if not self._retry_transport(exc, attempt, idempotent):
                    raise self._transport_error(exc) from exc
                await _asleep(self._retry_delay(attempt, None))
                attempt += 1
                continue
            if response.is_success:
                return response
            if not self._retry_status(response, attempt, retry_busy):
                raise error_from_response(response)
            await _asleep(self._retry_delay(attempt, response))
            attempt += 1
            if bar is not None:
                bar.message(f"server busy ({response.status_code}), retry {attempt}/{self.max_retries}")

    async def _upload(self, path: str, body: BodyFactory, progress: bool, idempotent: bool) -> httpx.Response:
        bar = ProgressBar() if progress else None
        try:
            return await self._request("POST", path, body=body, idempotent=idempotent, bar=bar)
        finally:
            if bar is not None:
                bar.close()

    async def generate(
        self,
        scan: PathLike,
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        labels: PathLike | None = None,
        seed: int | None = None,
        contrast: str | None = None,
        lenient: bool = False,
        progress: bool = False,
    ) -> Bundle:
        """``POST /generate`` (see :meth:`Client.generate`)."""
        form = generate_form(
            scan, prompt=prompt, spec=spec, labels=labels, seed=seed, contrast=contrast, lenient=lenient
        )
        return self._bundle(await self._upload("/generate", form, progress, True), "longisynth-bundle.zip")

    async def generate_demo(
        self,
        kind: str = "lung",
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        seed: int | None = None,
    ) -> Bundle:
        """``POST /generate/demo`` (see :meth:`Client.generate_demo`)."""
        body = demo_json(kind, prompt=prompt, spec=spec, seed=seed)
        response = await self._request("POST", "/generate/demo", body=body)
        return self._bundle(response, f"longisynth-demo-{kind}.zip")

    async def submit_job(
        self,
        scan: PathLike,
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        labels: PathLike | None = None,
        seed: int | None = None,
        contrast: str | None = None,
        lenient: bool = False,
        progress: bool = False,
    ) -> Job:
        """``POST /jobs`` (see :meth:`Client.submit_job`)."""
        form = generate_form(
            scan, prompt=prompt, spec=spec, labels=labels, seed=seed, contrast=contrast, lenient=lenient
        )
        return Job.model_validate(self._json(await self._upload("/jobs", form, progress, False)))

    async def submit_demo_job(
        self,
        kind: str = "lung",
        *,
        prompt: str | None = None,
        spec: SpecLike | None = None,
        seed: int | None = None,
    ) -> Job:
        """``POST /jobs`` with a demo JSON body (see :meth:`Client.submit_demo_job`)."""
        body = demo_json(kind, prompt=prompt, spec=spec, seed=seed, demo_flag=True)
        response = await self._request("POST", "/jobs", body=body, idempotent=False)
        return Job.model_validate(self._json(response))

    async def _get_job(self, job_id: str) -> tuple[JobStatus, httpx.Response]:
        response = await self._request("GET", job_path(job_id))
        return JobStatus.model_validate(self._json(response)), response

    async def get_job(self, job_id: str) -> JobStatus:
        """``GET /jobs/{id}``."""
        return (await self._get_job(job_id))[0]

    async def cancel_job(self, job_id: str) -> JobStatus:
        """``DELETE /jobs/{id}``."""
        return JobStatus.model_validate(self._json(await self._request("DELETE", job_path(job_id))))

    async def job_result(self, job_id: str) -> Bundle:
        """``GET /jobs/{id}/result``."""
        response = await self._request("GET", job_path(job_id, "/result"))
        return self._bundle(response, f"longisynth-job-{job_id}.zip")

    async def wait_job(
        self, job_id: str, *, poll_interval: float = 1.0, timeout: float | None = None, progress: bool = False
    ) -> Bundle:
        """Poll a job until it stops; return its bundle (see :meth:`Client.wait_job`)."""
        bar = ProgressBar() if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                status, response = await self._get_job(job_id)
                if bar is not None:
                    bar.stage(status.stage, status.progress)
                if status.done:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise JobTimeoutError(job_id, float(timeout or 0.0), status.status)
                await _asleep(poll_interval if deadline is None else min(poll_interval, deadline - now))
        finally:
            if bar is not None:
                bar.close()
        self._raise_for_outcome(status, response)
        return await self.job_result(job_id)

    async def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return self._json(await self._request("GET", "/healthz"))

    async def ready(self) -> dict[str, Any]:
        """``GET /readyz`` (not retried; see :meth:`Client.ready`)."""
        return self._json(await self._request("GET", "/readyz", retry_busy=False))
