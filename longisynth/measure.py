"""Measurements of a lesion mask: volume (mm³), longest diameter (mm), centroid (world mm)."""

from __future__ import annotations

import contextlib

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from longisynth.geometry import Geometry


def volume_mm3(mask: NDArray[np.bool_], geometry: Geometry) -> float:
    """Lesion volume in mm³ (voxel count × voxel volume)."""
    return float(np.count_nonzero(mask)) * geometry.voxel_volume_mm3


def longest_diameter_mm(mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float]) -> float:
    """Longest 3D diameter in mm: the farthest pair of voxel *corners* of the mask.

    Corners rather than centres, so a single voxel measures its diagonal and a digitised ball of
    diameter d measures ≈ d (not d − one voxel). The farthest pair lies on the convex hull.
    """
    if not mask.any():
        return 0.0
    surface = mask & ~ndimage.binary_erosion(mask)
    idx = np.argwhere(surface).astype(np.float64)
    offsets = np.array([[a, b, c] for a in (-0.5, 0.5) for b in (-0.5, 0.5) for c in (-0.5, 0.5)])
    pts = (idx[:, None, :] + offsets[None, :, :]).reshape(-1, 3) * np.asarray(spacing_mm)
    # Flat/degenerate point sets have no hull: brute force on all (subsampled) points below.
    with contextlib.suppress(QhullError, ValueError):
        pts = pts[ConvexHull(pts).vertices]
    if len(pts) > 4000:
        pts = pts[:: len(pts) // 4000 + 1]
    diff = pts[:, None, :] - pts[None, :, :]
    return float(np.sqrt((diff**2).sum(-1)).max())


def centroid_world_mm(mask: NDArray[np.bool_], geometry: Geometry) -> tuple[float, float, float]:
    """Centre of mass of the mask, world RAS+ mm (of the grid ``geometry`` the mask lives on)."""
    if not mask.any():
        return (float("nan"),) * 3  # type: ignore[return-value]
    c = geometry.voxel_to_world(np.argwhere(mask).mean(axis=0))
    return (float(c[0]), float(c[1]), float(c[2]))


def equivalent_radius_mm(volume: float) -> float:
    """Radius (mm) of the sphere with the given volume (mm³)."""
    return float((3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0))
