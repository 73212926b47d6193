"""Spec resolution: documented defaults, derived growth rates, contradictions rejected."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from longisynth.errors import InvalidInputError
from longisynth.spec import (
    DEFAULT_VDT_DAYS,
    Attachment,
    Calcification,
    Family,
    GliomaGrade,
    GrowthLaw,
    LesionSpec,
    Location,
    Modality,
    NoduleType,
    Schedule,
    merge_specs,
    resolve_spec,
)
from longisynth.spec.defaults import HIGH_GRADE_D_WHITE_RANGE

RNG = np.random.default_rng(0)


def test_ct_defaults_to_solid_exponential_nodule() -> None:
    s = resolve_spec(LesionSpec(), Modality.CT, RNG)
    assert s.family == Family.LUNG_NODULE and s.nodule_type == NoduleType.SOLID
    assert s.growth.law == GrowthLaw.EXPONENTIAL
    assert s.growth.doubling_time_days == DEFAULT_VDT_DAYS[NoduleType.SOLID] == 267.0
    assert s.timepoints_days == [0.0, 121.667, 243.333, 365.0]
    # final diameter = baseline * 2^(dt / VDT / 3)
    assert math.isclose(s.diameter_mm / s.baseline_diameter_mm, 2 ** (365 / 267 / 3), rel_tol=1e-3)


def test_mr_defaults_to_high_grade_reaction_diffusion() -> None:
    s = resolve_spec(LesionSpec(), Modality.MR, RNG)
    assert s.family == Family.GLIOMA and s.grade == GliomaGrade.HIGH
    assert s.growth.law == GrowthLaw.REACTION_DIFFUSION
    assert s.growth.proliferation_per_day == 0.012
    lo, hi = HIGH_GRADE_D_WHITE_RANGE  # drawn per tumour (oedema fraction of BraTS 2018)
    assert s.growth.diffusion_mm2_per_day is not None and lo <= s.growth.diffusion_mm2_per_day <= hi


def test_baseline_and_final_give_doubling_time() -> None:
    s = resolve_spec(
        LesionSpec(baseline_diameter_mm=8, diameter_mm=10.08, duration_days=300), Modality.CT, RNG
    )
    # 8 → 10.08 mm is exactly one volume doubling (×2^(1/3)), so VDT = 300 days
    assert s.growth.doubling_time_days == pytest.approx(300, rel=1e-3)


def test_contradictions_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="contradict"):
        resolve_spec(
            LesionSpec(
                baseline_diameter_mm=8, diameter_mm=20, duration_days=30, growth={"doubling_time_days": 300}
            ),
            Modality.CT,
            RNG,
        )
    with pytest.raises(InvalidInputError, match="gliomas are simulated in brain MRI"):
        resolve_spec(LesionSpec(family="glioma"), Modality.CT, RNG)
    with pytest.raises(InvalidInputError, match="chest CT"):
        resolve_spec(LesionSpec(family="lung_nodule"), Modality.MR, RNG)
    with pytest.raises(InvalidInputError, match="n_timepoints"):
        resolve_spec(LesionSpec(n_timepoints=3, timepoints_days=[0, 10]), Modality.CT, RNG)


@pytest.mark.parametrize(
    "fields",
    [
        {"diameter_mm": 0},
        {"diameter_mm": 5000},
        {"timepoints_days": [0, 10, 5]},
        {"n_timepoints": 0},
        {"nodule_type": "spiky"},
        {"family": "glioma", "nodule_type": "solid"},
        {"unknown_field": 1},
    ],
)
def test_invalid_fields_fail_validation(fields: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        LesionSpec.model_validate(fields)


def test_structured_fields_override_prompt_fields() -> None:
    base = LesionSpec(
        diameter_mm=20, location={"side": "right", "level": "upper"}, growth={"doubling_time_days": 100}
    )
    over = LesionSpec(diameter_mm=12, location={"side": "left"})
    merged = merge_specs(base, over)
    assert merged.diameter_mm == 12
    assert merged.location.side.value == "left" and merged.location.level.value == "upper"
    assert merged.growth.doubling_time_days == 100


def test_fleischner_schedule() -> None:
    s = resolve_spec(LesionSpec(schedule=Schedule.FLEISCHNER, diameter_mm=10), Modality.CT, RNG)
    assert s.timepoints_days == [0.0, 91.0, 182.0, 365.0]
    g = resolve_spec(
        LesionSpec(schedule="fleischner", nodule_type="ground_glass", diameter_mm=10), Modality.CT, RNG
    )
    assert g.timepoints_days[1] == 274.0


def test_regressing_and_gompertz() -> None:
    r = resolve_spec(
        LesionSpec(growth={"law": "regressing", "halving_time_days": 100}, diameter_mm=10, duration_days=300),
        Modality.CT,
        RNG,
    )
    assert r.baseline_diameter_mm == pytest.approx(20.0, rel=1e-3)  # 3 halvings of volume = ×2 diameter
    g = resolve_spec(LesionSpec(growth={"law": "gompertz"}, diameter_mm=20), Modality.CT, RNG)
    assert g.growth.max_diameter_mm > 20 > g.baseline_diameter_mm


def test_attachment_and_juxtapleural_agree() -> None:
    rng = np.random.default_rng(0)
    s = resolve_spec(LesionSpec(location=Location(juxtapleural=True)), Modality.CT, rng)
    assert s.location.attachment == Attachment.JUXTAPLEURAL and s.calcification == Calcification.NONE
    s = resolve_spec(LesionSpec(location=Location(attachment=Attachment.JUXTAVASCULAR)), Modality.CT, rng)
    assert s.location.juxtapleural is False
    s = resolve_spec(LesionSpec(), Modality.CT, rng)
    assert s.location.attachment is None  # drawn by the family over what the scan offers
    with pytest.raises(InvalidInputError, match="juxtapleural is true"):
        resolve_spec(
            LesionSpec(location=Location(juxtapleural=True, attachment=Attachment.ISOLATED)), Modality.CT, rng
        )
    with pytest.raises(InvalidInputError, match="for lung nodules"):
        resolve_spec(LesionSpec(location=Location(attachment=Attachment.ISOLATED)), Modality.MR, rng)
    with pytest.raises(InvalidInputError, match="for lung nodules"):
        resolve_spec(LesionSpec(family="glioma", calcification=Calcification.POPCORN), Modality.MR, rng)


def _glioma_diameter(seed: int, grade: str, **location: str) -> float:
    spec = LesionSpec(family="glioma", grade=grade, seed=seed, location=Location(**location))
    d = resolve_spec(spec, Modality.MR, np.random.default_rng(seed)).diameter_mm
    assert d is not None
    return d


def test_glioma_size_is_drawn_per_grade_from_clinical_ranges() -> None:
    high = np.array([_glioma_diameter(seed, "high") for seed in range(50)])
    low = np.array([_glioma_diameter(seed, "low") for seed in range(50)])
    # GLIOMA_DIAMETER_MM: high grade typically 30-70 mm (median 50), low grade 20-60 mm (median 40)
    assert high.min() < 30 and high.max() > 55 and high.std() > 5
    assert 45 < np.median(high) < 55 and 35 < np.median(low) < 45
    assert low.min() < 25 and low.max() > 50 and low.std() > 5
    assert high.min() >= 20 and high.max() <= 75 and low.min() >= 15 and low.max() <= 65
    # same seed, same size; and the draw does not depend on anything but the seed and grade
    assert [_glioma_diameter(seed, "high") for seed in range(50)] == high.tolist()
    # the posterior fossa caps the size; an explicit size is kept
    assert max(_glioma_diameter(seed, "high", brain_lobe="brainstem") for seed in range(20)) <= 40
    fixed = LesionSpec(family="glioma", diameter_mm=40.0)
    assert resolve_spec(fixed, Modality.MR, np.random.default_rng(3)).diameter_mm == 40.0


def test_glioma_given_at_baseline_grows_at_the_fisher_front_speed() -> None:
    spec = LesionSpec(family="glioma", grade="low", baseline_diameter_mm=30.0, duration_days=730.5)
    s = resolve_spec(spec, Modality.MR, np.random.default_rng(0))
    # 4 sqrt(D rho) mm/day: 0.0112 mm/day = 4.1 mm/year for the low-grade defaults (Mandonnet 2003)
    assert s.diameter_mm == pytest.approx(30.0 + 4 * math.sqrt(0.0065 * 0.0012) * 730.5, abs=0.05)


def test_family_follows_a_family_field_and_butterfly_needs_the_hemispheres() -> None:
    with pytest.raises(InvalidInputError, match="gliomas are simulated in brain MRI"):
        resolve_spec(LesionSpec(grade="high"), Modality.CT, RNG)
    with pytest.raises(InvalidInputError, match="lung nodules are simulated in chest CT"):
        resolve_spec(LesionSpec(nodule_type="solid"), Modality.MR, RNG)
    butterfly = Location(crosses_midline=True, brain_lobe="brainstem")
    with pytest.raises(InvalidInputError, match="cannot cross the midline"):
        resolve_spec(LesionSpec(family="glioma", location=butterfly), Modality.MR, RNG)
    s = resolve_spec(LesionSpec(location=Location(crosses_midline=True)), Modality.MR, RNG)
    assert s.location.crosses_midline is True and s.family == Family.GLIOMA
