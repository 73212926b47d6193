"""What a lesion family provides to the one driver (:mod:`longisynth.pipeline`).

A family (lung nodule, glioma; a liver lesion would be one more module) answers a few questions,
each a method of :class:`LesionFamily`; the driver asks them in its fixed order
(:data:`longisynth.pipeline.STAGES`, the one place that order is written). The driver owns
everything between the answers: the crop around the lesion, applying every timepoint's mass-effect
displacement (the family's :meth:`~LesionFamily.mass_effect`), resampling the backgrounds, the
refiner hand-off, assembling and measuring the timepoints, the checks every study gets, progress
and timings. Families receive plain values (arrays on the crop, the resolved spec, the study's
random streams) and return plain values; they never see HTTP, files or the other family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from longisynth.checks import Check
from longisynth.geometry import Box
from longisynth.io.scan import Scan
from longisynth.refine.patches import Intensity
from longisynth.result import Timepoint
from longisynth.spec import Family, LesionSpec

Streams = Mapping[str, np.random.Generator]  # one generator per stage (pipeline.STREAMS)
Crops = dict[str, NDArray[np.float32]]  # contrast -> crop in physical units (HU, scanner units)


def typed_stream(rng: np.random.Generator, kind: str) -> np.random.Generator:
    """A generator for one lesion *kind* drawn from a stage's stream: two kinds (solid and
    ground-glass nodules) with the same seed get independent shapes and textures."""
    return np.random.default_rng([int(rng.integers(2**63 - 1)), *kind.encode()])


@dataclass(frozen=True)
class Inputs:
    """What every family method may read: the scans (contrast → scan, one grid), the resolved spec,
    the study's random streams, and anatomy the caller already knows (a region label map such as
    TotalSegmentator's lobes; CSF/GM/WM probability maps), each on the scans' grid or None."""

    scans: dict[str, Scan]
    spec: LesionSpec
    rng: Streams
    labels: NDArray[np.integer] | None = None
    tissues: Mapping[str, NDArray[np.floating]] | None = None


@dataclass
class Placement:
    """Where the lesion starts and how far its influence reaches.

    Attributes:
        center_world: lesion centre, world RAS+ mm.
        influence_mm: radius of the zone in which the image may change (mass effect + blend), mm.
        crop_half_mm: half the side of the crop box the driver cuts around the centre, mm.
        plan: family-specific choices made while placing (e.g. the nodule's shape), for :meth:`grow`.
    """

    center_world: NDArray[np.float64]
    influence_mm: float
    crop_half_mm: float
    plan: Any = None


@dataclass
class Site:
    """The placed lesion on the driver's crop: the placement, the crop box, the centre in crop
    voxels and the organ mask the lesion must stay in (crop)."""

    placement: Placement
    box: Box
    center_vox: NDArray[np.float64]
    allowed: NDArray[np.bool_]


@dataclass
class Growth:
    """The lesion at every timepoint, on the crop.

    Attributes:
        masks: uint8 labels per timepoint (the family's label table).
        support: voxels the renderer may write beyond the masks (partial-volume rim, infiltration).
        occupancy: lesion fraction per voxel and timepoint, for partial-volume volumes (None: masks).
        state: whatever :meth:`LesionFamily.render` needs besides the masks (densities...).
    """

    masks: list[NDArray[np.uint8]]
    support: NDArray[np.bool_]
    occupancy: list[NDArray[np.float32]] | None = None
    state: Any = None


class Renderer(Protocol):
    """Draws the lesion into resampled backgrounds; made once per study by :meth:`LesionFamily.renderer`."""

    @property
    def intensities(self) -> dict[str, Intensity]:
        """Per contrast: the refiner's intensity normalisation."""
        ...

    @property
    def noise_model(self) -> Any:
        """The measured noise (per contrast for MRI), recorded as ``simulation.noise_model``."""
        ...

    def render(self, index: int, backgrounds: Crops, growth: Growth) -> Crops:
        """Images of timepoint ``index`` (float32, physical units) from the warped ``backgrounds``."""
        ...


@dataclass
class Findings:
    """What a family adds to the study's record: checks, notes and simulation parameters."""

    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    simulation: dict[str, Any] = field(default_factory=dict)


class LesionFamily(Protocol):
    """One lesion family behind the driver (see the module docstring for the order)."""

    family: Family
    # What the spec's diameter_mm means: "clinical" (mean of the axial long and short axis of the
    # body, Fleischner/Lung-RADS) or "longest" (longest 3D diameter of the whole lesion).
    size_convention: str
    # Mask labels of the solid parts, through which the host's anatomy must not show (lung: the
    # solid component; glioma: necrotic core and enhancing tumour, not the oedema).
    solid_labels: tuple[int, ...]

    def anatomy(self, inputs: Inputs) -> Any:
        """The organ the lesion lives in, from the scan (or the caller's label map / tissue maps)."""
        ...

    def place(self, inputs: Inputs, anatomy: Any) -> Placement:
        """Choose the centre inside the requested region, with clearance (LesionDoesNotFitError)."""
        ...

    def allowed_region(
        self, inputs: Inputs, anatomy: Any, placement: Placement, box: Box, crops: Crops
    ) -> NDArray[np.bool_]:
        """Crop mask of the organ (or part of it) the lesion must stay in."""
        ...

    def grow(self, inputs: Inputs, anatomy: Any, site: Site) -> Growth:
        """The lesion at every timepoint of ``spec.timepoints_days``."""
        ...

    def mass_effect(
        self, inputs: Inputs, anatomy: Any, site: Site, growth: Growth
    ) -> list[NDArray[np.float32]]:
        """Per timepoint, the pull-back displacement of the host tissue on the crop (array axes,
        mm, shape (3, *crop)): output voxel x shows the input at x + d(x). Exactly 0 where nothing
        moves (those voxels are copied); invertible (Jacobian > 0)."""
        ...

    def renderer(self, inputs: Inputs, anatomy: Any, box: Box) -> Renderer:
        """Measure what rendering needs from the scan (noise, tissue statistics) and draw textures."""
        ...

    def is_growing(self, spec: LesionSpec) -> bool:
        """Whether masks must nest and volumes never decrease (a monotone growth law)."""
        ...

    def findings(
        self, inputs: Inputs, anatomy: Any, site: Site, growth: Growth, timepoints: list[Timepoint]
    ) -> Findings:
        """The family's own checks (rules of :mod:`longisynth.checks`), notes and parameters."""
        ...
