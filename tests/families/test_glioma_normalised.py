"""Gliomas on skull-stripped, intensity-normalised brains (BraTS 2018 in ../shared/data).

A BraTS brain z-scored over its brain voxels (negative values inside the brain, exactly 0 outside)
or min–max normalised must be accepted, keep its value convention, and keep its zero background
exactly 0 at every timepoint; a magnitude image never gets negative values. To keep the module
fast the brain is cropped to its bounding box and averaged over 2×2×2 blocks (2 mm; the
background stays exactly 0) — one study per convention, shared by the tests (≈ 10 s each).
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

import longisynth
from longisynth.anatomy.mri_intensity import zero_background
from longisynth.cli import main
from longisynth.io.scan import Scan
from longisynth.result import Study
from tests.conftest import shared_file

pytestmark = pytest.mark.refiner  # the whole pipeline, learned refiner included, writes the outputs

CASE = "Brats18_2013_11_1"
PROMPT = "high-grade glioma, 30 mm, 3 timepoints over 1 year"
SEED = 3


def _brats_2mm(contrast: str) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """A BraTS 2018 contrast (raw units), cropped to the T1's brain + 6 voxels and averaged over
    2×2×2 blocks; and its RAS affine (the file's LPS orientation is kept)."""
    img = nib.load(shared_file(f"brats2018/{CASE}/{CASE}_{contrast}.nii.gz"))
    raw = np.asanyarray(img.dataobj).astype(np.float32)
    t1 = np.asanyarray(nib.load(shared_file(f"brats2018/{CASE}/{CASE}_t1.nii.gz")).dataobj)
    sl = ndimage.find_objects((t1 != 0).astype(np.uint8))[0]  # one box for every contrast
    start = [max(s.start - 6, 0) for s in sl]
    stop = [a + (min(s.stop + 6, n) - a) // 2 * 2 for a, s, n in zip(start, sl, raw.shape, strict=True)]
    crop = raw[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
    n = [k // 2 for k in crop.shape]
    down = crop.reshape(n[0], 2, n[1], 2, n[2], 2).mean(axis=(1, 3, 5))
    aff = np.asarray(img.affine, dtype=np.float64).copy()
    aff[:3, 3] += aff[:3, :3] @ (np.asarray(start, dtype=np.float64) + 0.5)
    aff[:3, :3] *= 2.0
    return down.astype(np.float32), aff


def _zscored(values: NDArray[np.float32]) -> NDArray[np.float32]:
    """z-scored over the brain's (non-zero) voxels; the background stays exactly 0."""
    out = np.zeros_like(values)
    fg = values != 0
    out[fg] = (values[fg] - values[fg].mean()) / values[fg].std()
    return out


def _read(zf: zipfile.ZipFile, name: str) -> NDArray[Any]:
    return np.asanyarray(nib.Nifti1Image.from_bytes(gzip.decompress(zf.read(name))).dataobj)


@pytest.fixture(scope="module")
def zscored_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, NDArray[np.float32]], Path]:
    """T1 and T1c (named ``t1ce`` as in BraTS) z-scored, through the command line."""
    folder = tmp_path_factory.mktemp("zscored")
    inputs = {}
    args = []
    for ours, brats in (("t1", "t1"), ("t1c", "t1ce")):
        values, aff = _brats_2mm(brats)
        inputs[ours] = _zscored(values)
        path = folder / f"{brats}.nii.gz"
        nib.save(nib.Nifti1Image(inputs[ours], aff), path)
        args.append(f"{brats}={path}")
    out = folder / "study.zip"
    code = main(
        ["generate", *args, "--prompt", PROMPT, "--seed", str(SEED), "-o", str(out), "-q", "--no-preview"]
    )
    assert code == 0
    return inputs, out


@pytest.fixture(scope="module")
def minmax_study() -> tuple[NDArray[np.float32], Study]:
    """T1 min–max normalised (0…1), through the API."""
    values, aff = _brats_2mm("t1")
    norm = (values / values.max()).astype(np.float32)
    study = longisynth.generate(Scan.from_array(norm, aff), PROMPT, seed=SEED, contrast="t1")
    return norm, study


def test_zscored_brats_is_accepted_and_keeps_its_convention(
    zscored_bundle: tuple[dict[str, NDArray[np.float32]], Path],
) -> None:
    inputs, bundle = zscored_bundle
    with zipfile.ZipFile(bundle) as zf:
        meta = json.loads(zf.read("metadata.json"))
        images = {(t, c): _read(zf, f"timepoint_{t:02d}/{c}.nii.gz") for t in range(3) for c in inputs}
    assert meta["simulation"]["intensity_convention"] == {"t1": "zscore", "t1c": "zscore"}
    assert meta["simulation"]["skull_stripped"] is True
    assert all(c["passed"] for c in meta["checks"] if c["hard"])
    for (_, c), out in images.items():
        brain = inputs[c] != 0
        assert out.dtype == np.float32
        # Still z-scores of the brain: the tumour changes the statistics a little, not the units.
        assert abs(float(out[brain].mean())) < 0.05
        assert abs(float(out[brain].std()) - 1.0) < 0.05
        assert float(out[brain].min()) < -1.0


def test_zscored_background_stays_exactly_zero(
    zscored_bundle: tuple[dict[str, NDArray[np.float32]], Path],
) -> None:
    inputs, bundle = zscored_bundle
    with zipfile.ZipFile(bundle) as zf:
        for t in range(3):
            lesion = _read(zf, f"timepoint_{t:02d}/mask.nii.gz") > 0
            for c, values in inputs.items():
                out = _read(zf, f"timepoint_{t:02d}/{c}.nii.gz")
                assert int(np.count_nonzero(out[(values == 0) & ~lesion])) == 0
                assert not np.any(lesion & (values == 0))  # the tumour stays inside the brain


def test_minmax_brats_keeps_convention_sign_and_background(
    minmax_study: tuple[NDArray[np.float32], Study],
) -> None:
    norm, study = minmax_study
    assert study.extra["intensity_convention"] == {"t1": "minmax"}
    assert study.extra["skull_stripped"] is True
    background = zero_background(norm)
    brain = norm != 0
    for i in range(len(study.timepoints)):
        out = study.image(i)
        assert float(out.min()) >= 0.0  # a magnitude image gets no negative value
        assert int(np.count_nonzero(out[background])) == 0
        assert abs(float(out[brain].mean()) - float(norm[brain].mean())) < 0.01
        assert abs(float(out[brain].std()) / float(norm[brain].std()) - 1.0) < 0.05


def test_not_a_brain_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A z-scored 'abdomen' (soft tissue and two gas pockets, 0 outside): exit 2, one line, no traceback."""
    rng = np.random.default_rng(0)
    g = np.mgrid[:90, :70, :60].astype(np.float32)
    body = ((g[0] - 45) / 40) ** 2 + ((g[1] - 35) / 28) ** 2 < 1
    gas = body & (((np.abs(g[0] - 45) - 15) / 10) ** 2 + ((g[1] - 35) / 8) ** 2 + ((g[2] - 30) / 20) ** 2 < 1)
    values = np.where(body, 200 + 20 * rng.standard_normal(body.shape), 0).astype(np.float32)
    values[gas] = 5.0
    path = tmp_path / "abdomen.nii.gz"
    nib.save(nib.Nifti1Image(_zscored(values), np.diag([4.0, 4.0, 4.0, 1.0])), path)
    code = main(["generate", str(path), "--prompt", "glioblastoma", "-o", str(tmp_path / "x.zip"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no brain found" in err and "Traceback" not in err
    assert not (tmp_path / "x.zip").exists()
