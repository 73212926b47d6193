"""Seed: where the lesion starts, inside the allowed region, with clearance from its boundary."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.errors import LesionDoesNotFitError
from longisynth.geometry import Geometry
from longisynth.spec import Location


def clearance_mm(allowed: NDArray[np.bool_], geometry: Geometry) -> NDArray[np.float32]:
    """Distance (mm) from each allowed voxel to the nearest non-allowed voxel or the FOV edge."""
    padded = np.pad(allowed, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded, sampling=geometry.spacing_mm)
    return dist[1:-1, 1:-1, 1:-1].astype(np.float32)


def explicit_point_world(location: Location, geometry: Geometry) -> NDArray[np.float64] | None:
    """The caller's explicit centre (world RAS+ mm) if the location has one, checked against the FOV."""
    if location.point_voxel is not None:
        ijk = np.asarray(location.point_voxel, dtype=np.float64)
        if not geometry.contains_voxel(ijk):
            raise LesionDoesNotFitError(
                f"voxel {tuple(location.point_voxel)} is outside the image grid {geometry.shape}"
            )
        return geometry.voxel_to_world(ijk)
    if location.point_mm is not None:
        xyz = np.asarray(location.point_mm, dtype=np.float64)
        if not geometry.contains_voxel(geometry.world_to_voxel(xyz)):
            raise LesionDoesNotFitError(
                f"location {tuple(round(v, 1) for v in location.point_mm)} mm is outside the field of view"
            )
        return xyz
    return None


def choose_center(
    allowed: NDArray[np.bool_],
    region: NDArray[np.bool_],
    geometry: Geometry,
    min_clearance_mm: float,
    max_clearance_mm: float | None,
    explicit_world: NDArray[np.float64] | None,
    what: str,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Pick the lesion centre (world RAS+ mm).

    Args:
        allowed: the organ the lesion must stay in (lungs, brain), on ``geometry``'s grid.
        region: the requested sub-region (lobe, side...) in which the centre must lie.
        geometry: grid of the two masks (may be coarser than the scan).
        min_clearance_mm: the centre must be at least this far from the organ boundary / FOV edge.
        max_clearance_mm: if set, at most this far (juxtapleural or cortical lesions).
        explicit_world: a caller-given centre; checked, not searched.
        what: human description for errors, e.g. "a 60 mm nodule in the right upper lobe".
        rng: generator used to draw among the valid centres.

    Raises:
        LesionDoesNotFitError: with the largest size that would fit, when nothing qualifies.
    """
    if explicit_world is None:
        (center,) = center_candidates(
            allowed, region, geometry, min_clearance_mm, max_clearance_mm, what, rng, 1
        )
        return center
    dist = clearance_mm(allowed, geometry)
    ijk = np.round(geometry.world_to_voxel(explicit_world)).astype(int)
    ijk = np.clip(ijk, 0, np.asarray(geometry.shape) - 1)
    here = float(dist[tuple(ijk)])
    if not allowed[tuple(ijk)]:
        raise LesionDoesNotFitError(f"the requested point is outside the allowed region for {what}")
    if here < min_clearance_mm:
        raise LesionDoesNotFitError(
            f"{what} does not fit at the requested point: only {here:.1f} mm from the boundary, "
            f"{min_clearance_mm:.1f} mm needed"
        )
    return explicit_world


def center_candidates(
    allowed: NDArray[np.bool_],
    region: NDArray[np.bool_],
    geometry: Geometry,
    min_clearance_mm: float,
    max_clearance_mm: float | None,
    what: str,
    rng: np.random.Generator,
    limit: int,
) -> list[NDArray[np.float64]]:
    """Up to ``limit`` distinct valid centres (world RAS+ mm) in random order; see :func:`choose_center`.

    Raises:
        LesionDoesNotFitError: with the largest size that would fit, when nothing qualifies.
    """
    dist = clearance_mm(allowed, geometry)
    ok = region & allowed & (dist >= min_clearance_mm)
    if max_clearance_mm is not None:
        ok &= dist <= max_clearance_mm
    candidates = np.flatnonzero(ok)
    if candidates.size == 0:
        in_region = dist[region & allowed]
        best = float(in_region.max()) if in_region.size else 0.0
        raise LesionDoesNotFitError(
            f"{what} does not fit: the deepest point of that region is {best:.1f} mm from its boundary "
            f"(needs {min_clearance_mm:.1f} mm); ask for a smaller lesion or another location"
        )
    if limit == 1:  # one draw, as a single choice always made it
        picks = candidates[[rng.integers(candidates.size)]]
    else:
        picks = candidates[rng.permutation(candidates.size)[:limit]]
    return [
        geometry.voxel_to_world(np.array(np.unravel_index(int(p), allowed.shape), dtype=np.float64))
        for p in picks
    ]
