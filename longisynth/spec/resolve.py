"""Resolve a partial spec into a concrete one: every field the engine needs is set.

Unset fields get their documented default (:mod:`longisynth.spec.defaults`) or a value drawn from
the study's seeded generator; contradictory requests are errors that say what contradicts what.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import ValidationError

from longisynth.errors import InvalidInputError
from longisynth.spec import defaults
from longisynth.spec.schema import (
    MAX_DIAMETER_MM,
    MIN_DIAMETER_MM,
    MIN_DOUBLING_TIME_DAYS,
    MIN_HALVING_TIME_DAYS,
    POSTERIOR_FOSSA,
    Attachment,
    Calcification,
    Family,
    GliomaGrade,
    GrowthLaw,
    GrowthSpec,
    LesionSource,
    LesionSpec,
    Modality,
    NoduleType,
    Schedule,
    ShapeKind,
)


def _diameter_ratio(law: GrowthLaw, dt_days: float, growth: GrowthSpec) -> float | None:
    """final/baseline diameter ratio implied by an exponential / regressing law over ``dt_days``."""
    if law == GrowthLaw.EXPONENTIAL and growth.doubling_time_days:
        return float(2.0 ** (dt_days / growth.doubling_time_days / 3.0))
    if law == GrowthLaw.REGRESSING and growth.halving_time_days:
        return float(0.5 ** (dt_days / growth.halving_time_days / 3.0))
    if law == GrowthLaw.STABLE:
        return 1.0
    return None


def _glioma_final_from_baseline(s: LesionSpec) -> float:
    """Final diameter (mm) of a glioma given only at baseline: the Fisher front moves at
    v = 2√(Dρ) mm/day on each side, so the diameter grows by 4√(Dρ)·Δt mm (≈ 4.1 mm/year with
    the low-grade defaults, docs/design.md §3.2). The simulation matches the final size; its
    first scan then shows about the requested baseline, the front having reached that speed."""
    assert s.baseline_diameter_mm is not None and s.duration_days is not None
    d, rho = s.growth.diffusion_mm2_per_day, s.growth.proliferation_per_day
    assert d is not None and rho is not None
    final = s.baseline_diameter_mm + 4.0 * math.sqrt(d * rho) * s.duration_days
    if final > 150.0:
        raise InvalidInputError(
            f"a glioma of {s.baseline_diameter_mm:g} mm at baseline would reach {final:.0f} mm after "
            f"{s.duration_days:g} days; at most 150 mm is supported"
        )
    return round(final, 1)


def _rate_field(law: GrowthLaw) -> str:
    return "growth.halving_time_days" if law == GrowthLaw.REGRESSING else "growth.doubling_time_days"


def _implied_size(value_mm: float, what: str, law: GrowthLaw, s: LesionSpec) -> float:
    """``value_mm`` rounded, or an error naming the rate when the growth law drives it out of
    [MIN_DIAMETER_MM, MAX_DIAMETER_MM] over the study."""
    rounded = round(value_mm, 4)
    if MIN_DIAMETER_MM <= rounded <= MAX_DIAMETER_MM:
        return rounded
    field = _rate_field(law)
    rate = s.growth.halving_time_days if law == GrowthLaw.REGRESSING else s.growth.doubling_time_days
    raise InvalidInputError(
        f"{field}={rate:g} over {s.duration_days:g} days makes the {what} {value_mm:.3g} mm, outside "
        f"{MIN_DIAMETER_MM:g}–{MAX_DIAMETER_MM:g} mm; give a slower rate or a shorter study",
        field=field,
    )


def resolve_spec(spec: LesionSpec, modality: Modality, rng: np.random.Generator) -> LesionSpec:
    """Fill every unset field of ``spec`` with its documented default (see :func:`_resolve`).

    Raises:
        InvalidInputError: on contradictory sizes/rates, a family that does not match the scan, or a
            derived value outside the schema's bounds (a diameter, the timepoints), naming the field.
    """
    try:
        return _resolve(spec, modality, rng)
    except ValidationError as exc:  # a derived value assigned to the spec is out of bounds
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidInputError(f"invalid spec field {field}: {message}", field=field or None) from None


def _resolve(spec: LesionSpec, modality: Modality, rng: np.random.Generator) -> LesionSpec:
    """Fill every unset field of ``spec`` with its documented default.

    Args:
        spec: the merged request (prompt fields overridden by structured fields).
        modality: the input scan's modality; picks the family when the request does not.
        rng: the study's generator, for the values that are sampled (a glioma's size when the
            request gives none, :func:`~longisynth.spec.defaults.sample_glioma_diameter_mm`).

    Raises:
        InvalidInputError: on contradictory sizes/rates, or a family that does not match the scan.
    """
    s = spec.model_copy(deep=True)
    if s.family is None:
        if s.grade is not None and s.nodule_type is not None:
            raise InvalidInputError("grade is for gliomas and nodule_type for lung nodules; give one of them")
        if s.grade is not None:  # a field of one family names it ("aggressive tumour" on a CT)
            s.family = Family.GLIOMA
        elif s.nodule_type is not None:
            s.family = Family.LUNG_NODULE
        else:
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
            s.solid_fraction = defaults.DEFAULT_SOLID_FRACTION
        s.shape = s.shape or ShapeKind.SMOOTH
        shrinks = s.growth.volume_ratio is not None and s.growth.volume_ratio < 1
        s.growth.law = s.growth.law or (GrowthLaw.REGRESSING if shrinks else GrowthLaw.EXPONENTIAL)
        if s.growth.law == GrowthLaw.REACTION_DIFFUSION:
            raise InvalidInputError("reaction-diffusion growth is for gliomas; use exponential or gompertz")
        _resolve_attachment(s)
        if s.location.crosses_midline:
            raise InvalidInputError("crossing the midline (butterfly) is for gliomas, not lung nodules")
        s.calcification = s.calcification or Calcification.NONE
        s.mass_effect = True if s.mass_effect is None else s.mass_effect
    else:
        s.grade = s.grade or GliomaGrade.HIGH
        s.shape = s.shape or ShapeKind.SMOOTH
        s.growth.law = s.growth.law or GrowthLaw.REACTION_DIFFUSION
        if s.growth.law != GrowthLaw.REACTION_DIFFUSION:
            raise InvalidInputError(
                f"gliomas grow by reaction-diffusion in longisynth, not by the {s.growth.law.value} law"
            )
        s.growth.proliferation_per_day = (
            s.growth.proliferation_per_day or defaults.DEFAULT_RHO_PER_DAY[s.grade]
        )
        s.growth.diffusion_mm2_per_day = s.growth.diffusion_mm2_per_day or (
            defaults.sample_d_white_mm2_per_day(s.grade, rng)
        )
        if s.location.attachment is not None or s.location.juxtapleural:
            raise InvalidInputError("attachment (pleura, vessel, fissure) is for lung nodules, not gliomas")
        if s.calcification not in (None, Calcification.NONE):
            raise InvalidInputError("calcification patterns are for lung nodules, not gliomas")
        s.location.juxtapleural = False
        s.location.crosses_midline = bool(s.location.crosses_midline)
        if s.location.crosses_midline and s.location.brain_lobe in POSTERIOR_FOSSA:
            raise InvalidInputError(
                f"a glioma of the {s.location.brain_lobe.value} cannot cross the midline through the corpus "
                "callosum (butterfly): the tentorium separates it from the hemispheres"
            )
        s.mass_effect = True if s.mass_effect is None else s.mass_effect

    s.source = s.source or (LesionSource.LIBRARY if s.library_lesion_id else LesionSource.RULES)
    if s.library_lesion_id and s.source != LesionSource.LIBRARY:
        raise InvalidInputError("library_lesion_id needs source library")
    _resolve_times_and_sizes(s, rng)
    if s.seed is None:
        s.seed = int(rng.integers(0, 2**31 - 1))
    return s


def _resolve_attachment(s: LesionSpec) -> None:
    """Make ``juxtapleural`` and ``attachment`` agree; an unset attachment stays unset (the family
    draws it from :data:`~longisynth.spec.defaults.ATTACHMENT_FREQUENCIES` over what the scan offers)."""
    loc = s.location
    if loc.attachment is None:
        if loc.juxtapleural:
            loc.attachment = Attachment.JUXTAPLEURAL
        return
    wants_pleura = loc.attachment == Attachment.JUXTAPLEURAL
    if loc.juxtapleural is not None and loc.juxtapleural != wants_pleura:
        raise InvalidInputError(
            f"a {loc.attachment.value} nodule is "
            + ("" if wants_pleura else "not ")
            + "juxtapleural, but juxtapleural is "
            + str(loc.juxtapleural).lower()
        )
    loc.juxtapleural = wants_pleura


def _resolve_volume_ratio(s: LesionSpec, dt_days: float) -> None:
    """Turn ``growth.volume_ratio`` (last / first volume) into the rate or size it implies.

    Lung nodules: doubling time = Δt·ln 2 / ln r (r > 1) or halving time = Δt·ln 2 / ln(1/r)
    (r < 1), days, over the study's span Δt. Gliomas: final diameter = baseline · r^(1/3), mm.
    """
    r = s.growth.volume_ratio
    assert r is not None and s.growth.law is not None
    what = "doubles" if r == 2 else f"changes its volume by x{r:g}"
    if s.family == Family.GLIOMA:
        if r < 1:
            raise InvalidInputError(
                "gliomas grow by reaction-diffusion in longisynth: a volume ratio below 1 is for lung "
                "nodules",
                field="growth.volume_ratio",
            )
        if s.baseline_diameter_mm is None or s.diameter_mm is not None:
            raise InvalidInputError(
                "a glioma's volume ratio needs its baseline size and no final size "
                "(e.g. '30 mm at baseline, doubling in volume')",
                field="growth.volume_ratio",
            )
        s.diameter_mm = _implied_size(
            s.baseline_diameter_mm * r ** (1 / 3), "final diameter", s.growth.law, s
        )
        return
    law = s.growth.law
    if law not in (GrowthLaw.EXPONENTIAL, GrowthLaw.REGRESSING) or (law == GrowthLaw.EXPONENTIAL) != (r > 1):
        raise InvalidInputError(
            f"a lesion that {what} over the study does not follow the {law.value} law",
            field="growth.volume_ratio",
        )
    if s.growth.doubling_time_days is not None or s.growth.halving_time_days is not None:
        raise InvalidInputError(
            "give the volume ratio or the doubling / halving time, not both", field="growth.volume_ratio"
        )
    if s.diameter_mm is not None and s.baseline_diameter_mm is not None:
        raise InvalidInputError(
            "baseline size, final size and volume ratio over-determine the growth; give two of them",
            field="growth.volume_ratio",
        )
    if dt_days <= 0:
        raise InvalidInputError(
            "a volume ratio needs a study longer than one scan (give timepoints or a duration)",
            field="growth.volume_ratio",
        )
    rate = round(dt_days * math.log(2.0) / abs(math.log(r)), 3)
    field = _rate_field(law)
    bound = MIN_DOUBLING_TIME_DAYS if law == GrowthLaw.EXPONENTIAL else MIN_HALVING_TIME_DAYS
    if rate < bound:
        raise InvalidInputError(
            f"a lesion that {what} in {dt_days:g} days has a {field.split('.')[1]} of {rate:g} days, "
            f"below the {bound:g}-day minimum; give a longer study or a smaller change",
            field=field,
        )
    if law == GrowthLaw.EXPONENTIAL:
        s.growth.doubling_time_days = rate
    else:
        s.growth.halving_time_days = rate


def _resolve_times_and_sizes(s: LesionSpec, rng: np.random.Generator) -> None:
    assert s.family is not None and s.growth.law is not None
    law = s.growth.law
    # --- timepoints
    if s.timepoints_days is None:
        if s.schedule == Schedule.FLEISCHNER and s.family == Family.LUNG_NODULE:
            size = s.baseline_diameter_mm or s.diameter_mm or defaults.DEFAULT_NODULE_DIAMETER_MM
            assert s.nodule_type is not None
            s.timepoints_days = defaults.fleischner_schedule_days(s.nodule_type, size)
        else:
            n = s.n_timepoints or defaults.DEFAULT_N_TIMEPOINTS
            duration = s.duration_days or defaults.DEFAULT_DURATION_DAYS[s.family]
            s.timepoints_days = [0.0] if n == 1 else [round(duration * i / (n - 1), 3) for i in range(n)]
    if s.n_timepoints is not None and s.n_timepoints != len(s.timepoints_days):
        raise InvalidInputError(
            f"n_timepoints={s.n_timepoints} contradicts the {len(s.timepoints_days)} timepoints given"
        )
    s.n_timepoints = len(s.timepoints_days)
    s.duration_days = s.timepoints_days[-1] - s.timepoints_days[0]
    s.schedule = s.schedule or Schedule.EVEN

    # --- rates
    dt = s.duration_days
    if s.growth.volume_ratio is not None:
        _resolve_volume_ratio(s, dt)
    if s.family == Family.LUNG_NODULE and s.nodule_type is not None:
        if (
            law == GrowthLaw.EXPONENTIAL
            and s.growth.doubling_time_days is None
            and not (s.diameter_mm and s.baseline_diameter_mm)
        ):
            s.growth.doubling_time_days = defaults.DEFAULT_VDT_DAYS[s.nodule_type]
        if (
            law == GrowthLaw.REGRESSING
            and s.growth.halving_time_days is None
            and not (s.diameter_mm and s.baseline_diameter_mm)
        ):
            s.growth.halving_time_days = 180.0

    # --- sizes
    if s.family == Family.GLIOMA:
        assert s.grade is not None
        if s.diameter_mm is None and s.baseline_diameter_mm is not None:
            s.diameter_mm = _glioma_final_from_baseline(s)
        elif s.diameter_mm is None:
            s.diameter_mm = defaults.sample_glioma_diameter_mm(s.grade, rng, s.location.brain_lobe)
        return  # the baseline size follows from the PDE
    ratio = _diameter_ratio(law, dt, s.growth)
    if law == GrowthLaw.GOMPERTZ:
        final = s.diameter_mm or defaults.DEFAULT_NODULE_DIAMETER_MM
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
        s.diameter_mm = _implied_size(s.baseline_diameter_mm * ratio, "final diameter", law, s)
    else:
        s.diameter_mm = s.diameter_mm or defaults.DEFAULT_NODULE_DIAMETER_MM
        s.baseline_diameter_mm = _implied_size(s.diameter_mm / ratio, "baseline diameter", law, s)
