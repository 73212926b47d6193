"""How far a generated lesion is from the real lesions of the library (the memorisation report).

Every lesion — each library lesion, and each timepoint of a transplanted one — is summarised by a
scale-free descriptor: its normalised image (HU for CT; z-scores of the brain for MRI, per
contrast) sampled on a :data:`GRID`³ cube of world-axis-aligned points centred on the lesion's
centroid, spanning :data:`SPAN` × its largest centroid-to-boundary distance r, with everything
outside its mask set to the tissue reference (lung parenchyma, or z = 0), blurred by a Gaussian of
:data:`BLUR` × r (so that a lesion and its copy on a coarser host grid compare at the same scale).
Distances are the RMS difference of two descriptors, in the library's units (HU, or brain
standard deviations).

A copied lesion at baseline is at distance ≈ 0 from its source (it *is* the source); growth moves it
away. The library's own scale is the median distance from each library lesion to its nearest other
library lesion (``nn_median``): a generated lesion far below it is a near copy of a real patient's
lesion, one at or above it is as different from its source as two real lesions are from each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

GRID = 12  # descriptor points per axis
SPAN = 2.5  # cube side / the lesion's largest centroid-to-boundary distance
BLUR = 0.25  # Gaussian sigma / that distance: descriptors compare lesions at a fixed relative scale
DESCRIPTORS = "descriptors.npz"
CT_OUTSIDE_HU = -850.0  # lung parenchyma: the CT value outside the mask, HU


def descriptor(
    images: Mapping[str, NDArray[np.floating]],
    mask: NDArray[np.bool_],
    affine: NDArray[np.float64],
    contrasts: list[str],
) -> NDArray[np.float32]:
    """The lesion's descriptor (see the module docstring); ``images`` in normalised units on the
    grid of ``mask`` whose voxel → world affine is ``affine`` (mm)."""
    idx = np.argwhere(mask).astype(np.float64)
    if idx.size == 0:
        return np.full(GRID**3 * len(contrasts), np.nan, dtype=np.float32)
    center = idx.mean(axis=0)
    radius = float(np.linalg.norm((idx - center) @ affine[:3, :3].T, axis=1).max()) + 0.5
    half = 0.5 * SPAN * radius
    axis = np.linspace(-half, half, GRID)
    offsets = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    points = (offsets @ np.linalg.inv(affine[:3, :3]).T + center).T
    out = []
    # Low-pass at a fixed fraction of the lesion's size, so that a lesion and its copy on a coarser
    # grid (a host scan) compare at the same scale rather than at the finer grid's resolution.
    sigma = BLUR * radius / np.linalg.norm(affine[:3, :3], axis=0)
    for c in contrasts:
        outside = CT_OUTSIDE_HU if c == "ct" else 0.0
        values = np.where(mask, np.nan_to_num(np.asarray(images[c], dtype=np.float32), nan=outside), outside)
        values = ndimage.gaussian_filter(values, sigma, mode="constant", cval=outside)
        out.append(ndimage.map_coordinates(values, points, order=1, cval=outside, prefilter=False))
    return np.concatenate(out).astype(np.float32)


def distance(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """RMS difference of two descriptors (HU, or brain standard deviations)."""
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def write_descriptors(
    root: Path, ids: list[str], contrasts: list[str], rows: list[NDArray[np.float32]]
) -> NDArray[np.float64]:
    """Store the library's descriptors (blocks of ``GRID``³ values per contrast, in ``contrasts``
    order) and return each lesion's distance to its nearest other library lesion."""
    matrix = np.stack(rows).astype(np.float32)
    np.savez_compressed(
        root / DESCRIPTORS, ids=np.asarray(ids), contrasts=np.asarray(contrasts), matrix=matrix
    )
    return nearest_other(matrix)


def nearest_other(matrix: NDArray[np.float32]) -> NDArray[np.float64]:
    """Per row, the distance to the nearest other row (inf for a single row)."""
    m = matrix.astype(np.float64)
    sq = (m**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * m @ m.T, 0.0) / m.shape[1]
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(axis=1)) if len(m) > 1 else np.full(len(m), np.inf)


@dataclass(frozen=True)
class Descriptors:
    """The library's descriptors: one row per lesion id, one block of ``GRID``³ per contrast."""

    ids: list[str]
    contrasts: list[str]
    matrix: NDArray[np.float32]

    def columns(self, contrasts: list[str]) -> NDArray[np.float32]:
        """The matrix restricted to ``contrasts`` (in that order)."""
        n = GRID**3
        blocks = [
            self.matrix[:, self.contrasts.index(c) * n : (self.contrasts.index(c) + 1) * n] for c in contrasts
        ]
        return np.concatenate(blocks, axis=1)

    def nearest(self, row: NDArray[np.float32], contrasts: list[str]) -> tuple[str, float]:
        """(id, distance) of the library lesion nearest to a descriptor over ``contrasts``."""
        m = self.columns(contrasts).astype(np.float64)
        d = np.sqrt(np.mean((m - row.astype(np.float64)) ** 2, axis=1))
        k = int(np.argmin(d))
        return self.ids[k], float(d[k])


def load_descriptors(root: Path) -> Descriptors | None:
    """The library's descriptors (None for a library built without them, or unreadable)."""
    try:
        with np.load(root / DESCRIPTORS, allow_pickle=False) as z:
            return Descriptors([str(x) for x in z["ids"]], [str(x) for x in z["contrasts"]], z["matrix"])
    except (OSError, KeyError, ValueError):
        return None
