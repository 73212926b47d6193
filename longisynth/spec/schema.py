"""The one schema: what a longitudinal study should contain.

:class:`LesionSpec` is the request body of the service, the ``--spec`` JSON of the CLI, the
output of the prompt parser and the ``spec`` block of ``metadata.json``. Every field is optional
in a request; :func:`longisynth.spec.resolve.resolve_spec` fills each unset field with a documented
default (:mod:`longisynth.spec.defaults`) or a value drawn from the seeded generator.
"""

from __future__ import annotations

import itertools
import math
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator


class Family(StrEnum):
    LUNG_NODULE = "lung_nodule"
    GLIOMA = "glioma"


class Modality(StrEnum):
    CT = "ct"
    MR = "mr"


class NoduleType(StrEnum):
    SOLID = "solid"
    PART_SOLID = "part_solid"
    GROUND_GLASS = "ground_glass"


class GliomaGrade(StrEnum):
    LOW = "low"
    HIGH = "high"


class GrowthLaw(StrEnum):
    EXPONENTIAL = "exponential"  # volume doubles every `doubling_time_days`
    GOMPERTZ = "gompertz"  # saturating towards `max_diameter_mm`
    STABLE = "stable"  # no change in size
    REGRESSING = "regressing"  # volume halves every `halving_time_days`
    REACTION_DIFFUSION = "reaction_diffusion"  # Fisher–Kolmogorov (gliomas)


class ShapeKind(StrEnum):
    SMOOTH = "smooth"
    LOBULATED = "lobulated"
    SPICULATED = "spiculated"


class Attachment(StrEnum):
    """What a lung nodule touches (docs/design.md §3.1)."""

    ISOLATED = "isolated"  # surrounded by aerated lung
    JUXTAPLEURAL = "juxtapleural"  # broad contact with the costal / mediastinal / diaphragmatic pleura
    JUXTAVASCULAR = "juxtavascular"  # a pulmonary vessel runs into the nodule
    PERIFISSURAL = "perifissural"  # lentiform, against an interlobar fissure (needs lobe labels)


class Calcification(StrEnum):
    """Benign calcification patterns of a lung nodule (never drawn by default)."""

    NONE = "none"
    CENTRAL = "central"  # a central nidus
    LAMINATED = "laminated"  # concentric rings
    POPCORN = "popcorn"  # scattered chunky foci (hamartoma)


class Side(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class Level(StrEnum):
    UPPER = "upper"
    MIDDLE = "middle"
    LOWER = "lower"


class Depth(StrEnum):
    CENTRAL = "central"
    PERIPHERAL = "peripheral"


class LungLobe(StrEnum):
    """Lung lobes; the TotalSegmentator label of each is in :data:`TOTALSEG_LOBE_LABELS`."""

    LEFT_UPPER = "left_upper"
    LEFT_LOWER = "left_lower"
    RIGHT_UPPER = "right_upper"
    RIGHT_MIDDLE = "right_middle"
    RIGHT_LOWER = "right_lower"


TOTALSEG_LOBE_LABELS: dict[LungLobe, int] = {
    LungLobe.LEFT_UPPER: 10,
    LungLobe.LEFT_LOWER: 11,
    LungLobe.RIGHT_UPPER: 12,
    LungLobe.RIGHT_MIDDLE: 13,
    LungLobe.RIGHT_LOWER: 14,
}


class BrainLobe(StrEnum):
    """Brain lobe or deep / infratentorial region where a glioma starts (approximate MNI152 boxes,
    :func:`longisynth.anatomy.brain.lobe_masks`)."""

    FRONTAL = "frontal"
    PARIETAL = "parietal"
    TEMPORAL = "temporal"
    OCCIPITAL = "occipital"
    INSULA = "insula"
    THALAMUS = "thalamus"
    BASAL_GANGLIA = "basal_ganglia"  # caudate, putamen, globus pallidus (lentiform nucleus)
    CORPUS_CALLOSUM = "corpus_callosum"
    CEREBELLUM = "cerebellum"
    BRAINSTEM = "brainstem"  # midbrain, pons, medulla


# Brain regions below the tentorium (the posterior fossa).
POSTERIOR_FOSSA = (BrainLobe.CEREBELLUM, BrainLobe.BRAINSTEM)


class Contrast(StrEnum):
    CT = "ct"
    T1 = "t1"
    T1C = "t1c"
    T2 = "t2"
    FLAIR = "flair"


class LesionSource(StrEnum):
    """Where the lesion comes from."""

    RULES = "rules"  # drawn by the family's rules (shape, growth, appearance)
    LIBRARY = "library"  # a real lesion copied from a lesion library, grown by the law


class Schedule(StrEnum):
    EVEN = "even"  # n timepoints evenly spread over duration_days
    FLEISCHNER = "fleischner"  # follow-up intervals of the Fleischner 2017 guideline


Vec3 = tuple[float, float, float]
PositiveMm = Annotated[float, Field(gt=0.0)]


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read true as 1.0
        raise ValueError("a number is required, not true/false")
    return value


# A JSON number (true/false refused).
Number = Annotated[float, BeforeValidator(_not_bool)]
Count = Annotated[int, BeforeValidator(_not_bool)]

# Clinical bounds of the request (refused with 422 by the service, exit 2 by the CLI).
# Smallest diameter: a tenth of the finest clinical voxel (0.5–1 mm); below is a typo, not a lesion. Whether
# a lesion shows on a given scan (at least 2 pixels) is the engine's check (LesionDoesNotFitError).
MIN_DIAMETER_MM = 0.1
MAX_DIAMETER_MM = 150.0
# Malignant nodules double their volume in about 20–400 days, the classic range (Lillington 1991);
# faster growth points to infection, not tumour.
MIN_DOUBLING_TIME_DAYS = 20.0
# Fastest volume halving modelled: a week (a design bound: faster shrinkage than treated tumours show).
MIN_HALVING_TIME_DAYS = 7.0
MIN_INTERVAL_DAYS = 1.0  # follow-up scans are at least a day apart
ARCHETYPE_NAME = r"^[a-z][a-z0-9_]{1,47}$"  # an archetype's name (its YAML file's stem)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_assignment=True)


class Location(_Model):
    """Where the lesion starts. Anatomical words, a world point, or a voxel (any combination;
    an explicit point wins over words)."""

    side: Side | None = Field(None, description="Patient side (left/right).")
    level: Level | None = Field(None, description="Cranio-caudal zone of the lung: upper/middle/lower.")
    lung_lobe: LungLobe | None = Field(
        None, description="Lung lobe (exact with a label map, approximate otherwise)."
    )
    brain_lobe: BrainLobe | None = Field(
        None,
        description="Brain lobe or deep/infratentorial region (approximate, from MNI152 registration).",
    )
    depth: Depth | None = Field(
        None, description="Central (perihilar / deep) or peripheral (subpleural / cortical)."
    )
    juxtapleural: bool | None = Field(
        None,
        description="Nodule attached to the pleura (true: attachment juxtapleural; false: any other).",
    )
    attachment: Attachment | None = Field(
        None,
        description=(
            "Lung nodules: isolated, juxtapleural, juxtavascular or perifissural (the last needs a "
            "lobe label map). Unset: drawn from clinical frequencies."
        ),
    )
    crosses_midline: bool | None = Field(
        None,
        description=(
            "Gliomas: spread to the other hemisphere through the corpus callosum (the 'butterfly' "
            "pattern). Default false: the falx is a barrier and the tumour stays on its side."
        ),
    )
    point_mm: Vec3 | None = Field(None, description="Lesion centre in world RAS+ coordinates, mm.")
    point_voxel: Vec3 | None = Field(
        None, description="Lesion centre as voxel indices (i, j, k) of the input."
    )


class GrowthSpec(_Model):
    """How the lesion's size changes over time."""

    law: GrowthLaw | None = None
    doubling_time_days: Number | None = Field(
        None,
        ge=MIN_DOUBLING_TIME_DAYS,
        le=20000,
        description="Volume-doubling time in days (exponential law); at least 20 (faster is not tumour).",
    )
    halving_time_days: Number | None = Field(
        None,
        ge=MIN_HALVING_TIME_DAYS,
        le=20000,
        description="Volume-halving time in days (regressing law); 7 days at least.",
    )
    max_diameter_mm: Number | None = Field(
        None,
        ge=MIN_DIAMETER_MM,
        le=MAX_DIAMETER_MM,
        description="Plateau longest diameter in mm (Gompertz law).",
    )
    proliferation_per_day: Number | None = Field(
        None, gt=0, le=1.0, description="Glioma proliferation rate rho, 1/day."
    )
    diffusion_mm2_per_day: Number | None = Field(
        None, gt=0, le=10.0, description="Glioma diffusion in white matter D_white, mm^2/day."
    )
    volume_ratio: Number | None = Field(
        None,
        gt=0,
        le=1000.0,
        description=(
            "Last-scan volume / first-scan volume over the study (2: doubles, 0.5: halves). Lung "
            "nodules: becomes the doubling (> 1) or halving (< 1) time over the study's span; "
            "gliomas: the final size from the baseline size."
        ),
    )

    @field_validator("volume_ratio")
    @classmethod
    def _ratio_not_one(cls, v: float | None) -> float | None:
        if v is not None and abs(v - 1.0) < 1e-9:
            raise ValueError("a volume ratio of 1 means no change: use growth law stable")
        return v


class LesionSpec(_Model):
    """A longitudinal lesion study. Every field is optional in a request; see :func:`resolve_spec`."""

    family: Family | None = Field(None, description="lung_nodule (CT) or glioma (MRI).")
    nodule_type: NoduleType | None = Field(None, description="Lung nodules: solid, part_solid, ground_glass.")
    grade: GliomaGrade | None = Field(None, description="Gliomas: low or high grade.")
    diameter_mm: Number | None = Field(
        None,
        ge=MIN_DIAMETER_MM,
        le=MAX_DIAMETER_MM,
        description="Longest diameter at the LAST timepoint, mm (0.1–150).",
    )
    baseline_diameter_mm: Number | None = Field(
        None,
        ge=MIN_DIAMETER_MM,
        le=MAX_DIAMETER_MM,
        description="Longest diameter at the FIRST timepoint, mm (0.1–150).",
    )
    solid_fraction: Number | None = Field(
        None, gt=0, lt=1, description="Part-solid nodules: solid-core diameter / nodule diameter."
    )
    shape: ShapeKind | None = None
    calcification: Calcification | None = Field(
        None, description="Lung nodules: benign calcification pattern (default none)."
    )
    location: Location = Field(default_factory=Location)
    growth: GrowthSpec = Field(default_factory=GrowthSpec)
    timepoints_days: list[Number] | None = Field(
        None, description="Scan times in days, increasing by at least 1 day, first usually 0."
    )
    n_timepoints: Count | None = Field(None, ge=1, le=20, description="Number of scans.")
    duration_days: Number | None = Field(
        None, ge=0, le=7305, description="Time from first to last scan, days."
    )
    schedule: Schedule | None = None
    mass_effect: bool | None = Field(None, description="Push surrounding tissue (default on).")
    source: LesionSource | None = Field(
        None,
        description=(
            "rules (default) or library: a real lesion from the lesion library given with the "
            "request (CLI --library), placed, harmonised and grown by the law."
        ),
    )
    library_lesion_id: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{4,64}$",
        description="With source library: the id (or a unique prefix of it) of the lesion to copy.",
    )
    archetype: str | None = Field(
        None,
        pattern=ARCHETYPE_NAME,
        description=(
            "A named progression archetype (longisynth archetypes list): distributions over the "
            "fields this request leaves unset, drawn with the seed."
        ),
    )
    seed: Count | None = Field(None, ge=0, lt=2**63, description="Random seed; same seed, same study.")

    @field_validator("timepoints_days")
    @classmethod
    def _check_times(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not 1 <= len(v) <= 20:
            raise ValueError("between 1 and 20 timepoints are supported")
        if any(not math.isfinite(t) or t < 0 for t in v):
            raise ValueError("timepoints must be finite and >= 0 days")
        if any(b - a < MIN_INTERVAL_DAYS for a, b in itertools.pairwise(v)):
            raise ValueError(f"successive timepoints must be at least {MIN_INTERVAL_DAYS:g} day apart")
        if v[-1] - v[0] > 7305:
            raise ValueError("a study may span at most 20 years (7305 days)")
        return [float(t) for t in v]

    @model_validator(mode="after")
    def _check_family_fields(self) -> LesionSpec:
        if self.family == Family.GLIOMA and self.nodule_type is not None:
            raise ValueError("nodule_type applies to lung nodules, not gliomas")
        if self.family == Family.LUNG_NODULE and self.grade is not None:
            raise ValueError("grade applies to gliomas, not lung nodules")
        return self


def merge_specs(base: LesionSpec, override: LesionSpec) -> LesionSpec:
    """Fields set in ``override`` win over ``base`` (nested ``location``/``growth`` merged per field)."""
    merged: dict[str, Any] = base.model_dump(exclude_unset=True, exclude_none=True)
    over = override.model_dump(exclude_unset=True, exclude_none=True)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return LesionSpec.model_validate(merged)
