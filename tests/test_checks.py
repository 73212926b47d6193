"""One rules table: the engine and ``evaluate`` apply the same rule, limit and hardness."""

from __future__ import annotations

from pathlib import Path

import pytest

from longisynth import checks as ck
from longisynth.checks import RULES


def test_rules_format_their_limits_and_outcomes() -> None:
    c = ck.check("lesion_in_allowed_region_fraction", 0.995, timepoint=2)
    assert (c.name, c.value, c.limit, c.passed, c.hard, c.timepoint) == (
        "lesion_in_allowed_region_fraction", 0.995, ">= 0.99", True, True, 2,
    )  # fmt: skip
    assert ck.check("jacobian_determinant_min", 0.0).limit == ">= 1e-06"
    assert not ck.check("jacobian_determinant_min", 0.0).passed
    assert ck.check("diameter_growth_mm_per_year", 25.0, variant="low").passed is False
    assert ck.check("diameter_growth_mm_per_year", 25.0, variant="high").limit == "[2, 400]"
    assert ck.check("masks_nested_over_time", False).limit == "true"
    assert ck.check("anatomy_ncc_outside_zone", 1.0, suffix="t1c").name == "anatomy_ncc_outside_zone_t1c"
    with pytest.raises(KeyError):
        ck.check("diameter_growth_mm_per_year", 3.0)
    assert all(r.rationale for r in RULES.values())


def test_engine_and_evaluate_agree_on_every_shared_rule(tmp_path: Path) -> None:
    import longisynth
    from longisynth.demo import demo_input
    from longisynth.evaluate.core import evaluate_bundle

    demo = demo_input("lung")
    study = longisynth.generate(demo.scans, demo.prompt, seed=1, refine=False)
    path = longisynth.write_bundle(study, tmp_path / "s.zip", preview=False)
    engine = {c.name: c for c in study.checks}
    evaluated = {c.name: c for c in evaluate_bundle(path).checks}
    shared = set(engine) & set(evaluated)
    assert {"jacobian_determinant_min", "final_diameter_relative_error"} <= shared
    for name in shared:
        assert (engine[name].limit, engine[name].hard) == (evaluated[name].limit, evaluated[name].hard), name
    base = {n.removesuffix("_ct") for n in {*engine, *evaluated}}
    assert base <= set(RULES)
