"""Glioma study: brain tissues → seed → Fisher–Kolmogorov growth → strong push → MRI rendering."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from longisynth import checks as ck
from longisynth.anatomy.brain import brain_anatomy, brain_region
from longisynth.appearance.mri import render_glioma
from longisynth.appearance.noise import estimate_noise
from longisynth.deformation import backward_displacement, push_for_lesion, warp
from longisynth.growth.glioma import simulate_glioma
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
from longisynth.refine.patches import Intensity
from longisynth.result import Study
from longisynth.spec import LesionSpec

# Gliomas displace the brain strongly (midline shift, effaced sulci): tissue at the tumour
# boundary moves out by a quarter of the tumour radius, fading to 0 at the influence radius.
GLIOMA_PUSH_FRACTION = 0.25
ANATOMY_CONTRAST_ORDER = ("t1", "t1c", "t2", "flair")
RENDER_THRESHOLD = 1e-3  # tumour density below which the image is left untouched


def simulate_glioma_study(
    scans: dict[str, Scan],
    spec: LesionSpec,
    tissues: Mapping[str, NDArray[np.floating]] | None,
    stage: Callable[[str, float], None],
    refine: RefineContext,
) -> Study:
    assert spec.seed is not None and spec.diameter_mm is not None and spec.timepoints_days is not None
    assert spec.grade is not None
    rng = streams(spec.seed)
    name = next(c for c in (*ANATOMY_CONTRAST_ORDER, *scans) if c in scans)
    ref = scans[name]
    geometry = ref.geometry
    spacing = geometry.spacing_mm

    stage("anatomy", 0.05)
    known = dict(tissues) if tissues is not None else None
    brain_mask = None
    if known is not None:
        brain_mask = (known["csf"] + known["gm"] + known["wm"]) > 0.5
    anatomy = brain_anatomy(ref.values(), geometry, name, tissues=known, brain_mask=brain_mask)

    stage("seed", 0.25)
    loc = spec.location
    region = brain_region(anatomy, loc.side, loc.brain_lobe, loc.depth)
    region &= (anatomy.wm + anatomy.gm) > 0.5
    clearance = min(15.0, 0.25 * spec.diameter_mm)
    what = f"a {spec.diameter_mm:g} mm glioma" + (
        f" in the {loc.brain_lobe.value} lobe" if loc.brain_lobe else ""
    )
    center = choose_center(
        anatomy.brain,
        region,
        anatomy.geometry,
        clearance,
        None,
        explicit_point_world(loc, geometry),
        what,
        rng["place"],
    )
    influence_mm = 0.9 * spec.diameter_mm + 4.0
    box, center_vox = crop_box(geometry, center, influence_mm + 4.0)

    stage("growth", 0.35)
    sl = box.slices
    growth = simulate_glioma(
        anatomy.wm[sl],
        anatomy.gm[sl],
        anatomy.csf[sl],
        spacing,
        tuple(center_vox),
        spec.grade,
        float(spec.growth.proliferation_per_day or 0),
        float(spec.growth.diffusion_mm2_per_day or 0),
        list(spec.timepoints_days),
        spec.diameter_mm,
        rng["growth"],
    )

    stage("appearance", 0.6)
    crops = {c: s.values_in(box) for c, s in scans.items()}
    wm_core = anatomy.wm > 0.9
    stats, noises = {}, {}
    for c, s in scans.items():
        vals = s.values()
        inside = vals[anatomy.brain]
        stats[c] = (float(inside.mean()), float(inside.std()))
        noises[c] = estimate_noise(vals, spacing, wm_core)
    render_seed = int(rng["render"].integers(2**63 - 1))
    rendered, fields = [], []
    for i in range(len(spec.timepoints_days)):
        labels = growth.labels[i]
        conc = growth.concentration[i]
        volume = float((labels > 0).sum()) * geometry.voxel_volume_mm3
        push = push_for_lesion(
            tuple(center_vox), equivalent_radius_mm(volume), GLIOMA_PUSH_FRACTION, influence_mm
        )
        disp = backward_displacement(box.shape, spacing, push)
        images = {}
        for c in scans:
            background = warp(crops[c], disp, spacing)
            # Texture (tissue heterogeneity) is the same at every timepoint; acquisition noise is not.
            images[c] = render_glioma(
                background,
                c,
                labels,
                conc,
                stats[c],
                noises[c],
                spacing,
                np.random.default_rng([render_seed, i]),
                grade=spec.grade.value,
                texture_rng=np.random.default_rng(render_seed),
            )
        rendered.append(images)
        fields.append(disp)
        stage("appearance", 0.6 + 0.2 * (i + 1) / len(spec.timepoints_days))

    stage("refine", 0.8)
    # Model units for MRI: z-scores of the brain's intensities (as in training on MNI152).
    intensities = {c: Intensity(m, max(sd, 1e-6)) for c, (m, sd) in stats.items()}
    rendered = refine_timepoints(rendered, growth.labels, intensities, refine, rng["refine"])
    timepoints = [
        assemble_timepoint(
            i, days - spec.timepoints_days[0], scans, box, rendered[i], growth.labels[i], fields[i]
        )
        for i, days in enumerate(spec.timepoints_days)
    ]

    zone = ball_mask(box.shape, spacing, center_vox, influence_mm)
    zone |= np.any([c > RENDER_THRESHOLD for c in growth.concentration], axis=0)
    zone |= np.any([lab > 0 for lab in growth.labels], axis=0)
    checks = common_checks(
        timepoints,
        scans,
        box,
        anatomy.brain[sl],
        zone,
        growing=True,
        requested_final_diameter_mm=spec.diameter_mm,
        displacement_fields_mm=fields,
    )
    checks += _glioma_checks(spec, timepoints, anatomy.mni_to_scan, geometry, box)
    return Study(
        scans=scans,
        box=box,
        spec=spec,
        prompt="",
        timepoints=timepoints,
        checks=checks,
        notes=["brain lobes are approximate (MNI152 coordinates after affine registration)"],
        extra={
            "noise_model": {c: n.to_dict() for c, n in noises.items()},
            "lesion_center_mm": [round(float(v), 3) for v in center],
            "influence_radius_mm": round(influence_mm, 3),
            "tumour_age_days": [round(a, 3) for a in growth.ages_days],
            "anatomy_contrast": name,
            "refiner": refine.status.to_dict(),
        },
    )


def _glioma_checks(
    spec: LesionSpec, timepoints: list, mni_to_scan: NDArray[np.float64], geometry, box
) -> list[ck.Check]:
    out: list[ck.Check] = []
    span_days = timepoints[-1].days - timepoints[0].days
    if span_days > 0:
        rate = (timepoints[-1].longest_diameter_mm - timepoints[0].longest_diameter_mm) / span_days * 365.25
        out.append(ck.check("diameter_growth_mm_per_year", rate, variant=spec.grade.value))  # type: ignore[union-attr]
    # Midline: the fraction of the final tumour on the other hemisphere (MNI x sign) than its centre.
    last = timepoints[-1]
    idx = np.argwhere(last.mask > 0) + np.asarray(box.start)
    if idx.size:
        world = geometry.voxel_to_world(idx)
        mni = (world - mni_to_scan[:3, 3]) @ np.linalg.inv(mni_to_scan[:3, :3]).T
        side = np.sign(np.median(mni[:, 0]))
        crossing = float(np.mean(np.sign(mni[:, 0]) == -side))
        out.append(ck.check("fraction_across_midline", crossing))
    return out
