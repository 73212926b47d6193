"""Admission control and background jobs on a bounded worker pool.

At most ``max_concurrency`` studies run at once (each holds a scan in memory) and at most
``max_queue`` more wait; anything beyond is refused with 429 + ``Retry-After`` so the server
cannot run out of memory under load. A request is admitted *before* its body is read, so a full
server stores no upload. Jobs belong to the API key that made them (another key gets 404) and keep
their own folder, with their state in ``job.json``, until their result expires (``job_ttl_s``), is
evicted (oldest first, past ``max_kept_jobs`` or ``max_kept_bytes``) or is deleted. A server that
stops (crash, restart, shutdown) leaves only that state: the next start reports those jobs
``failed`` with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
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
STATE_FILE = "job.json"
INTERRUPTED: dict[str, Any] = {
    "type": "interrupted",
    "message": "the server stopped (crash, restart or shutdown) before this job's result was served; "
    "submit it again",
    "field": None,
    "unknown_words": [],
}


class JobCancelledError(Exception):
    """Raised from the progress callback to stop a cancelled job at its next stage."""


class Ticket:
    """One admitted study's slot in the pool; released once, by whoever holds it last."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._release()


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

    def admit(self) -> Ticket:
        """A slot for one study (running or waiting), or 429 when all are taken."""
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

        def release() -> None:
            with self._lock:
                self.admitted -= 1
                self._on_depth(self.admitted)

        return Ticket(release)

    def submit(self, fn: Callable[[], T], ticket: Ticket | None = None) -> Future[T]:
        """Run ``fn`` in the pool on ``ticket``'s slot (admitted now when None)."""
        ticket = ticket or self.admit()
        # Released when the work ends *or* when it is cancelled before it started (a cancelled
        # future never runs its function, so a ``finally`` inside it would leak the slot).
        try:
            future = self._executor.submit(fn)
        except BaseException:
            ticket.release()
            raise
        future.add_done_callback(lambda _: ticket.release())
        return future

    async def run(self, fn: Callable[[], T], ticket: Ticket | None = None) -> T:
        return await asyncio.wrap_future(self.submit(fn, ticket))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class Job:
    id: str
    folder: Path
    owner: str = ""  # sha256 of the API key that submitted it ("" without authentication)
    status: str = "queued"
    stage: str = ""
    progress: float = 0.0
    error: dict[str, Any] | None = None
    result: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] | None = None
    finished_at: float | None = None  # time.monotonic()
    kept_bytes: int = 0  # size of the kept folder once finished

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "error": self.error,
        }

    def save(self) -> None:
        """Write the state to ``job.json`` (atomically: a crash leaves the old or the new one)."""
        state = {**self.view(), "owner": self.owner}
        tmp = self.folder / f".{STATE_FILE}.tmp"
        try:
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.folder / STATE_FILE)
        except OSError:  # the folder is gone (deleted, evicted, shutdown): nothing to keep
            pass


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _clear_payload(folder: Path) -> None:
    """Delete everything in a job folder but its state."""
    for p in folder.iterdir() if folder.is_dir() else []:
        if p.name == STATE_FILE:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


class JobManager:
    """Jobs of this server process (BentoML runs the API in one worker), persisted per folder."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.settings = pool.settings
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def recover(self, folders: list[Path]) -> int:
        """Jobs a stopped server left in ``folders`` (those with a ``job.json``) come back as
        ``failed`` with the reason, their uploads and results deleted; returns how many."""
        now, wall = time.monotonic(), time.time()
        found = 0
        for folder in folders:
            try:
                age_s = max(0.0, wall - (folder / STATE_FILE).stat().st_mtime)
                state = json.loads((folder / STATE_FILE).read_text())
                job = Job(str(state["id"]), folder, owner=str(state.get("owner", "")))
                job.status = str(state["status"])
                job.stage, job.progress = str(state.get("stage", "")), float(state.get("progress", 0.0))
                job.error = state.get("error")
            except (OSError, ValueError, KeyError, TypeError):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            if job.status not in ("failed", "cancelled"):
                job.status, job.error = "failed", dict(INTERRUPTED)
            # their last state change keeps their order: eviction drops the oldest, not whichever
            # folder came first (the job interrupted by the crash is the newest)
            job.finished_at = now - age_s
            _clear_payload(folder)
            job.save()
            with self._lock:
                self._jobs[job.id] = job
            found += 1
        self._evict()
        return found

    def close(self) -> None:
        """At shutdown: stop every job and keep only its state (``failed``: interrupted)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel.set()
            if job.future is not None:
                job.future.cancel()
            if job.status not in ("failed", "cancelled"):
                job.status, job.error = "failed", dict(INTERRUPTED)
            _clear_payload(job.folder)
            job.save()

    def submit(
        self,
        folder: Path,
        work: Callable[[Callable[[str, float], None]], Any],
        owner: str = "",
        ticket: Ticket | None = None,
    ) -> Job:
        self.purge()
        job = Job(uuid.uuid4().hex, folder, owner=owner)
        job.save()

        def progress(stage: str, fraction: float) -> None:
            if job.cancel.is_set():
                raise JobCancelledError()
            if job.status != "running":
                job.status = "running"
                job.save()
            job.stage, job.progress = stage or job.stage, max(job.progress, fraction)

        def body() -> None:
            if job.cancel.is_set():
                return
            job.status = "running"
            job.save()
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
                if job.status != "succeeded":
                    _clear_payload(job.folder)
                job.kept_bytes = _folder_bytes(job.folder)
                job.save()
                job.finished_at = time.monotonic()
                self._evict()

        with self._lock:
            self._jobs[job.id] = job
        try:
            job.future = self.pool.submit(body, ticket)
        except BaseException:
            with self._lock:
                del self._jobs[job.id]
            raise
        return job

    def get(self, job_id: str, owner: str = "") -> Job:
        """The job, if ``owner`` (the caller's key digest) made it; 404 otherwise — another key's
        job is indistinguishable from no job."""
        self.purge()
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise ApiError(404, "not_found", f"no job {job_id[:64]!r} (unknown, deleted or expired)")
        return job

    def cancel(self, job_id: str, owner: str = "") -> Job:
        job = self.get(job_id, owner)
        job.cancel.set()
        if job.future is not None and job.future.cancel():  # never started
            job.finished_at = time.monotonic()
        if job.status in ("queued", "running", "succeeded"):
            job.status = "cancelled"
            _clear_payload(job.folder)
            job.save()
        return job

    def purge(self) -> None:
        """Forget finished jobs older than the TTL and delete their folders."""
        now = time.monotonic()
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.finished_at is not None and now - j.finished_at > self.settings.job_ttl_s
            ]
            for j in old:
                del self._jobs[j.id]
        for j in old:
            shutil.rmtree(j.folder, ignore_errors=True)

    def _evict(self) -> None:
        """Keep at most ``max_kept_jobs`` finished jobs and ``max_kept_bytes`` of their folders:
        the oldest finished go first (their ids then answer 404)."""
        with self._lock:
            done = sorted(
                (j for j in self._jobs.values() if j.finished_at is not None),
                key=lambda j: j.finished_at or 0.0,
            )
            total = sum(j.kept_bytes for j in done)
            gone: list[Job] = []
            while done and (len(done) > self.settings.max_kept_jobs or total > self.settings.max_kept_bytes):
                j = done.pop(0)
                total -= j.kept_bytes
                del self._jobs[j.id]
                gone.append(j)
        for j in gone:
            shutil.rmtree(j.folder, ignore_errors=True)
