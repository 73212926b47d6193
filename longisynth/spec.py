"""The one schema: what a longitudinal study should contain.

:class:`LesionSpec` is the request body of the service, the ``--spec`` JSON of the CLI, the
output of the prompt parser and the ``spec`` block of ``metadata.json``. Every field is optional
in a request; :func:`resolve_spec` fills each unset field with a documented default (or a value
drawn from the seeded generator) and returns a spec in which nothing that the engine needs is
``None``.
"""

from __future__ import annotations

import itertools
import math
from enum import StrEnum
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from longisynth.errors import InvalidInputError


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
    FRONTAL = "frontal"
    PARIETAL = "parietal"
    TEMPORAL = "temporal"
    OCCIPITAL = "occipital"


class Contrast(StrEnum):
    CT = "ct"
    T1 = "t1"
    T1C = "t1c"
    T2 = "t2"
    FLAIR = "flair"


class Schedule(StrEnum):
    EVEN = "even"  # n timepoints evenly spread over duration_days
    FLEISCHNER = "fleischner"  # follow-up intervals of the Fleischner 2017 guideline


Vec3 = tuple[float, float, float]
PositiveMm = Annotated[float, Field(gt=0.0)]


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
        None, description="Brain lobe (approximate, from MNI152 registration)."
    )
    depth: Depth | None = Field(
        None, description="Central (perihilar / deep) or peripheral (subpleural / cortical)."
    )
    juxtapleural: bool | None = Field(None, description="Nodule attached to the pleura.")
    point_mm: Vec3 | None = Field(None, description="Lesion centre in world RAS+ coordinates, mm.")
    point_voxel: Vec3 | None = Field(
        None, description="Lesion centre as voxel indices (i, j, k) of the input."
    )


class GrowthSpec(_Model):
    """How the lesion's size changes over time."""

    law: GrowthLaw | None = None
    doubling_time_days: float | None = Field(
        None, gt=0, le=20000, description="Volume-doubling time in days (exponential law)."
    )
    halving_time_days: float | None = Field(
        None, gt=0, le=20000, description="Volume-halving time in days (regressing law)."
    )
    max_diameter_mm: float | None = Field(
        None, gt=0, le=150, description="Plateau longest diameter in mm (Gompertz law)."
    )
    proliferation_per_day: float | None = Field(
        None, gt=0, le=1.0, description="Glioma proliferation rate rho, 1/day."
    )
    diffusion_mm2_per_day: float | None = Field(
        None, gt=0, le=10.0, description="Glioma diffusion in white matter D_white, mm^2/day."
    )


class LesionSpec(_Model):
    """A longitudinal lesion study. Every field is optional in a request; see :func:`resolve_spec`."""

    family: Family | None = Field(None, description="lung_nodule (CT) or glioma (MRI).")
    nodule_type: NoduleType | None = Field(None, description="Lung nodules: solid, part_solid, ground_glass.")
    grade: GliomaGrade | None = Field(None, description="Gliomas: low or high grade.")
    diameter_mm: float | None = Field(
        None, gt=0, le=150, description="Longest diameter at the LAST timepoint, mm."
    )
    baseline_diameter_mm: float | None = Field(
        None, gt=0, le=150, description="Longest diameter at the FIRST timepoint, mm."
    )
    solid_fraction: float | None = Field(
        None, gt=0, lt=1, description="Part-solid nodules: solid-core diameter / nodule diameter."
    )
    shape: ShapeKind | None = None
    location: Location = Field(default_factory=Location)
    growth: GrowthSpec = Field(default_factory=GrowthSpec)
    timepoints_days: list[float] | None = Field(
        None, description="Scan times in days, strictly increasing, first usually 0."
    )
    n_timepoints: int | None = Field(None, ge=1, le=20, description="Number of scans.")
    duration_days: float | None = Field(
        None, ge=0, le=7305, description="Time from first to last scan, days."
    )
    schedule: Schedule | None = None
    mass_effect: bool | None = Field(None, description="Push surrounding tissue (default on).")
    seed: int | None = Field(None, ge=0, lt=2**63, description="Random seed; same seed, same study.")

    @field_validator("timepoints_days")
    @classmethod
    def _check_times(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not 1 <= len(v) <= 20:
            raise ValueError("between 1 and 20 timepoints are supported")
        if any(not math.isfinite(t) or t < 0 for t in v):
            raise ValueError("timepoints must be finite and >= 0 days")
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("timepoints must be strictly increasing")
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


# --- defaults -------------------------------------------------------------------------------

# Mean volume-doubling times of malignant nodules (PMC5945695): solid 267 d, part-solid 598 d,
# pure ground-glass 848 d.
DEFAULT_VDT_DAYS: dict[NoduleType, float] = {
    NoduleType.SOLID: 267.0,
    NoduleType.PART_SOLID: 598.0,
    NoduleType.GROUND_GLASS: 848.0,
}
DEFAULT_NODULE_DIAMETER_MM = 12.0
DEFAULT_GLIOMA_DIAMETER_MM: dict[GliomaGrade, float] = {GliomaGrade.LOW: 35.0, GliomaGrade.HIGH: 45.0}
# Reaction–diffusion parameters (DESIGN.md): rho 0.0012/day (low) to 0.012/day (high grade).
# D_white for low grade chosen so the front speed 2*sqrt(D*rho) gives ~4.1 mm/year diameter growth
# (Mandonnet et al., Ann Neurol 2003): 2*2*sqrt(0.0065*0.0012)*365 = 4.1 mm/year.
# High grade: D_white = 0.01 (inside the DESIGN range 2.7e-3…2.7e-1) keeps the front thin,
# sqrt(D/rho) ≈ 0.9 mm, so a 45 mm tumour shows an enhancing rim around necrosis with a core of
# ≈ 45 % of the whole tumour as on the BraTS cases; D = 0.27 gives a front ≈ 28 mm wide with no core.
DEFAULT_RHO_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0012, GliomaGrade.HIGH: 0.012}
DEFAULT_D_WHITE_MM2_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0065, GliomaGrade.HIGH: 0.01}
DEFAULT_N_TIMEPOINTS = 4
DEFAULT_DURATION_DAYS: dict[Family, float] = {Family.LUNG_NODULE: 365.0, Family.GLIOMA: 180.0}
DEFAULT_SOLID_FRACTION = 0.5


def fleischner_schedule_days(nodule_type: NoduleType, diameter_mm: float) -> list[float]:
    """Follow-up scan times (days) from the Fleischner 2017 guideline (MacMahon, Radiology 2017).

    Solid > 8 mm: CT at 3 months (then we continue at 6, 12 months); solid 6–8 mm: 6–12 months
    (we use 6, 18 months); ground-glass >= 6 mm: 6–12 months then every 2 years to 5 years;
    part-solid >= 6 mm: 3–6 months then yearly to 5 years. Nodules < 6 mm need no routine
    follow-up; we still give a 12-month control so the study is longitudinal.
    """
    if diameter_mm < 6:
        return [0.0, 365.0]
    if nodule_type == NoduleType.SOLID:
        return [0.0, 91.0, 182.0, 365.0] if diameter_mm > 8 else [0.0, 182.0, 548.0]
    if nodule_type == NoduleType.PART_SOLID:
        return [0.0, 137.0, 502.0, 867.0, 1232.0, 1597.0, 1962.0]
    return [0.0, 274.0, 1004.0, 1735.0]


def _diameter_ratio(law: GrowthLaw, dt_days: float, growth: GrowthSpec) -> float | None:
    """final/baseline diameter ratio implied by an exponential / regressing law over ``dt_days``."""
    if law == GrowthLaw.EXPONENTIAL and growth.doubling_time_days:
        return float(2.0 ** (dt_days / growth.doubling_time_days / 3.0))
    if law == GrowthLaw.REGRESSING and growth.halving_time_days:
        return float(0.5 ** (dt_days / growth.halving_time_days / 3.0))
    if law == GrowthLaw.STABLE:
        return 1.0
    return None


def resolve_spec(spec: LesionSpec, modality: Modality, rng: np.random.Generator) -> LesionSpec:
    """Fill every unset field of ``spec`` with its documented default.

    Args:
        spec: the merged request (prompt fields overridden by structured fields).
        modality: the input scan's modality; picks the family when the request does not.
        rng: the study's generator (only used for values that are sampled, e.g. the side).

    Raises:
        InvalidInputError: on contradictory sizes/rates, or a family that does not match the scan.
    """
    s = spec.model_copy(deep=True)
    if s.family is None:
        s.family = Family.LUNG_NODULE if modality == Modality.CT else Family.GLIOMA
    if s.family == Family.LUNG_NODULE and modality != Modality.CT:
        raise InvalidInputError(
            "lung nodules are simulated in chest CT (Hounsfield units); the input looks like MRI"
        )
    if s.family == Family.GLIOMA and modality != Modality.MR:
        raise InvalidInputError("gliomas are simulated in brain MRI; the input looks like CT")

    if s.family == Family.LUNG_NODULE:
        s.nodule_type = s.nodule_type or NoduleType.SOLID
        if s.nodule_type == NoduleType.PART_SOLID and s.solid_fraction is None:
            s.solid_fraction = DEFAULT_SOLID_FRACTION
        s.shape = s.shape or ShapeKind.SMOOTH
        s.growth.law = s.growth.law or GrowthLaw.EXPONENTIAL
        if s.growth.law == GrowthLaw.REACTION_DIFFUSION:
            raise InvalidInputError("reaction-diffusion growth is for gliomas; use exponential or gompertz")
        s.location.juxtapleural = bool(s.location.juxtapleural)
        s.mass_effect = True if s.mass_effect is None else s.mass_effect
    else:
        s.grade = s.grade or GliomaGrade.HIGH
        s.shape = s.shape or ShapeKind.SMOOTH
        s.growth.law = s.growth.law or GrowthLaw.REACTION_DIFFUSION
        if s.growth.law != GrowthLaw.REACTION_DIFFUSION:
            raise InvalidInputError(
                f"gliomas grow by reaction-diffusion in longisynth, not by the {s.growth.law.value} law"
            )
        s.growth.proliferation_per_day = s.growth.proliferation_per_day or DEFAULT_RHO_PER_DAY[s.grade]
        s.growth.diffusion_mm2_per_day = (
            s.growth.diffusion_mm2_per_day or DEFAULT_D_WHITE_MM2_PER_DAY[s.grade]
        )
        s.location.juxtapleural = False
        s.mass_effect = True if s.mass_effect is None else s.mass_effect

    _resolve_times_and_sizes(s)
    if s.seed is None:
        s.seed = int(rng.integers(0, 2**31 - 1))
    return s


def _resolve_times_and_sizes(s: LesionSpec) -> None:
    assert s.family is not None and s.growth.law is not None
    law = s.growth.law
    if s.family == Family.LUNG_NODULE and s.nodule_type is not None:
        if (
            law == GrowthLaw.EXPONENTIAL
            and s.growth.doubling_time_days is None
            and not (s.diameter_mm and s.baseline_diameter_mm)
        ):
            s.growth.doubling_time_days = DEFAULT_VDT_DAYS[s.nodule_type]
        if (
            law == GrowthLaw.REGRESSING
            and s.growth.halving_time_days is None
            and not (s.diameter_mm and s.baseline_diameter_mm)
        ):
            s.growth.halving_time_days = 180.0

    # --- timepoints
    if s.timepoints_days is None:
        if s.schedule == Schedule.FLEISCHNER and s.family == Family.LUNG_NODULE:
            size = s.baseline_diameter_mm or s.diameter_mm or DEFAULT_NODULE_DIAMETER_MM
            assert s.nodule_type is not None
            s.timepoints_days = fleischner_schedule_days(s.nodule_type, size)
        else:
            n = s.n_timepoints or DEFAULT_N_TIMEPOINTS
            duration = s.duration_days or DEFAULT_DURATION_DAYS[s.family]
            s.timepoints_days = [0.0] if n == 1 else [round(duration * i / (n - 1), 3) for i in range(n)]
    if s.n_timepoints is not None and s.n_timepoints != len(s.timepoints_days):
        raise InvalidInputError(
            f"n_timepoints={s.n_timepoints} contradicts the {len(s.timepoints_days)} timepoints given"
        )
    s.n_timepoints = len(s.timepoints_days)
    s.duration_days = s.timepoints_days[-1] - s.timepoints_days[0]
    s.schedule = s.schedule or Schedule.EVEN

    # --- sizes
    dt = s.duration_days
    if s.family == Family.GLIOMA:
        assert s.grade is not None
        if s.diameter_mm is None:
            s.diameter_mm = DEFAULT_GLIOMA_DIAMETER_MM[s.grade]
        return  # baseline size follows from the PDE
    ratio = _diameter_ratio(law, dt, s.growth)
    if law == GrowthLaw.GOMPERTZ:
        final = s.diameter_mm or DEFAULT_NODULE_DIAMETER_MM
        s.diameter_mm = final
        if s.growth.max_diameter_mm is None:
            s.growth.max_diameter_mm = round(final * 1.25, 3)
        if s.growth.max_diameter_mm <= final:
            raise InvalidInputError("growth.max_diameter_mm must exceed the final diameter_mm")
        if s.baseline_diameter_mm is None:
            s.baseline_diameter_mm = round(final * 0.6, 3)
        if s.baseline_diameter_mm >= final and dt > 0:
            raise InvalidInputError("a Gompertz nodule must be smaller at baseline than at the end")
        return
    if s.diameter_mm is not None and s.baseline_diameter_mm is not None:
        if ratio is not None and dt > 0 and law != GrowthLaw.STABLE:
            implied = s.baseline_diameter_mm * ratio
            if abs(implied - s.diameter_mm) > 0.05 * s.diameter_mm:
                raise InvalidInputError(
                    f"baseline {s.baseline_diameter_mm} mm, final {s.diameter_mm} mm and the growth "
                    "rate contradict each other; give only two of the three"
                )
        if law == GrowthLaw.STABLE and abs(s.diameter_mm - s.baseline_diameter_mm) > 1e-6:
            raise InvalidInputError("a stable lesion cannot change diameter")
        if dt > 0 and law == GrowthLaw.EXPONENTIAL and s.growth.doubling_time_days is None:
            if s.diameter_mm <= s.baseline_diameter_mm:
                raise InvalidInputError("a growing nodule must be larger at the end than at baseline")
            s.growth.doubling_time_days = round(
                dt * math.log(2) / 3 / math.log(s.diameter_mm / s.baseline_diameter_mm), 3
            )
        if dt > 0 and law == GrowthLaw.REGRESSING and s.growth.halving_time_days is None:
            if s.diameter_mm >= s.baseline_diameter_mm:
                raise InvalidInputError("a regressing nodule must be smaller at the end than at baseline")
            s.growth.halving_time_days = round(
                dt * math.log(2) / 3 / math.log(s.baseline_diameter_mm / s.diameter_mm), 3
            )
        return
    assert ratio is not None
    if s.baseline_diameter_mm is not None:
        s.diameter_mm = round(s.baseline_diameter_mm * ratio, 4)
    else:
        s.diameter_mm = s.diameter_mm or DEFAULT_NODULE_DIAMETER_MM
        s.baseline_diameter_mm = round(s.diameter_mm / ratio, 4)
