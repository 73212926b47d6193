"""Service limits and keys, read once from the environment at start-up."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _default_work_dir() -> Path:
    return Path(tempfile.gettempdir()) / "longisynth-work"


@dataclass(frozen=True)
class Settings:
    """Limits of one server process.

    Attributes:
        max_upload_bytes: largest request body accepted (bytes); larger gets 413.
        max_scan_bytes: largest decompressed scan (bytes): a NIfTI image's header + voxels, or the
            files extracted from a DICOM zip; larger gets 413 before it is inflated.
        max_zip_entries: most files in a DICOM zip; more gets 413.
        max_voxels: largest scan accepted (voxels); larger gets 413.
        max_timepoints: most timepoints per study; more gets 422.
        max_concurrency: studies simulated at once (each holds a scan in memory).
        max_queue: studies allowed to wait for a free slot; beyond that, 429 with Retry-After.
        api_keys: accepted keys; empty means no authentication.
        job_ttl_s: how long a finished job's result is kept, seconds.
        max_kept_jobs: most finished jobs kept; beyond, the oldest are evicted (then 404).
        max_kept_bytes: most bytes of kept results (bundles); beyond, the oldest are evicted.
        work_dir: folder of this server's per-request folders (uploads, bundles, job state); one
            server per folder. Cleaned at start (jobs of a crashed run are reported ``failed``)
            and at shutdown.
        batch_max_tiles: most refiner tiles (24³ voxels each) in one model call.
        batch_wait_ms: how long a refiner call waits for calls of other studies to batch with, ms.
        library: lesion library folder (``longisynth library build``) for requests that copy real
            lesions (``spec.source: library``, or ``library_lesion_id``); None: such requests get 422.
        archetypes: folder of the site's own archetype YAML files (``LONGISYNTH_ARCHETYPES``),
            added to the shipped ones; requests name them in ``spec.archetype`` or the prompt.
    """

    max_upload_bytes: int = 1 << 30
    max_scan_bytes: int = 1 << 30
    max_zip_entries: int = 4096
    max_voxels: int = 256 * 1024 * 1024
    max_timepoints: int = 12
    max_concurrency: int = 2
    max_queue: int = 8
    api_keys: tuple[str, ...] = ()
    job_ttl_s: float = 3600.0
    max_kept_jobs: int = 64
    max_kept_bytes: int = 4 << 30
    work_dir: Path = field(default_factory=_default_work_dir)
    batch_max_tiles: int = 64
    batch_wait_ms: int = 20
    library: Path | None = None
    archetypes: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def num(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            value = int(raw)
            if value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {raw!r}")
            return value

        raw_keys = env.get("LONGISYNTH_API_KEYS", "")
        keys = tuple(k.strip() for k in raw_keys.split(",") if k.strip())
        if raw_keys and not keys:  # " " or "," would silently switch authentication off
            raise ValueError(
                "LONGISYNTH_API_KEYS is set but holds no key: unset it to run without authentication"
            )
        work_dir = env.get("LONGISYNTH_WORK_DIR", "").strip()
        library = env.get("LONGISYNTH_LIBRARY", "").strip()
        if library:
            from longisynth.errors import InvalidInputError
            from longisynth.library import Library

            try:
                Library.open(library)
            except InvalidInputError as err:  # refuse to start rather than fail every request
                raise ValueError(f"LONGISYNTH_LIBRARY: {err}") from None
        archetypes = env.get("LONGISYNTH_ARCHETYPES", "").strip()
        if archetypes:
            from longisynth.archetypes import load_registry
            from longisynth.errors import InvalidInputError

            try:
                load_registry(archetypes)
            except InvalidInputError as err:  # refuse to start rather than fail every request
                raise ValueError(f"LONGISYNTH_ARCHETYPES: {err}") from None
        return cls(
            library=Path(library) if library else None,
            archetypes=Path(archetypes) if archetypes else None,
            max_upload_bytes=num("LONGISYNTH_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_scan_bytes=num("LONGISYNTH_MAX_SCAN_BYTES", cls.max_scan_bytes),
            max_zip_entries=num("LONGISYNTH_MAX_ZIP_ENTRIES", cls.max_zip_entries),
            max_kept_jobs=num("LONGISYNTH_MAX_KEPT_JOBS", cls.max_kept_jobs),
            max_kept_bytes=num("LONGISYNTH_MAX_KEPT_BYTES", cls.max_kept_bytes),
            work_dir=Path(work_dir) if work_dir else _default_work_dir(),
            max_voxels=num("LONGISYNTH_MAX_VOXELS", cls.max_voxels),
            max_timepoints=num("LONGISYNTH_MAX_TIMEPOINTS", cls.max_timepoints),
            max_concurrency=num("LONGISYNTH_MAX_CONCURRENCY", cls.max_concurrency),
            max_queue=num("LONGISYNTH_MAX_QUEUE", cls.max_queue),
            api_keys=keys,
            batch_max_tiles=num("LONGISYNTH_BATCH_MAX_TILES", cls.batch_max_tiles),
            batch_wait_ms=num("LONGISYNTH_BATCH_WAIT_MS", cls.batch_wait_ms),
        )
