"""Transplant a real lesion from a library onto a healthy scan, and grow it by the growth law.

A :class:`Transplant` wraps the lesion family of the request (lung nodule, glioma) behind the same
protocol (:class:`~longisynth.families.base.LesionFamily`), so the one driver runs it unchanged:

* **anatomy, placement, allowed region** are the family's own (same rules and clearance as a
  rule-based lesion); the crop is widened to the real lesion's reach;
* **growth**: the library lesion *is* the baseline (its reader's mask, resampled to the host grid);
  every other timepoint is the same lesion scaled about its centroid by d_t / d_0, the diameters
  of the growth law (a uniform scaling is a diffeomorphism: texture and mask contract toward the
  centre when the law shrinks and expand along the same map when it grows). A growing glioma is
  stretched per direction instead (:class:`Radial`): by how far the spec's reaction–diffusion
  front, started from the real tumour's mask, runs in that direction (along white matter, not
  across the falx or into the ventricles). Masks of a growing lesion are made to nest (each is
  united with the previous one), and all stay inside the organ;
* **appearance**: the patch's own intensities, harmonised to the host (CT: the lung-density part
  of the lesion is shifted by the difference between the host's and the source's lung HU, solid
  tissue is kept; MRI: source brain z-scores → host brain mean + z · sd per contrast), blended
  into the host over :data:`BLEND_MM` outside the mask, plus host-model noise for whatever noise
  the host has beyond the source's (:mod:`longisynth.appearance.noise`).

The surrounding lung or brain is the host's: only voxels within the mask and its blend band
change (and the family's mass effect, which the driver applies to the background).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth import checks as ck
from longisynth.appearance.noise import NoiseModel, synthesize_noise
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Crops, Findings, Growth, Inputs, LesionFamily, Placement, Site
from longisynth.families.glioma import brain_statistics
from longisynth.families.lung import soft_tissue_noise
from longisynth.geometry import Box, Geometry
from longisynth.growth.laws import diameter_schedule
from longisynth.library.memorisation import GRID, descriptor, distance
from longisynth.library.store import LibraryLesion
from longisynth.refine.patches import CT_INTENSITY, Intensity
from longisynth.result import Timepoint
from longisynth.spec import Family, LesionSpec

FIT_GRID_MM = 3.0  # grid on which a library glioma's fit is computed, mm
FIT_MIN_FRACTION = 0.5  # a glioma with less of itself in its compartment does not fit
FIT_SLACK = 0.03  # centres this close to the best fit are equally good
BLEND_MM = {"lung_nodule": 1.0, "glioma": 2.5}  # blend band outside the mask, mm
# A library glioma grows along its reaction–diffusion front (Transplant._front_radials):
RADIAL_SMOOTH_DEG = 15.0  # smoothing of the per-direction stretch on the sphere, degrees (sd)
MAX_RADIAL = 2.5  # no direction stretches by more than this × the law's overall scale
DIAMETER_TOLERANCE = 0.03  # a grown lesion further than 3 % from the law's diameter is rescaled once
LUNG_AIR_HU = -400.0  # host lung parenchyma is below this (the CT tissue reference)
SOLID_HU = 0.0  # lesion tissue at or above this keeps its HU when harmonised


@dataclass(frozen=True)
class Sampled:
    """A library lesion resampled onto (part of) the host crop at one scale.

    Attributes:
        box: the part of the crop the patch reaches (crop voxel slices).
        labels: our labels on that part.
        occupancy: lesion fraction per voxel (the interpolated whole mask, 0–1).
        images: per contrast, the patch's normalised values (NaN where the patch has none).
    """

    box: tuple[slice, slice, slice]
    labels: NDArray[np.uint8]
    occupancy: NDArray[np.float32]
    images: dict[str, NDArray[np.float32]]


def lesion_centroid_vox(lesion: LibraryLesion) -> NDArray[np.float64]:
    """Centroid of the library lesion's whole mask, patch voxel coordinates."""
    return np.asarray(ndimage.center_of_mass(lesion.labels > 0), dtype=np.float64)


def reach_mm(lesion: LibraryLesion) -> float:
    """Largest distance from the lesion's centroid to a voxel of its mask, mm."""
    idx = np.argwhere(lesion.labels > 0).astype(np.float64) - lesion_centroid_vox(lesion)
    return float(np.linalg.norm(idx @ lesion.affine[:3, :3].T, axis=1).max())


@dataclass(frozen=True)
class Radial:
    """A scale that depends on the direction from the lesion's centroid: the point at offset x
    (crop array axes, mm) shows the unscaled lesion at x / factor(x / |x|). Each ray from the
    centroid maps onto itself, linearly and increasingly, so for any positive, smooth factor the
    map is invertible (a star-shaped, diffeomorphic scaling away from the centroid).

    Attributes:
        factor: the scale per direction on a latitude–longitude grid of :data:`N_THETA` ×
            :data:`N_PHI` cells (polar angle from the first array axis, azimuth in the other two).
    """

    factor: NDArray[np.float64]

    def at(self, offsets_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """The factor in the direction of each offset ((N, 3) mm → (N,), bilinear on the sphere)."""
        i, j = _direction_index(offsets_mm)
        wrapped = np.concatenate([self.factor[:, -1:], self.factor, self.factor[:, :1]], axis=1)
        coords = np.stack([np.clip(i, 0.0, N_THETA - 1.0), j + 1.0])
        return ndimage.map_coordinates(wrapped, coords, order=1, mode="nearest")


N_THETA, N_PHI = 24, 48  # directions of a Radial: 7.5° cells
RAY_STEP_MM = 0.5  # sampling step along each ray when measuring a mask's extent, mm


def _direction_index(offsets_mm: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fractional (polar, azimuth) cell indices of each offset's direction (cell centres at k + 0)."""
    r = np.maximum(np.linalg.norm(offsets_mm, axis=1), 1e-9)
    theta = np.arccos(np.clip(offsets_mm[:, 0] / r, -1.0, 1.0))
    phi = np.mod(np.arctan2(offsets_mm[:, 2], offsets_mm[:, 1]), 2 * math.pi)
    return theta / math.pi * N_THETA - 0.5, phi / (2 * math.pi) * N_PHI - 0.5


def ray_extent(
    mask: NDArray[np.bool_], center_vox: NDArray[np.float64], spacing_mm: tuple[float, ...]
) -> NDArray[np.float64]:
    """Per direction of the :class:`Radial` grid, the largest distance from ``center_vox`` (crop
    voxels) along the ray at which ``mask`` is set, mm (0 where the ray meets no mask voxel)."""
    theta = (np.arange(N_THETA) + 0.5) * math.pi / N_THETA
    phi = (np.arange(N_PHI) + 0.5) * 2 * math.pi / N_PHI
    tt, pp = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.cos(tt), np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp)], -1).reshape(-1, 3)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    reach = float(np.linalg.norm(np.asarray(mask.shape) * spacing))
    radii = np.arange(1, int(reach / RAY_STEP_MM) + 1) * RAY_STEP_MM
    points = center_vox[None, None, :] + dirs[:, None, :] * radii[None, :, None] / spacing
    inside = ndimage.map_coordinates(
        mask.astype(np.uint8), points.reshape(-1, 3).T, order=0, mode="constant", cval=0
    ).reshape(len(dirs), len(radii))
    last = np.where(inside.any(axis=1), len(radii) - 1 - np.argmax(inside[:, ::-1], axis=1), -1)
    extent = np.where(last >= 0, radii[np.maximum(last, 0)], 0.0)
    return extent.reshape(N_THETA, N_PHI)


def sample_lesion(
    lesion: LibraryLesion,
    crop: Geometry,
    center_vox: NDArray[np.float64],
    scale: float,
    contrasts: list[str] | None = None,
    margin_mm: float = 0.0,
    radial: Radial | None = None,
) -> Sampled | None:
    """Resample the library lesion onto the crop, its centroid at ``center_vox`` (crop voxels),
    scaled by ``scale`` about it, and by ``radial`` per direction when given (None when it falls
    outside the crop).

    Labels are interpolated per label (linear on the indicator; the whole lesion is where the
    interpolated mask is ≥ 0.5, its label the one with the largest indicator), images linearly.
    """
    src_center = lesion_centroid_vox(lesion)
    # crop voxel → patch voxel: p = A_src⁻¹ · A_crop · (x − c) / s + c_src (rotations and spacing only)
    m0 = np.linalg.inv(lesion.affine[:3, :3]) @ crop.affine[:3, :3]
    m = m0 / scale
    widest = scale * (float(radial.factor.max()) if radial is not None else 1.0)
    inv = np.linalg.inv(m0 / widest)
    corners = (
        np.array(np.meshgrid(*[[0.0, n - 1.0] for n in lesion.labels.shape], indexing="ij")).reshape(3, -1).T
    )
    extent = (corners - src_center) @ inv.T + center_vox
    pad = np.ceil(margin_mm / np.asarray(crop.spacing_mm)) + 1
    lo = np.maximum(np.floor(extent.min(axis=0) - pad), 0).astype(int)
    hi = np.minimum(np.ceil(extent.max(axis=0) + pad) + 1, crop.shape).astype(int)
    if np.any(hi <= lo):
        return None
    box = (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))
    grid = np.stack(
        np.meshgrid(*[np.arange(a, b, dtype=np.float64) for a, b in zip(lo, hi, strict=True)], indexing="ij"),
        -1,
    )
    shape = tuple(int(b - a) for a, b in zip(lo, hi, strict=True))
    if radial is None:
        src = ((grid - center_vox) @ m.T + src_center).reshape(-1, 3).T
        step = np.ones(1)
    else:
        offsets = (grid - center_vox).reshape(-1, 3)
        step = 1.0 / radial.at(offsets * np.asarray(crop.spacing_mm))
        src = ((offsets * step[:, None]) @ m.T + src_center).T

    def interp(a: NDArray[Any], cval: float) -> NDArray[np.float32]:
        out = ndimage.map_coordinates(a.astype(np.float32), src, order=1, cval=cval, prefilter=False)
        return out.reshape(shape).astype(np.float32)

    binary = (lesion.labels > 0).astype(np.float32)
    whole = interp(binary, 0.0) >= 0.5
    # Partial-volume occupancy: the interpolated mask averaged over 2×2×2 points of each host voxel
    # (at ±¼ voxel), so that volumes follow the law on coarse hosts instead of aliasing.
    occupancy = np.zeros(shape, dtype=np.float32)
    for offset in itertools.product((-0.25, 0.25), repeat=3):
        at = src + (m @ np.asarray(offset))[:, None] * step[None, :]
        occupancy += ndimage.map_coordinates(binary, at, order=1, cval=0.0, prefilter=False).reshape(shape)
    occupancy /= 8.0
    labels = np.zeros(shape, dtype=np.uint8)
    present = [int(v) for v in np.unique(lesion.labels) if v > 0]
    if len(present) == 1:
        labels[whole] = present[0]
    else:
        stack = np.stack([interp(lesion.labels == v, 0.0) for v in present])
        labels[whole] = np.asarray(present, dtype=np.uint8)[np.argmax(stack, axis=0)[whole]]
    names = contrasts if contrasts is not None else list(lesion.images)
    images = {c: interp(lesion.images[c], math.nan) for c in names}
    return Sampled(box, labels, np.clip(occupancy, 0.0, 1.0), images)


def mirrored(lesion: LibraryLesion) -> LibraryLesion:
    """The lesion mirrored left–right in world space (its arrays flipped along the array axis
    closest to world x; the affine's 3×3 part is kept, so the mirror is about the patch centre)."""
    axis = int(np.argmax(np.abs(lesion.affine[0, :3])))
    images = {c: np.flip(v, axis).copy() for c, v in lesion.images.items()}
    return replace(lesion, images=images, labels=np.flip(lesion.labels, axis).copy())


def _kernel(lesion: LibraryLesion, grid: Geometry) -> NDArray[np.float32]:
    """The lesion's baseline mask on a grid of ``grid``'s spacing and orientation, centred (odd size)."""
    half = np.ceil(reach_mm(lesion) / np.asarray(grid.spacing_mm)).astype(int) + 1
    shape = (int(2 * half[0] + 1), int(2 * half[1] + 1), int(2 * half[2] + 1))
    one = sample_lesion(lesion, Geometry(grid.affine, shape), half.astype(np.float64), 1.0, [])
    kernel = np.zeros(shape, dtype=np.float32)
    if one is not None:
        kernel[one.box] = one.occupancy
    return kernel


def conditioned_lesion(
    texture: LibraryLesion, mask: NDArray[np.bool_], geometry: Geometry, size_mm: float
) -> LibraryLesion:
    """A user's lesion mask (on the host grid) as a library lesion: its shape, with the texture and
    labels of ``texture`` (a library lesion) scaled to its size and centred on its centroid; mask
    voxels the texture does not cover take the nearest covered voxel's values and label.

    Args:
        texture: the library lesion that lends its texture (kind and size chosen like any other).
        mask: the user's baseline lesion mask, on ``geometry``'s grid.
        size_mm: the mask's size in the family's convention, mm (becomes the entry's ``size_mm``).
    """
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - 2, 0)
    hi = np.minimum(idx.max(axis=0) + 3, mask.shape)
    box = Box((int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2])))
    crop = geometry.crop(box)
    user = np.asarray(mask[box.slices], dtype=bool)
    center = np.asarray(ndimage.center_of_mass(user), dtype=np.float64)
    one = sample_lesion(texture, crop, center, size_mm / texture.entry.size_mm)
    source_labels = np.zeros(user.shape, dtype=np.uint8)
    source_images = {c: np.full(user.shape, np.nan, dtype=np.float32) for c in texture.images}
    if one is not None:
        source_labels[one.box] = one.labels
        for c in source_images:
            source_images[c][one.box] = one.images[c]
    covered = source_labels > 0
    if not covered.any():  # the texture's mask is too small to cover a voxel: use its centre
        at = tuple(np.clip(np.round(center).astype(int), 0, np.asarray(user.shape) - 1))
        covered[at] = True
        source_labels[at] = int(texture.labels.max())
        for c in source_images:
            source_images[c][at] = float(np.nanmedian(texture.images[c][texture.labels > 0]))
    nearest = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    pick = tuple(nearest[k][user] for k in range(3))
    labels = np.zeros(user.shape, dtype=np.uint8)
    labels[user] = source_labels[pick]
    images = {}
    for c, values in source_images.items():
        out = np.full(user.shape, np.nan, dtype=np.float32)
        out[user] = values[pick]
        # around the mask: the texture's own surroundings where it has them (the blend band)
        out[~user] = values[~user]
        images[c] = out
    entry = texture.entry.model_copy(update={"size_mm": round(size_mm, 3)})
    return replace(texture, entry=entry, images=images, labels=labels, affine=crop.affine)


def growth_diameters(spec: LesionSpec, baseline_mm: float) -> list[float]:
    """The lesion's size (mm, the family's convention) at each timepoint: the lung law's schedule,
    or for a glioma a front moving at constant speed from the library size to ``spec.diameter_mm``
    (Fisher–Kolmogorov: the diameter grows linearly in time)."""
    assert spec.timepoints_days is not None and spec.diameter_mm is not None
    if spec.family == Family.LUNG_NODULE:
        return diameter_schedule(spec)
    days = np.asarray(spec.timepoints_days, dtype=np.float64)
    span = days[-1] - days[0]
    if span <= 0:
        return [float(spec.diameter_mm)] * len(days)
    return [float(baseline_mm + (spec.diameter_mm - baseline_mm) * (t - days[0]) / span) for t in days]


@dataclass(frozen=True)
class _State:
    scales: list[float]
    diameters_mm: list[float]
    sampled: list[Sampled | None]
    radials: list[Radial | None]


class Transplant:
    """A library lesion behind the family protocol (see the module docstring)."""

    def __init__(
        self, base: LesionFamily, lesion: LibraryLesion, fixed_center_world: NDArray[np.float64] | None = None
    ) -> None:
        """``fixed_center_world``: the lesion's centroid is here (a user's mask, world RAS+ mm);
        otherwise the family places it."""
        self.base = base
        self.lesion = lesion
        self.fixed_center = fixed_center_world
        self.mirrored = False  # set when a glioma is mirrored into the other hemisphere
        self._warp_fallback: str | None = None  # why a glioma was scaled uniformly instead of by its front
        self._host_maps: dict[str, tuple[float, float]] = {}  # set by renderer(): patch → host units
        self.family = base.family
        self.size_convention = base.size_convention
        self.solid_labels = base.solid_labels
        self.blend_mm = BLEND_MM[str(base.family)]

    def anatomy(self, inputs: Inputs) -> Any:
        return self.base.anatomy(inputs)

    def place(self, inputs: Inputs, anatomy: Any) -> Placement:
        spec = inputs.spec
        explicit = spec.location.point_mm is not None or spec.location.point_voxel is not None
        if self.fixed_center is not None:
            assert spec.diameter_mm is not None
            placement = Placement(self.fixed_center, 0.9 * spec.diameter_mm + 4.0, 0.0)
        elif self.family == Family.GLIOMA and not explicit:
            placement = self._fit_glioma(inputs, anatomy)
        else:
            placement = self.base.place(inputs, anatomy)
        largest = max(growth_diameters(spec, self.lesion.entry.size_mm)) / self.lesion.entry.size_mm
        reach = reach_mm(self.lesion) * max(1.0, largest) + self.blend_mm
        placement.influence_mm = max(placement.influence_mm, reach + 4.0)
        placement.crop_half_mm = max(placement.crop_half_mm, placement.influence_mm + 2.0)
        return placement

    def _fit_glioma(self, inputs: Inputs, anatomy: Any) -> Placement:
        """Place a library glioma where its baseline shape fits the brain compartment it starts in.

        The lesion is first oriented to the requested side (mirrored left–right if its source
        tumour lay on the other side; with no side requested it keeps its own). On a coarse grid
        (:data:`FIT_GRID_MM`), the fraction of the lesion that lies in brain tissue of its
        compartment is computed for every centre at once (one FFT correlation per compartment); the
        centre is drawn among the centres of the requested region where that fraction is within
        :data:`FIT_SLACK` of the best (at least :data:`FIT_MIN_FRACTION`).

        Raises:
            LesionDoesNotFitError: nowhere in the region holds the lesion.
        """
        from longisynth.anatomy import midline as ml

        spec = inputs.spec
        assert spec.diameter_mm is not None
        own = self.lesion.entry.attributes.get("side")
        wanted = spec.location.side.value if spec.location.side is not None else own
        if own in ("left", "right") and wanted != own:
            self.lesion = mirrored(self.lesion)
            self.mirrored = True
        region = self.base.region(inputs, anatomy)  # type: ignore[attr-defined]
        if spec.location.side is None and wanted in ("left", "right") and not spec.location.crosses_midline:
            side = anatomy.parts.lateral_mm < 0 if wanted == "left" else anatomy.parts.lateral_mm > 0
            region = region & side if (region & side).any() else region
        geometry: Geometry = anatomy.geometry
        step = max(1, round(FIT_GRID_MM / min(geometry.spacing_mm)))
        sl = (slice(None, None, step),) * 3
        coarse = Geometry(geometry.affine @ np.diag([step, step, step, 1.0]), anatomy.brain[sl].shape)
        kernel = _kernel(self.lesion, coarse)
        tissue = anatomy.brain[sl] & ((anatomy.wm + anatomy.gm)[sl] > 0.5)
        labels = anatomy.parts.labels[sl]
        fraction = np.zeros(labels.shape, dtype=np.float32)
        butterfly = bool(spec.location.crosses_midline)
        # imported here: scipy.signal pulls in scipy.stats, ≈ 0.4 s on every run that never fits a
        # library glioma
        from scipy import signal

        for part in (ml.LEFT, ml.RIGHT, ml.INFRATENTORIAL):
            reach = {ml.LEFT, ml.RIGHT} if butterfly and part != ml.INFRATENTORIAL else {part}
            inside = (tissue & np.isin(labels, list(reach))).astype(np.float32)
            corr = signal.fftconvolve(inside, kernel[::-1, ::-1, ::-1], mode="same") / kernel.sum()
            fraction[labels == part] = corr[labels == part]
        in_region = region[sl]
        if not in_region.any():
            raise LesionDoesNotFitError("the requested region has no brain tissue for the library glioma")
        best = float(fraction[in_region].max())
        if best < FIT_MIN_FRACTION:
            raise LesionDoesNotFitError(
                f"library glioma {self.lesion.entry.id} ({self.lesion.entry.size_mm:.0f} mm) does not fit "
                f"in the requested region: at best {100 * best:.0f} % of it would lie in its compartment"
            )
        candidates = np.argwhere(in_region & (fraction >= best - FIT_SLACK))
        pick = candidates[int(inputs.rng["place"].integers(len(candidates)))]
        center = coarse.voxel_to_world(pick.astype(np.float64))
        influence_mm = 0.9 * spec.diameter_mm + 4.0
        return Placement(center, influence_mm, influence_mm + 4.0)

    def allowed_region(
        self, inputs: Inputs, anatomy: Any, placement: Placement, box: Box, crops: Crops
    ) -> NDArray[np.bool_]:
        if placement.plan is None and self.family == Family.LUNG_NODULE:
            # a user-placed nodule has no placement plan (attachment): the lung it lies in
            from longisynth.families.lung import fine_lung_mask

            return fine_lung_mask(anatomy, inputs.scans["ct"].geometry, box, crops["ct"])
        return self.base.allowed_region(inputs, anatomy, placement, box, crops)

    def grow(self, inputs: Inputs, anatomy: Any, site: Site) -> Growth:
        spec = inputs.spec
        geometry = next(iter(inputs.scans.values())).geometry.crop(site.box)
        d0 = self.lesion.entry.size_mm
        diameters = growth_diameters(spec, d0)
        scales = [d / d0 for d in diameters]
        growing = self.base.is_growing(spec)
        confined = site.allowed & self._compartment(inputs, anatomy, site)
        contrasts = list(inputs.scans)

        def sample(scale: float, radial: Radial | None = None) -> Sampled | None:
            center = site.center_vox
            return sample_lesion(self.lesion, geometry, center, scale, contrasts, self.blend_mm, radial)

        radials: list[Radial | None] = [None] * len(scales)
        # timepoints the front's stretch already sampled (None: sample here)
        sampled: list[Sampled | None] = [None] * len(scales)
        if self.family == Family.GLIOMA and growing and max(scales) > 1.0 + 1e-6:
            radials, sampled = self._front_radials(inputs, anatomy, site, geometry, scales, diameters, sample)
        masks: list[NDArray[np.uint8]] = []
        occupancy: list[NDArray[np.float32]] = []
        support = np.zeros(site.box.shape, dtype=bool)
        for i, (s, radial) in enumerate(zip(scales, radials, strict=True)):
            one = sampled[i] if sampled[i] is not None else sample(1.0 if radial is not None else s, radial)
            sampled[i] = one
            mask = np.zeros(site.box.shape, dtype=np.uint8)
            occ = np.zeros(site.box.shape, dtype=np.float32)
            if one is not None:
                mask[one.box] = one.labels
                occ[one.box] = one.occupancy
            mask[~confined] = 0
            occ[~confined] = 0.0
            if growing and masks:
                grown = (masks[-1] > 0) & (mask == 0)
                mask[grown] = masks[-1][grown]
                occ = np.maximum(occ, occupancy[-1])
            masks.append(mask)
            occupancy.append(occ)
            if one is not None:
                support[one.box] |= np.isfinite(next(iter(one.images.values())))
        band = ndimage.binary_dilation(
            np.any([m > 0 for m in masks], axis=0),
            iterations=max(1, math.ceil(self.blend_mm / min(geometry.spacing_mm))),
        )
        state = _State(scales, diameters, sampled, radials)
        return Growth(masks, support & band, occupancy=occupancy, state=state)

    def _front_radials(
        self,
        inputs: Inputs,
        anatomy: Any,
        site: Site,
        geometry: Geometry,
        scales: list[float],
        diameters: list[float],
        sample: Callable[[float, Radial | None], Sampled | None],
    ) -> tuple[list[Radial | None], list[Sampled | None]]:
        """Per timepoint, how far a library glioma grows in each direction: the reaction–diffusion
        front of the spec (:func:`~longisynth.growth.glioma.grow_front`), started from the real
        tumour's own mask, runs out along white matter and stops at the falx, the tentorium and
        the ventricles; the lesion is then stretched per direction by the front's extent over its
        own (:class:`Radial`, smoothed over ≈ :data:`RADIAL_SMOOTH_DEG`), so texture and mask move
        together, and never beyond the influence zone. When the stretched lesion's longest diameter
        is off the law's by more than :data:`DIAMETER_TOLERANCE`, the factor is rescaled once by
        their ratio. None for timepoints at or below the library size (uniform contraction, as
        before); all None, with the reason kept for the metadata, when the front leaves the crop.
        Also returns the timepoints it sampled on the way (``sample``: the lesion at a scale and
        stretch, as :meth:`grow` renders it), so none is resampled.
        """
        from longisynth.families.glioma import _reachable, _seed_hemisphere
        from longisynth.growth.glioma import grow_front
        from longisynth.measure import longest_diameter_mm

        spec = inputs.spec
        assert spec.growth.proliferation_per_day and spec.growth.diffusion_mm2_per_day
        sl = site.box.slices
        none: list[Radial | None] = [None] * len(scales)
        done: list[Sampled | None] = [None] * len(scales)
        base = sample(1.0, None)
        if base is None:
            return none, done
        for i, s in enumerate(scales):
            if s == 1.0:  # the library lesion as it is (the baseline)
                done[i] = base
        initial = np.zeros(site.box.shape, dtype=np.float32)
        initial[base.box] = base.occupancy
        compartment, _ = _seed_hemisphere(anatomy, site.placement.center_world)
        crosses = bool(spec.location.crosses_midline)
        try:
            fronts = grow_front(
                initial,
                anatomy.wm[sl],
                anatomy.gm[sl],
                geometry.spacing_mm,
                float(spec.growth.proliferation_per_day),
                float(spec.growth.diffusion_mm2_per_day),
                scales,
                compartments=anatomy.parts.labels[sl],
                bridges=anatomy.parts.callosum[sl] if crosses else None,
                reachable=_reachable(compartment, crosses),
            )
        except LesionDoesNotFitError as err:  # the front leaves the crop: grow it uniformly instead
            self._warp_fallback = str(err)
            return none, done
        center = site.center_vox  # the lesion's centroid: the centre of sample_lesion's scaling
        own = np.maximum(ray_extent(initial >= 0.5, center, geometry.spacing_mm), min(geometry.spacing_mm))
        # no direction may leave the influence zone (blend band and a voxel of margin kept inside)
        room = (site.placement.influence_mm - self.blend_mm - max(geometry.spacing_mm)) / own
        smooth = RADIAL_SMOOTH_DEG / (180.0 / N_THETA)
        out: list[Radial | None] = []
        floor = np.ones((N_THETA, N_PHI))
        for i, (s, d, front) in enumerate(zip(scales, diameters, fronts, strict=True)):
            if s <= 1.0 + 1e-6:
                out.append(None)
                continue
            log_f = np.log(np.clip(ray_extent(front, center, geometry.spacing_mm) / own, 1.0, MAX_RADIAL * s))
            wrapped = ndimage.gaussian_filter(np.pad(log_f, ((0, 0), (N_PHI, N_PHI)), mode="wrap"), smooth)
            factor = np.minimum(np.maximum(np.exp(wrapped[:, N_PHI:-N_PHI]), floor), room)
            # one secant step on the overall size: the longest diameter is the law's
            one = sample(1.0, Radial(factor))
            done[i] = one
            if one is not None and (one.labels > 0).any():
                got = longest_diameter_mm(one.labels > 0, geometry.spacing_mm)
                if got > 0 and abs(got - d) > DIAMETER_TOLERANCE * d:
                    factor = np.minimum(np.maximum(factor * (d / got), floor), room)
                    done[i] = None  # rescaled: sampled again by grow
            floor = factor  # nested: no direction shrinks at a later timepoint
            out.append(Radial(factor))
        return out, done

    def mass_effect(
        self, inputs: Inputs, anatomy: Any, site: Site, growth: Growth
    ) -> list[NDArray[np.float32]]:
        return self.base.mass_effect(inputs, anatomy, site, growth)

    def _compartment(self, inputs: Inputs, anatomy: Any, site: Site) -> NDArray[np.bool_]:
        """Crop mask of where the lesion may lie besides its organ: a glioma stays in the dural
        compartment it starts in (the falx and tentorium are barriers), or both hemispheres for a
        butterfly glioma; a lung nodule anywhere in the allowed lung."""
        if self.family != Family.GLIOMA:
            return np.ones(site.box.shape, dtype=bool)
        from longisynth.families.glioma import _reachable, _seed_hemisphere

        compartment, _ = _seed_hemisphere(anatomy, site.placement.center_world)
        reachable = _reachable(compartment, bool(inputs.spec.location.crosses_midline))
        return np.isin(anatomy.parts.labels[site.box.slices], list(reachable))

    def renderer(self, inputs: Inputs, anatomy: Any, box: Box) -> _Renderer:
        scans = inputs.scans
        geometry = next(iter(scans.values())).geometry
        spacing = geometry.spacing_mm
        crops = {c: s.values_in(box) for c, s in scans.items()}
        noises: dict[str, NoiseModel] = {}
        maps: dict[str, tuple[float, float]] = {}  # per contrast: value = a + b · patch value
        if self.family == Family.LUNG_NODULE:
            hu = crops["ct"]
            lung = ndimage.gaussian_filter(hu, 0.7) < LUNG_AIR_HU
            host_ref = float(np.median(hu[lung])) if lung.sum() > 100 else -850.0
            src_ref = self.lesion.entry.reference.get("lung_hu", -850.0)
            noises["ct"] = soft_tissue_noise(scans["ct"])
            maps["ct"] = (host_ref - src_ref, 1.0)
            intensities = {"ct": CT_INTENSITY}
        else:
            maps, noises = brain_statistics(scans, anatomy)
            intensities = {c: Intensity(m, max(sd, 1e-6)) for c, (m, sd) in maps.items()}
            if self.lesion.host_units:  # rendered on this host: already in its units
                maps = {c: (0.0, 1.0) for c in maps}
        self._host_maps = maps
        render_seed = int(inputs.rng["render"].integers(2**63 - 1))
        return _Renderer(self, maps, noises, spacing, render_seed, intensities)

    def is_growing(self, spec: LesionSpec) -> bool:
        return self.base.is_growing(spec)

    def findings(
        self, inputs: Inputs, anatomy: Any, site: Site, growth: Growth, timepoints: list[Timepoint]
    ) -> Findings:
        spec = inputs.spec
        state: _State = growth.state
        checks: list[ck.Check] = []
        if self.family == Family.LUNG_NODULE:
            from longisynth.families.lung import _nodule_checks

            checks = _nodule_checks(spec, None, timepoints, state.diameters_mm)
        else:
            from longisynth.families.glioma import _glioma_checks

            checks = _glioma_checks(spec, timepoints, anatomy, site)
        rules = self.lesion.host_units
        texture = "rule-based, rendered on this scan" if rules else "the library lesion's"
        transplant: dict[str, Any] = {
            "scales": [round(s, 4) for s in state.scales],
            "requested_diameters_mm": [round(d, 4) for d in state.diameters_mm],
            "blend_mm": self.blend_mm,
            "mirrored_left_right": self.mirrored,
            "growth_warp": "reaction-diffusion front (stretch per direction)"
            if any(r is not None for r in state.radials)
            else "uniform scaling about the centroid"
            + (
                f" (the reaction-diffusion front could not be used: {self._warp_fallback})"
                if self._warp_fallback
                else ""
            ),
            "stretch_per_direction_range": [
                [round(float(r.factor.min()), 3), round(float(r.factor.max()), 3)] if r is not None else None
                for r in state.radials
            ],
            "baseline_mask": f"given by the user (texture: {texture})"
            if self.fixed_center is not None
            else "the library lesion's",
        }
        simulation: dict[str, Any] = {"transplant": transplant}
        if not rules:  # a real lesion: where it came from, and how close the output stays to it
            simulation["source_lesion"] = self.lesion.provenance()
            transplant["memorisation"] = self._memorisation(inputs, anatomy, site, timepoints)
        plan = site.placement.plan
        if self.family == Family.LUNG_NODULE and plan is not None:
            attachment = plan.site.attachment
            simulation["attachment"] = {
                "type": attachment.value if attachment else None,
                "drawn": plan.site.drawn,
            }
        return Findings(
            checks=checks,
            notes=[
                (
                    "the baseline lesion is the user's mask with a rule-based texture rendered on this scan"
                    if rules
                    else "the lesion is a real lesion from a library (its texture and baseline mask are "
                    "the source's)"
                )
                + "; later timepoints scale it about its centroid by the growth law"
                + (
                    ", stretched per direction along its reaction-diffusion front"
                    if any(r is not None for r in state.radials)
                    else ""
                )
            ],
            simulation=simulation,
        )

    def _memorisation(
        self, inputs: Inputs, anatomy: Any, site: Site, timepoints: list[Timepoint]
    ) -> dict[str, Any]:
        """Per timepoint: the distance (:mod:`longisynth.library.memorisation`) from the generated
        lesion to its source and to the nearest library lesion (also mirrored), and the library's
        own scale (median nearest-other distance)."""
        scans = inputs.scans
        contrasts = sorted(scans)
        geometry = next(iter(scans.values())).geometry.crop(site.box)
        # CT in HU as is; MRI back to brain z-scores with the statistics the renderer measured
        norm = {"ct": (0.0, 1.0)}
        if self.family == Family.GLIOMA:
            norm = {c: (m, max(sd, 1e-6)) for c, (m, sd) in self._host_maps.items()}
        lesion = self.lesion
        source = descriptor(lesion.images, lesion.labels > 0, lesion.affine, contrasts)
        to_source, nearest = [], []
        for tp in timepoints:
            images = {}
            for c, scan in scans.items():
                physical = tp.crops[c].astype(np.float64) * scan.slope + scan.inter
                images[c] = ((physical - norm[c][0]) / norm[c][1]).astype(np.float32)
            own = descriptor(images, tp.mask > 0, geometry.affine, contrasts)
            to_source.append(round(distance(own, source), 3))
            if lesion.descriptors is not None and set(contrasts) <= set(lesion.descriptors.contrasts):
                flipped = own.reshape(len(contrasts), GRID, GRID, GRID)[:, ::-1].reshape(-1)
                hits = [lesion.descriptors.nearest(d, contrasts) for d in (own, flipped)]
                lesion_id, d = min(hits, key=lambda h: h[1])
                nearest.append({"id": lesion_id, "distance": round(d, 3)})
        return {
            "units": "HU" if self.family == Family.LUNG_NODULE else "brain standard deviations",
            "distance_to_source": to_source,
            "nearest_library_lesion": nearest,
            "library_nearest_other_median": lesion.nn_median_distance,
        }


@dataclass
class _Renderer:
    transplant: Transplant
    maps: dict[str, tuple[float, float]]
    noises: dict[str, NoiseModel]
    spacing_mm: tuple[float, float, float]
    render_seed: int
    intensities: dict[str, Intensity]

    @property
    def noise_model(self) -> dict[str, Any]:
        return {c: n.to_dict() for c, n in self.noises.items()}

    def _host_units(self, contrast: str, values: NDArray[np.float32]) -> NDArray[np.float32]:
        a, b = self.maps[contrast]
        if contrast == "ct":
            # Shift the lung-density part of the lesion to the host's lung; keep solid tissue.
            src_ref = self.transplant.lesion.entry.reference.get("lung_hu", -850.0)
            weight = np.clip((values - SOLID_HU) / (src_ref - SOLID_HU), 0.0, 1.0)
            return (values + a * weight).astype(np.float32)
        return (a + b * values).astype(np.float32)

    def _extra_noise(self, contrast: str) -> float:
        """Host noise sd not already in the source's texture (image units)."""
        host = self.noises[contrast].sigma
        src = self.transplant.lesion.entry.noise_sd.get(contrast, 0.0)
        if contrast != "ct":
            src *= self.maps[contrast][1]
        return math.sqrt(max(host * host - src * src, 0.0))

    def _detail_sd(self, contrast: str, one: Sampled, mask: NDArray[np.bool_]) -> float:
        """sd of the lesion's fine detail (image minus a 1-voxel Gaussian blur) inside its mask,
        host units; NaN when the mask is too small to say."""
        values = self._host_units(contrast, np.nan_to_num(one.images[contrast]))
        inner = ndimage.binary_erosion(mask)
        if inner.sum() < 8:
            return math.nan
        return float(np.std((values - ndimage.gaussian_filter(values, 1.0))[inner]))

    def _regrown_detail(self, index: int, contrast: str, growth: Growth, mask: NDArray[np.bool_]) -> float:
        """Detail a grown copy lacks: scaling a lesion by s > 1 stretches its texture, so its fine
        detail (sd at the voxel scale) falls below the copy's at scale 1. The missing part, in
        host units, is added back as correlated noise of the lesion's own detail level — new tissue
        at the growing front with the lesion's intensity statistics, not a stretch of old tissue."""
        state: _State = growth.state
        if state.scales[index] <= 1.0 + 1e-6:
            return 0.0
        ref = int(np.argmin([abs(s - 1.0) for s in state.scales]))
        base = state.sampled[ref]
        if base is None:
            return 0.0
        own = self._detail_sd(contrast, base, growth.masks[ref][base.box] > 0)
        now = self._detail_sd(contrast, state.sampled[index], mask)  # type: ignore[arg-type]
        if not (math.isfinite(own) and math.isfinite(now)):
            return 0.0
        return math.sqrt(max(own * own - now * now, 0.0))

    def render(self, index: int, backgrounds: Crops, growth: Growth) -> Crops:
        state: _State = growth.state
        one = state.sampled[index]
        if one is None:
            return dict(backgrounds)
        mask = growth.masks[index][one.box] > 0
        outside = ndimage.distance_transform_edt(~mask, sampling=self.spacing_mm) if mask.any() else None
        out: Crops = {}
        for c, background in backgrounds.items():
            image = background.copy()
            if outside is None:
                out[c] = image
                continue
            alpha = np.clip(1.0 - outside / self.transplant.blend_mm, 0.0, 1.0).astype(np.float32)
            alpha[~growth.support[one.box]] = 0.0
            patch = one.images[c]
            alpha[~np.isfinite(patch)] = 0.0
            lesion = self._host_units(c, np.nan_to_num(patch))
            extra = self._extra_noise(c)
            if extra > 0:
                model = NoiseModel(extra, self.noises[c].kernel_mm)
                lesion += synthesize_noise(
                    lesion.shape, self.spacing_mm, model, np.random.default_rng(self.render_seed)
                )
            detail = self._regrown_detail(index, c, growth, mask)
            if detail > 0:
                # voxel-scale correlation (half a voxel), inside the lesion only
                kernel = (0.5 * self.spacing_mm[0], 0.5 * self.spacing_mm[1], 0.5 * self.spacing_mm[2])
                field = synthesize_noise(
                    lesion.shape,
                    self.spacing_mm,
                    NoiseModel(1.0, kernel),
                    np.random.default_rng([self.render_seed, 1]),
                )
                # scaled so that the *detail* (not the raw field) reaches the missing sd
                gain = float(np.std(field - ndimage.gaussian_filter(field, 1.0))) or 1.0
                lesion += (detail / gain) * field * ndimage.binary_erosion(mask)
            part = image[one.box]
            image[one.box] = part + alpha * (lesion - part)
            out[c] = image
        return out
