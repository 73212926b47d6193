"""In-memory result of :func:`longisynth.generate`: crops over the untouched input.

Images are kept as the input's stored array plus, per timepoint, the replaced crop, so a study of
a 512×512×300 CT with 5 timepoints costs one input copy, not five. :meth:`Study.image` and
:meth:`Study.mask` materialise full volumes on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth.checks import Check
from longisynth.deformation import to_world
from longisynth.geometry import Box, Geometry
from longisynth.io.scan import Scan
from longisynth.measure import centroid_world_mm, clinical_diameter_mm, longest_diameter_mm, volume_mm3
from longisynth.spec import LesionSpec


@dataclass(frozen=True, eq=False)
class Timepoint:
    """One simulated scan.

    Attributes:
        index: 0-based order.
        days: time since the first scan, days.
        crops: stored-dtype crop (the box of :class:`Study`) per contrast name ("ct", "t1"...).
        mask: uint8 label crop (lungs: 1 solid, 2 ground-glass; gliomas: 1 necrotic, 2 oedema,
            3 enhancing).
        displacement_mm: pull-back displacement crop in world RAS+ mm, shape (3, *box.shape):
            output voxel x shows the input tissue at world position x + d(x).
        lesion_volume_mm3, longest_diameter_mm: measured on ``mask > 0``.
        centroid_mm: lesion centre of mass, world RAS+ mm.
        simulated_volume_mm3: volume of the simulated (continuous) lesion including partial-volume
            fractions, mm³; more accurate than the mask for lesions of few voxels.
        clinical_diameter_mm: mean of long and short axis of the lesion's body on its largest axial
            slice, mm (:func:`longisynth.measure.clinical_diameter_mm`: the size a radiologist
            reports; what a lung nodule's ``diameter_mm`` means).
    """

    index: int
    days: float
    crops: dict[str, NDArray[Any]]
    mask: NDArray[np.uint8]
    displacement_mm: NDArray[np.float32]
    lesion_volume_mm3: float
    longest_diameter_mm: float
    centroid_mm: tuple[float, float, float]
    simulated_volume_mm3: float
    clinical_diameter_mm: float = 0.0


@dataclass(eq=False)
class Study:
    """A longitudinal synthetic study (see :func:`longisynth.generate`)."""

    scans: dict[str, Scan]
    box: Box
    spec: LesionSpec
    prompt: str
    timepoints: list[Timepoint]
    checks: list[Check]
    unparsed_words: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry(self) -> Geometry:
        return next(iter(self.scans.values())).geometry

    @property
    def contrasts(self) -> list[str]:
        return list(self.scans)

    def image(self, index: int, contrast: str | None = None) -> NDArray[Any]:
        """Full stored-dtype volume of timepoint ``index`` (a new array)."""
        name = contrast or self.contrasts[0]
        out = self.scans[name].raw.copy()
        out[self.box.slices] = self.timepoints[index].crops[name]
        return out

    def mask(self, index: int) -> NDArray[np.uint8]:
        """Full uint8 label volume of timepoint ``index``."""
        out = np.zeros(self.geometry.shape, dtype=np.uint8)
        out[self.box.slices] = self.timepoints[index].mask
        return out

    def displacement(self, index: int) -> NDArray[np.float32]:
        """Full displacement field (world RAS+ mm), shape (*grid, 3) as NIfTI vector images store it."""
        out = np.zeros((*self.geometry.shape, 3), dtype=np.float32)
        out[self.box.slices] = np.moveaxis(self.timepoints[index].displacement_mm, 0, -1)
        return out


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
        clinical_diameter_mm=round(
            clinical_diameter_mm(lesion, geometry.spacing_mm, geometry.world_axis_index(2)[0]), 4
        ),
    )
