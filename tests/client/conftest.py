"""Fixtures of the client tests: a synthetic bundle zip, fast sleeps, multipart parsing."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nibabel as nib
import numpy as np
import pytest
from longisynth_client import _client

SHAPE = (4, 5, 6)
AFFINE = np.array(
    [[-0.7, 0, 0, 10.0], [0, -0.7, 0, 20.0], [0, 0, 1.25, -30.0], [0, 0, 0, 1]], dtype=np.float64
)
LUNG_LABELS = {"0": "background", "1": "solid component", "2": "ground-glass component"}


def nifti_gz(data: np.ndarray, affine: np.ndarray = AFFINE) -> bytes:
    """``.nii.gz`` bytes of an array."""
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes())


def image_data(index: int, channel: int) -> np.ndarray:
    """The synthetic image of a timepoint / channel: distinct, predictable values."""
    return (np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE) + 1000 * index + 100 * channel).astype(
        np.int16
    )


def mask_data(index: int) -> np.ndarray:
    """A label map growing with the timepoint: label 1 core, label 2 rim."""
    m = np.zeros(SHAPE, dtype=np.uint8)
    m[1 : 2 + index, 1:3, 1:4] = 2
    m[1, 1, 1 : 2 + index] = 1
    return m


def build_bundle(
    contrasts: tuple[str, ...] = ("ct",),
    n_timepoints: int = 2,
    labels: dict[str, str] | None = None,
    extra: dict[str, bytes] | None = None,
    seed: int = 7,
) -> bytes:
    """A bundle zip with the engine's layout (``metadata.json``, ``timepoint_NN/*.nii.gz``...);
    ``seed`` goes into the metadata (bundles of different seeds have different case ids)."""
    buf = io.BytesIO()
    timepoints: list[dict[str, Any]] = []
    with zipfile.ZipFile(buf, "w") as zf:
        for t in range(n_timepoints):
            files = []
            for c, name in enumerate(contrasts):
                zf.writestr(f"timepoint_{t:02d}/{name}.nii.gz", nifti_gz(image_data(t, c)))
                files.append(f"{name}.nii.gz")
            zf.writestr(f"timepoint_{t:02d}/mask.nii.gz", nifti_gz(mask_data(t)))
            files.append("mask.nii.gz")
            timepoints.append(
                {
                    "index": t,
                    "days": 90.0 * t,
                    "files": files,
                    "lesion_volume_mm3": 100.0 + 50 * t,
                    "simulated_volume_mm3": 101.0,
                    "longest_diameter_mm": 6.0 + t,
                    "centroid_mm": [1.5, -2.0, 30.0 + t],
                }
            )
        meta = {
            "format_version": "1.0",
            "spec": {"family": "lung_nodule" if "ct" in contrasts else "glioma"},
            "seed": seed,
            "input": {"files": [{"contrast": c, "name": f"{c}.nii.gz"} for c in contrasts]},
            "labels": labels or LUNG_LABELS,
            "timepoints": timepoints,
        }
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("preview.png", b"\x89PNG fake")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_response(
    data: bytes | None = None, filename: str = "longisynth-0123456789ab-seed7.zip"
) -> httpx.Response:
    """A ``200 application/zip`` bundle response."""
    return httpx.Response(
        200,
        content=data if data is not None else build_bundle(),
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def error_response(status: int, type_: str, message: str = "nope", **extra: Any) -> httpx.Response:
    """An API.md error body."""
    return httpx.Response(status, json={"error": {"type": type_, "message": message, **extra}})


def parse_multipart(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """``{field: (filename, bytes)}`` of a ``multipart/form-data`` request."""
    body = request.read()
    match = re.search(r"boundary=([^;]+)", request.headers["content-type"])
    assert match, request.headers["content-type"]
    boundary = match.group(1).strip('"').encode()
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary)[1:-1]:
        head, _, data = part[2:].partition(b"\r\n\r\n")
        head_text = head.decode()
        name = re.search(r'name="([^"]*)"', head_text)
        filename = re.search(r'filename="([^"]*)"', head_text)
        assert name
        out[name.group(1)] = (filename.group(1) if filename else None, data[:-2])
    return out


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Patch the client's sleeps (sync and async); return the list of requested delays."""
    delays: list[float] = []

    def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def fake_asleep(seconds: float) -> None:
        delays.append(seconds)

    monkeypatch.setattr(_client, "_sleep", fake_sleep)
    monkeypatch.setattr(_client, "_asleep", fake_asleep)
    return delays


@pytest.fixture
def nifti_scan(tmp_path: Path) -> Path:
    """A tiny ``.nii.gz`` scan on disk."""
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(nifti_gz(image_data(0, 0)))
    return path


Handler = Callable[[httpx.Request], httpx.Response]


def mock(handler: Handler) -> httpx.MockTransport:
    """A mock transport (a readable alias)."""
    return httpx.MockTransport(handler)


def recorder(seen: list[httpx.Request], response: Callable[[], httpx.Response]) -> httpx.MockTransport:
    """A transport that appends each request to ``seen`` and answers ``response()``."""

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return response()

    return mock(handler)
