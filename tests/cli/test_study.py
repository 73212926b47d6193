"""The CLI: the demo writes a real bundle; bad input exits 2 with one line and leaves no file."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

from longisynth.cli import main
from tests.conftest import shared_file


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "longisynth.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_demo_writes_bundle_and_inspect_summarises_it(tmp_path: Path) -> None:
    out = tmp_path / "demo.zip"
    res = run_cli("demo", "-o", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    assert {"metadata.json", "preview.png", "timepoint_00/ct.nii.gz", "timepoint_03/mask.nii.gz"} <= names
    res = run_cli("inspect", str(out))
    assert res.returncode == 0
    assert "jacobian_determinant_min" in res.stdout and "lobulated" not in res.stderr
    assert res.stdout.count("\n") > 10


def test_bad_prompt_exits_2_with_one_line_and_no_output(tmp_path: Path) -> None:
    out = tmp_path / "x.zip"
    res = run_cli("demo", "--prompt", "purple banana nodule", "-o", str(out), "--quiet")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "purple" in res.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_corrupt_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert main(["generate", str(bad), "--prompt", "solid nodule", "-o", str(tmp_path / "o.zip"), "-q"]) == 2
    assert not (tmp_path / "o.zip").exists()


def test_generate_on_real_ct_with_spec_file(tmp_path: Path) -> None:
    ct = shared_file("totalseg_chest_ct_crop.nii.gz")
    spec = tmp_path / "spec.json"
    spec.write_text('{"diameter_mm": 9, "nodule_type": "ground_glass", "n_timepoints": 3}')
    out = tmp_path / "s.zip"
    rc = main(
        [
            "generate",
            str(ct),
            "--prompt",
            "nodule in the left lung",
            "--spec",
            str(spec),
            "--seed",
            "9",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert rc == 0
    with zipfile.ZipFile(out) as zf:
        img = nib.Nifti1Image.from_bytes(__import__("gzip").decompress(zf.read("timepoint_02/mask.nii.gz")))
    mask = np.asarray(img.dataobj)
    assert set(np.unique(mask)) == {0, 2}  # pure ground-glass
    assert np.allclose(img.affine, nib.load(ct).affine)


def test_missing_output_folder_and_unknown_file(tmp_path: Path) -> None:
    assert main(["demo", "-o", str(tmp_path / "nope" / "x.zip"), "-q"]) == 2
    assert main(["generate", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "x.zip"), "-q"]) == 2


def test_out_of_bounds_growth_rate_exits_2_with_one_line(tmp_path: Path) -> None:
    """Issue 16: `doubling_time_days 5` was an internal error (exit 1)."""
    spec = tmp_path / "spec.json"
    spec.write_text('{"growth": {"doubling_time_days": 5}}')
    out = tmp_path / "x.zip"
    res = run_cli("demo", "--spec", str(spec), "-o", str(out), "--quiet")
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0 and "growth.doubling_time_days" in res.stderr
    assert not out.exists()
