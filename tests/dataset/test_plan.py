"""Planning: deterministic per row, balanced strata, realised distributions match the design
(200-case dry run, specs only), impossible specs become error rows."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from longisynth.dataset.design import parse_design
from longisynth.dataset.plan import plan_dataset
from longisynth.dataset.runner import plan_only
from longisynth.dataset.summary import field_table
from longisynth.spec import LungLobe


def _scans(folder: Path, n: int) -> Path:
    for k in range(n):
        (folder / f"s{k}.nii.gz").write_bytes(b"")  # planning never reads the images
    return folder


def _design(n_cases: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Dry",
        "seed": 2024,
        "inputs": {"glob": "*.nii.gz"},
        "cases_per_scan": n_cases,
        "spec": {"family": "lung_nodule"},
        "sample": {
            "nodule_type": {"choice": {"solid": 0.6, "part_solid": 0.2, "ground_glass": 0.2}},
            "diameter_mm": {"uniform": [5, 25]},
            "location.lung_lobe": "any",
            "growth.doubling_time_days": {"lognormal": {"range": [100, 800], "coverage": 0.9}},
            "n_timepoints": {"integers": [3, 5]},
            "duration_days": {"uniform": [182, 730]},
        },
        **extra,
    }


def _within(share: float, p: float, n: int, k: float = 3.5) -> bool:
    return abs(share - p) <= k * math.sqrt(p * (1 - p) / n)


def test_dry_run_of_200_cases_matches_the_design_within_sampling_error(tmp_path: Path) -> None:
    design = parse_design(_design(100))
    report = plan_only(design, _scans(tmp_path, 2), tmp_path / "plan")
    rows = report.rows
    assert len(rows) == 200 and all(r["status"] == "planned" for r in rows)
    n = len(rows)
    types = Counter(r["nodule_type"] for r in rows)
    for value, p in {"solid": 0.6, "part_solid": 0.2, "ground_glass": 0.2}.items():
        assert _within(types[value] / n, p, n), (value, types)
    lobes = Counter(r["lung_lobe"] for r in rows)
    assert set(lobes) == {lobe.value for lobe in LungLobe}
    assert all(_within(c / n, 0.2, n) for c in lobes.values()), lobes
    diam = np.array([r["diameter_mm"] for r in rows])
    assert diam.min() >= 5 and diam.max() <= 25
    assert stats.kstest(diam, stats.uniform(5, 20).cdf).pvalue > 1e-3
    vdt = np.array([r["doubling_time_days"] for r in rows])
    assert _within(float(np.mean((vdt >= 100) & (vdt <= 800))), 0.9, n)
    tps = Counter(r["n_timepoints"] for r in rows)
    assert set(tps) == {3, 4, 5} and all(_within(c / n, 1 / 3, n) for c in tps.values())
    dur = np.array([r["duration_days"] for r in rows])
    assert stats.kstest(dur, stats.uniform(182, 548).cdf).pvalue > 1e-3
    # the concrete spec is the engine's resolution: timepoints spread evenly over the duration
    first = rows[0]["spec"]
    assert len(first["timepoints_days"]) == first["n_timepoints"] == rows[0]["n_timepoints"]
    assert first["timepoints_days"][-1] == pytest.approx(rows[0]["duration_days"])
    # the summary table agrees: no categorical share more than 4 standard errors off
    assert all(abs(e["z"]) < 4 for e in field_table(design, rows) if e["kind"] == "categorical")
    assert all(e["ks_p"] > 1e-3 for e in field_table(design, rows) if e["kind"] == "numeric")
    with (tmp_path / "plan" / "plan.csv").open() as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 200 and json.loads(written[7]["spec"]) == rows[7]["spec"]
    assert (tmp_path / "plan" / "plan_summary.md").read_text().count("| nodule_type |") == 3


def test_stratified_design_has_equal_counts_per_lobe_and_size_band(tmp_path: Path) -> None:
    bands = [[5, 10], [10, 15], [15, 25]]
    strat = [{"field": "location.lung_lobe"}, {"field": "diameter_mm", "bands": bands}]
    design = parse_design(_design(60, stratify=strat))
    rows = plan_only(design, _scans(tmp_path, 2)).rows  # 120 rows = 8 blocks of 15 strata
    cells = Counter((r["lung_lobe"], r["stratum"]["diameter_mm"]) for r in rows)
    assert len(cells) == 15 and set(cells.values()) == {8}
    for r in rows:
        lo, hi = (float(x) for x in r["stratum"]["diameter_mm"].strip("[)").split(","))
        assert lo <= r["diameter_mm"] <= hi
    # each scan's 60 cases spread over all lobes
    assert all(len({r["lung_lobe"] for r in rows if r["scan_id"] == s}) == 5 for s in ("s0", "s1"))


def test_cases_depend_only_on_design_and_row(tmp_path: Path) -> None:
    folder = _scans(tmp_path, 2)
    a = plan_dataset(parse_design(_design(3)), folder).cases
    again = plan_dataset(parse_design(_design(3)), folder).cases
    assert [(c.seed, c.sampled, c.resolved) for c in a] == [(c.seed, c.sampled, c.resolved) for c in again]
    # another seed changes the cases
    other = plan_dataset(parse_design({**_design(3), "seed": 2025}), folder).cases
    assert [c.seed for c in other] != [c.seed for c in a]
    # adding a sampled field leaves the other fields' values alone
    extra = _design(3)
    extra["sample"] = {**extra["sample"], "shape": "any"}
    more = plan_dataset(parse_design(extra), folder).cases
    for x, y in zip(a, more, strict=True):
        assert {k: v for k, v in y.sampled.items() if k != "shape"} == x.sampled and x.seed == y.seed
    # one more scan at the end does not change the first scans' rows
    _scans(tmp_path, 3)
    grown = plan_dataset(parse_design(_design(3)), folder).cases
    assert [(c.case_id, c.sampled) for c in grown[:6]] == [(c.case_id, c.sampled) for c in a]


def test_conditional_doubling_time_by_nodule_type(tmp_path: Path) -> None:
    d = _design(60)
    d["sample"]["growth.doubling_time_days"] = {
        "by": "nodule_type",
        "cases": {"solid": {"uniform": [100, 300]}, "ground_glass": {"uniform": [600, 900]}},
    }
    rows = plan_only(parse_design(d), _scans(tmp_path, 1)).rows
    for r in rows:
        vdt = r["doubling_time_days"]
        if r["nodule_type"] == "solid":
            assert 100 <= vdt <= 300
        elif r["nodule_type"] == "ground_glass":
            assert 600 <= vdt <= 900
        else:  # no case for part-solid: the engine's default VDT (598 d, PMC5945695)
            assert "growth.doubling_time_days" not in r["sampled"] and vdt == 598.0


def test_impossible_spec_is_an_error_row_not_a_crash(tmp_path: Path) -> None:
    d = _design(20)
    # a regressing nodule whose baseline is sampled smaller than its final size cannot exist
    d["spec"] = {"family": "lung_nodule", "growth": {"law": "regressing"}}
    d["sample"] = {"diameter_mm": {"uniform": [5, 25]}, "baseline_diameter_mm": {"uniform": [5, 25]}}
    rows = plan_only(parse_design(d), _scans(tmp_path, 1)).rows
    bad = [r for r in rows if r["status"] == "error"]
    good = [r for r in rows if r["status"] == "planned"]
    assert bad and good
    assert all("must be smaller at the end" in r["error"] for r in bad)
    assert all(r["baseline_diameter_mm"] > r["diameter_mm"] for r in good)
