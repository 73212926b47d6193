"""The DICOM and BIDS exports checked by the real tools, on a tiny lung CT dataset (thorax phantom)
and a glioma MRI dataset with all four contrasts (brain phantom):

* dicom3tools ``dciodvfy`` on every CT/MR slice and every SEG: 0 errors, 0 warnings;
  ``dcentvfy`` over each case's studies: nothing to report;
* dcmtk ``dcmdump`` parses every SEG and a slice of every series; highdicom reads the SEGs back;
* the official BIDS validator (``bids-validator-deno``, in the ``test`` extra): 0 errors for MRI,
  only ``NOT_INCLUDED`` on the CT files (CT is not in BIDS 1.9/1.10), and only the warnings that
  longisynth cannot answer truthfully (see ``longisynth/dataset/exports/bids.py``).

Each check skips, naming how to install its tool, where that tool is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest

from longisynth.dataset.design import load_design
from longisynth.dataset.runner import run_dataset
from tests.dataset.conftest import glioma_mri_dataset, make_inputs, write_design

pytestmark = pytest.mark.xdist_group("dataset_validators")  # one worker builds the module fixtures

DEBIAN_TOOLS = "apt-get install dicom3tools dcmtk"
BIDS_VALIDATOR = "pip install bids-validator-deno==3.0.2, in the test extra"
FORMATS = ["bids", "dicom"]
LABELS: dict[str, object] = {"authors": ["Ada Example", "Ben Example"], "license": "CC-BY-4.0"}  # BIDS
MRI = ("t1", "t1c", "t2", "flair")

# BIDS warnings left on purpose: MRI acquisition parameters of a synthetic image are not known
# (none is invented), no HED tags are used, the healthy source scans have no dataset URL, and a
# lookup table (dseg.tsv) has no spatial reference.
ACQUISITION_KEYS = {
    "CoilCombinationMethod", "DeviceSerialNumber", "DwellTime", "EchoTime", "FlipAngle",
    "InstitutionAddress", "InstitutionName", "InstitutionalDepartmentName", "MRAcquisitionType",
    "MagneticFieldStrength", "Manufacturer", "ManufacturersModelName", "MatrixCoilMode",
    "NonlinearGradientCorrection", "PulseSequenceDetails", "PulseSequenceType",
    "ReceiveCoilActiveElements", "ReceiveCoilName", "ScanningSequence", "SequenceName",
    "SequenceVariant", "SoftwareVersions", "StationName",
}  # fmt: skip
RAW_WARNINGS = {("JSON_KEY_RECOMMENDED", "HEDVersion"), ("JSON_KEY_RECOMMENDED", "SourceDatasets")}
DERIVATIVE_WARNINGS = {("SIDECAR_KEY_RECOMMENDED", "SpatialReference", "/dseg.tsv")}


def _tool(name: str, install: str) -> str:
    """Path of executable ``name`` (on PATH or beside this Python), else skip saying how to get it."""
    beside = Path(sys.executable).parent / name
    found = shutil.which(name) or (str(beside) if beside.exists() else None)
    if found is None:
        pytest.skip(f"{name} is not installed ({install})")
    return found


@pytest.fixture(scope="module")
def dicom_tools() -> dict[str, str]:
    return {name: _tool(name, DEBIAN_TOOLS) for name in ("dciodvfy", "dcentvfy", "dcmdump")}


@pytest.fixture(scope="module")
def bids_validator() -> str:
    return _tool("bids-validator-deno", BIDS_VALIDATOR)


@pytest.fixture(scope="module")
def lung(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CT case (thorax phantom, 2-3 timepoints, part-solid so both labels occur)."""
    root = tmp_path_factory.mktemp("validators_lung")
    manifest = make_inputs(root / "in", n_scans=1)
    design_path = write_design(
        root / "d",
        manifest,
        cases_per_scan=1,
        sample={
            "nodule_type": {"choice": ["part_solid"]},
            "diameter_mm": {"uniform": [11, 14]},
            "location.lung_lobe": "any",
            "n_timepoints": {"integers": [2, 3]},
        },
        output={"formats": FORMATS, **LABELS},
    )
    report = run_dataset(load_design(design_path), design_path.parent, root / "out")
    assert report.n_ok == 1, report.summary
    return root / "out"


@pytest.fixture(scope="module")
def glioma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MRI case with T1, T1c, T2 and FLAIR (brain phantom, 2 timepoints)."""
    root = tmp_path_factory.mktemp("validators_glioma")
    return glioma_mri_dataset(root, MRI, FORMATS, **LABELS)


@pytest.fixture(params=["lung", "glioma"])
def export(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path]]:
    yield request.param, request.getfixturevalue(request.param)


def _problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("Error", "Warning"))]


def test_every_dicom_slice_and_seg_passes_dciodvfy(
    dicom_tools: dict[str, str], export: tuple[str, Path]
) -> None:
    family, out = export
    files = sorted((out / "dicom").rglob("*.dcm"))

    def check(path: Path) -> tuple[str, list[str]]:
        run = subprocess.run(
            [dicom_tools["dciodvfy"], str(path)], capture_output=True, text=True, check=False
        )
        text = run.stdout + run.stderr
        return text.splitlines()[0] if text else "", _problems(text)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(files, pool.map(check, files), strict=True))
    bad = {str(p.relative_to(out)): problems for p, (_, problems) in results.items() if problems}
    assert not bad, f"{len(bad)} of {len(files)} files: {dict(list(bad.items())[:3])}"
    iods = {p.parent.name if p.name != "seg.dcm" else "seg": iod for p, (iod, _) in results.items()}
    series = ("ct",) if family == "lung" else MRI
    assert iods == {
        **dict.fromkeys(series, "CTImage" if family == "lung" else "MRImage"),
        "seg": "Segmentation",
    }
    for case in (out / "dicom").iterdir():  # the studies (one per timepoint) of one patient agree
        run = subprocess.run(
            [dicom_tools["dcentvfy"], *map(str, sorted(case.rglob("*.dcm")))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert not _problems(run.stdout + run.stderr), run.stdout + run.stderr


def test_dicom_reads_back_with_dcmtk_and_highdicom(
    dicom_tools: dict[str, str], export: tuple[str, Path]
) -> None:
    import highdicom as hd

    family, out = export
    for tp_dir in sorted((out / "dicom").glob("*/tp*")):
        series = {d.name: sorted(d.glob("*.dcm")) for d in sorted(tp_dir.iterdir()) if d.is_dir()}
        for path in [tp_dir / "seg.dcm", *(files[len(files) // 2] for files in series.values())]:
            run = subprocess.run(
                [dicom_tools["dcmdump"], str(path)], capture_output=True, text=True, check=False
            )
            assert run.returncode == 0 and not run.stderr, f"{path}: {run.stderr}"
        seg = hd.seg.segread(tp_dir / "seg.dcm")
        first = pydicom.dcmread(series["ct" if family == "lung" else "t1"][0])
        assert seg.get_source_image_uids()[0][1] == first.SeriesInstanceUID
        assert seg.PatientID == first.PatientID and seg.StudyInstanceUID == first.StudyInstanceUID
        for contrast, files in series.items():
            ds = pydicom.dcmread(files[0], stop_before_pixels=True)
            assert ds.BodyPartExamined == ("CHEST" if family == "lung" else "BRAIN")
            assert "PatientPosition" in ds and ds.ImageType[2] == ("AXIAL" if family == "lung" else "OTHER")
            assert ("ContrastBolusAgent" in ds) == (contrast == "t1c")
            assert ("RescaleSlope" in ds) == (contrast == "ct")  # integer MR: stored as is


def _bids_issues(validator: str, root: Path) -> dict[str, list[dict[str, Any]]]:
    """Issues of the raw dataset and of its derivative (``-r``), by dataset."""
    run = subprocess.run(
        [validator, "--format", "json", "-r", str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bids-validator gave no JSON (exit {run.returncode}): {run.stderr[-2000:]}")
    issues = {"raw": report["issues"]["issues"]}
    for name, summary in report.get("derivativesSummary", {}).items():
        issues[name.strip("/")] = summary["issues"]["issues"]
    return issues


def test_bids_validator_reports_only_ct_as_not_included(
    bids_validator: str, export: tuple[str, Path]
) -> None:
    family, out = export
    issues = _bids_issues(bids_validator, out / "bids")
    assert set(issues) == {"raw", "derivatives/longisynth"}
    errors = [
        (i["code"], i.get("location", ""))
        for found in issues.values()
        for i in found
        if i["severity"] == "error"
    ]
    if family == "glioma":
        assert errors == []
    else:  # every CT image and sidecar, nothing else
        n_tp = len(list((out / "bids" / "sub-case00000").glob("ses-*")))
        assert {code for code, _ in errors} == {"NOT_INCLUDED"} and len(errors) == 2 * n_tp
        assert all(loc.endswith(("_ct.nii.gz", "_ct.json")) for _, loc in errors), errors
    raw = {
        (i["code"], i.get("subCode"))
        for i in issues["raw"]
        if i["severity"] == "warning"
        and not (i["code"] == "SIDECAR_KEY_RECOMMENDED" and i.get("subCode") in ACQUISITION_KEYS)
    }
    assert raw <= RAW_WARNINGS, raw - RAW_WARNINGS
    derivative = {
        (i["code"], i.get("subCode"), i.get("location"))
        for i in issues["derivatives/longisynth"]
        if i["severity"] == "warning"
    }
    assert derivative <= DERIVATIVE_WARNINGS, derivative - DERIVATIVE_WARNINGS
