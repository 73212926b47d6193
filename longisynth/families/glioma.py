"""Gliomas in brain MRI: brain tissues → seed → Fisher–Kolmogorov growth → strong push → MRI rendering.

Masks (BraTS 2023 numbering): 1 necrotic / non-enhancing core, 2 oedema, 3 enhancing tumour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth import checks as ck
from longisynth.anatomy.brain import BrainAnatomy, brain_anatomy, brain_region
from longisynth.appearance.mri import render_glioma
from longisynth.appearance.noise import NoiseModel, estimate_noise
from longisynth.families.base import Crops, Findings, Growth, Inputs, Placement, Site
from longisynth.geometry import Box, Geometry
from longisynth.growth.glioma import GliomaGrowth, simulate_glioma
from longisynth.io.scan import Scan
from longisynth.placement import choose_center, explicit_point_world
from longisynth.refine.patches import Intensity
from longisynth.result import Timepoint
from longisynth.spec import Family, GliomaGrade, LesionSpec

ANATOMY_CONTRAST_ORDER = ("t1", "t1c", "t2", "flair")
RENDER_THRESHOLD = 1e-3  # tumour density below which the image is left untouched


def anatomy_contrast(scans: Mapping[str, Scan]) -> str:
    """The contrast the brain anatomy is read from (T1 first: the best grey–white contrast)."""
    return next(c for c in (*ANATOMY_CONTRAST_ORDER, *scans) if c in scans)


@dataclass
class _GliomaRenderer:
    grade: GliomaGrade
    stats: dict[str, tuple[float, float]]  # per contrast: brain mean and sd (scanner units)
    noises: dict[str, NoiseModel]
    spacing_mm: tuple[float, float, float]
    render_seed: int

    @property
    def intensities(self) -> dict[str, Intensity]:
        # Model units for MRI: z-scores of the brain's intensities (as in training on MNI152).
        return {c: Intensity(m, max(sd, 1e-6)) for c, (m, sd) in self.stats.items()}

    @property
    def noise_model(self) -> dict[str, Any]:
        return {c: n.to_dict() for c, n in self.noises.items()}

    def render(self, index: int, backgrounds: Crops, growth: Growth) -> Crops:
        state: GliomaGrowth = growth.state
        images = {}
        for c, background in backgrounds.items():
            # Texture (tissue heterogeneity) is the same at every timepoint; acquisition noise is not.
            images[c] = render_glioma(
                background,
                c,
                growth.masks[index],
                state.concentration[index],
                self.stats[c],
                self.noises[c],
                self.spacing_mm,
                np.random.default_rng([self.render_seed, index]),
                grade=self.grade.value,
                texture_rng=np.random.default_rng(self.render_seed),
            )
        return images


class Glioma:
    """Low- and high-grade gliomas in brain MRI (any of T1, T1c, T2, FLAIR on one grid)."""

    family = Family.GLIOMA
    # Gliomas displace the brain strongly (midline shift, effaced sulci): tissue at the tumour
    # boundary moves out by a quarter of the tumour radius, fading to 0 at the influence radius.
    push_fraction = 0.25
    size_convention = "longest"  # a glioma's diameter_mm is its longest whole-tumour diameter

    def anatomy(self, inputs: Inputs) -> BrainAnatomy:
        scans = inputs.scans
        name = anatomy_contrast(scans)
        known = dict(inputs.tissues) if inputs.tissues is not None else None
        brain_mask = None
        if known is not None:
            brain_mask = (known["csf"] + known["gm"] + known["wm"]) > 0.5
        return brain_anatomy(
            scans[name].values(), scans[name].geometry, name, tissues=known, brain_mask=brain_mask
        )

    def place(self, inputs: Inputs, anatomy: BrainAnatomy) -> Placement:
        spec = inputs.spec
        assert spec.diameter_mm is not None
        geometry = inputs.scans[anatomy_contrast(inputs.scans)].geometry
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
            inputs.rng["place"],
        )
        influence_mm = 0.9 * spec.diameter_mm + 4.0
        return Placement(center, influence_mm, influence_mm + 4.0)

    def allowed_region(
        self, inputs: Inputs, anatomy: BrainAnatomy, placement: Placement, box: Box, crops: Crops
    ) -> NDArray[np.bool_]:
        allowed: NDArray[np.bool_] = anatomy.brain[box.slices]
        return allowed

    def grow(self, inputs: Inputs, anatomy: BrainAnatomy, site: Site) -> Growth:
        spec = inputs.spec
        assert spec.grade is not None and spec.diameter_mm is not None and spec.timepoints_days is not None
        sl = site.box.slices
        growth = simulate_glioma(
            anatomy.wm[sl],
            anatomy.gm[sl],
            anatomy.csf[sl],
            inputs.scans[anatomy_contrast(inputs.scans)].geometry.spacing_mm,
            tuple(site.center_vox),
            spec.grade,
            float(spec.growth.proliferation_per_day or 0),
            float(spec.growth.diffusion_mm2_per_day or 0),
            list(spec.timepoints_days),
            spec.diameter_mm,
            inputs.rng["growth"],
        )
        support = np.any([c > RENDER_THRESHOLD for c in growth.concentration], axis=0)
        return Growth(list(growth.labels), support, state=growth)

    def renderer(self, inputs: Inputs, anatomy: BrainAnatomy, box: Box) -> _GliomaRenderer:
        scans, spec = inputs.scans, inputs.spec
        assert spec.grade is not None
        spacing = scans[anatomy_contrast(scans)].geometry.spacing_mm
        wm_core = anatomy.wm > 0.9
        stats, noises = {}, {}
        for c, s in scans.items():
            vals = s.values()
            inside = vals[anatomy.brain]
            stats[c] = (float(inside.mean()), float(inside.std()))
            noises[c] = estimate_noise(vals, spacing, wm_core)
        render_seed = int(inputs.rng["render"].integers(2**63 - 1))
        return _GliomaRenderer(spec.grade, stats, noises, spacing, render_seed)

    def is_growing(self, spec: LesionSpec) -> bool:
        return True

    def findings(
        self, inputs: Inputs, anatomy: BrainAnatomy, site: Site, growth: Growth, timepoints: list[Timepoint]
    ) -> Findings:
        state: GliomaGrowth = growth.state
        scans = inputs.scans
        geometry = scans[anatomy_contrast(scans)].geometry
        return Findings(
            checks=_glioma_checks(inputs.spec, timepoints, anatomy.mni_to_scan, geometry, site.box),
            notes=["brain lobes are approximate (MNI152 coordinates after affine registration)"],
            simulation={
                "tumour_age_days": [round(a, 3) for a in state.ages_days],
                "anatomy_contrast": anatomy_contrast(scans),
            },
        )


def _glioma_checks(
    spec: LesionSpec,
    timepoints: list[Timepoint],
    mni_to_scan: NDArray[np.float64],
    geometry: Geometry,
    box: Box,
) -> list[ck.Check]:
    assert spec.grade is not None
    out: list[ck.Check] = []
    span_days = timepoints[-1].days - timepoints[0].days
    if span_days > 0:
        rate = (timepoints[-1].longest_diameter_mm - timepoints[0].longest_diameter_mm) / span_days * 365.25
        out.append(ck.check("diameter_growth_mm_per_year", rate, variant=spec.grade.value))
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
