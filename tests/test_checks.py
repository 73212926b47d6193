"""One rules table: the engine and ``evaluate`` apply the same rule, limit and hardness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_host_share_tells_a_replacing_lesion_from_a_blended_one() -> None:
    from longisynth.pipeline import host_share, solid_interior

    rng = np.random.default_rng(0)
    host = rng.normal(0.0, 1.0, (20, 20, 20)).astype(np.float32)
    lesion = rng.normal(3.0, 1.0, host.shape).astype(np.float32)
    mask = np.zeros(host.shape, dtype=np.uint8)
    mask[4:16, 4:16, 4:16] = 1
    interior = solid_interior(mask, (1,))
    assert interior.sum() == 10**3  # eroded by one voxel
    replaced = host_share(lesion, host, interior)
    blended = host_share(0.5 * lesion + 0.5 * host, host, interior)
    assert replaced is not None and blended is not None
    assert abs(replaced) < 0.15 and blended > 0.6
    assert not ck.check("host_pattern_in_solid_lesion", blended).passed
    assert host_share(lesion, host, np.zeros(host.shape, dtype=bool)) is None  # too few voxels
    with pytest.raises(ValueError, match="shape"):
        host_share(lesion[1:], host, interior)


def test_nonzero_in_background_counts_what_was_written_into_the_zero_background() -> None:
    from longisynth.pipeline import nonzero_in_background

    background = np.zeros((4, 4, 4), dtype=bool)
    background[0] = True
    image = np.zeros((4, 4, 4), dtype=np.float32)
    image[1:] = 5.0
    assert nonzero_in_background(image, background) == 0
    image[0, 0, :2] = 0.3
    assert nonzero_in_background(image, background) == 2
    assert not ck.check("zero_background_voxels_nonzero", 2).passed
    assert ck.check("zero_background_voxels_nonzero", 2).hard
    with pytest.raises(ValueError, match="shape"):
        nonzero_in_background(image[1:], background)


def test_passing_studies_carry_the_appearance_checks() -> None:
    """The demo nodule passes the vessel and host-pattern rules; a skull-stripped brain (exact-zero
    background) gets the background rule at every timepoint, and it passes."""
    import longisynth
    from longisynth.demo import demo_input
    from longisynth.io.scan import Scan
    from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

    demo = demo_input("lung")
    study = longisynth.generate(demo.scans, demo.prompt, seed=1, refine=False)
    got = {c.name: c for c in study.checks}
    assert got["lesion_on_host_vessel_fraction"].passed
    assert got["host_pattern_in_solid_lesion"].passed
    assert "zero_background_voxels_nonzero" not in got  # CT: 0 HU is water, not background

    images, affine = make_brain_phantom(("t1", "flair"), seed=0, spacing_mm=2.0)
    tissues = brain_phantom_tissues(2.0)
    brain = (tissues["csf"] + tissues["gm"] + tissues["wm"]) > 0.5
    scans = {c: Scan.from_array(np.where(brain, v, 0).astype(v.dtype), affine, c) for c, v in images.items()}
    study = longisynth.generate(
        scans, "high-grade glioma 40 mm in the left frontal lobe, 2 timepoints over 60 days",
        seed=2, refine=False, brain_tissues=tissues,
    )  # fmt: skip
    background = [c for c in study.checks if c.name == "zero_background_voxels_nonzero"]
    assert [c.timepoint for c in background] == [0, 1]
    assert all(c.passed and c.value == 0 for c in background)
