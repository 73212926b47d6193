"""Measurements of a lesion mask: volume (mm³), longest diameter (mm), centroid (world mm)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from longisynth.geometry import Geometry


def volume_mm3(mask: NDArray[np.bool_], geometry: Geometry) -> float:
    """Lesion volume in mm³ (voxel count × voxel volume)."""
    return float(np.count_nonzero(mask)) * geometry.voxel_volume_mm3


def longest_diameter_mm(mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float]) -> float:
    """Longest diameter of a mask in mm.

    The largest distance between two boundary-voxel centres (searched on their convex hull, so it is
    fast for large masks), plus the extent of one voxel along that direction (voxels are boxes, the
    diameter runs from face to face). 0 for an empty mask; the largest voxel side for one voxel.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return 0.0
    sl = ndimage.find_objects(m.astype(np.uint8))[0]
    sub = m[sl]
    boundary = sub & ~ndimage.binary_erosion(sub, border_value=0)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    pts = np.argwhere(boundary).astype(np.float64) * spacing
    if len(pts) == 1:
        return float(spacing.max())
    if len(pts) > 8:
        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # flat or collinear: joggle the input, vertices are still input points
            pts = pts[ConvexHull(pts, qhull_options="QJ").vertices]
    best, i_best, j_best = -1.0, 0, 0
    for start in range(0, len(pts), 2048):  # chunked so that memory stays O(2048·n)
        block = pts[start : start + 2048]
        d2 = np.sum((block[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
        k = int(np.argmax(d2))
        if d2.flat[k] > best:
            best = float(d2.flat[k])
            i_best, j_best = start + k // len(pts), k % len(pts)
    dist = math.sqrt(best)
    u = np.abs(pts[j_best] - pts[i_best]) / dist
    return float(dist + np.sum(u * spacing))


def centroid_world_mm(mask: NDArray[np.bool_], geometry: Geometry) -> tuple[float, float, float]:
    """Centre of mass of the mask, world RAS+ mm (of the grid ``geometry`` the mask lives on)."""
    if not mask.any():
        return (float("nan"),) * 3  # type: ignore[return-value]
    c = geometry.voxel_to_world(np.argwhere(mask).mean(axis=0))
    return (float(c[0]), float(c[1]), float(c[2]))


def equivalent_radius_mm(volume: float) -> float:
    """Radius (mm) of the sphere with the given volume (mm³)."""
    return float((3.0 * volume / (4.0 * np.pi)) ** (1.0 / 3.0))


def axial_diameters_mm(
    mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float], axial_axis: int
) -> tuple[float, float]:
    """Long and short axis (mm) of a mask on the axial slice where its cross-section is largest.

    The long axis is the longest in-plane diameter; the short axis the largest extent perpendicular
    to it on the same slice (Fleischner 2017, MacMahon et al., Radiology 2017; Lung-RADS). Both run
    face to face like :func:`longest_diameter_mm`. ``axial_axis`` is the array axis of the slices.
    (0, 0) for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return 0.0, 0.0
    others = [a for a in range(3) if a != axial_axis]
    k = int(np.argmax(m.sum(axis=tuple(others))))
    section = np.take(m, k, axis=axial_axis)
    sp = np.asarray([spacing_mm[a] for a in others], dtype=np.float64)
    pts = np.argwhere(section).astype(np.float64) * sp
    if len(pts) == 1:
        return float(sp.max()), float(sp.min())
    hull = pts
    if len(pts) > 4:
        try:
            hull = pts[ConvexHull(pts).vertices]
        except QhullError:  # collinear pixels: every point is on the hull
            hull = pts
    d2 = np.sum((hull[:, None, :] - hull[None, :, :]) ** 2, axis=-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    length = math.sqrt(float(d2[i, j]))
    u = (hull[j] - hull[i]) / length
    n = np.array([-u[1], u[0]])
    long_mm = length + float(np.abs(u) @ sp)
    across = pts @ n
    short_mm = float(across.max() - across.min()) + float(np.abs(n) @ sp)
    return float(long_mm), float(short_mm)


def clinical_diameter_mm(
    mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float], axial_axis: int
) -> float:
    """Clinical size of a nodule (mm): mean of long and short axis on its largest axial slice
    (:func:`axial_diameters_mm`; Fleischner 2017, Lung-RADS)."""
    long_mm, short_mm = axial_diameters_mm(mask, spacing_mm, axial_axis)
    return 0.5 * (long_mm + short_mm)
