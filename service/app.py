"""The HTTP routes (Starlette), mounted on the BentoML service. See service/API.md."""

from __future__ import annotations

import atexit
import hmac
import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from longisynth.api import default_refiner
from longisynth.errors import LongisynthError
from service import runner
from service.batcher import DynamicBatcher
from service.config import Settings
from service.errors import ApiError, from_engine
from service.jobs import JobManager, Pool
from service.metrics import Metrics
from service.openapi import openapi
from service.upload import parse_form

log = logging.getLogger("longisynth.service")
Handler = Callable[[Request], Awaitable[Response]]


def _noop(stage: str, fraction: float) -> None:
    return None


_LIVE_FOLDERS: set[Path] = set()


def _new_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="longisynth-req-"))
    _LIVE_FOLDERS.add(folder)
    return folder


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_FOLDERS.discard(folder)


@atexit.register
def _remove_all() -> None:
    """On shutdown, no request folder survives (in-flight uploads included)."""
    for folder in list(_LIVE_FOLDERS):
        _remove(folder)


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


class _ZipResponse(StreamingResponse):
    """Streams a bundle, then removes its request folder — also when the client went away before
    or during the transfer (the ``finally`` runs whatever ``send`` does)."""

    def __init__(self, result: runner.Result, folder: Path | None) -> None:
        headers = {
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Content-Length": str(result.path.stat().st_size),
        }
        super().__init__(_read_chunks(result.path), media_type="application/zip", headers=headers)
        self.folder = folder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            _remove(self.folder)


async def _openapi(request: Request) -> Response:
    """The API schema (public, like BentoML's own /docs.json): built from the engine's LesionSpec."""
    return JSONResponse(openapi())


class Api:
    """Routes bound to one process's settings, worker pool, jobs and metrics."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.pool = Pool(settings, metrics.queue)
        self.jobs = JobManager(self.pool)
        self.metrics = metrics
        # One model per process; every study's refiner calls go through one batcher.
        model, self.refiner_reason = default_refiner()
        self.refiner: DynamicBatcher | None = (
            None
            if model is None
            else DynamicBatcher(
                model, settings.batch_max_tiles, settings.batch_wait_ms / 1000.0, metrics.batch
            )
        )

    def _run(self, req: runner.Request, folder: Path, progress: runner.ProgressFn) -> runner.Result:
        return runner.run(req, folder, self.settings, progress, self.refiner)

    def _authorise(self, request: Request) -> None:
        if not self.settings.api_keys:
            return
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        ok = any(hmac.compare_digest(given.encode(), key.encode()) for key in self.settings.api_keys)
        if not ok:
            raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)")

    def endpoint(self, name: str, fn: Handler) -> Handler:
        """Auth, error mapping, metrics and a log line (no identifiers) around a handler."""

        async def handle(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                self._authorise(request)
                response = await fn(request)
            except ApiError as exc:
                response = exc.response()
            except LongisynthError as exc:
                response = from_engine(exc).response()
            except Exception as exc:  # a bug: answer 500 without internals, log the type only
                log.error(
                    json.dumps({"event": "internal_error", "endpoint": name, "error": type(exc).__name__})
                )
                response = ApiError(500, "internal", "internal error").response()
            elapsed = time.perf_counter() - t0
            self.metrics.observe(name, response.status_code, elapsed)
            log.info(
                json.dumps(
                    {
                        "event": "request",
                        "endpoint": name,
                        "status": response.status_code,
                        "duration_s": round(elapsed, 4),
                    }
                )
            )
            return response

        return handle

    async def _simulate(self, req: runner.Request, folder: Path) -> Response:
        try:
            result = await self.pool.run(lambda: self._run(req, folder, _noop))
        except BaseException:
            _remove(folder)
            raise
        self.metrics.lesion(result.family)
        self.metrics.bytes_out(result.path.stat().st_size)
        return _ZipResponse(result, folder)

    async def generate(self, request: Request) -> Response:
        folder = _new_folder()
        try:
            form = await parse_form(request, folder, self.settings.max_upload_bytes)
            self.metrics.bytes_in(form.bytes_in)
            req = runner.request_from_form(form)
        except BaseException:
            _remove(folder)
            raise
        return await self._simulate(req, folder)

    async def generate_demo(self, request: Request) -> Response:
        req = runner.request_from_json(await _json(request))
        return await self._simulate(req, _new_folder())

    async def submit_job(self, request: Request) -> Response:
        folder = _new_folder()
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                req = runner.request_from_json(await _json(request))
            else:
                form = await parse_form(request, folder, self.settings.max_upload_bytes)
                self.metrics.bytes_in(form.bytes_in)
                req = runner.request_from_form(form)
            job = self.jobs.submit(folder, lambda progress: self._run(req, folder, progress))
        except BaseException:
            _remove(folder)
            raise
        return JSONResponse({"id": job.id, "status": job.status}, status_code=202)

    async def job_status(self, request: Request) -> Response:
        return JSONResponse(self.jobs.get(request.path_params["job_id"]).view())

    async def job_result(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job.status != "succeeded":
            raise ApiError(409, "job_not_finished", f"job {job.id} is {job.status}, not succeeded")
        self.metrics.bytes_out(job.result.path.stat().st_size)
        return _ZipResponse(job.result, None)

    async def cancel_job(self, request: Request) -> Response:
        job = self.jobs.cancel(request.path_params["job_id"])
        return JSONResponse({"id": job.id, "status": job.status})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def app(self) -> Starlette:
        e = self.endpoint
        routes = [
            Route("/generate", e("generate", self.generate), methods=["POST"]),
            Route("/generate/demo", e("generate_demo", self.generate_demo), methods=["POST"]),
            Route("/jobs", e("jobs_submit", self.submit_job), methods=["POST"]),
            Route("/jobs/{job_id}", e("jobs_status", self.job_status), methods=["GET"]),
            Route("/jobs/{job_id}", e("jobs_cancel", self.cancel_job), methods=["DELETE"]),
            Route("/jobs/{job_id}/result", e("jobs_result", self.job_result), methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
        ]
        return Starlette(routes=routes)


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > 1 << 20:
        raise ApiError(413, "payload_too_large", "JSON body over 1 MiB")
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise ApiError(422, "invalid_input", f"body is not valid JSON: {exc.msg}") from None
