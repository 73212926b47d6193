"""A dataset design that samples two archetypes runs end to end, and its summary reports each
archetype's realised against designed distributions."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from longisynth.dataset.design import load_design
from longisynth.dataset.runner import plan_only, run_dataset
from longisynth.errors import InvalidInputError
from tests.dataset.conftest import make_inputs, write_design


def _design(tmp_path: Path, **overrides: object) -> Path:
    manifest = make_inputs(tmp_path / "in", n_scans=2)
    fields: dict[str, object] = {
        "name": "TwoArchetypes",
        "cases_per_scan": 3,
        # two scans 60 days apart: even the fastest aggressive nodule (VDT 30 d) stays >= 2 pixels
        # of the 3.5 mm phantom at baseline, and the largest fits its lobes
        "spec": {"family": "lung_nodule", "n_timepoints": 2, "duration_days": 60},
        "sample": {
            "archetype": {"choice": {"aggressive_solid": 0.5, "indolent_ggn": 0.5}},
            "diameter_mm": {"uniform": [13, 15]},
        },
    }
    fields.update(overrides)
    return write_design(tmp_path / "d", manifest, **fields)


def test_a_design_sampling_two_archetypes_runs_end_to_end(tmp_path: Path) -> None:
    path = _design(tmp_path)
    report = run_dataset(load_design(path), path.parent, tmp_path / "out")
    assert report.n_ok == 6, report.summary
    with (tmp_path / "out" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    names = {r["archetype"] for r in rows}
    assert names == {"aggressive_solid", "indolent_ggn"}
    for r in rows:
        spec = json.loads(r["spec"])
        with zipfile.ZipFile(tmp_path / "out" / r["bundle"]) as z:
            meta = json.loads(z.read("metadata.json"))
        assert meta["simulation"]["archetype"]["name"] == r["archetype"] == spec["archetype"]
        vdt = spec["growth"]["doubling_time_days"]
        if r["archetype"] == "aggressive_solid":
            assert spec["nodule_type"] == "solid" and spec["shape"] == "spiculated" and 30 <= vdt <= 150
        else:
            assert spec["nodule_type"] == "ground_glass" and 400 <= vdt <= 3000
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Per archetype" in summary
    table = [line for line in summary.splitlines() if line.startswith("| aggressive_solid@1 | ")]
    fields = {line.split(" | ")[1] for line in table}
    # the archetype's own fields, and not diameter_mm, which the design samples itself
    assert {"growth.doubling_time_days", "location.lung_lobe"} <= fields and "diameter_mm" not in fields
    assert any(
        line.startswith("| indolent_ggn@1 | growth.doubling_time_days |") for line in summary.splitlines()
    )
    # the expert review reports its rejection rate per archetype
    from longisynth.review.apply import apply_review
    from longisynth.review.store import VerdictStore, parse_verdict

    store = VerdictStore(tmp_path / "out")
    for r in rows:
        reject = r["archetype"] == "indolent_ggn"
        body = {"verdict": "reject", "reason": "wrong_texture"} if reject else {"verdict": "accept"}
        store.append(parse_verdict(r["case_id"], body, "reader1"))
    apply_review(tmp_path / "out")
    lines = (tmp_path / "out" / "summary.md").read_text().splitlines()
    rates = {
        line.split(" | ")[0].strip("| "): line.rstrip(" |").rsplit(" | ", 1)[-1]
        for line in lines
        if line.startswith(("| aggressive_solid |", "| indolent_ggn |"))
    }
    assert rates["indolent_ggn"].startswith("100") and rates["aggressive_solid"].startswith("0"), rates


def test_a_plan_names_unknown_archetypes_before_any_work(tmp_path: Path) -> None:
    path = _design(tmp_path, sample={"archetype": {"choice": {"aggressive_solid": 1, "banana": 1}}})
    with pytest.raises(InvalidInputError, match="unknown archetype 'banana'"):
        plan_only(load_design(path), path.parent)


def test_a_design_folder_of_user_archetypes_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "d" / "mine"
    folder.mkdir(parents=True)
    (folder / "slow_solid.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "slow_solid",
                "version": 1,
                "family": "lung_nodule",
                "title": "Slow solid",
                "description": "A solid nodule that grows slowly, written by a test for user folders.",
                "references": ["a test"],
                "spec": {"nodule_type": "solid"},
                "sample": {"growth.doubling_time_days": {"uniform": [400, 500]}},
            }
        )
    )
    path = _design(tmp_path, archetypes="mine", sample={"archetype": {"choice": ["slow_solid", "granuloma"]}})
    report = plan_only(load_design(path), path.parent)
    by = {r["archetype"] for r in report.rows}
    assert by == {"slow_solid", "granuloma"}
    for r in report.rows:
        if r["archetype"] == "slow_solid":
            assert 400 <= r["doubling_time_days"] <= 500
    assert "slow_solid@1 | growth.doubling_time_days" in report.summary
