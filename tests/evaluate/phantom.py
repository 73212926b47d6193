"""A hand-built bundle: a sphere growing by a known exponential law on an anisotropic, flipped grid."""

from __future__ import annotations

import gzip
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

SPACING_MM = (0.8, 0.8, 1.5)
SHAPE = (80, 80, 44)
DAYS = [0.0, 90.0, 180.0, 270.0]
VDT_DAYS = 200.0
FINAL_RADIUS_MM = 24.0
AFFINE = np.array(
    [[-0.8, 0, 0, 20.0], [0, -0.8, 0, 30.0], [0, 0, 1.5, -10.0], [0, 0, 0, 1]], dtype=np.float64
)  # LPS-like: flipped x and y


def radius_mm(day: float) -> float:
    """Sphere radius (mm) with V(t) = V_end·2^((t − t_end)/VDT)."""
    return FINAL_RADIUS_MM * 2.0 ** ((day - DAYS[-1]) / VDT_DAYS / 3.0)


def sphere(r_mm: float) -> np.ndarray:
    """Boolean ball of radius ``r_mm`` at the grid centre (world-distance in mm)."""
    idx = [np.arange(n) - (n - 1) / 2 for n in SHAPE]
    x, y, z = (idx[k].reshape([-1 if j == k else 1 for j in range(3)]) * SPACING_MM[k] for k in range(3))
    return (x**2 + y**2 + z**2) <= r_mm**2


def _nii(arr: np.ndarray) -> bytes:
    img = nib.Nifti1Image(arr, AFFINE)
    img.header.set_slope_inter(1.0, 0.0)
    return gzip.compress(img.to_bytes(), mtime=0)


def write_phantom_bundle(
    path: Path, *, tamper: str | None = None, displacement: bool = False
) -> dict[str, Any]:
    """Write the phantom bundle; ``tamper`` = "shift_mask" (non-nested) or "anatomy" (change far tissue)."""
    rng = np.random.default_rng(0)
    anatomy = (-800 + 40 * rng.standard_normal(SHAPE)).astype(np.int16)
    spec = {
        "family": "lung_nodule",
        "nodule_type": "solid",
        "diameter_mm": 2 * FINAL_RADIUS_MM,
        "growth": {"law": "exponential", "doubling_time_days": VDT_DAYS},
        "timepoints_days": DAYS,
    }
    meta = {
        "format_version": "1.0",
        "spec": spec,
        "timepoints": [{"index": i, "days": d} for i, d in enumerate(DAYS)],
        "simulation": {"influence_radius_mm": 3.0},
    }
    with zipfile.ZipFile(path, "w") as zf:
        for i, day in enumerate(DAYS):
            mask = sphere(radius_mm(day))
            if tamper == "shift_mask" and i == 2:
                mask = np.roll(mask, 6, axis=0)
            ct = anatomy.copy()
            ct[mask] = 40
            if tamper == "anatomy" and i == 3:
                ct[2, 2, 2] += 100  # far from the lesion
            zf.writestr(f"timepoint_{i:02d}/ct.nii.gz", _nii(ct))
            zf.writestr(f"timepoint_{i:02d}/mask.nii.gz", _nii(mask.astype(np.uint8)))
            if displacement:
                field = np.zeros((*SHAPE, 1, 3), dtype=np.float32)
                zone = sphere(radius_mm(day) + 4.0) & ~mask
                field[zone, 0, 0] = 0.2
                zf.writestr(f"timepoint_{i:02d}/displacement.nii.gz", _nii(field))
        zf.writestr("metadata.json", json.dumps(meta))
    return meta


def expected_volume_mm3(day: float) -> float:
    return 4.0 / 3.0 * math.pi * radius_mm(day) ** 3
