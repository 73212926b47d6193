"""Small hand-built real-lesion folders and bundles for the realism yardstick (no engine, seconds).

A nodule is an ellipsoid on a −850 HU background with Gaussian noise; ``texture`` adds HU
heterogeneity inside it and ``blur`` softens its edge, so two "obviously different" groups and two
draws of one group can be made at will.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

SHAPE = (40, 40, 8)
SPACING_MM = (0.7, 0.7, 2.0)
AFFINE = np.diag([-0.7, -0.7, 2.0, 1.0])  # LPS-like in-plane flip; z is the slice axis


def nodule(
    rng: np.random.Generator, texture: float, blur: float, shape: tuple[int, ...] = SHAPE
) -> tuple[np.ndarray, np.ndarray]:
    """(HU int16, mask uint8) of one nodule; radii 3–6 mm in-plane, random tilt of the long axis."""
    radii = rng.uniform(3.0, 6.0, 2)
    angle = rng.uniform(0, np.pi)
    idx = np.indices(shape).astype(float)
    c = (np.asarray(shape) - 1) / 2
    x = (idx[0] - c[0]) * SPACING_MM[0]
    y = (idx[1] - c[1]) * SPACING_MM[1]
    z = (idx[2] - c[2]) * SPACING_MM[2]
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    mask = (u / radii[0]) ** 2 + (v / radii[1]) ** 2 + (z / 4.0) ** 2 <= 1.0
    inside = 20.0 + texture * ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) * 3.0
    hu = np.where(mask, inside, -850.0)
    hu = ndimage.gaussian_filter(hu, (blur, blur, 0.3)) + 25.0 * rng.standard_normal(shape)
    return np.round(hu).astype(np.int16), mask.astype(np.uint8)


def _nii_bytes(arr: np.ndarray, affine: np.ndarray) -> bytes:
    img = nib.Nifti1Image(arr, affine)
    img.header.set_slope_inter(1.0, 0.0)
    return gzip.compress(img.to_bytes(), mtime=0)


def write_real_lung_folder(
    folder: Path, n_patients: int, rng: np.random.Generator, texture: float, blur: float, per_patient: int = 2
) -> Path:
    """A ``lidc_nodules``-layout folder: image/, mask/ and nodules.csv (patient_id column)."""
    (folder / "image").mkdir(parents=True)
    (folder / "mask").mkdir()
    rows = ["patient_id,nodule_id"]
    for p in range(n_patients):
        pid = f"PAT-{p:04d}"
        for k in range(per_patient):
            hu, mask = nodule(rng, texture, blur)
            name = f"{pid}_R_{k + 1}.nii.gz"
            (folder / "image" / name).write_bytes(_nii_bytes(hu, AFFINE))
            (folder / "mask" / name).write_bytes(_nii_bytes(mask, AFFINE))
            rows.append(f"{pid},{k + 1}")
    (folder / "nodules.csv").write_text("\n".join(rows) + "\n")
    return folder


def write_bundle(
    path: Path,
    family: str,
    host_sha256: list[str],
    timepoints: list[dict[str, np.ndarray]],
    affine: np.ndarray = AFFINE,
) -> Path:
    """A minimal bundle: metadata (family, input sha256) and, per timepoint, images + mask."""
    meta = {
        "format_version": "1.0",
        "spec": {"family": family},
        "input": {"files": [{"contrast": "x", "sha256": s} for s in host_sha256]},
        "timepoints": [{"index": i, "days": 90.0 * i} for i in range(len(timepoints))],
    }
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        for i, members in enumerate(timepoints):
            for name, arr in members.items():
                zf.writestr(f"timepoint_{i:02d}/{name}.nii.gz", _nii_bytes(arr, affine))
    return path


def write_lung_bundles(
    folder: Path, n_hosts: int, per_host: int, rng: np.random.Generator, texture: float, blur: float
) -> list[Path]:
    """Synthetic-class lung bundles, ``per_host`` studies on each of ``n_hosts`` hosts, 2 timepoints each."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for h in range(n_hosts):
        host = hashlib.sha256(f"host{h}".encode()).hexdigest()
        for k in range(per_host):
            tps = []
            for _ in range(2):
                hu, mask = nodule(rng, texture, blur)
                tps.append({"ct": hu, "mask": mask})
            out.append(write_bundle(folder / f"host{h}_{k}.zip", "lung_nodule", [host], tps))
    return out


BRAIN_SHAPE = (40, 40, 32)


def glioma(rng: np.random.Generator, centre: tuple[int, int, int]) -> np.ndarray:
    """Label map: enhancing shell (3) around a necrotic core (1) inside oedema (2), radius ≈ 7–9 mm."""
    idx = np.indices(BRAIN_SHAPE).astype(float)
    r = np.sqrt(sum((idx[a] - centre[a]) ** 2 for a in range(3)))
    r = r * (1 + 0.1 * ndimage.gaussian_filter(rng.standard_normal(BRAIN_SHAPE), 2.0))
    outer = rng.uniform(7.0, 9.0)
    labels = np.zeros(BRAIN_SHAPE, dtype=np.uint8)
    labels[r <= outer] = 2
    labels[r <= outer * 0.6] = 3
    labels[r <= outer * 0.35] = 1
    return labels


def brain_images(rng: np.random.Generator, labels: np.ndarray, bright: float) -> dict[str, np.ndarray]:
    """Four skull-stripped contrasts (int16, zero outside a ball 'brain') with the tumour drawn in."""
    idx = np.indices(BRAIN_SHAPE).astype(float)
    c = (np.asarray(BRAIN_SHAPE) - 1) / 2
    brain = sum(((idx[a] - c[a]) / (0.48 * BRAIN_SHAPE[a])) ** 2 for a in range(3)) <= 1.0
    out = {}
    for k, name in enumerate(("flair", "t1", "t1ce", "t2")):
        img = 400 + 40 * rng.standard_normal(BRAIN_SHAPE)
        img = img + bright * (k + 1) * 30 * (labels == 2) + bright * 60 * (labels == 3) - 50 * (labels == 1)
        out[name] = np.where(brain, img, 0).astype(np.int16)
    return out
