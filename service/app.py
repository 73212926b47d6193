"""The HTTP routes (Starlette), mounted on the BentoML service. See service/API.md."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from longisynth.api import default_refiner
from longisynth.errors import LongisynthError
from longisynth.refine.model import DEFAULT_OFF_REASON, on_by_default
from service import runner
from service.batcher import DynamicBatcher
from service.config import Settings
from service.errors import ApiError, from_engine
from service.jobs import JobManager, Pool, Ticket
from service.metrics import Metrics
from service.openapi import openapi
from service.upload import parse_form

log = logging.getLogger("longisynth.service")
Handler = Callable[[Request], Awaitable[Response]]
MAX_JSON_BYTES = 1 << 20


def _noop(stage: str, fraction: float) -> None:
    return None


_LIVE_FOLDERS: set[Path] = set()  # folders of requests in flight (not jobs: JobManager owns those)
FOLDER_PREFIX = "req-"


def _new_folder(work_dir: Path) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    folder = work_dir / f"{FOLDER_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(mode=0o700)
    _LIVE_FOLDERS.add(folder)
    return folder


def _remove(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        _LIVE_FOLDERS.discard(folder)


def lock_work_dir(work_dir: Path) -> IO[bytes]:
    """Create ``work_dir`` and hold an exclusive lock on it while the returned file stays open (the
    kernel drops it when the process dies, so a crashed server does not keep it)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    handle = (work_dir / ".lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RuntimeError(
            f"the work folder {str(work_dir)!r} is in use by another longisynth server: set "
            "LONGISYNTH_WORK_DIR to a folder of this server's own"
        ) from None
    return handle


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
        self._lock: IO[bytes] | None = None
        # One model per process; every study's refiner calls go through one batcher. Off unless
        # LONGISYNTH_REFINER names a model (off by default: no measured benefit, issue 18).
        model, self.refiner_reason = default_refiner() if on_by_default() else (None, DEFAULT_OFF_REASON)
        self.refiner: DynamicBatcher | None = (
            None
            if model is None
            else DynamicBatcher(
                model, settings.batch_max_tiles, settings.batch_wait_ms / 1000.0, metrics.batch
            )
        )

    def start(self) -> None:
        """At server start (in the worker): what a stopped server left in the work folder is cleaned
        up; its jobs are reported ``failed`` (interrupted) from now on.

        Raises:
            RuntimeError: another live server uses the same work folder (its folders are not ours
                to clean): give each server its own ``LONGISYNTH_WORK_DIR``.
        """
        work = self.settings.work_dir
        self._lock = lock_work_dir(work)
        left = [p for p in work.iterdir() if p.is_dir() and p.name.startswith(FOLDER_PREFIX)]
        jobs = [p for p in left if (p / "job.json").is_file()]
        for p in set(left) - set(jobs):
            shutil.rmtree(p, ignore_errors=True)
        found = self.jobs.recover(jobs)
        log.info(
            json.dumps(
                {"event": "start", "jobs_interrupted": found, "folders_removed": len(left) - len(jobs)}
            )
        )

    def stop(self) -> None:
        """At shutdown: jobs keep only their state (``failed``: interrupted); other folders go."""
        self.jobs.close()
        _remove_all()
        self.pool.shutdown()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.stop()

    def _run(self, req: runner.Request, folder: Path, progress: runner.ProgressFn) -> runner.Result:
        return runner.run(req, folder, self.settings, progress, self.refiner)

    def _authorise(self, request: Request) -> str:
        """The caller's owner id: sha256 of its key ("" without authentication); 401 otherwise."""
        if not self.settings.api_keys:
            return ""
        given = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        ok = [hmac.compare_digest(given.encode(), key.encode()) for key in self.settings.api_keys]
        if not any(ok):
            raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: Bearer <key>)")
        return hashlib.sha256(given.encode()).hexdigest()

    def endpoint(self, name: str, fn: Handler) -> Handler:
        """Auth, error mapping, metrics and a log line (no identifiers) around a handler."""

        async def handle(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                request.state.owner = self._authorise(request)
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

    async def _simulate(self, req: runner.Request, folder: Path, ticket: Ticket) -> Response:
        try:
            result = await self.pool.run(lambda: self._run(req, folder, _noop), ticket)
        except BaseException:
            _remove(folder)
            raise
        self.metrics.lesion(result.family)
        self.metrics.bytes_out(result.path.stat().st_size)
        return _ZipResponse(result, folder)

    async def _parse(self, request: Request, folder: Path, json_body: bool) -> runner.Request:
        if json_body:
            return runner.request_from_json(await _json(request))
        form = await parse_form(request, folder, self.settings.max_upload_bytes)
        self.metrics.bytes_in(form.bytes_in)
        return runner.request_from_form(form)

    async def _admitted(self, request: Request, json_body: bool) -> tuple[runner.Request, Path, Ticket]:
        """Admission first (429 before any byte of the body is read or stored), then the body."""
        ticket = self.pool.admit()
        folder = _new_folder(self.settings.work_dir)
        try:
            return await self._parse(request, folder, json_body), folder, ticket
        except BaseException:
            ticket.release()
            _remove(folder)
            raise

    async def generate(self, request: Request) -> Response:
        return await self._simulate(*await self._admitted(request, json_body=False))

    async def generate_demo(self, request: Request) -> Response:
        return await self._simulate(*await self._admitted(request, json_body=True))

    async def submit_job(self, request: Request) -> Response:
        json_body = request.headers.get("content-type", "").startswith("application/json")
        req, folder, ticket = await self._admitted(request, json_body)
        try:
            job = self.jobs.submit(
                folder, lambda progress: self._run(req, folder, progress), request.state.owner, ticket
            )
        except BaseException:
            ticket.release()
            _remove(folder)
            raise
        _LIVE_FOLDERS.discard(folder)  # the job's now: kept past the request, state saved at shutdown
        return JSONResponse({"id": job.id, "status": job.status}, status_code=202)

    async def job(self, request: Request) -> Response:
        """``GET`` (state) and ``DELETE`` (cancel) on one route, so ``Allow`` lists both."""
        job_id, owner = request.path_params["job_id"], request.state.owner
        if request.method == "DELETE":
            job = self.jobs.cancel(job_id, owner)
            return JSONResponse({"id": job.id, "status": job.status})
        return JSONResponse(self.jobs.get(job_id, owner).view())

    async def job_result(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"], request.state.owner)
        if job.status != "succeeded":
            raise ApiError(409, "job_not_finished", f"job {job.id} is {job.status}, not succeeded")
        self.metrics.bytes_out(job.result.path.stat().st_size)
        return _ZipResponse(job.result, None)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def app(self) -> Starlette:
        e = self.endpoint
        routes = [
            Route("/generate", e("generate", self.generate), methods=["POST"]),
            Route("/generate/demo", e("generate_demo", self.generate_demo), methods=["POST"]),
            Route("/jobs", e("jobs_submit", self.submit_job), methods=["POST"]),
            Route("/jobs/{job_id}", e("jobs", self.job), methods=["GET", "DELETE"]),
            Route("/jobs/{job_id}/result", e("jobs_result", self.job_result), methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_error},
            lifespan=self.lifespan,
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown path, method not allowed) as our JSON error body."""
    assert isinstance(exc, HTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed"}
    error = ApiError(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))
    response = error.response()
    response.headers.update(exc.headers or {})
    return response


async def _json(request: Request) -> Any:
    """The JSON body, read in chunks and refused (413) as soon as it passes 1 MiB."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise ApiError(413, "payload_too_large", "JSON body over 1 MiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "payload_too_large", "JSON body over 1 MiB")
    return runner.parse_json(bytes(body) or b"{}", "body")
