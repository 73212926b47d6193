"""Lung-nodule study: lungs → centre → star-shaped growth → small push → HU rendering → checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth import checks as ck
from longisynth.anatomy.lung import LungAnatomy, lung_region, require_lungs, segment_lungs
from longisynth.appearance.ct import nodule_labels, nodule_texture, render_nodule
from longisynth.appearance.noise import NoiseModel, estimate_noise
from longisynth.deformation import backward_displacement, push_for_lesion, warp
from longisynth.geometry import Box, Geometry
from longisynth.growth.laws import diameter_schedule, fit_doubling_time
from longisynth.growth.nodule import grow_nodule, sample_nodule_shape, solid_fraction_for
from longisynth.io.scan import Scan
from longisynth.measure import equivalent_radius_mm
from longisynth.pipeline_common import (
    RefineContext,
    assemble_timepoint,
    ball_mask,
    common_checks,
    crop_box,
    refine_timepoints,
    streams,
)
from longisynth.placement import choose_center, explicit_point_world
from longisynth.refine.patches import CT_INTENSITY
from longisynth.result import Study
from longisynth.spec import GrowthLaw, LesionSpec

# A nodule in aerated lung displaces little: parenchyma is compressible (5 % of the radius at the
# boundary), and the push fades to zero at twice the lesion's maximal radius.
NODULE_PUSH_FRACTION = 0.05
SOFT_TISSUE_HU = (-100.0, 150.0)  # homogeneous tissue used to measure the scan's noise
LUNG_AIR_HU = -400.0  # aerated lung is below this (parenchyma ≈ −900…−800 HU, DESIGN.md)
PLEURA_BAND_MM = 3.0  # near the lung surface, only aerated voxels are lung


def fine_lung_mask(
    anatomy: LungAnatomy, geometry: Geometry, box: Box, hu: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """Full-resolution lung mask in the crop, the region a nodule may occupy.

    The (coarse, vessel-filled) lungs are upsampled and smoothed; within 3 mm of their surface a
    voxel must also be aerated (so the nodule stops at the pleura, not at a block edge), deeper
    inside everything counts, so a nodule may engulf vessels as real ones do.
    """
    coarse = anatomy.mask_in_box(geometry, box).astype(np.float32)
    step = np.asarray(anatomy.geometry.spacing_mm) / np.asarray(geometry.spacing_mm)
    smooth = ndimage.gaussian_filter(coarse, sigma=np.maximum(step / 2.5, 0.5)) >= 0.5
    depth = ndimage.distance_transform_edt(smooth, sampling=geometry.spacing_mm)
    air = ndimage.gaussian_filter(hu, 0.7) < LUNG_AIR_HU
    return smooth & ((depth > PLEURA_BAND_MM) | air)


def _noise_model(scan: Scan) -> NoiseModel:
    values = scan.values()
    mask = (values > SOFT_TISSUE_HU[0]) & (values < SOFT_TISSUE_HU[1])
    return estimate_noise(values, scan.geometry.spacing_mm, mask)


def simulate_nodule_study(
    scans: dict[str, Scan],
    spec: LesionSpec,
    labels: NDArray[np.integer] | None,
    stage: Callable[[str, float], None],
    refine: RefineContext,
) -> Study:
    scan = scans["ct"]
    geometry = scan.geometry
    spacing = geometry.spacing_mm
    assert spec.seed is not None and spec.diameter_mm is not None and spec.timepoints_days is not None
    assert spec.nodule_type is not None and spec.shape is not None
    rng = streams(spec.seed)

    stage("anatomy", 0.05)
    anatomy = segment_lungs(scan.values(), geometry, labels)
    require_lungs(anatomy)

    stage("seed", 0.3)
    loc = spec.location
    region = lung_region(anatomy, loc.side, loc.level, loc.lung_lobe, loc.depth)
    shape = sample_nodule_shape(spec.shape, rng["shape"])
    r_max_mm = max(shape.bounding_radius_mm(d) for d in diameter_schedule(spec))
    coarse_step = max(anatomy.geometry.spacing_mm)
    where = _describe(spec)
    if loc.juxtapleural:
        lo, hi = 0.4 * r_max_mm, 0.8 * r_max_mm + coarse_step
    else:
        # clearance: the lesion, 1.5 mm of lung, half a coarse voxel of mask uncertainty and one
        # half input voxel of partial-volume edge
        lo, hi = r_max_mm + 1.5 + 0.5 * coarse_step + 0.5 * max(spacing), None
    center = choose_center(
        anatomy.lungs,
        region,
        anatomy.geometry,
        lo,
        hi,
        explicit_point_world(loc, geometry),
        where,
        rng["place"],
    )
    influence_mm = 2.0 * r_max_mm + 4.0
    box, center_vox = crop_box(geometry, center, influence_mm + 2.0)
    hu = scan.values_in(box)
    allowed = fine_lung_mask(anatomy, geometry, box, hu)

    stage("growth", 0.45)
    diameters = diameter_schedule(spec)
    growth = grow_nodule(
        box.shape,
        spacing,
        tuple(center_vox),
        diameters,
        shape,
        allowed=allowed,
        solid_fraction=solid_fraction_for(spec.nodule_type, spec.solid_fraction),
    )

    stage("appearance", 0.6)
    noise = _noise_model(scan)
    texture = nodule_texture(box.shape, spacing, rng["texture"])
    render_seed = int(rng["render"].integers(2**63 - 1))
    rendered, masks, fields = [], [], []
    for i in range(len(spec.timepoints_days)):
        occ, solid = growth.occupancy[i], growth.solid_occupancy[i]
        mask = nodule_labels(occ, solid)
        volume = float((mask > 0).sum()) * geometry.voxel_volume_mm3
        push = push_for_lesion(
            tuple(center_vox), equivalent_radius_mm(volume), NODULE_PUSH_FRACTION, influence_mm
        )
        disp = backward_displacement(box.shape, spacing, push)
        background = warp(hu, disp, spacing)
        # The same render seed at every timepoint: the lesion's noise realisation is as stable
        # over time as the untouched background's (which is identical by construction).
        img = render_nodule(
            background,
            occ,
            solid,
            spec.nodule_type,
            noise,
            spacing,
            texture,
            np.random.default_rng(render_seed),
        )
        rendered.append({"ct": img})
        masks.append(mask)
        fields.append(disp)
        stage("appearance", 0.6 + 0.2 * (i + 1) / len(spec.timepoints_days))

    stage("refine", 0.8)
    rendered = refine_timepoints(rendered, masks, {"ct": CT_INTENSITY}, refine, rng["refine"])
    timepoints = [
        assemble_timepoint(
            i,
            days - spec.timepoints_days[0],
            scans,
            box,
            rendered[i],
            masks[i],
            fields[i],
            occupancy=growth.occupancy[i],
        )
        for i, days in enumerate(spec.timepoints_days)
    ]

    zone = ball_mask(box.shape, spacing, center_vox, influence_mm) | np.any(
        [tp.mask > 0 for tp in timepoints], axis=0
    )
    zone |= np.any([o > 0 for o in growth.occupancy], axis=0)
    checks = common_checks(
        timepoints,
        scans,
        box,
        allowed,
        zone,
        growing=spec.growth.law in (GrowthLaw.EXPONENTIAL, GrowthLaw.GOMPERTZ, GrowthLaw.STABLE),
        requested_final_diameter_mm=spec.diameter_mm,
        displacement_fields_mm=fields,
    )
    checks += _nodule_checks(spec, timepoints, diameters)
    notes = []
    if not anatomy.lobes_exact and (loc.lung_lobe or loc.level):
        notes.append(
            "lobes are approximated from lung geometry (no label map given): "
            "upper/middle/lower is a cranio-caudal split, not a fissure segmentation"
        )
    if loc.juxtapleural:
        notes.append(
            "juxtapleural nodule: the pleura clips the lesion, so volumes can fall below the growth law"
        )
    return Study(
        scans=scans,
        box=box,
        spec=spec,
        prompt="",
        timepoints=timepoints,
        checks=checks,
        notes=notes,
        extra={
            "noise_model": noise.to_dict(),
            "lesion_center_mm": [round(float(v), 3) for v in center],
            "influence_radius_mm": round(influence_mm, 3),
            "lobes_exact": anatomy.lobes_exact,
            "nodule_shape": shape.to_dict(),
            "requested_diameters_mm": [round(d, 4) for d in diameters],
            "refiner": refine.status.to_dict(),
        },
    )


def _describe(spec: LesionSpec) -> str:
    loc = spec.location
    words = [w.value.replace("_", " ") for w in (loc.side, loc.level) if w is not None]
    place = loc.lung_lobe.value.replace("_", " ") + " lobe" if loc.lung_lobe else " ".join([*words, "lung"])
    return f"a {spec.diameter_mm:g} mm nodule in the {place}"


def _nodule_checks(spec: LesionSpec, timepoints: list, diameters: list[float]) -> list[ck.Check]:
    out: list[ck.Check] = []
    # The law is checked on the simulated (partial-volume) volumes: a mask of a few dozen voxels
    # cannot resolve 5 %. The mask volumes are in the metadata beside them.
    vols = np.array([tp.simulated_volume_mm3 for tp in timepoints])
    d = np.asarray(diameters)
    if vols[-1] > 0 and not spec.location.juxtapleural:
        expected = (d / d[-1]) ** 3
        err = float(np.max(np.abs(vols / vols[-1] - expected) / expected))
        out.append(ck.check("volume_law_relative_error", err))
    if spec.growth.law == GrowthLaw.EXPONENTIAL and len(vols) > 1 and vols[0] > 0:
        vdt = fit_doubling_time([tp.days for tp in timepoints], vols)
        out.append(ck.check("measured_doubling_time_days", vdt))
    return out
