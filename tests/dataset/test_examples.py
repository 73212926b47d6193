"""The shipped example designs (examples/*.yaml) run as written on the embedded phantoms; here on
their quick grid (`inputs.demo_size: small`), with numpy's RuntimeWarnings as errors (an ordinary
run prints no warnings)."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from longisynth.bundle.reader import BundleReader
from longisynth.dataset.design import load_design, parse_design
from longisynth.dataset.runner import run_dataset
from longisynth.errors import InvalidInputError

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def test_the_examples_are_shipped_and_named_in_the_readme() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"lung_demo.yaml", "glioma_demo.yaml"} <= names
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in names:
        assert f"examples/{name}" in readme


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_design_runs_on_the_quick_phantom_grid(path: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert data["inputs"].get("demo") in ("lung", "glioma") and "demo_size" not in data["inputs"]
    load_design(path)  # the file as shipped validates
    data["inputs"]["demo_size"] = "small"
    design = parse_design(data, path.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = run_dataset(design, path.parent, tmp_path / "out")
    assert report.n_ok == len(report.rows), report.summary
    out = tmp_path / "out"
    for fmt in data["output"]["formats"]:  # every case's images in every export asked for
        assert len(
            list((out / fmt).rglob("case*_tp00*.nii.gz")) + list((out / fmt).rglob("sub-case*"))
        ) >= len(report.rows), fmt
    summary = (out / "summary.md").read_text()
    assert "Per archetype" in summary
    row = report.rows[0]
    with zipfile.ZipFile(out / row["bundle"]) as z:
        meta = json.loads(z.read("metadata.json"))
    assert meta["simulation"]["archetype"]["name"] == row["archetype"]
    assert row["source"].startswith("demo:")


def test_demo_inputs_refuse_a_modality_or_a_contrast() -> None:
    base = {"name": "D", "inputs": {"demo": "lung", "modality": "mr"}}
    with pytest.raises(InvalidInputError, match=r"inputs\.demo brings its own modality"):
        parse_design(base)
    with pytest.raises(
        InvalidInputError, match=r"exactly one of inputs\.glob, inputs\.manifest or inputs\.demo"
    ):
        parse_design({"name": "D", "inputs": {"demo": "lung", "glob": "*.nii.gz"}})


def test_compact_bundles_keep_the_displacement_to_a_micrometre(tmp_path: Path) -> None:
    from longisynth import api
    from longisynth.io.scan import Scan
    from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

    images, affine = make_brain_phantom(seed=0, spacing_mm=3.0)
    scans = {c: Scan.from_array(v, affine, f"{c}.nii.gz") for c, v in images.items()}
    study = api.generate(
        scans,
        "high-grade glioma, 40 mm, 2 scans over 60 days",
        seed=3,
        brain_tissues=brain_phantom_tissues(3.0),
        refine=False,
    )
    full = api.write_bundle(study, tmp_path / "full.zip", preview=False, record_timings=False)
    small = api.write_bundle(study, tmp_path / "small.zip", preview=False, record_timings=False, compact=True)
    assert small.stat().st_size < full.stat().st_size
    a, b = BundleReader(full), BundleReader(small)
    for k in range(2):
        da, db = a.displacement(k), b.displacement(k)
        assert da is not None and db is not None
        assert np.abs(da[0]).max() > 0.1  # there is a mass effect to keep
        assert np.abs(da[0] - db[0]).max() <= 0.0005 + 1e-6  # half a 1 µm step
        assert np.array_equal(a.raw(k, "flair")[0], b.raw(k, "flair")[0])  # images untouched
