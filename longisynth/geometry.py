"""Voxel/world geometry: the one place that converts between voxel indices and world millimetres.

World coordinates follow the NIfTI / nibabel convention, RAS+ millimetres: +x towards the
patient's Right, +y Anterior, +z Superior (MNI x = -40 is in the left hemisphere). DICOM's LPS
world is converted to RAS on read, so every affine in the engine is RAS+.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Box:
    """A half-open voxel box ``[start, stop)`` along each of the three array axes."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return (
            slice(self.start[0], self.stop[0]),
            slice(self.start[1], self.stop[1]),
            slice(self.start[2], self.stop[2]),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (
            self.stop[0] - self.start[0],
            self.stop[1] - self.start[1],
            self.stop[2] - self.start[2],
        )


@dataclass(frozen=True)
class Geometry:
    """Grid of a 3D volume: its array shape and the 4×4 voxel→world affine (world in RAS+ mm)."""

    affine: NDArray[np.float64]
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {aff.shape}")
        object.__setattr__(self, "affine", aff)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along each array axis, in mm (norms of the affine's columns)."""
        s = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(s[0]), float(s[1]), float(s[2]))

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def axis_directions(self) -> NDArray[np.float64]:
        """Unit world (RAS) direction of each array axis, as the columns of a 3×3 matrix."""
        return self.affine[:3, :3] / np.asarray(self.spacing_mm)[None, :]

    def voxel_to_world(self, ijk: NDArray[np.floating] | list[float]) -> NDArray[np.float64]:
        """Map voxel coordinates (..., 3) to world RAS+ mm (..., 3)."""
        p = np.asarray(ijk, dtype=np.float64)
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: NDArray[np.floating] | list[float]) -> NDArray[np.float64]:
        """Map world RAS+ mm (..., 3) to continuous voxel coordinates (..., 3)."""
        p = np.asarray(xyz, dtype=np.float64)
        inv = np.linalg.inv(self.affine)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def contains_voxel(self, ijk: NDArray[np.floating] | list[float]) -> bool:
        """Whether continuous voxel coordinates fall inside the grid."""
        p = np.asarray(ijk, dtype=np.float64)
        return bool(np.all(p >= -0.5) and np.all(p <= np.asarray(self.shape) - 0.5))

    def crop(self, box: Box) -> Geometry:
        """Geometry of the sub-grid ``box`` (same orientation, shifted origin)."""
        aff = self.affine.copy()
        aff[:3, 3] = self.voxel_to_world(np.asarray(box.start, dtype=np.float64))
        return Geometry(aff, box.shape)

    def box_around(self, center_ijk: NDArray[np.floating], radius_mm: float) -> Box:
        """Smallest box holding a ball of ``radius_mm`` around ``center_ijk``, clipped to the grid."""
        half = np.ceil(radius_mm / np.asarray(self.spacing_mm)).astype(int) + 1
        c = np.round(np.asarray(center_ijk)).astype(int)
        start = np.maximum(c - half, 0)
        stop = np.minimum(c + half + 1, np.asarray(self.shape))
        return Box(
            (int(start[0]), int(start[1]), int(start[2])),
            (int(stop[0]), int(stop[1]), int(stop[2])),
        )

    def world_axis_index(self, ras_axis: int) -> tuple[int, float]:
        """Array axis most aligned with world axis ``ras_axis`` (0=R, 1=A, 2=S) and its sign.

        The sign is +1 when increasing the array index moves towards +R/+A/+S.
        """
        d = self.axis_directions[ras_axis, :]
        k = int(np.argmax(np.abs(d)))
        return k, float(np.sign(d[k]) or 1.0)


def physical_grid_mm(
    shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Open (broadcastable) grids of voxel-centre positions in mm along each array axis."""
    return tuple(  # type: ignore[return-value]
        (np.arange(n, dtype=np.float32) * np.float32(s)).reshape([-1 if k == ax else 1 for k in range(3)])
        for ax, (n, s) in enumerate(zip(shape, spacing_mm, strict=True))
    )


def block_mean(values: NDArray[Any], factors: tuple[int, ...]) -> NDArray[np.float32]:
    """Mean of each block of ``factors`` voxels of a 3D array (the last block along an axis may be
    smaller; booleans count as 0/1): a coarse grid of ``ceil(n / factor)`` cells per axis.

    Works in chunks along the last axis so the float copy of a large scan is never made whole
    (the lung segmentation's 3 mm grid, the brain mass effect's 2 mm grid).
    """
    values = np.asarray(values)
    step = factors[2] * max(1, 16 // factors[2])
    chunks = range(0, values.shape[2], step)
    return np.concatenate([_block_mean_chunk(values[:, :, k : k + step], factors) for k in chunks], axis=2)


def _block_mean_chunk(chunk: NDArray[Any], factors: tuple[int, ...]) -> NDArray[np.float32]:
    out: NDArray[Any] = chunk
    counts = []
    # Outermost axis in memory first: each sum then adds whole contiguous planes or rows (twice
    # as fast as reduceat on a Fortran-ordered CT), the innermost last, on a quarter of the data.
    for ax in sorted(range(3), key=lambda a: -abs(chunk.strides[a])):
        f, n = factors[ax], out.shape[ax]
        starts = np.arange(0, n, f)
        counts.append((ax, np.diff(np.append(starts, n)).astype(np.float32)))
        if f == 1:
            out = out.astype(np.float32, copy=False)
        elif n % f == 0:
            split = (*out.shape[:ax], n // f, f, *out.shape[ax + 1 :])
            out = out.reshape(split).sum(axis=ax + 1, dtype=np.float32)
        else:
            out = np.add.reduceat(out, starts, axis=ax, dtype=np.float32)
    for ax, c in counts:
        out /= c.reshape([-1 if a == ax else 1 for a in range(3)])
    return np.asarray(out, dtype=np.float32)
