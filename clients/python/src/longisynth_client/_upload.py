"""Request bodies: the scan upload (NIfTI file, DICOM folder zipped on the fly, or zip) and JSON."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from longisynth_client._constants import UPLOAD_CHUNK

PathLike = str | os.PathLike[str]
SpecLike = Mapping[str, Any] | BaseModel
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

BodyFactory = Callable[[], "Body"]
_CONTENT_TYPES = {
    ".nii": "application/octet-stream",
    ".nii.gz": "application/gzip",
    ".zip": "application/zip",
}


@dataclass
class Body:
    """An encoded request body with its headers (``Content-Type``, ``Content-Length``)."""

    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def zip_folder(folder: PathLike) -> bytes:
    """Zip a DICOM folder in memory: every regular file below it (hidden ones skipped), in sorted
    relative-path order with a fixed timestamp, so the same folder gives the same bytes."""
    root = Path(folder)
    files = sorted(
        (
            p
            for p in root.rglob("*")
            if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise ValueError(f"DICOM folder {root} holds no files")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for p in files:
            info = zipfile.ZipInfo(p.relative_to(root).as_posix(), date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, p.read_bytes(), compresslevel=1)
    return buf.getvalue()


def read_scan(scan: PathLike) -> tuple[str, bytes, str]:
    """``(filename, bytes, content type)`` of a scan: a ``.nii``/``.nii.gz`` file, a ``.zip``, or a
    DICOM folder (zipped in memory). Read anew on each call, so a retried upload re-reads it."""
    path = Path(scan)
    if path.is_dir():
        name = (path.resolve().name or "dicom") + ".zip"
        return name, zip_folder(path), "application/zip"
    if not path.is_file():
        raise FileNotFoundError(f"scan not found: {path}")
    suffix = _suffix(path)
    if suffix not in _CONTENT_TYPES:
        raise ValueError(f"scan must be a .nii, .nii.gz, .zip or a DICOM folder, got {path.name}")
    return path.name, path.read_bytes(), _CONTENT_TYPES[suffix]


def spec_to_dict(spec: SpecLike) -> dict[str, Any]:
    """A ``LesionSpec``-like dict from a mapping or any pydantic model (``None`` fields dropped)."""
    if isinstance(spec, BaseModel):
        return spec.model_dump(mode="json", exclude_none=True)
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"spec must be a dict or a pydantic model, not {type(spec).__name__}")


def generate_form(
    scan: PathLike,
    *,
    prompt: str | None,
    spec: SpecLike | None,
    labels: PathLike | None,
    seed: int | None,
    contrast: str | None,
    lenient: bool,
) -> BodyFactory:
    """A factory of the ``multipart/form-data`` body of ``POST /generate`` and ``POST /jobs``.

    Argument errors (unknown suffix, missing file, bad spec type) are raised here, before any
    request; the files themselves are read each time the factory is called.
    """
    scan_path = Path(scan)
    if not scan_path.exists():
        raise FileNotFoundError(f"scan not found: {scan_path}")
    if not scan_path.is_dir() and _suffix(scan_path) not in _CONTENT_TYPES:
        raise ValueError(f"scan must be a .nii, .nii.gz, .zip or a DICOM folder, got {scan_path.name}")
    if labels is not None and not Path(labels).is_file():
        raise FileNotFoundError(f"labels not found: {labels}")
    data: dict[str, str] = {"lenient": "true" if lenient else "false"}
    if prompt is not None:
        data["prompt"] = prompt
    if spec is not None:
        data["spec"] = json.dumps(spec_to_dict(spec))
    if seed is not None:
        data["seed"] = str(int(seed))
    if contrast is not None:
        data["contrast"] = contrast

    def build() -> Body:
        files: dict[str, tuple[str, bytes, str]] = {"scan": read_scan(scan)}
        if labels is not None:
            lp = Path(labels)
            files["labels"] = (lp.name, lp.read_bytes(), _CONTENT_TYPES.get(_suffix(lp), "application/gzip"))
        request = httpx.Request("POST", "http://body.invalid/", data=data, files=files)
        content = request.read()
        return Body(
            content,
            {"Content-Type": request.headers["Content-Type"], "Content-Length": str(len(content))},
        )

    return build


def demo_json(
    kind: str, *, prompt: str | None, spec: SpecLike | None, seed: int | None, demo_flag: bool = False
) -> BodyFactory:
    """A factory of the JSON body of ``POST /generate/demo`` (plus ``"demo": true`` for ``POST /jobs``)."""
    obj: dict[str, Any] = {
        "kind": kind,
        "prompt": prompt,
        "spec": spec_to_dict(spec) if spec is not None else None,
        "seed": seed,
    }
    if demo_flag:
        obj["demo"] = True
    content = json.dumps(obj).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(content))}
    return lambda: Body(content, dict(headers))


def iter_chunks(content: bytes, report: Callable[[int, int], None]) -> Iterator[bytes]:
    """``content`` in chunks, calling ``report(sent, total)`` before the first and after each."""
    total = len(content)
    report(0, total)
    for start in range(0, total, UPLOAD_CHUNK):
        chunk = content[start : start + UPLOAD_CHUNK]
        yield chunk
        report(start + len(chunk), total)


async def aiter_chunks(content: bytes, report: Callable[[int, int], None]) -> AsyncIterator[bytes]:
    """Async twin of :func:`iter_chunks`."""
    for chunk in iter_chunks(content, report):
        yield chunk
