"""Design files: validation against the engine's LesionSpec, one-line errors, distributions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from longisynth.dataset.design import load_design, parse_design
from longisynth.dataset.distributions import Integers, LogNormal, Uniform
from longisynth.errors import InvalidInputError

BASE = {"name": "T", "inputs": {"glob": "*.nii.gz"}}


def _error(**fields: object) -> str:
    with pytest.raises(InvalidInputError) as info:
        parse_design({**BASE, **fields}, "d.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_valid_design_resolves_strata_levels_from_the_distribution() -> None:
    design = parse_design(
        {
            **BASE,
            "sample": {
                "location.lung_lobe": {"choice": {"right_upper": 2, "left_lower": 1, "left_upper": 0}},
                "diameter_mm": {"uniform": [5, 25]},
            },
            "stratify": [
                {"field": "location.lung_lobe"},
                {"field": "diameter_mm", "bands": [[5, 10], [10, 25]]},
            ],
        }
    )
    # zero-weight values are not levels; bands stay as given
    assert design.stratify[0].levels == ["right_upper", "left_lower"]
    assert design.n_strata() == 4


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"sample": {"diameter": {"uniform": [5, 25]}}}, "'diameter' is not a field of the spec"),
        ({"sample": {"location": "any"}}, "is a group of fields"),
        ({"sample": {"seed": {"integers": [1, 5]}}}, "cannot be sampled"),
        ({"sample": {"diameter_mm": {"uniform": [25, 5]}}}, "uniform low 25 must be below high 5"),
        ({"sample": {"diameter_mm": {"uniform": [0, 5]}}}, "greater than or equal to 0.1"),
        ({"sample": {"diameter_mm": {"uniform": [5, 200]}}}, "less than or equal to 150"),
        (
            {"sample": {"nodule_type": {"choice": {"solid": 1, "purple": 1}}}},
            "'purple' is not a valid nodule_type",
        ),
        ({"sample": {"nodule_type": {"uniform": [1, 2]}}}, "categorical"),
        ({"sample": {"diameter_mm": "any"}}, "'any' needs a categorical field"),
        ({"sample": {"diameter_mm": {"gauss": [1, 2]}}}, "a distribution is 'any' or a mapping"),
        ({"sample": {"diameter_mm": {"uniform": [5, 10]}}, "spec": {"diameter_mm": 8}}, "also fixed in spec"),
        ({"spec": {"seed": 3}}, "spec.seed is derived per case"),
        ({"spec": {"diameter_mm": -1}}, "spec.diameter_mm"),
        ({"stratify": [{"field": "diameter_mm", "bands": [[5, 10]]}]}, "must also be in sample"),
        (
            {"sample": {"diameter_mm": {"uniform": [5, 10]}}, "stratify": [{"field": "diameter_mm"}]},
            "stratified by bands",
        ),
        (
            {
                "sample": {
                    "growth.doubling_time_days": {
                        "by": "nodule_type",
                        "cases": {"solid": {"uniform": [1, 2]}},
                    },
                }
            },
            "must name a field sampled earlier",
        ),
        (
            {"inputs": {"glob": "*.nii.gz", "manifest": "x.csv"}},
            "exactly one of inputs.glob, inputs.manifest or inputs.demo",
        ),
        (
            {"spec": {"family": "glioma"}, "inputs": {"glob": "*", "modality": "ct"}},
            "gliomas are simulated in MRI",
        ),
    ],
)
def test_invalid_designs_give_one_line_naming_the_problem(fields: dict[str, object], expected: str) -> None:
    message = _error(**fields)
    assert message.startswith("d.yaml: ")
    assert expected in message


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: T\ninputs: {glob: [unclosed\n")
    with pytest.raises(InvalidInputError, match=r"bad.yaml: not valid YAML: .*\(line \d\)"):
        load_design(path)


def test_lognormal_fitted_to_a_clinical_range_covers_it() -> None:
    dist = LogNormal.model_validate({"lognormal": {"range": [100, 800], "coverage": 0.9}, "round": None})
    rng = np.random.default_rng(0)
    draws = np.array([dist.sample(rng) for _ in range(4000)])
    inside = np.mean((draws >= 100) & (draws <= 800))
    assert abs(inside - 0.9) < 0.02
    assert abs(np.median(draws) - math.sqrt(100 * 800)) < 15  # geometric mean of the range


def test_band_truncation_is_exact_and_respects_clip() -> None:
    rng = np.random.default_rng(1)
    uni = Uniform.model_validate({"uniform": [5, 25]})
    assert all(10 <= uni.sample(rng, (10, 15)) <= 15 for _ in range(200))
    logn = LogNormal.model_validate({"lognormal": {"median": 300, "sigma": 0.5}, "clip": [50, 2000]})
    draws = [logn.sample(rng, (1000, 5000)) for _ in range(200)]
    assert min(draws) >= 1000 and max(draws) <= 2000  # band ∩ clip
    ints = Integers.model_validate({"integers": [3, 5]})
    assert {ints.sample(rng, (4, 6)) for _ in range(100)} == {4, 5}
    with pytest.raises(ValueError, match="band"):
        uni.sample(rng, (30, 40))


def test_the_order_of_sample_fields_is_part_of_the_fingerprint() -> None:
    # the order decides the draws (a conditional reads a field drawn before it), so two designs
    # that differ only in it are different designs; a sorted design keeps its earlier fingerprint
    a = {"diameter_mm": {"uniform": [5, 10]}, "nodule_type": "any"}
    b = {"nodule_type": "any", "diameter_mm": {"uniform": [5, 10]}}
    da, db = parse_design({**BASE, "sample": a}), parse_design({**BASE, "sample": b})
    assert da.fingerprint() != db.fingerprint()
    import hashlib
    import json

    # the fields added since (export labels: authors, license) are left out, so the dump is as before
    exclude = {"resources": True, "output": {"formats", "authors", "license"}}
    dump = da.model_dump(mode="json", exclude=exclude)
    assert da.fingerprint() == hashlib.sha256(json.dumps(dump, sort_keys=True).encode()).hexdigest()


def test_export_labels_leave_the_fingerprint_alone() -> None:
    # authors and license only label the BIDS export: same cases, same UIDs
    plain = parse_design(BASE)
    labelled = parse_design({**BASE, "output": {"authors": ["Ada Example"], "license": "CC0-1.0"}})
    assert labelled.fingerprint() == plain.fingerprint()
