"""Schema-valid extremes never crash the engine: the schema refuses them with its clinical bounds,
or resolution says which field makes the study impossible (issue 16, item 4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from longisynth.api import demo_input, resolve
from longisynth.errors import InvalidInputError
from longisynth.spec import LesionSpec


@pytest.fixture(scope="module")
def scans() -> Any:
    return demo_input("lung").scans


# The reproducers of the issue: each was a 500 (OverflowError, ZeroDivisionError, an uncaught
# ValidationError, LinAlgError).
REFUSED_BY_SCHEMA = [
    ({"growth": {"doubling_time_days": 0.1}}, "growth.doubling_time_days"),
    ({"growth": {"doubling_time_days": 1}}, "growth.doubling_time_days"),
    ({"growth": {"doubling_time_days": 5}}, "growth.doubling_time_days"),
    ({"growth": {"law": "regressing", "halving_time_days": 0.01}}, "growth.halving_time_days"),
    ({"growth": {"law": "regressing", "halving_time_days": 5}}, "growth.halving_time_days"),
    ({"diameter_mm": 1e-5}, "diameter_mm"),
    ({"timepoints_days": [0, 1e-300]}, "timepoints_days"),
    ({"baseline_diameter_mm": True}, "baseline_diameter_mm"),
    ({"n_timepoints": True}, "n_timepoints"),
]


@pytest.mark.parametrize(("spec", "field"), REFUSED_BY_SCHEMA)
def test_schema_refuses_out_of_bounds_values(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        LesionSpec.model_validate(spec)
    assert ".".join(str(p) for p in exc.value.errors()[0]["loc"]) == field


@pytest.mark.parametrize(("spec", "field"), REFUSED_BY_SCHEMA)
def test_engine_answers_invalid_input_naming_the_field(scans: Any, spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
        resolve(scans, "", spec, seed=1)


# Inside the bounds, but the growth law drives a diameter out of 0.1–150 mm over the study.
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"growth": {"doubling_time_days": 20}, "duration_days": 7305}, "growth.doubling_time_days"),
        (
            {"growth": {"law": "regressing", "halving_time_days": 7}, "duration_days": 7305},
            "growth.halving_time_days",
        ),
        (
            {"baseline_diameter_mm": 100, "growth": {"doubling_time_days": 20}, "duration_days": 365},
            "growth.doubling_time_days",
        ),
        ({"n_timepoints": 20, "duration_days": 5}, "timepoints_days"),
    ],
)
def test_derived_values_out_of_bounds_name_the_field(scans: Any, spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as exc:
        resolve(scans, "", spec, seed=1)
    assert exc.value.field == field and field in str(exc.value)


def test_extremes_of_every_bound_resolve_or_say_why(scans: Any) -> None:
    """Every corner of the growth bounds × study length: resolved within bounds, or InvalidInputError."""
    for law, rate_field, rates in [
        ("exponential", "doubling_time_days", (20.0, 20000.0)),
        ("regressing", "halving_time_days", (7.0, 20000.0)),
    ]:
        for rate in rates:
            for duration in (1.0, 30.0, 7305.0):
                for size in ({"diameter_mm": 1.0}, {"baseline_diameter_mm": 150.0}, {}):
                    spec = {"growth": {"law": law, rate_field: rate}, "duration_days": duration, **size}
                    try:
                        out = resolve(scans, "", spec, seed=1)
                    except InvalidInputError as exc:
                        assert exc.field is not None or "invalid spec field" in str(exc), spec
                        continue
                    assert out.diameter_mm is not None and out.baseline_diameter_mm is not None
                    assert 0.1 <= out.diameter_mm <= 150.0 and 0.1 <= out.baseline_diameter_mm <= 150.0
                    assert np.all(np.diff(out.timepoints_days or [0.0]) >= 1.0)
