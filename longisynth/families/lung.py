"""Lung nodules in chest CT: lungs → centre → star-shaped growth → small push → HU rendering.

Masks: 1 solid component, 2 ground-glass component (:mod:`longisynth.bundle.format`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth import checks as ck
from longisynth.anatomy.lung import LungAnatomy, lung_region, require_lungs, segment_lungs
from longisynth.appearance.ct import nodule_labels, nodule_texture, render_nodule, visible_occupancy
from longisynth.appearance.noise import NoiseModel, estimate_noise
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Crops, Findings, Growth, Inputs, Placement, Site, typed_stream
from longisynth.geometry import Box, Geometry
from longisynth.growth.laws import diameter_schedule, fit_doubling_time
from longisynth.growth.nodule import NoduleShape, grow_nodule, sample_nodule_shape, solid_fraction_for
from longisynth.io.scan import Scan
from longisynth.measure import clinical_diameter_mm
from longisynth.placement import choose_center, explicit_point_world
from longisynth.refine.patches import CT_INTENSITY, Intensity
from longisynth.result import Timepoint
from longisynth.spec import Family, GrowthLaw, LesionSpec, NoduleType

SOFT_TISSUE_HU = (-100.0, 150.0)  # homogeneous tissue used to measure the scan's noise
LUNG_AIR_HU = -400.0  # aerated lung is below this (parenchyma ≈ −900…−800 HU, docs/design.md)
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


# A nodule must be a few pixels across to be seen as one: LIDC-IDRI readers mark nodules ≥ 3 mm on
# 0.5–0.9 mm pixels, i.e. ≥ 3–6 pixels; 2 pixels is the least we simulate.
MIN_VISIBLE_PIXELS = 2.0


def _require_visible(diameter_mm: float, geometry: Geometry) -> None:
    """Refuse a nodule smaller than the scan's in-plane pixels can show (LesionDoesNotFitError)."""
    axial = geometry.world_axis_index(2)[0]
    pixel = max(s for a, s in enumerate(geometry.spacing_mm) if a != axial)
    if diameter_mm < MIN_VISIBLE_PIXELS * pixel:
        raise LesionDoesNotFitError(
            f"a {diameter_mm:.1f} mm nodule is below what this scan's {pixel:.2f} mm pixels can show "
            f"(at least {MIN_VISIBLE_PIXELS:g} pixels: {MIN_VISIBLE_PIXELS * pixel:.1f} mm); ask for a "
            "larger nodule (at every timepoint) or use a finer scan"
        )


def _describe(spec: LesionSpec) -> str:
    loc = spec.location
    words = [w.value.replace("_", " ") for w in (loc.side, loc.level) if w is not None]
    place = loc.lung_lobe.value.replace("_", " ") + " lobe" if loc.lung_lobe else " ".join([*words, "lung"])
    return f"a {spec.diameter_mm:g} mm nodule in the {place}"


@dataclass
class _NodulePlan:
    shape: NoduleShape
    diameters_mm: list[float]


@dataclass
class _NoduleRenderer:
    nodule_type: NoduleType
    noise: NoiseModel
    spacing_mm: tuple[float, float, float]
    texture: NDArray[np.float32]
    render_seed: int
    intensities: dict[str, Intensity]

    @property
    def noise_model(self) -> dict[str, Any]:
        return self.noise.to_dict()

    def render(self, index: int, backgrounds: Crops, growth: Growth) -> Crops:
        visible, visible_solid = growth.state
        # The same render seed at every timepoint: the lesion's noise realisation is as stable
        # over time as the untouched background's (which is identical by construction).
        image = render_nodule(
            backgrounds["ct"],
            visible[index],
            visible_solid[index],
            self.nodule_type,
            self.noise,
            self.spacing_mm,
            self.texture,
            np.random.default_rng(self.render_seed),
        )
        return {"ct": image}


class LungNodule:
    """Lung nodules (solid, part-solid, ground-glass) in chest CT (HU)."""

    family = Family.LUNG_NODULE
    # A nodule in aerated lung displaces little: parenchyma is compressible (5 % of the radius at
    # the boundary), and the push fades to zero at twice the lesion's maximal radius.
    push_fraction = 0.05
    size_convention = "clinical"  # diameter_mm: mean of axial long and short axis of the body

    def anatomy(self, inputs: Inputs) -> LungAnatomy:
        scan = inputs.scans["ct"]
        anatomy = segment_lungs(scan.values(), scan.geometry, inputs.labels)
        require_lungs(anatomy)
        return anatomy

    def place(self, inputs: Inputs, anatomy: LungAnatomy) -> Placement:
        spec, rng = inputs.spec, inputs.rng
        assert spec.shape is not None and spec.nodule_type is not None
        geometry = inputs.scans["ct"].geometry
        diameters = diameter_schedule(spec)
        _require_visible(min(diameters), geometry)
        loc = spec.location
        region = lung_region(anatomy, loc.side, loc.level, loc.lung_lobe, loc.depth)
        shape = sample_nodule_shape(spec.shape, typed_stream(rng["shape"], spec.nodule_type.value))
        axial = geometry.world_axis_index(2)[0]
        r_max_mm = max(shape.body_radius_mm(d, axial) for d in diameters)  # spicules may reach the pleura
        coarse_step = max(anatomy.geometry.spacing_mm)
        if loc.juxtapleural:
            lo, hi = 0.4 * r_max_mm, 0.8 * r_max_mm + coarse_step
        else:
            # clearance: the lesion, 1.5 mm of lung, half a coarse voxel of mask uncertainty and one
            # half input voxel of partial-volume edge
            lo, hi = r_max_mm + 1.5 + 0.5 * coarse_step + 0.5 * max(geometry.spacing_mm), None
        center = choose_center(
            anatomy.lungs,
            region,
            anatomy.geometry,
            lo,
            hi,
            explicit_point_world(loc, geometry),
            _describe(spec),
            rng["place"],
        )
        reach_mm = max(shape.bounding_radius_mm(d, axial) for d in diameters)
        influence_mm = 2.0 * reach_mm + 4.0
        return Placement(center, influence_mm, influence_mm + 2.0, _NodulePlan(shape, diameters))

    def allowed_region(
        self, inputs: Inputs, anatomy: LungAnatomy, box: Box, crops: Crops
    ) -> NDArray[np.bool_]:
        return fine_lung_mask(anatomy, inputs.scans["ct"].geometry, box, crops["ct"])

    def grow(self, inputs: Inputs, anatomy: LungAnatomy, site: Site) -> Growth:
        spec = inputs.spec
        assert spec.nodule_type is not None
        plan: _NodulePlan = site.placement.plan
        geometry = inputs.scans["ct"].geometry
        axial = geometry.world_axis_index(2)[0]

        def clinical_size(occupancy: NDArray[np.float32]) -> float:
            visible = visible_occupancy(occupancy, geometry.spacing_mm)
            mask = nodule_labels(visible, visible, allowed=site.allowed) > 0
            return clinical_diameter_mm(mask, geometry.spacing_mm, axial)

        growth = grow_nodule(
            site.box.shape,
            geometry.spacing_mm,
            tuple(site.center_vox),
            plan.diameters_mm,
            plan.shape,
            allowed=site.allowed,
            solid_fraction=solid_fraction_for(spec.nodule_type, spec.solid_fraction),
            size_of=clinical_size,
            axial_axis=axial,
        )
        # What the scanner shows (PSF-blurred) and what a reader outlines on it.
        visible = [visible_occupancy(o, geometry.spacing_mm) for o in growth.occupancy]
        visible_solid = [visible_occupancy(o, geometry.spacing_mm) for o in growth.solid_occupancy]
        masks = [
            nodule_labels(o, so, allowed=site.allowed) for o, so in zip(visible, visible_solid, strict=True)
        ]
        support = np.any([o > 0 for o in visible], axis=0)
        return Growth(masks, support, occupancy=list(growth.occupancy), state=(visible, visible_solid))

    def renderer(self, inputs: Inputs, anatomy: LungAnatomy, box: Box) -> _NoduleRenderer:
        spec, rng = inputs.spec, inputs.rng
        assert spec.nodule_type is not None
        spacing = inputs.scans["ct"].geometry.spacing_mm
        noise = _noise_model(inputs.scans["ct"])
        texture = nodule_texture(box.shape, spacing, typed_stream(rng["texture"], spec.nodule_type.value))
        render_seed = int(rng["render"].integers(2**63 - 1))
        return _NoduleRenderer(spec.nodule_type, noise, spacing, texture, render_seed, {"ct": CT_INTENSITY})

    def is_growing(self, spec: LesionSpec) -> bool:
        return spec.growth.law in (GrowthLaw.EXPONENTIAL, GrowthLaw.GOMPERTZ, GrowthLaw.STABLE)

    def findings(
        self, inputs: Inputs, anatomy: LungAnatomy, site: Site, growth: Growth, timepoints: list[Timepoint]
    ) -> Findings:
        spec = inputs.spec
        plan: _NodulePlan = site.placement.plan
        loc = spec.location
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
        return Findings(
            checks=_nodule_checks(spec, timepoints, plan.diameters_mm),
            notes=notes,
            simulation={
                "lobes_exact": anatomy.lobes_exact,
                "nodule_shape": plan.shape.to_dict(),
                "requested_diameters_mm": [round(d, 4) for d in plan.diameters_mm],
            },
        )


def _nodule_checks(spec: LesionSpec, timepoints: list[Timepoint], diameters: list[float]) -> list[ck.Check]:
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
