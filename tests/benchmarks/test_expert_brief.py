"""The expert brief's claims: every deliberately broken example is flagged by the check it names,
and every good example passes it (``benchmarks/expert_brief_figures.py`` on a 2 mm brain)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import expert_brief_figures as eb

from longisynth.checks import RULES

BRIEF = Path(__file__).resolve().parents[2] / "docs" / "expert_brief.md"


def test_every_failure_of_the_brief_is_flagged_by_its_check(tmp_path: Path) -> None:
    cases = eb.build_cases(brain_mm=2.0)  # raises AssertionError when a broken example slips through
    assert {c.slug for c in cases} >= {
        "lung_in_vessel",
        "glioma_across_falx",
        "glioma_sulci_through_tumour",
        "glioma_noise_in_background",
    }
    text = BRIEF.read_text()
    for case in cases:
        assert case.flagged, case.slug
        assert f"expert_brief/{case.slug}.png" in text, f"the brief does not show {case.slug}"
        if case.rule is not None:
            assert case.rule in RULES
            assert f"`{case.rule}`" in text, f"the brief does not name {case.rule}"
    eb._png(cases[0], tmp_path / "one.png")
    assert (tmp_path / "one.png").stat().st_size < 100_000


def test_bad_spacing_is_refused() -> None:
    with pytest.raises(ValueError, match="spacing"):
        eb.build_cases(brain_mm=10.0)
