"""Bundles written by the real engine pass every hard check of the independent evaluation."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import longisynth
from longisynth.demo import demo_input
from longisynth.evaluate import evaluate_bundle
from tests.conftest import shared_file
from tests.evaluate.test_phantom import run_cli


def _demo_bundle(kind: str, path: Path, displacement: bool = True) -> Path:
    demo = demo_input(kind)
    study = longisynth.generate(demo.scans, demo.prompt, seed=3, brain_tissues=demo.brain_tissues)
    return longisynth.write_bundle(study, path, preview=False, displacement=displacement)


def test_lung_demo_bundle_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _demo_bundle("lung", tmp_path / "lung.zip")
    out = tmp_path / "r.json"
    assert run_cli(str(path), "-o", str(tmp_path / "r.html"), "--json", str(out)) == 0
    report = json.loads(out.read_text())["bundles"][0]
    assert report["passed"] and all(c["passed"] for c in report["checks"] if c["hard"])
    assert abs(report["diameter_rel_error"]) < 0.2
    assert report["growth"]["vdt_spec_days"] == 200.0
    assert abs(report["growth"]["vdt_rel_error"]) < 0.25
    for row in report["timepoints"][1:]:
        assert row["stability"]["ct"]["ncc"] == pytest.approx(1.0, abs=1e-9)
        assert row["stability"]["ct"]["max_abs_diff"] == 0.0
        assert row["jacobian"]["min"] > 0
    assert "PASS" in capsys.readouterr().out


def test_glioma_demo_bundle_passes(tmp_path: Path) -> None:
    path = _demo_bundle("glioma", tmp_path / "glioma.zip")
    report = evaluate_bundle(path, keep_slices=False)
    assert report.passed, report.hard_failures
    assert report.law == "reaction_diffusion" and report.growth["vdt_fit_days"] > 0
    final = report.timepoints[-1]
    assert set(final["stability"]) == {"t1", "t1c", "t2", "flair"}
    # oedema (label 2) is FLAIR-bright relative to the brain
    assert final["intensity"]["flair"]["2"]["z"] > 1.0


def test_glioma_bundle_without_displacement_fields_passes(tmp_path: Path) -> None:
    """Without its fields, the evaluation learns from the metadata how far from the lesion the study
    changed voxels: the brain's mass effect reaches beyond the influence radius, and nothing
    outside that reach changed between timepoints."""
    path = _demo_bundle("glioma", tmp_path / "glioma.zip", displacement=False)
    report = evaluate_bundle(path, keep_slices=False)
    assert report.passed, report.hard_failures
    with zipfile.ZipFile(path) as z:
        simulation = json.loads(z.read("metadata.json"))["simulation"]
    assert simulation["changed_within_mm"] > simulation["influence_radius_mm"]
    assert all(row["zone"].startswith("mask dilated") for row in report.timepoints)


def test_real_ct_bundle_passes(tmp_path: Path) -> None:
    scan = longisynth.read_scan(shared_file("totalseg_chest_ct_crop.nii.gz"))
    study = longisynth.generate(
        scan, "solid nodule 12 mm in the right lung, scans at 0, 6 and 12 months", seed=2
    )
    path = longisynth.write_bundle(study, tmp_path / "real.zip", preview=False)
    report = evaluate_bundle(path, keep_slices=False)
    assert report.passed, report.hard_failures
    assert len(report.timepoints) == 3
    assert report.diameter_final_mm == pytest.approx(12.0, rel=0.2)
