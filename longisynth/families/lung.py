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
from longisynth.anatomy.attachment import PLEURA_BAND_MM, contacts_mm2
from longisynth.anatomy.lung import LungAnatomy, lung_region, require_lungs, segment_lungs
from longisynth.appearance.ct import (
    CalcificationFoci,
    NoduleAppearance,
    calcification_occupancy,
    nodule_labels,
    nodule_texture,
    render_nodule,
    sample_appearance,
    sample_calcification,
    visible_occupancy,
)
from longisynth.appearance.noise import NoiseModel, estimate_noise
from longisynth.deformation import mass_effect_field
from longisynth.errors import LesionDoesNotFitError
from longisynth.families.base import Crops, Findings, Growth, Inputs, Placement, Site, typed_stream
from longisynth.families.lung_placement import NoduleSite, crop_structures, place_nodule, smooth_lungs
from longisynth.geometry import Box, Geometry
from longisynth.growth.laws import diameter_schedule, fit_doubling_time
from longisynth.growth.nodule import (
    NoduleShape,
    SolidComponents,
    grow_nodule,
    sample_nodule_shape,
    sample_solid_components,
    solid_fraction_for,
)
from longisynth.io.scan import Scan
from longisynth.measure import clinical_diameter_mm
from longisynth.refine.patches import CT_INTENSITY, Intensity
from longisynth.result import Timepoint
from longisynth.spec import Attachment, Family, GrowthLaw, LesionSpec, NoduleType

SOFT_TISSUE_HU = (-100.0, 150.0)  # homogeneous tissue used to measure the scan's noise
LUNG_AIR_HU = -400.0  # aerated lung is below this (parenchyma ≈ −900…−800 HU, docs/design.md)


def fine_lung_mask(
    anatomy: LungAnatomy, geometry: Geometry, box: Box, hu: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """Full-resolution lung mask in the crop, the region a nodule may occupy.

    The (coarse, vessel-filled) lungs are upsampled and smoothed; within 3 mm of their surface a
    voxel must also be aerated (so the nodule stops at the pleura, not at a block edge), deeper
    inside everything counts, so a nodule may engulf vessels as real ones do.
    """
    smooth = smooth_lungs(anatomy, geometry, box)
    depth = ndimage.distance_transform_edt(smooth, sampling=geometry.spacing_mm)
    air = ndimage.gaussian_filter(hu, 0.7) < LUNG_AIR_HU
    return smooth & ((depth > PLEURA_BAND_MM) | air)


def soft_tissue_noise(scan: Scan) -> NoiseModel:
    """The CT's noise, measured in homogeneous soft tissue (:data:`SOFT_TISSUE_HU`)."""
    values = scan.values()
    lo, hi = SOFT_TISSUE_HU
    if np.issubdtype(values.dtype, np.integer):
        # the same test with integer bounds (v > lo ⇔ v > ⌊lo⌋, v < hi ⇔ v < ⌈hi⌉): no float64 copy
        # of the whole scan
        info = np.iinfo(values.dtype)
        lo_i, hi_i = int(np.floor(lo)), int(np.ceil(hi))
        above = values > lo_i if lo_i >= info.min else np.ones(values.shape, dtype=bool)
        mask = above & (values < hi_i) if hi_i <= info.max else above
    else:
        mask = (values > lo) & (values < hi)
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
    site: NoduleSite
    diameters_mm: list[float]

    @property
    def shape(self) -> NoduleShape:
        return self.site.shape


@dataclass(frozen=True)
class _NoduleState:
    """What rendering needs from growth: the visible (PSF-blurred) occupancies of the nodule, its
    solid part and its calcified foci per timepoint, and the nodule's drawn HU prior."""

    visible: list[NDArray[np.float32]]
    visible_solid: list[NDArray[np.float32]]
    visible_calcium: list[NDArray[np.float32]] | None
    appearance: NoduleAppearance
    components: SolidComponents | None
    calcification: CalcificationFoci | None


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
        state: _NoduleState = growth.state
        # The same render seed at every timepoint: the lesion's noise realisation is as stable
        # over time as the untouched background's (which is identical by construction).
        image = render_nodule(
            backgrounds["ct"],
            state.visible[index],
            state.visible_solid[index],
            self.nodule_type,
            self.noise,
            self.spacing_mm,
            self.texture,
            np.random.default_rng(self.render_seed),
            appearance=state.appearance,
            calcified=None if state.visible_calcium is None else state.visible_calcium[index],
        )
        return {"ct": image}


class LungNodule:
    """Lung nodules (solid, part-solid, ground-glass) in chest CT (HU)."""

    family = Family.LUNG_NODULE
    # A nodule in aerated lung displaces little: parenchyma is compressible (5 % of the radius at
    # the boundary), and the push fades to zero at twice the lesion's maximal radius.
    push_fraction = 0.05
    size_convention = "clinical"  # diameter_mm: mean of axial long and short axis of the body
    # the solid component (ground glass lets the host's vessels show through it)
    solid_labels: tuple[int, ...] = (1,)

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
        site = place_nodule(inputs, anatomy, shape, diameters, region, _describe(spec))
        axial = geometry.world_axis_index(2)[0]
        reach_mm = max(site.shape.bounding_radius_mm(d, axial) for d in diameters)
        influence_mm = 2.0 * reach_mm + 4.0
        return Placement(site.center_world, influence_mm, influence_mm + 2.0, _NodulePlan(site, diameters))

    def mass_effect(
        self, inputs: Inputs, anatomy: LungAnatomy, site: Site, growth: Growth
    ) -> list[NDArray[np.float32]]:
        geometry = inputs.scans["ct"].geometry
        return [
            mass_effect_field(
                mask,
                site.center_vox,
                self.push_fraction,
                site.placement.influence_mm,
                geometry.spacing_mm,
                geometry.voxel_volume_mm3,
            )
            for mask in growth.masks
        ]

    def allowed_region(
        self, inputs: Inputs, anatomy: LungAnatomy, placement: Placement, box: Box, crops: Crops
    ) -> NDArray[np.bool_]:
        allowed = fine_lung_mask(anatomy, inputs.scans["ct"].geometry, box, crops["ct"])
        site: NoduleSite = placement.plan.site
        if site.attachment == Attachment.PERIFISSURAL and inputs.labels is not None:
            # the fissure is the lobe's boundary: a reader's contour stops at it
            allowed &= np.asarray(inputs.labels[box.slices]) == site.lobe
        return allowed

    def grow(self, inputs: Inputs, anatomy: LungAnatomy, site: Site) -> Growth:
        spec, rng = inputs.spec, inputs.rng
        assert spec.nodule_type is not None and spec.calcification is not None
        plan: _NodulePlan = site.placement.plan
        geometry = inputs.scans["ct"].geometry
        axial = geometry.world_axis_index(2)[0]
        fraction = solid_fraction_for(spec.nodule_type, spec.solid_fraction)
        components = None
        if spec.nodule_type == NoduleType.PART_SOLID:
            components = sample_solid_components(
                fraction, plan.shape, typed_stream(rng["shape"], "components")
            )
        look = typed_stream(rng["texture"], f"{spec.nodule_type.value}/appearance")
        appearance = sample_appearance(look)
        foci = sample_calcification(spec.calcification, look)

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
            solid_fraction=fraction,
            size_of=clinical_size,
            axial_axis=axial,
            components=components,
        )
        # What the scanner shows (PSF-blurred) and what a reader outlines on it.
        visible = [visible_occupancy(o, geometry.spacing_mm) for o in growth.occupancy]
        visible_solid = [visible_occupancy(o, geometry.spacing_mm) for o in growth.solid_occupancy]
        masks = [
            nodule_labels(o, so, allowed=site.allowed) for o, so in zip(visible, visible_solid, strict=True)
        ]
        support = np.any([o > 0 for o in visible], axis=0)
        calcium = None
        if foci is not None:
            calcium = [
                visible_occupancy(
                    np.minimum(
                        calcification_occupancy(
                            foci, site.box.shape, geometry.spacing_mm, site.center_vox, s
                        ),
                        o,
                    ),
                    geometry.spacing_mm,
                )
                for s, o in zip(growth.scale_mm, growth.occupancy, strict=True)
            ]
        state = _NoduleState(visible, visible_solid, calcium, appearance, components, foci)
        return Growth(masks, support, occupancy=list(growth.occupancy), state=state)

    def renderer(self, inputs: Inputs, anatomy: LungAnatomy, box: Box) -> _NoduleRenderer:
        spec, rng = inputs.spec, inputs.rng
        assert spec.nodule_type is not None
        spacing = inputs.scans["ct"].geometry.spacing_mm
        noise = soft_tissue_noise(inputs.scans["ct"])
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
        placed = plan.site
        state: _NoduleState = growth.state
        notes.extend(placed.notes)
        if placed.attachment in (Attachment.JUXTAPLEURAL, Attachment.PERIFISSURAL):
            what = "pleura" if placed.attachment == Attachment.JUXTAPLEURAL else "fissure"
            notes.append(
                f"{placed.attachment.value} nodule: the {what} clips the lesion, so volumes can fall "
                "below the growth law"
            )
        structures = crop_structures(inputs, anatomy, site.box)
        final = growth.masks[-1] > 0
        contacts = contacts_mm2(final, structures, placed.lobe, inputs.scans["ct"].geometry.spacing_mm)
        checks = _nodule_checks(spec, placed.attachment, timepoints, plan.diameters_mm)
        if final.any():
            checks.append(
                ck.check("lesion_on_host_vessel_fraction", host_vessel_fraction(final, structures.vessel))
            )
        return Findings(
            checks=checks,
            notes=notes,
            simulation={
                "lobes_exact": anatomy.lobes_exact,
                "nodule_shape": plan.shape.to_dict(),
                "requested_diameters_mm": [round(d, 4) for d in plan.diameters_mm],
                "nodule_appearance": state.appearance.to_dict(),
                "solid_components": None if state.components is None else state.components.to_dict(),
                "calcification": None if state.calcification is None else state.calcification.to_dict(),
                "attachment": {
                    "type": placed.attachment.value if placed.attachment else None,
                    "drawn": placed.drawn,
                    "contact_mm2_last_timepoint": contacts,
                },
            },
        )


def host_vessel_fraction(lesion: NDArray[np.bool_], vessel: NDArray[np.bool_]) -> float:
    """Fraction (0…1) of the ``lesion`` voxels that lie on the host's vessels (``vessel``: dense
    lung deeper than the pleural band, :class:`~longisynth.anatomy.attachment.HostStructures`; same
    crop). 0 for an empty lesion.

    Raises:
        ValueError: the masks differ in shape.
    """
    if np.shape(lesion) != np.shape(vessel):
        raise ValueError(f"lesion {np.shape(lesion)} and vessel {np.shape(vessel)} masks differ in shape")
    n = int(np.count_nonzero(lesion))
    return float(np.count_nonzero(np.asarray(lesion) & np.asarray(vessel))) / n if n else 0.0


def _nodule_checks(
    spec: LesionSpec, attachment: Attachment | None, timepoints: list[Timepoint], diameters: list[float]
) -> list[ck.Check]:
    out: list[ck.Check] = []
    # The law is checked on the simulated (partial-volume) volumes: a mask of a few dozen voxels
    # cannot resolve 5 %. The mask volumes are in the metadata beside them.
    vols = np.array([tp.simulated_volume_mm3 for tp in timepoints])
    d = np.asarray(diameters)
    if vols[-1] > 0 and attachment not in (Attachment.JUXTAPLEURAL, Attachment.PERIFISSURAL):
        expected = (d / d[-1]) ** 3
        err = float(np.max(np.abs(vols / vols[-1] - expected) / expected))
        out.append(ck.check("volume_law_relative_error", err))
    if spec.growth.law == GrowthLaw.EXPONENTIAL and len(vols) > 1 and vols[0] > 0:
        vdt = fit_doubling_time([tp.days for tp in timepoints], vols)
        out.append(ck.check("measured_doubling_time_days", vdt))
    return out
