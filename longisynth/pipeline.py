"""The one driver, and the only place that knows the order of the stages::

    anatomy → seed → growth → deformation → appearance → refine → checks

(the spec is resolved before, by :func:`longisynth.api.generate`). A lesion family
(:mod:`longisynth.families`) answers the family-specific questions; this module owns the crop
around the lesion, applying each timepoint's mass effect (the family's field), resampling the
backgrounds, the refiner hand-off, assembling and measuring the timepoints, the checks every study
gets, the stage names, progress and timings. Everything heavy runs on the crop; the rest of the
scan is untouched.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth import checks as ck
from longisynth.anatomy.mri_intensity import BackgroundGuard
from longisynth.deformation import Warper, jacobian_determinant
from longisynth.families import family_for
from longisynth.families.base import Inputs, Site
from longisynth.geometry import Box, Geometry
from longisynth.io.scan import Scan
from longisynth.library.store import LibraryLesion
from longisynth.library.transplant import Transplant
from longisynth.refine.hand_off import RefineContext, refine_timepoints
from longisynth.result import Study, Timepoint, assemble_timepoint
from longisynth.spec import Contrast, LesionSpec

ProgressFn = Callable[[str, float], None]
# Stage names and the progress fraction at which each starts (spec 0.0 is reported by the API).
STAGES = {
    "spec": 0.0,
    "anatomy": 0.05,
    "seed": 0.25,
    "growth": 0.35,
    "deformation": 0.5,
    "appearance": 0.55,
    "refine": 0.8,
    "checks": 0.95,
}
# Independent random streams per stage: changing how one stage draws never shifts another
# (SeedSequence children depend on their index only, so appending a stream shifts nothing).
STREAMS = ("place", "shape", "texture", "render", "growth", "refine")


def _noop(stage: str, fraction: float) -> None:
    return None


class Clock:
    """Wall time per stage (s) for ``timings_s`` in the metadata, plus progress reporting."""

    def __init__(self, progress: ProgressFn | None = None) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress or _noop
        self._stage = ""
        self._t0 = time.perf_counter()

    def stage(self, name: str, fraction: float | None = None) -> None:
        """Start stage ``name`` (progress at its :data:`STAGES` fraction unless given)."""
        now = time.perf_counter()
        if self._stage:
            self.timings[self._stage] = round(self.timings.get(self._stage, 0.0) + now - self._t0, 4)
        self._stage, self._t0 = name, now
        self._progress(name, STAGES.get(name, 1.0) if fraction is None else fraction)

    def done(self) -> dict[str, float]:
        self.stage("", 1.0)
        return self.timings


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


def simulate(
    scans: dict[str, Scan],
    spec: LesionSpec,
    clock: Clock,
    refine: RefineContext,
    labels: NDArray[np.integer] | None = None,
    tissues: Mapping[str, NDArray[np.floating]] | None = None,
    lesion: LibraryLesion | None = None,
    fixed_center_world: NDArray[np.float64] | None = None,
) -> Study:
    """Simulate the study of a resolved ``spec`` on ``scans`` (contrast → scan, one grid).

    With ``lesion`` (a real lesion from a library, ``spec.source`` library) the family's placement
    and anatomy are kept and the lesion is transplanted and grown
    (:class:`~longisynth.library.transplant.Transplant`); ``fixed_center_world`` puts its centroid
    there (a user's lesion mask) instead of the family's placement.

    Raises:
        LesionDoesNotFitError: the anatomy has no room for the request (incl. no organ found).
        InvalidInputError: a label or tissue map that does not match the scan.
    """
    assert spec.family is not None and spec.seed is not None and spec.timepoints_days is not None
    assert spec.diameter_mm is not None
    family = family_for(spec.family)
    if lesion is not None:
        family = Transplant(family, lesion, fixed_center_world)
    rng = streams(spec.seed)
    geometry = next(iter(scans.values())).geometry
    spacing = geometry.spacing_mm
    n = len(spec.timepoints_days)

    inputs = Inputs(scans, spec, rng, labels, tissues)

    clock.stage("anatomy")
    anatomy = family.anatomy(inputs)

    clock.stage("seed")
    placement = family.place(inputs, anatomy)
    box, center_vox = crop_box(geometry, placement.center_world, placement.crop_half_mm)
    crops = {c: s.values_in(box) for c, s in scans.items()}
    site = Site(placement, box, center_vox, family.allowed_region(inputs, anatomy, placement, box, crops))

    clock.stage("growth")
    growth = family.grow(inputs, anatomy, site)

    clock.stage("deformation")
    if spec.mass_effect is False:  # "no mass effect": the host stays where it is
        fields = [np.zeros((3, *box.shape), dtype=np.float32) for _ in growth.masks]
    else:
        fields = family.mass_effect(inputs, anatomy, site, growth)

    clock.stage("appearance")
    renderer = family.renderer(inputs, anatomy, box)
    rendered = []
    backgrounds: dict[str, NDArray[np.float32]] = {}
    warpers = {c: Warper(crops[c]) for c in scans}
    for i in range(n):
        backgrounds = {c: warpers[c](fields[i], spacing) for c in scans}
        rendered.append(renderer.render(i, backgrounds, growth))
        clock.stage("appearance", STAGES["appearance"] + 0.25 * (i + 1) / n)

    clock.stage("refine")
    rendered = refine_timepoints(rendered, growth.masks, renderer.intensities, refine, rng["refine"], spacing)
    guards = mr_background_guards(scans, box)
    rendered = keep_mr_background(scans, box, rendered, guards)

    clock.stage("checks")
    timepoints = [
        assemble_timepoint(
            i,
            days - spec.timepoints_days[0],
            scans,
            box,
            rendered[i],
            growth.masks[i],
            fields[i],
            occupancy=None if growth.occupancy is None else growth.occupancy[i],
        )
        for i, days in enumerate(spec.timepoints_days)
    ]
    zone = ball_mask(box.shape, spacing, center_vox, placement.influence_mm)
    zone |= np.any([m > 0 for m in growth.masks], axis=0) | growth.support
    zone |= np.any([np.any(f != 0, axis=0) for f in fields], axis=0)  # where the mass effect moved tissue
    changed_within_mm = _reach_from_lesion(growth.masks, zone, spacing)
    checks = common_checks(
        timepoints,
        scans,
        box,
        site.allowed,
        zone,
        growing=family.is_growing(spec),
        requested_final_diameter_mm=spec.diameter_mm,
        clinical_size=family.size_convention == "clinical",
        displacement_fields_mm=fields,
    )
    findings = family.findings(inputs, anatomy, site, growth, timepoints)
    # The last scan's displaced host (``backgrounds``) is what must not show through the lesion.
    looks = appearance_checks(timepoints, scans, guards, backgrounds, family.solid_labels)
    return Study(
        scans=scans,
        box=box,
        spec=spec,
        prompt="",
        timepoints=timepoints,
        checks=checks + findings.checks + looks,
        notes=findings.notes,
        extra={
            "noise_model": renderer.noise_model,
            "lesion_center_mm": [round(float(v), 3) for v in placement.center_world],
            "influence_radius_mm": round(placement.influence_mm, 3),
            "changed_within_mm": changed_within_mm,
            **findings.simulation,
            "refiner": refine.status.to_dict(),
        },
    )


def _reach_from_lesion(
    masks: list[NDArray[np.uint8]], zone: NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> float:
    """How far from the lesion the study may change voxels, mm: the largest distance from the part
    of the lesion present at every timepoint to the zone (influence ball, masks, rendering support,
    mass-effect field), rounded up to 0.1 mm. Whoever re-checks a bundle without its displacement
    fields (``longisynth evaluate``) dilates each timepoint's mask by this much and finds every
    voxel the study changed; 0 when no voxel is lesion at every timepoint."""
    always = np.all([m > 0 for m in masks], axis=0)
    if not always.any():
        return 0.0
    distance = ndimage.distance_transform_edt(~always, sampling=spacing_mm)
    return math.ceil(10.0 * float(distance[zone].max())) / 10.0


def mr_background_guards(scans: Mapping[str, Scan], box: Box) -> dict[str, BackgroundGuard]:
    """Per MRI contrast, what its crop must keep (:class:`BackgroundGuard`); empty for a CT."""
    if Contrast.CT.value in scans:
        return {}
    return {c: BackgroundGuard.of(s.values(), box) for c, s in scans.items()}


def keep_mr_background(
    scans: dict[str, Scan],
    box: Box,
    rendered: list[dict[str, NDArray[np.float32]]],
    guards: Mapping[str, BackgroundGuard] | None = None,
) -> list[dict[str, NDArray[np.float32]]]:
    """The last word on an MRI's crops: its exact-zero background (air set to 0, or outside a
    skull-stripped brain) is exactly 0 at every timepoint, and a magnitude image (no voxel below
    0) gets none below 0, whatever the mass effect, the renderer or the refiner did there.
    CT crops are returned as they are (0 HU is water, and HU are signed). ``guards``:
    :func:`mr_background_guards` of the same scans and box, when already computed.
    """
    guards = mr_background_guards(scans, box) if guards is None else guards
    if not guards:
        return rendered
    return [{c: guards[c].apply(v) for c, v in images.items()} for images in rendered]


# The solid interior is the solid labels eroded by this many voxels (their partial-volume edge
# blends with the host by design); fewer interior voxels than MIN_SOLID_VOXELS: no measurement.
SOLID_ERODE_VOX = 1
MIN_SOLID_VOXELS = 50
HIGHPASS_SIGMA_VOX = 1.0  # the host's fine pattern: the crop minus its Gaussian blur of this σ (voxels)


def solid_interior(mask: NDArray[np.integer], solid_labels: tuple[int, ...]) -> NDArray[np.bool_]:
    """The voxels of ``mask`` with a solid label, eroded by :data:`SOLID_ERODE_VOX` (face-connected)."""
    solid = np.isin(np.asarray(mask), solid_labels)
    return np.asarray(ndimage.binary_erosion(solid, iterations=SOLID_ERODE_VOX))


def host_share(
    image: NDArray[np.floating], host: NDArray[np.floating], interior: NDArray[np.bool_]
) -> float | None:
    """How much of the host's pattern shows in ``image`` inside ``interior``: the least-squares
    slope of the image's fine pattern on the host's there (dimensionless; ≈ 0 when the lesion
    replaced the host, 1 when the host shows at full contrast, α for an α-blend). Fine pattern =
    the crop minus its Gaussian blur (σ :data:`HIGHPASS_SIGMA_VOX` voxels): edges of sulci and
    vessels and the host's own noise realisation, which a replacing lesion does not carry; at this
    scale the lesion's texture is nearly independent from voxel to voxel, so the slope is precise
    (its spread over good studies is ≈ ±0.2) where a slope of raw values is not. None with fewer
    than :data:`MIN_SOLID_VOXELS` interior voxels or a flat host.

    Args:
        image: the output crop, physical units (HU, scanner units).
        host: the displaced host crop (what the renderer drew into), same units and shape.
        interior: :func:`solid_interior` of the lesion's mask.

    Raises:
        ValueError: the three arrays differ in shape.
    """
    if not (np.shape(image) == np.shape(host) == np.shape(interior)):
        raise ValueError(
            f"image {np.shape(image)}, host {np.shape(host)} and interior {np.shape(interior)} "
            "differ in shape"
        )
    if int(np.count_nonzero(interior)) < MIN_SOLID_VOXELS:
        return None
    x = _highpass(host)[interior]
    y = _highpass(image)[interior]
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if norm <= 1e-12 * x.size:
        return None
    return float(np.dot(x, y) / norm)


def _highpass(image: NDArray[np.floating]) -> NDArray[np.float64]:
    a = np.asarray(image, dtype=np.float64)
    return np.asarray(a - ndimage.gaussian_filter(a, HIGHPASS_SIGMA_VOX, mode="nearest"))


def nonzero_in_background(image: NDArray[np.floating], background: NDArray[np.bool_]) -> int:
    """Voxels of the exact-zero ``background`` (:attr:`BackgroundGuard.background`) where
    ``image`` (physical units, same shape) is not exactly 0.

    Raises:
        ValueError: the arrays differ in shape.
    """
    if np.shape(image) != np.shape(background):
        raise ValueError(f"image {np.shape(image)} and background {np.shape(background)} differ in shape")
    return int(np.count_nonzero(np.asarray(background) & (np.asarray(image) != 0)))


def appearance_checks(
    timepoints: list[Timepoint],
    scans: Mapping[str, Scan],
    guards: Mapping[str, BackgroundGuard],
    last_hosts: Mapping[str, NDArray[np.float32]],
    solid_labels: tuple[int, ...],
) -> list[ck.Check]:
    """What a reader sees at a glance: an MRI's exact-zero background stays 0 at every timepoint
    (``zero_background_voxels_nonzero``, hard) and the host's anatomy does not show through the
    solid lesion of the last scan (``host_pattern_in_solid_lesion``, soft; largest over contrasts,
    omitted when the solid interior has too few voxels).

    Args:
        guards: :func:`mr_background_guards` (empty for a CT: no background check).
        last_hosts: per contrast, the displaced host crop of the last timepoint (physical units).
    """
    out: list[ck.Check] = []
    if guards:
        for tp in timepoints:
            bad = sum(
                nonzero_in_background(_physical(scans[c], tp.crops[c]), g.background)
                for c, g in guards.items()
            )
            out.append(ck.check("zero_background_voxels_nonzero", bad, timepoint=tp.index))
    last = timepoints[-1]
    interior = solid_interior(last.mask, solid_labels)
    shares = [host_share(_physical(scans[c], last.crops[c]), last_hosts[c], interior) for c in last_hosts]
    measured = [s for s in shares if s is not None]
    if measured:
        out.append(ck.check("host_pattern_in_solid_lesion", max(measured), timepoint=last.index))
    return out


def _physical(scan: Scan, raw: NDArray[Any]) -> NDArray[np.float32]:
    """A stored-dtype crop of ``scan`` in physical units."""
    if scan.is_identity_scaled:
        return np.asarray(raw, dtype=np.float32)
    return (raw.astype(np.float32) * np.float32(scan.slope) + np.float32(scan.inter)).astype(np.float32)


def common_checks(
    timepoints: list[Timepoint],
    scans: dict[str, Scan],
    box: Box,
    allowed: NDArray[np.bool_],
    zone: NDArray[np.bool_],
    growing: bool,
    requested_final_diameter_mm: float,
    displacement_fields_mm: list[NDArray[np.float32]],
    clinical_size: bool = False,
) -> list[ck.Check]:
    """The rules every study is checked against, whatever its family (:data:`longisynth.checks.RULES`).

    Args:
        allowed: crop mask of the organ the lesion must stay in.
        zone: crop mask of the lesion's influence zone (mass effect + rendering blend), where the
            image may change.
        growing: the law is monotone non-decreasing (masks must nest).
        displacement_fields_mm: array-axis displacement per timepoint (for the Jacobian).
        clinical_size: the request is a clinical size (axial long + short axis of the body), not a
            longest diameter.
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
        outside = int((changed & ~zone).sum())
        out.append(ck.check("changed_voxels_outside_influence_zone", outside, timepoint=tp.index))
        jac = jacobian_determinant(disp, spacing) if np.any(disp) else np.ones(1, dtype=np.float32)
        out.append(ck.check("jacobian_determinant_min", float(jac.min()), timepoint=tp.index))
    if growing:
        nested = all(not np.any((a.mask > 0) & ~(b.mask > 0)) for a, b in itertools.pairwise(timepoints))
        out.append(ck.check("masks_nested_over_time", nested))
        vols = [tp.lesion_volume_mm3 for tp in timepoints]
        monotone = all(b >= a for a, b in itertools.pairwise(vols))
        out.append(ck.check("volume_monotone_non_decreasing", monotone))
    last = timepoints[-1]
    final = last.clinical_diameter_mm if clinical_size else last.longest_diameter_mm
    err = abs(final - requested_final_diameter_mm) / requested_final_diameter_mm
    out.append(ck.check("final_diameter_relative_error", err))
    return out
