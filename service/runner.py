"""Turn a parsed request into an engine call and a bundle file (runs in a worker thread)."""

from __future__ import annotations

import json
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from longisynth.api import (
    DemoInput,
    Denoiser,
    LesionSpec,
    RefineSettings,
    Scan,
    demo_input,
    generate,
    read_dicom_series,
    read_nifti,
    resolve,
    write_bundle,
)
from longisynth.archetypes import ArchetypeRegistry, load_registry
from longisynth.errors import InputTooLargeError, InvalidInputError
from longisynth.library import Library
from service.config import Settings
from service.errors import ApiError
from service.upload import Form

ProgressFn = Callable[[str, float], None]


@dataclass
class Request:
    """What to simulate: an uploaded scan (+ labels) or a demo kind, plus the spec fields."""

    scan_path: Path | None = None
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
    req = Request(scan_path=form.files["scan"], labels_path=form.files.get("labels"))
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
        req.spec = check_spec(fields.pop("spec"))
    seed = fields.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise ApiError(422, "invalid_input", "seed must be an integer in [0, 2**63)", field="seed")
    if "prompt" in fields and not isinstance(fields["prompt"], str):
        raise ApiError(422, "invalid_input", "prompt must be a string", field="prompt")
    _fill_common(req, {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    req.seed = seed
    return req


def _fill_common(req: Request, fields: dict[str, str]) -> None:
    req.prompt = fields.get("prompt", "") or ""
    if fields.get("spec"):
        spec = parse_json(fields["spec"], "spec")
        if not isinstance(spec, dict):
            raise ApiError(
                422, "invalid_input", "spec must be a JSON object of LesionSpec fields", field="spec"
            )
        req.spec = spec
    if req.spec:
        check_spec(req.spec)
    if fields.get("seed", "").strip():
        text = fields["seed"].strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2**63):
            raise ApiError(422, "invalid_input", "seed must be an integer in [0, 2**63)", field="seed")
        req.seed = int(text)
    req.contrast = fields.get("contrast") or None


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """422 naming the first field of ``spec`` that the engine's LesionSpec refuses (its bounds)."""
    try:
        LesionSpec.model_validate(spec)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])[:200] or None
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ApiError(422, "invalid_input", f"invalid spec field {field}: {message}", field=field) from None
    return spec


def parse_json(text: str | bytes, what: str) -> Any:
    """``json.loads`` whose every failure is a 422 naming ``what``: not JSON, not UTF-8, nested too
    deep (RecursionError), or an integer of more digits than Python converts (ValueError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{what} is not valid JSON: {exc.msg}"
    except UnicodeDecodeError:
        message = f"{what} is not UTF-8 text"
    except RecursionError:
        message = f"{what} is nested too deeply"
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        message = f"{what} is not acceptable JSON: {str(exc).splitlines()[0][:120]}"
    raise ApiError(422, "invalid_input", message, field="spec" if what == "spec" else None)


@lru_cache(maxsize=2)
def _demo(kind: str) -> DemoInput:
    return demo_input(kind)


def _read_upload(path: Path, folder: Path, settings: Settings, field: str = "scan") -> Scan:
    """Read an uploaded scan (or label map) within the limits; the upload is deleted once read.

    ``path`` is the neutral stored name (``scan.nii.gz``, ``scan.zip``...), which is also the name
    the bundle's metadata records: the client's own file name never goes further than the upload.
    """
    try:
        if path.name.endswith(".zip"):
            dicom = _unzip(path, folder / "dicom", settings)
            try:
                return read_dicom_series(dicom, max_voxels=settings.max_voxels)
            finally:
                shutil.rmtree(dicom, ignore_errors=True)
        return read_nifti(path, max_voxels=settings.max_voxels, max_bytes=settings.max_scan_bytes)
    except InputTooLargeError as exc:
        raise ApiError(413, "payload_too_large", str(exc), field=field) from None
    except InvalidInputError as exc:
        status, kind = (413, "payload_too_large") if "voxels, over" in str(exc) else (422, "invalid_input")
        raise ApiError(status, kind, str(exc), field=field) from None
    finally:
        path.unlink(missing_ok=True)


def _unzip(path: Path, dest: Path, settings: Settings) -> Path:
    """Extract a DICOM zip safely: no absolute paths or '..', at most ``max_zip_entries`` files,
    and at most ``max_scan_bytes`` written in all — counted on the bytes actually inflated (a zip's
    declared sizes can lie), each entry streamed to disk in 1 MiB chunks."""
    dest.mkdir()
    too_big = ApiError(
        413,
        "payload_too_large",
        f"the DICOM zip expands beyond the limit of {settings.max_scan_bytes:,} bytes",
        field="scan",
    )
    written = 0
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > settings.max_zip_entries:
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"the DICOM zip holds {len(infos):,} files, more than {settings.max_zip_entries:,}",
                    field="scan",
                )
            if sum(i.file_size for i in infos) > settings.max_scan_bytes:
                raise too_big
            for i, info in enumerate(infos):
                if info.filename.startswith(("/", "\\")) or ".." in Path(info.filename).parts:
                    raise ApiError(422, "invalid_input", "the zip holds unsafe paths", field="scan")
                with zf.open(info) as src, (dest / f"{i:06d}.dcm").open("wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > settings.max_scan_bytes:
                            raise too_big
                        out.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, zlib.error):
        raise ApiError(
            422, "invalid_input", "the scan .zip is corrupt or unsupported", field="scan"
        ) from None
    return dest


@lru_cache(maxsize=2)
def _archetypes(root: Path | None) -> ArchetypeRegistry:
    """The shipped archetypes plus the server's folder, read once (edit them, then restart)."""
    return load_registry(root)


@lru_cache(maxsize=2)
def _library(root: Path) -> Library:
    """The server's lesion library, opened once (its index is read-only while the server runs)."""
    return Library.open(root)


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
        scan = _read_upload(req.scan_path, folder, settings)
        if req.labels_path is not None:
            labels = _read_upload(req.labels_path, folder, settings, "labels").raw
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
        library=None if settings.library is None else _library(settings.library),
        archetypes=_archetypes(settings.archetypes),
    )
    progress("write", 0.97)
    name = f"longisynth-{digest[:12]}-seed{study.spec.seed}.zip"
    path = write_bundle(study, folder / name)
    return Result(path, name, str(study.spec.family.value if study.spec.family else ""))


def _check_timepoints(scans: Any, prompt: str, req: Request, settings: Settings) -> None:
    """Refuse too many timepoints before the heavy work (cheap: resolves the spec only)."""
    library = None if settings.library is None else _library(settings.library)
    resolved = resolve(
        scans,
        prompt,
        req.spec,
        seed=req.seed,
        contrast=req.contrast,
        lenient=req.lenient,
        library=library,
        archetypes=_archetypes(settings.archetypes),
    )
    n = len(resolved.timepoints_days or [])
    if n > settings.max_timepoints:
        raise ApiError(
            422,
            "invalid_input",
            f"{n} timepoints requested; this server allows at most {settings.max_timepoints}",
            field="timepoints_days",
        )
