"""Library lesions in dataset runs: the plan picks each case's lesion (with a reuse cap), workers
copy exactly that lesion, the manifest says which and that the bundle holds real texture, and a
design can forbid library lesions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from longisynth.dataset.design import load_design, parse_design
from longisynth.dataset.runner import run_dataset
from longisynth.errors import InvalidInputError
from longisynth.library import Library, build_library
from tests.dataset.conftest import make_inputs, write_design
from tests.library.test_library import _write_pair


@pytest.fixture(scope="module")
def big_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three solid nodules of about 11, 14 and 16 mm (the dataset phantoms have 3.5 mm pixels)."""
    src = tmp_path_factory.mktemp("big")
    for i, radius in enumerate((5.0, 6.0, 7.0)):
        _write_pair(src, f"n{i}", radius, 10 + i)
    out = tmp_path_factory.mktemp("biglib") / "library"
    build_library(src, out, licence="CC0 (test fixture)")
    return out


def test_dataset_copies_library_lesions_with_a_reuse_cap(tmp_path: Path, big_library: Path) -> None:
    manifest = make_inputs(tmp_path / "in", n_scans=2)
    design_path = write_design(
        tmp_path / "d",
        manifest,
        cases_per_scan=2,
        spec={"family": "lung_nodule", "nodule_type": "solid"},
        sample={"n_timepoints": {"integers": [2, 3]}},
        library=str(big_library),
        max_lesion_reuse=1,
        output={"formats": ["nnunet", "monai", "bids"]},
    )
    report = run_dataset(load_design(design_path), design_path.parent, tmp_path / "out", workers=1)
    rows = sorted(report.rows, key=lambda r: r["row"])
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 3, [r["error"] for r in rows]
    ids = [r["library_lesion_id"] for r in ok]
    assert len(set(ids)) == 3 and set(ids) == {e.id for e in Library.open(big_library).entries}
    assert all(r["contains_real_lesion"] is True for r in ok)
    (failed,) = [r for r in rows if r["status"] == "error"]
    assert "used as often as allowed" in failed["error"]
    # the exports carry the flag forward
    out = tmp_path / "out"
    real_cases = sorted(r["case_id"] for r in ok)
    dataset = json.loads(next((out / "nnunet").glob("Dataset*/dataset.json")).read_text())
    assert dataset["cases_with_real_lesion"] == real_cases
    datalist = json.loads((out / "monai" / "datalist.json").read_text())
    assert {d["case_id"] for d in datalist["training"] if d["contains_real_lesion"]} == set(real_cases)
    with (out / "bids" / "participants.tsv").open() as fh:
        flags = {p["participant_id"]: p["contains_real_lesion"] for p in csv.DictReader(fh, delimiter="\t")}
    assert flags == {f"sub-{c}": "true" for c in real_cases}
    sidecar = next((out / "bids").glob("sub-*/ses-t00/anat/*.json"))
    assert json.loads(sidecar.read_text())["ContainsRealLesion"] is True


def test_design_can_forbid_library_lesions(tmp_path: Path) -> None:
    base = {"name": "NoReal", "inputs": {"glob": "*.nii.gz"}, "spec": {"family": "lung_nodule"}}
    with pytest.raises(InvalidInputError, match="allow_library is false"):
        parse_design({**base, "allow_library": False, "library": "lib"})
    with pytest.raises(InvalidInputError, match="allow_library is false"):
        parse_design({**base, "allow_library": False, "spec": {"family": "lung_nodule", "source": "library"}})
    assert parse_design({**base, "allow_library": False}).allow_library is False
