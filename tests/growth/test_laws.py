"""Growth laws of lung nodules (longisynth.growth.laws)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longisynth.errors import InvalidInputError
from longisynth.growth.laws import (
    diameter_schedule,
    fit_doubling_time,
    gompertz_diameters,
    gompertz_rate_per_day,
    sphere_volume_mm3,
    volume_ratio_schedule,
)
from longisynth.spec import GrowthLaw, GrowthSpec, LesionSpec, Modality, NoduleType, resolve_spec


def _resolved(**fields: object) -> LesionSpec:
    return resolve_spec(LesionSpec.model_validate(fields), Modality.CT, np.random.default_rng(0))


def test_exponential_volume_doubles_every_vdt() -> None:
    spec = _resolved(
        diameter_mm=15.0,
        timepoints_days=[0.0, 267.0, 534.0, 801.0],
        growth=GrowthSpec(law=GrowthLaw.EXPONENTIAL, doubling_time_days=267.0),
    )
    d = diameter_schedule(spec)
    assert d[-1] == 15.0
    assert volume_ratio_schedule(d) == pytest.approx([0.125, 0.25, 0.5, 1.0], rel=1e-12)
    # One volume doubling is ×2^(1/3) ≈ ×1.26 in diameter (PMC5945695).
    assert d[2] / d[1] == pytest.approx(2 ** (1 / 3), rel=1e-12)
    assert fit_doubling_time(spec.timepoints_days or [], [sphere_volume_mm3(x) for x in d]) == pytest.approx(
        267.0, rel=1e-9
    )


def test_default_solid_nodule_uses_mean_vdt_and_ends_at_requested_size() -> None:
    spec = _resolved(nodule_type=NoduleType.SOLID, diameter_mm=9.0, n_timepoints=5, duration_days=400)
    d = diameter_schedule(spec)
    assert len(d) == 5 and d[-1] == 9.0
    assert np.all(np.diff(d) > 0)
    vols = [sphere_volume_mm3(x) for x in d]
    assert fit_doubling_time(spec.timepoints_days or [], vols) == pytest.approx(267.0, rel=1e-9)
    assert d[0] == pytest.approx(spec.baseline_diameter_mm, rel=1e-4)


def test_exponential_from_two_sizes_is_exact_at_both_ends() -> None:
    spec = _resolved(baseline_diameter_mm=6.0, diameter_mm=10.0, n_timepoints=3, duration_days=365)
    d = diameter_schedule(spec)
    assert d[-1] == 10.0
    assert d[0] == pytest.approx(6.0, rel=1e-4)  # doubling time is rounded to 1e-3 days


def test_gompertz_monotone_saturating_and_exact() -> None:
    days = list(np.linspace(0.0, 720.0, 9))
    d = gompertz_diameters(days, 6.0, 10.0, 12.5)
    assert d[0] == 6.0 and d[-1] == 10.0
    steps = np.diff(d)
    assert np.all(steps > 0)
    assert np.all(np.diff(steps) < 0)  # decelerating towards the plateau
    b = gompertz_rate_per_day(6.0, 10.0, 12.5, 720.0)
    assert 12.5 * math.exp(math.log(6.0 / 12.5) * math.exp(-b * 720.0)) == pytest.approx(10.0, rel=1e-12)
    # Far beyond the study the same law approaches the plateau without crossing it.
    assert 12.4 < 12.5 * math.exp(math.log(6.0 / 12.5) * math.exp(-b * 20000.0)) < 12.5


def test_gompertz_spec_defaults() -> None:
    spec = _resolved(diameter_mm=20.0, n_timepoints=4, growth=GrowthSpec(law=GrowthLaw.GOMPERTZ))
    d = diameter_schedule(spec)
    assert d[0] == pytest.approx(12.0) and d[-1] == 20.0  # default baseline 0.6 × final
    assert all(x < 25.0 for x in d)  # default plateau 1.25 × final


def test_regressing_volume_halves_every_halving_time() -> None:
    spec = _resolved(
        diameter_mm=8.0,
        timepoints_days=[0.0, 90.0, 180.0],
        growth=GrowthSpec(law=GrowthLaw.REGRESSING, halving_time_days=90.0),
    )
    d = diameter_schedule(spec)
    assert d[-1] == 8.0
    assert volume_ratio_schedule(d) == pytest.approx([4.0, 2.0, 1.0], rel=1e-12)
    assert fit_doubling_time(spec.timepoints_days or [], [x**3 for x in d]) == pytest.approx(-90.0)


def test_stable_is_constant() -> None:
    spec = _resolved(diameter_mm=7.5, n_timepoints=4, growth=GrowthSpec(law=GrowthLaw.STABLE))
    assert diameter_schedule(spec) == [7.5] * 4
    assert math.isinf(fit_doubling_time([0, 1, 2], [3.0, 3.0, 3.0]))


def test_single_timepoint_is_the_final_size() -> None:
    growth = GrowthSpec(law=GrowthLaw.EXPONENTIAL, doubling_time_days=100.0)
    spec = LesionSpec(diameter_mm=11.0, timepoints_days=[0.0], growth=growth)
    assert diameter_schedule(spec) == [11.0]


def test_errors() -> None:
    with pytest.raises(InvalidInputError):
        diameter_schedule(LesionSpec(diameter_mm=10.0))  # not resolved
    with pytest.raises(InvalidInputError):
        gompertz_rate_per_day(10.0, 8.0, 12.0, 100.0)  # shrinking is not Gompertz growth
    with pytest.raises(InvalidInputError):
        fit_doubling_time([0.0], [1.0])
    with pytest.raises(InvalidInputError):
        fit_doubling_time([0.0, 1.0], [1.0, -1.0])
