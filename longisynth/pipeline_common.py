"""Pieces both families share: seeded streams, crops, timepoint assembly and the common checks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from longisynth import checks as ck
from longisynth.deformation import jacobian_determinant, to_world
from longisynth.geometry import Box, Geometry
from longisynth.io.scan import Scan
from longisynth.measure import centroid_world_mm, longest_diameter_mm, volume_mm3
from longisynth.refine.model import Denoiser, RefinerStatus
from longisynth.refine.patches import Intensity
from longisynth.refine.sampler import RefineSettings, refine_crops
from longisynth.result import Timepoint

# Independent random streams per stage: changing how one stage draws never shifts another
# (SeedSequence children depend on their index only, so appending a stream shifts nothing).
STREAMS = ("place", "shape", "texture", "render", "growth", "refine")


@dataclass
class RefineContext:
    """The learned refiner for one study: what runs it (None: rule-based only) and how."""

    denoise: Denoiser | None
    status: RefinerStatus
    settings: RefineSettings = field(default_factory=RefineSettings)


def refine_timepoints(
    images: list[dict[str, NDArray[np.float32]]],
    masks: Sequence[NDArray[np.uint8]],
    intensities: dict[str, Intensity],
    ctx: RefineContext,
    rng: np.random.Generator,
) -> list[dict[str, NDArray[np.float32]]]:
    """Run the refiner over every contrast of every timepoint in one batched pass.

    Each contrast keeps one noise field over time (temporally consistent texture). Records the
    band size per timepoint (voxels) and the steps in ``ctx.status``.
    """
    if ctx.denoise is None:
        return images
    seed = int(rng.integers(2**63 - 1))
    names = list(images[0])
    flat = [images[i][c] for i in range(len(images)) for c in names]
    lesions = [masks[i] > 0 for i in range(len(images)) for _ in names]
    groups = [k for _ in images for k in range(len(names))]
    its = [intensities[c] for _ in images for c in names]
    out, sizes = refine_crops(flat, lesions, its, groups, ctx.denoise, seed, ctx.settings)
    ctx.status.extra.update(
        steps=ctx.settings.steps,
        strength=ctx.settings.strength,
        band_voxels=[sizes[i * len(names)] for i in range(len(images))],
    )
    return [{c: out[i * len(names) + k] for k, c in enumerate(names)} for i in range(len(images))]


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One generator per stage, all derived from the study seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(s) for name, s in zip(STREAMS, children, strict=True)}


def crop_box(
    geometry: Geometry, center_world: NDArray[np.float64], half_mm: float
) -> tuple[Box, NDArray[np.float64]]:
    """Box of half-size ``half_mm`` around the centre (clipped to the grid) and the centre in crop voxels."""
    center_vox = geometry.world_to_voxel(center_world)
    box = geometry.box_around(center_vox, half_mm)
    return box, center_vox - np.asarray(box.start, dtype=np.float64)


def assemble_timepoint(
    index: int,
    days: float,
    scans: dict[str, Scan],
    box: Box,
    values: dict[str, NDArray[np.float32]],
    mask: NDArray[np.uint8],
    displacement_mm: NDArray[np.float32],
    occupancy: NDArray[np.float32] | None = None,
) -> Timepoint:
    """Convert rendered crops back to the stored dtype and measure the lesion.

    Voxels that neither moved nor belong to the lesion keep the input's stored value exactly.
    ``occupancy`` (lesion fraction per voxel) gives the partial-volume lesion volume; without it,
    the mask volume is used.
    """
    geometry = next(iter(scans.values())).geometry
    crop_geom = geometry.crop(box)
    untouched = ~np.any(displacement_mm != 0, axis=0)
    crops = {}
    for name, scan in scans.items():
        raw_in = scan.raw[box.slices]
        out = scan.to_raw(values[name])
        keep = untouched & (values[name] == scan.values_in(box))
        out[keep] = raw_in[keep]
        crops[name] = out
    lesion = mask > 0
    mask_volume = volume_mm3(lesion, crop_geom)
    simulated = (
        mask_volume
        if occupancy is None
        else float(occupancy.sum(dtype=np.float64)) * crop_geom.voxel_volume_mm3
    )
    return Timepoint(
        index=index,
        days=float(days),
        crops=crops,
        mask=mask,
        displacement_mm=to_world(displacement_mm, geometry.axis_directions),
        lesion_volume_mm3=round(mask_volume, 4),
        longest_diameter_mm=round(longest_diameter_mm(lesion, geometry.spacing_mm), 4),
        centroid_mm=tuple(round(v, 4) for v in centroid_world_mm(lesion, crop_geom)),  # type: ignore[arg-type]
        simulated_volume_mm3=round(simulated, 4),
    )


def common_checks(
    timepoints: list[Timepoint],
    scans: dict[str, Scan],
    box: Box,
    allowed: NDArray[np.bool_],
    zone: NDArray[np.bool_],
    growing: bool,
    requested_final_diameter_mm: float,
    displacement_fields_mm: list[NDArray[np.float32]],
) -> list[ck.Check]:
    """Checks shared by both families (DESIGN.md §8).

    Args:
        allowed: crop mask of the organ the lesion must stay in.
        zone: crop mask of the lesion's influence zone (mass effect + rendering blend), where the
            image may change.
        growing: the law is monotone non-decreasing (masks must nest).
        displacement_fields_mm: array-axis displacement per timepoint (for the Jacobian).
    """
    spacing = next(iter(scans.values())).geometry.spacing_mm
    out: list[ck.Check] = []
    for tp, disp in zip(timepoints, displacement_fields_mm, strict=True):
        lesion = tp.mask > 0
        n = int(lesion.sum())
        # An empty mask (a lesion smaller than a voxel at this timepoint) is trivially inside.
        inside = float((lesion & allowed).sum()) / n if n else 1.0
        out.append(ck.check("lesion_in_allowed_region_fraction", inside, timepoint=tp.index))
        out.append(ck.check("lesion_voxels", n, timepoint=tp.index))
        changed = np.zeros(lesion.shape, dtype=bool)
        for name, scan in scans.items():
            changed |= tp.crops[name] != scan.raw[box.slices]
        out.append(
            ck.check(
                "changed_voxels_outside_influence_zone", int((changed & ~zone).sum()), timepoint=tp.index
            )
        )
        jac = jacobian_determinant(disp, spacing) if np.any(disp) else np.ones(1, dtype=np.float32)
        out.append(ck.check("jacobian_determinant_min", float(jac.min()), timepoint=tp.index))
    if growing:
        nested = all(not np.any((a.mask > 0) & ~(b.mask > 0)) for a, b in itertools.pairwise(timepoints))
        out.append(ck.check("masks_nested_over_time", nested))
        vols = [tp.lesion_volume_mm3 for tp in timepoints]
        monotone = all(b >= a for a, b in itertools.pairwise(vols))
        out.append(ck.check("volume_monotone_non_decreasing", monotone))
    final = timepoints[-1].longest_diameter_mm
    err = abs(final - requested_final_diameter_mm) / requested_final_diameter_mm
    out.append(ck.check("final_diameter_relative_error", err))
    return out


def ball_mask(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    center_vox: NDArray[np.float64],
    radius_mm: float,
) -> NDArray[np.bool_]:
    """Crop mask of the ball of ``radius_mm`` around ``center_vox`` (crop voxel coordinates)."""
    grids = np.ogrid[: shape[0], : shape[1], : shape[2]]
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, center_vox, spacing, strict=True))
    return np.asarray(r2 <= radius_mm**2)
