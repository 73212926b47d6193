"""Image measurements used by the evaluation: mass-effect zone, anatomy stability, Jacobians, intensities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.geometry import Geometry

SLAB = 16


def dilate_mm(mask: NDArray[np.bool_], geometry: Geometry, radius_mm: float) -> NDArray[np.bool_]:
    """Voxels within ``radius_mm`` (world distance, mm) of ``mask``; computed on the mask's bounding box."""
    out = np.zeros(mask.shape, dtype=bool)
    if not mask.any() or radius_mm <= 0:
        return mask.copy()
    spacing = np.asarray(geometry.spacing_mm)
    pad = np.ceil(radius_mm / spacing).astype(int) + 1
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, mask.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    dist = ndimage.distance_transform_edt(~mask[sl], sampling=spacing)
    out[sl] = dist <= radius_mm
    return out


@dataclass
class PairStats:
    """Two images compared outside a zone: NCC (1.0 = identical), max |difference| (physical units)."""

    ncc: float
    max_abs_diff: float
    changed_voxels: int
    outside_voxels: int


def compare_outside(a: NDArray[Any], b: NDArray[Any], zone: NDArray[np.bool_], slope: float) -> PairStats:
    """Normalised cross-correlation and max abs difference of ``a`` and ``b`` where ``zone`` is False.

    Works slab by slab on the stored dtype (float64 sums), so memory stays a few slabs; ``slope`` maps
    stored differences to physical units (HU for CT).
    """
    n = 0
    sa = sb = saa = sbb = sab = 0.0
    max_diff = 0.0
    changed = 0
    for k in range(0, a.shape[2], SLAB):
        keep = ~zone[:, :, k : k + SLAB]
        x = a[:, :, k : k + SLAB][keep].astype(np.float64)
        y = b[:, :, k : k + SLAB][keep].astype(np.float64)
        if x.size == 0:
            continue
        d = np.abs(x - y)
        max_diff = max(max_diff, float(d.max()))
        changed += int(np.count_nonzero(d))
        n += x.size
        sa += float(x.sum())
        sb += float(y.sum())
        saa += float(np.dot(x, x))
        sbb += float(np.dot(y, y))
        sab += float(np.dot(x, y))
    if n == 0:
        return PairStats(1.0, 0.0, 0, 0)
    cov = sab - sa * sb / n
    va, vb = saa - sa * sa / n, sbb - sb * sb / n
    if va <= 0 or vb <= 0:
        ncc = 1.0 if changed == 0 else 0.0
    else:
        ncc = float(np.clip(cov / np.sqrt(va * vb), -1.0, 1.0))
    return PairStats(ncc, max_diff * abs(slope), changed, n)


def jacobian_stats(displacement_mm: NDArray[np.float32], geometry: Geometry) -> dict[str, float] | None:
    """Jacobian determinant of x ↦ x + d(x) (dimensionless) over the voxels where d ≠ 0 (plus a 1-voxel rim).

    Derivatives by central differences in voxel units, mapped to world mm with the inverse affine, so
    oblique grids are handled. Returns min, p1, median, max and the voxel count, or None for a zero field.
    """
    support = np.any(displacement_mm != 0, axis=-1)
    if not support.any():
        return None
    idx = np.argwhere(support)
    # 2-voxel margin: the determinant is read on support + 1 voxel, where differences stay central
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = np.minimum(idx.max(axis=0) + 3, support.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    d = displacement_mm[sl].astype(np.float64)
    # G[..., c, k] = ∂d_c/∂i_k (per voxel); ∂d/∂x = G · A⁻¹ with A the 3×3 voxel→world matrix.
    G = np.zeros((*d.shape[:3], 3, 3))
    for c in range(3):
        grads = np.gradient(d[..., c]) if min(d.shape[:3]) > 1 else [np.zeros(d.shape[:3])] * 3
        for k in range(3):
            G[..., c, k] = grads[k]
    J = np.eye(3) + G @ np.linalg.inv(geometry.affine[:3, :3])
    det = np.linalg.det(J)[ndimage.binary_dilation(support[sl])]
    return {
        "min": float(det.min()),
        "p1": float(np.percentile(det, 1)),
        "median": float(np.median(det)),
        "max": float(det.max()),
        "voxels": float(det.size),
    }


def label_intensities(
    raw: NDArray[Any], slope: float, inter: float, mask: NDArray[np.uint8]
) -> dict[str, dict[str, float]]:
    """Mean / std / voxel count of the physical intensity inside each non-zero label (and 'lesion' = all)."""
    out: dict[str, dict[str, float]] = {}
    lesion = mask > 0
    if not lesion.any():
        return out
    values = raw[lesion].astype(np.float64) * slope + inter
    labels = mask[lesion]
    out["lesion"] = {"mean": float(values.mean()), "std": float(values.std()), "voxels": float(values.size)}
    for lab in np.unique(labels):
        v = values[labels == lab]
        out[str(int(lab))] = {"mean": float(v.mean()), "std": float(v.std()), "voxels": float(v.size)}
    return out


def reference_stats(
    raw: NDArray[Any], slope: float, inter: float, mask: NDArray[np.uint8]
) -> tuple[float, float]:
    """Mean and std of the image outside the lesion over its foreground (non-zero voxels, e.g. the brain).

    MRI intensities are arbitrary, so lesion means are reported as z-scores against this reference.
    Falls back to the whole image when the image has no zero background.
    """
    n = 0
    s = ss = 0.0
    background = float(raw.min())
    for k in range(0, raw.shape[2], SLAB):
        r = raw[:, :, k : k + SLAB]
        keep = (r != background) & (mask[:, :, k : k + SLAB] == 0)
        v = r[keep].astype(np.float64) * slope + inter
        n += v.size
        s += float(v.sum())
        ss += float(np.dot(v, v))
    if n < 2:
        v = raw.astype(np.float64) * slope + inter
        return float(v.mean()), float(v.std())
    mean = s / n
    return mean, float(np.sqrt(max(ss / n - mean * mean, 0.0)))
