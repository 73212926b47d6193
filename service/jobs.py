"""Admission control and background jobs on a bounded worker pool.

At most ``max_concurrency`` studies run at once (each holds a scan in memory) and at most
``max_queue`` more wait; anything beyond is refused with 429 + ``Retry-After`` so the server
cannot run out of memory under load. Jobs keep their own temporary folder until their result
has expired (``job_ttl_s``) or they are deleted.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from longisynth.errors import LongisynthError
from service.config import Settings
from service.errors import ApiError, from_engine

T = TypeVar("T")


class JobCancelledError(Exception):
    """Raised from the progress callback to stop a cancelled job at its next stage."""


class Pool:
    """Bounded thread pool with an admission counter (running + waiting)."""

    def __init__(self, settings: Settings, on_depth: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self._on_depth = on_depth or (lambda n: None)
        self._executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrency, thread_name_prefix="longisynth"
        )
        self._lock = threading.Lock()
        self.admitted = 0

    @property
    def capacity(self) -> int:
        return self.settings.max_concurrency + self.settings.max_queue

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self.admitted >= self.capacity:
                raise ApiError(
                    429,
                    "too_many_requests",
                    f"the server is busy ({self.admitted} studies running or queued); retry later",
                    retry_after_s=10,
                )
            self.admitted += 1
            self._on_depth(self.admitted)

        def release(_: Future[T]) -> None:
            with self._lock:
                self.admitted -= 1
                self._on_depth(self.admitted)

        # Released when the work ends *or* when it is cancelled before it started (a cancelled
        # future never runs its function, so a ``finally`` inside it would leak the slot).
        future = self._executor.submit(fn)
        future.add_done_callback(release)
        return future

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Job:
    id: str
    folder: Path
    status: str = "queued"
    stage: str = ""
    progress: float = 0.0
    error: dict[str, Any] | None = None
    result: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] | None = None
    finished_at: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "error": self.error,
        }


class JobManager:
    """In-memory jobs of this server process (BentoML runs the API in one worker)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, folder: Path, work: Callable[[Callable[[str, float], None]], Any]) -> Job:
        self.purge()
        job = Job(uuid.uuid4().hex, folder)

        def progress(stage: str, fraction: float) -> None:
            if job.cancel.is_set():
                raise JobCancelledError()
            job.status, job.stage, job.progress = "running", stage or job.stage, max(job.progress, fraction)

        def body() -> None:
            if job.cancel.is_set():
                return
            job.status = "running"
            try:
                job.result = work(progress)
                job.status, job.stage, job.progress = "succeeded", "done", 1.0
            except JobCancelledError:
                job.status = "cancelled"
            except ApiError as exc:
                job.status, job.error = "failed", exc.body()["error"]
            except LongisynthError as exc:
                job.status, job.error = "failed", from_engine(exc).body()["error"]
            except Exception:  # a bug: report it without internals
                job.status = "failed"
                job.error = {
                    "type": "internal",
                    "message": "internal error",
                    "field": None,
                    "unknown_words": [],
                }
            finally:
                job.finished_at = time.monotonic()
                if job.status != "succeeded":
                    shutil.rmtree(job.folder, ignore_errors=True)

        job.future = self.pool.submit(body)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        self.purge()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} (unknown, deleted or expired)")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel.set()
        if job.future is not None and job.future.cancel():  # never started
            job.finished_at = time.monotonic()
            shutil.rmtree(job.folder, ignore_errors=True)
        if job.status in ("queued", "running"):
            job.status = "cancelled"
        elif job.status == "succeeded":
            job.status = "cancelled"
            shutil.rmtree(job.folder, ignore_errors=True)
        return job

    def purge(self) -> None:
        """Forget finished jobs older than the TTL and delete their folders."""
        now = time.monotonic()
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.finished_at is not None and now - j.finished_at > self.pool.settings.job_ttl_s
            ]
            for j in old:
                del self._jobs[j.id]
        for j in old:
            shutil.rmtree(j.folder, ignore_errors=True)
