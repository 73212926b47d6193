"""Turn a parsed request into an engine call and a bundle file (runs in a worker thread)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from longisynth.api import (
    DemoInput,
    Denoiser,
    RefineSettings,
    Scan,
    demo_input,
    generate,
    read_dicom_series,
    read_nifti,
    resolve,
    write_bundle,
)
from longisynth.errors import InvalidInputError
from service.config import Settings
from service.errors import ApiError
from service.upload import Form

ProgressFn = Callable[[str, float], None]


@dataclass
class Request:
    """What to simulate: an uploaded scan (+ labels) or a demo kind, plus the spec fields."""

    scan_path: Path | None = None
    scan_name: str = ""
    labels_path: Path | None = None
    demo_kind: str | None = None
    prompt: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    contrast: str | None = None
    lenient: bool = False


@dataclass(frozen=True)
class Result:
    path: Path
    filename: str
    family: str


def request_from_form(form: Form) -> Request:
    if "scan" not in form.files:
        raise ApiError(
            422,
            "invalid_input",
            "the multipart field 'scan' (a .nii, .nii.gz or DICOM .zip) is required",
            field="scan",
        )
    path, name = form.files["scan"]
    req = Request(scan_path=path, scan_name=name)
    if "labels" in form.files:
        req.labels_path = form.files["labels"][0]
    _fill_common(req, form.fields)
    req.lenient = form.fields.get("lenient", "false").strip().lower() in ("1", "true", "yes")
    return req


def request_from_json(body: Any) -> Request:
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_input", "the body must be a JSON object")
    kind = body.get("kind") or "lung"
    if kind not in ("lung", "glioma"):
        raise ApiError(
            422, "invalid_input", f"unknown demo kind {kind!r}: use 'lung' or 'glioma'", field="kind"
        )
    req = Request(demo_kind=kind)
    fields = {k: v for k, v in body.items() if v is not None and k in ("prompt", "spec", "seed")}
    if isinstance(fields.get("spec"), dict):
        req.spec = fields.pop("spec")
    _fill_common(req, {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    return req


def _fill_common(req: Request, fields: dict[str, str]) -> None:
    req.prompt = fields.get("prompt", "") or ""
    if fields.get("spec"):
        try:
            spec = json.loads(fields["spec"])
        except json.JSONDecodeError as exc:
            raise ApiError(422, "invalid_input", f"spec is not valid JSON: {exc.msg}", field="spec") from None
        if not isinstance(spec, dict):
            raise ApiError(
                422, "invalid_input", "spec must be a JSON object of LesionSpec fields", field="spec"
            )
        req.spec = spec
    if fields.get("seed", "").strip():
        try:
            req.seed = int(fields["seed"])
        except ValueError:
            raise ApiError(
                422, "invalid_input", f"seed must be an integer, got {fields['seed']!r}", field="seed"
            ) from None
    req.contrast = fields.get("contrast") or None


@lru_cache(maxsize=2)
def _demo(kind: str) -> DemoInput:
    return demo_input(kind)


def _read_upload(path: Path, name: str, folder: Path, settings: Settings) -> Scan:
    lower = name.lower()
    try:
        if lower.endswith((".nii", ".nii.gz")):
            return read_nifti(path, name=name, max_voxels=settings.max_voxels)
        if lower.endswith(".zip"):
            return read_dicom_series(_unzip(path, folder / "dicom", settings), max_voxels=settings.max_voxels)
    except InvalidInputError as exc:
        if "more than the limit" in str(exc) or "voxels, over" in str(exc):
            raise ApiError(413, "payload_too_large", str(exc), field="scan") from None
        raise
    raise ApiError(
        415,
        "unsupported_media_type",
        f"unsupported scan file {name!r}: send .nii, .nii.gz or a .zip of one DICOM series",
        field="scan",
    )


def _unzip(path: Path, dest: Path, settings: Settings) -> Path:
    """Extract a DICOM zip safely (no absolute paths or '..', bounded total size)."""
    dest.mkdir()
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(i.file_size for i in zf.infolist())
            if total > 4 * settings.max_upload_bytes:
                raise ApiError(
                    413, "payload_too_large", "the DICOM zip expands beyond the size limit", field="scan"
                )
            for i, info in enumerate(zf.infolist()):
                parts = Path(info.filename).parts
                if info.is_dir():
                    continue
                if info.filename.startswith(("/", "\\")) or ".." in parts:
                    raise ApiError(422, "invalid_input", "the zip holds unsafe paths", field="scan")
                (dest / f"{i:06d}.dcm").write_bytes(zf.read(info))
    except zipfile.BadZipFile:
        raise ApiError(422, "invalid_input", "the scan .zip is corrupt", field="scan") from None
    return dest


def run(
    req: Request, folder: Path, settings: Settings, progress: ProgressFn, refiner: Denoiser | None = None
) -> Result:
    """Simulate the study and write its bundle into ``folder``.

    ``refiner``: the process's shared (batching) refiner; None lets the engine use its default.
    """
    brain_tissues = None
    labels = None
    if req.demo_kind is not None:
        demo = _demo(req.demo_kind)
        scans: Any = demo.scans
        brain_tissues = demo.brain_tissues
        prompt = req.prompt or demo.prompt
        digest = next(iter(demo.scans.values())).sha256
    else:
        assert req.scan_path is not None
        scan = _read_upload(req.scan_path, req.scan_name, folder, settings)
        if req.labels_path is not None:
            labels = read_nifti(req.labels_path, max_voxels=settings.max_voxels).raw
        scans, prompt, digest = scan, req.prompt, scan.sha256
    _check_timepoints(scans, prompt, req, settings)
    study = generate(
        scans,
        prompt,
        req.spec,
        labels=labels,
        seed=req.seed,
        contrast=req.contrast,
        lenient=req.lenient,
        brain_tissues=brain_tissues,
        progress=progress,
        refiner=refiner,
        # every tile of a sampler step in one call: the batcher merges calls across studies
        refine_settings=RefineSettings(max_batch=settings.batch_max_tiles),
    )
    progress("write", 0.97)
    name = f"longisynth-{digest[:12]}-seed{study.spec.seed}.zip"
    path = write_bundle(study, folder / name)
    return Result(path, name, str(study.spec.family.value if study.spec.family else ""))


def _check_timepoints(scans: Any, prompt: str, req: Request, settings: Settings) -> None:
    """Refuse too many timepoints before the heavy work (cheap: resolves the spec only)."""
    resolved = resolve(scans, prompt, req.spec, seed=req.seed, contrast=req.contrast, lenient=req.lenient)
    n = len(resolved.timepoints_days or [])
    if n > settings.max_timepoints:
        raise ApiError(
            422,
            "invalid_input",
            f"{n} timepoints requested; this server allows at most {settings.max_timepoints}",
            field="timepoints_days",
        )
