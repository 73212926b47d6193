"""Gliomas in brain MRI: brain tissues → seed → Fisher–Kolmogorov growth → push into the CSF → MRI rendering.

Masks (BraTS 2023 numbering): 1 necrotic / non-enhancing core, 2 oedema, 3 enhancing tumour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth import checks as ck
from longisynth.anatomy import midline as ml
from longisynth.anatomy.brain import BrainAnatomy, brain_anatomy, brain_region, region_name
from longisynth.anatomy.mri_intensity import detect_convention, skull_stripped
from longisynth.appearance.mri import render_glioma
from longisynth.appearance.noise import NoiseModel, estimate_noise
from longisynth.deformation import BrainFlow
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Crops, Findings, Growth, Inputs, Placement, Site
from longisynth.geometry import Box
from longisynth.growth.glioma import GliomaGrowth, simulate_glioma
from longisynth.io.scan import Scan
from longisynth.placement import choose_center, explicit_point_world
from longisynth.refine.patches import Intensity
from longisynth.result import Timepoint
from longisynth.spec import BrainLobe, Family, GliomaGrade, LesionSpec, Side
from longisynth.spec.schema import POSTERIOR_FOSSA

BUTTERFLY_SEED_MM = 4.0  # a butterfly glioma starts within this of the midline, mm
ANATOMY_CONTRAST_ORDER = ("t1", "t1c", "t2", "flair")
RENDER_THRESHOLD = 1e-3  # tumour density below which the image is left untouched


def anatomy_contrast(scans: Mapping[str, Scan]) -> str:
    """The contrast the brain anatomy is read from (T1 first: the best grey–white contrast)."""
    return next(c for c in (*ANATOMY_CONTRAST_ORDER, *scans) if c in scans)


@dataclass(frozen=True)
class GliomaAnatomy(BrainAnatomy):
    """The brain anatomy plus its dural compartments (falx, tentorium; whole grid).

    Attributes:
        midline: the midsagittal surface found in this brain (MNI mm).
        compartments: left / right hemisphere, posterior fossa, corpus callosum.
    """

    midline: ml.MidlineSurface | None = None
    compartments: ml.Compartments | None = None

    @property
    def parts(self) -> ml.Compartments:
        assert self.compartments is not None
        return self.compartments


def _with_compartments(base: BrainAnatomy) -> GliomaAnatomy:
    vox_to_mni = ml.vox_to_mni(base.geometry.affine, base.mni_to_scan)
    tissue = base.gm + base.wm
    surface = ml.estimate_midline(tissue, base.brain, vox_to_mni)
    parts = ml.compartments(base.brain, tissue, base.wm, vox_to_mni, surface)
    fields = {f: getattr(base, f) for f in ("geometry", "brain", "csf", "gm", "wm", "mni_to_scan")}
    return GliomaAnatomy(**fields, midline=surface, compartments=parts)


def _seed_hemisphere(anatomy: GliomaAnatomy, center_world: NDArray[np.float64]) -> tuple[int, int]:
    """(compartment, supratentorial side) of the voxel nearest to a lesion centre."""
    ijk = np.clip(
        np.round(anatomy.geometry.world_to_voxel(center_world)).astype(int),
        0,
        np.asarray(anatomy.brain.shape) - 1,
    )
    at = tuple(int(v) for v in ijk)
    compartment = int(anatomy.parts.labels[at])
    return compartment, ml.hemisphere_at(compartment, float(anatomy.parts.lateral_mm[at]))


def _reachable(compartment: int, crosses_midline: bool) -> frozenset[int]:
    """Compartments a glioma started in ``compartment`` may grow into: its own, and the other
    hemisphere for a butterfly glioma (through the corpus callosum)."""
    if compartment == ml.INFRATENTORIAL or not crosses_midline:
        return frozenset({compartment})
    return frozenset({ml.LEFT, ml.RIGHT})


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


def brain_statistics(
    scans: Mapping[str, Scan], anatomy: BrainAnatomy
) -> tuple[dict[str, tuple[float, float]], dict[str, NoiseModel]]:
    """Per contrast: the brain's intensity mean and sd (scanner units) and the noise measured in
    deep white matter — what rendering into this brain needs.

    The appearance targets are brain z-scores over the non-zero voxels of skull-stripped BraTS
    images (``appearance/brats_calibration.json``), so a skull-stripped input is z-scored the same
    way (its non-zero voxels, which hold the CSF and any tumour the segmented brain leaves out:
    sd 5–8 % higher on BraTS 2018); an input with skull uses the segmented brain."""
    name = anatomy_contrast(scans)
    spacing = scans[name].geometry.spacing_mm
    stripped = skull_stripped(scans[name].values(), anatomy.brain)
    wm_core = anatomy.wm > 0.9
    stats, noises = {}, {}
    for c, s in scans.items():
        vals = s.values()
        inside = vals[vals != 0] if stripped else vals[anatomy.brain]
        stats[c] = (float(inside.mean()), float(inside.std()))
        noises[c] = estimate_noise(vals, spacing, wm_core)
    return stats, noises


class Glioma:
    """Low- and high-grade gliomas in brain MRI (any of T1, T1c, T2, FLAIR on one grid)."""

    family = Family.GLIOMA
    # Gliomas displace the brain into its CSF spaces (compressed ventricle, effaced sulci, midline
    # shift): the added volume is this fraction of the whole tumour's (deformation.BrainFlow),
    # calibrated on the midline shift of the shared BraTS 2018 brains (docs/mass_effect.md).
    added_volume_fraction = 1.0
    size_convention = "longest"  # a glioma's diameter_mm is its longest whole-tumour diameter
    # necrotic / non-enhancing core and enhancing tumour (oedema is infiltrated brain)
    solid_labels: tuple[int, ...] = (1, 3)

    def anatomy(self, inputs: Inputs) -> GliomaAnatomy:
        scans = inputs.scans
        name = anatomy_contrast(scans)
        known = dict(inputs.tissues) if inputs.tissues is not None else None
        brain_mask = None
        if known is not None:
            brain_mask = (known["csf"] + known["gm"] + known["wm"]) > 0.5
        base = brain_anatomy(
            scans[name].values(), scans[name].geometry, name, tissues=known, brain_mask=brain_mask
        )
        return _with_compartments(base)

    def region(self, inputs: Inputs, anatomy: GliomaAnatomy) -> NDArray[np.bool_]:
        """Where the glioma may start: the requested lobe / side / depth on this brain's own
        midline, in tissue, supratentorial unless a posterior-fossa region is asked for (the
        callosum at the midline for a butterfly glioma).

        Raises:
            LesionDoesNotFitError: no tissue on the requested side.
        """
        loc = inputs.spec.location
        region = brain_region(anatomy, loc.side, loc.brain_lobe, loc.depth)
        region &= (anatomy.wm + anatomy.gm) > 0.5
        if loc.brain_lobe not in POSTERIOR_FOSSA:
            region &= anatomy.parts.labels != ml.INFRATENTORIAL  # adult gliomas: supratentorial
        if loc.side is not None:
            # The side of this brain's own midline (a mass may have bent it away from MNI x = 0).
            side = anatomy.parts.lateral_mm < 0 if loc.side == Side.LEFT else anatomy.parts.lateral_mm > 0
            region &= side
            if not region.any():
                raise LesionDoesNotFitError(
                    f"no brain tissue on the {loc.side.value} of this brain's midline in the requested "
                    "region (lobes are approximate, from MNI152 coordinates)"
                )
        if loc.crosses_midline and loc.brain_lobe == BrainLobe.CORPUS_CALLOSUM:
            # A butterfly glioma starts in the callosum at the midline, so that it reaches both
            # hemispheres (seeded off-centre it stays mostly on one side).
            central = (
                region & anatomy.parts.callosum & (np.abs(anatomy.parts.lateral_mm) <= BUTTERFLY_SEED_MM)
            )
            region = central if central.any() else region
        return region

    def place(self, inputs: Inputs, anatomy: GliomaAnatomy) -> Placement:
        spec = inputs.spec
        assert spec.diameter_mm is not None
        geometry = inputs.scans[anatomy_contrast(inputs.scans)].geometry
        loc = spec.location
        region = self.region(inputs, anatomy)
        clearance = min(15.0, 0.25 * spec.diameter_mm)
        what = f"a {spec.diameter_mm:g} mm glioma" + (
            f" in the {region_name(loc.brain_lobe)}" if loc.brain_lobe else ""
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

    def grow(self, inputs: Inputs, anatomy: GliomaAnatomy, site: Site) -> Growth:
        spec = inputs.spec
        assert spec.grade is not None and spec.diameter_mm is not None and spec.timepoints_days is not None
        sl = site.box.slices
        compartment, _ = _seed_hemisphere(anatomy, site.placement.center_world)
        crosses = bool(spec.location.crosses_midline)
        parts = anatomy.parts
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
            compartments=parts.labels[sl],
            bridges=parts.callosum[sl] if crosses else None,
            reachable=_reachable(compartment, crosses),
        )
        support = np.any([c > RENDER_THRESHOLD for c in growth.concentration], axis=0)
        return Growth(list(growth.labels), support, state=growth)

    def mass_effect(
        self, inputs: Inputs, anatomy: GliomaAnatomy, site: Site, growth: Growth
    ) -> list[NDArray[np.float32]]:
        # the whole tumour's volume (mm³) times added_volume_fraction is pressed into the CSF
        sl = site.box.slices
        spacing = inputs.scans[anatomy_contrast(inputs.scans)].geometry.spacing_mm
        flow = BrainFlow.of(anatomy.brain[sl], anatomy.csf[sl], site.center_vox, spacing)
        voxel_mm3 = float(np.prod(spacing))
        fields = []
        for mask in growth.masks:
            tumour = mask > 0
            fields.append(flow.field(tumour, self.added_volume_fraction * float(tumour.sum()) * voxel_mm3))
        return fields

    def renderer(self, inputs: Inputs, anatomy: GliomaAnatomy, box: Box) -> _GliomaRenderer:
        scans, spec = inputs.scans, inputs.spec
        assert spec.grade is not None
        spacing = scans[anatomy_contrast(scans)].geometry.spacing_mm
        stats, noises = brain_statistics(scans, anatomy)
        render_seed = int(inputs.rng["render"].integers(2**63 - 1))
        return _GliomaRenderer(spec.grade, stats, noises, spacing, render_seed)

    def is_growing(self, spec: LesionSpec) -> bool:
        return True

    def findings(
        self, inputs: Inputs, anatomy: GliomaAnatomy, site: Site, growth: Growth, timepoints: list[Timepoint]
    ) -> Findings:
        state: GliomaGrowth = growth.state
        scans = inputs.scans
        assert anatomy.midline is not None
        return Findings(
            checks=_glioma_checks(inputs.spec, timepoints, anatomy, site),
            notes=[
                "brain lobes are approximate (MNI152 coordinates after affine registration); the "
                "midline and the tentorium are found in this brain"
            ],
            simulation={
                "tumour_age_days": [round(a, 3) for a in state.ages_days],
                "anatomy_contrast": anatomy_contrast(scans),
                **_input_intensity(scans, anatomy.brain),
                "midline": {
                    "shift_p95_mm": round(anatomy.midline.shift_p95_mm, 1),
                    "columns_found_fraction": round(anatomy.midline.reliable_fraction, 3),
                },
            },
        )


def _input_intensity(scans: Mapping[str, Scan], brain: NDArray[np.bool_]) -> dict[str, Any]:
    """Metadata: each contrast's value convention (raw / minmax / zscore; the outputs keep it) and
    whether the brain was given skull-stripped (judged on the anatomy contrast)."""
    name = anatomy_contrast(scans)
    return {
        "intensity_convention": {c: detect_convention(s.values()).convention for c, s in scans.items()},
        "skull_stripped": skull_stripped(scans[name].values(), brain),
    }


def _glioma_checks(
    spec: LesionSpec, timepoints: list[Timepoint], anatomy: GliomaAnatomy, site: Site
) -> list[ck.Check]:
    assert spec.grade is not None
    out: list[ck.Check] = []
    span_days = timepoints[-1].days - timepoints[0].days
    if span_days > 0:
        rate = (timepoints[-1].longest_diameter_mm - timepoints[0].longest_diameter_mm) / span_days * 365.25
        out.append(ck.check("diameter_growth_mm_per_year", rate, variant=spec.grade.value))
    # Side and midline, against this brain's own midline (hard): the tumour starts on the requested
    # side and, unless the spec asks for a butterfly glioma, none of it lies in the other hemisphere.
    _, hemisphere = _seed_hemisphere(anatomy, site.placement.center_world)
    if spec.location.side is not None:
        wanted = ml.LEFT if spec.location.side == Side.LEFT else ml.RIGHT
        out.append(ck.check("lesion_on_requested_side", hemisphere == wanted))
    last = timepoints[-1].mask > 0
    if last.any():
        other = ml.RIGHT if hemisphere == ml.LEFT else ml.LEFT
        crossing = float(np.mean(anatomy.parts.labels[site.box.slices][last] == other))
        variant = "butterfly" if spec.location.crosses_midline else "falx"
        out.append(ck.check("fraction_across_midline", crossing, variant=variant))
    return out
