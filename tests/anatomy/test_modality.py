"""CT-vs-MR detection and the Hounsfield check on every real volume of ../shared/data.

CT/MR: TotalSegmentator test reference files (Apache-2.0); brain MR: niivue demo images; BraTS
2015 z-scored MR (CC BY-NC-SA 3.0, Menze et al., IEEE TMI 2015). See shared/data/README.md.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from longisynth.anatomy.modality import detect_modality, require_hounsfield
from longisynth.errors import InvalidInputError
from longisynth.phantoms.thorax import make_thorax_phantom
from longisynth.spec import Modality
from tests.conftest import shared_file

CTS = ["totalseg_chest_ct_crop.nii.gz", "totalseg_example_ct.nii.gz", "totalseg_example_ct_sm.nii.gz"]
MRS = [
    "niivue_chris_t1.nii.gz",
    "niivue_t2w.nii.gz",
    "niivue_mr_gd_skullstripped.nii.gz",
    "totalseg_example_mr_sm.nii.gz",
    "brats2015_pat0005/Flair_subtrMeanDivStd.nii.gz",
    "brats2015_pat0006/T1c_subtrMeanDivStd.nii.gz",
]


def _load(name: str) -> np.ndarray:
    return np.asanyarray(nib.load(shared_file(name)).dataobj)


@pytest.mark.parametrize("name", CTS)
def test_real_ct_is_hounsfield(name: str) -> None:
    hu = _load(name)
    assert detect_modality(hu, hu.dtype) == Modality.CT
    require_hounsfield(hu, hu.dtype)


def test_dicom_series_with_intercept_is_hounsfield() -> None:
    folder = shared_file("totalseg_ct_dicom")
    slices = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    raw = np.stack([s.pixel_array for s in slices], axis=-1)
    assert raw.dtype == np.uint16  # stored unsigned, HU = raw − 1024
    hu = raw.astype(np.float32) * float(slices[0].RescaleSlope) + float(slices[0].RescaleIntercept)
    assert detect_modality(hu, raw.dtype) == Modality.CT
    with pytest.raises(InvalidInputError, match="intercept"):
        require_hounsfield(raw, raw.dtype)  # the same series read without its intercept


@pytest.mark.parametrize("name", MRS)
def test_real_mr_is_not_hounsfield(name: str) -> None:
    values = _load(name)
    assert detect_modality(values, values.dtype) == Modality.MR
    with pytest.raises(InvalidInputError, match="not a CT in Hounsfield units"):
        require_hounsfield(values, values.dtype)


def test_windowed_and_normalised_exports_are_rejected() -> None:
    hu = _load("totalseg_chest_ct_crop.nii.gz").astype(np.float64)
    windowed = np.clip((hu + 160.0) / 400.0 * 255.0, 0, 255).astype(np.uint8)
    assert detect_modality(windowed, windowed.dtype) == Modality.MR
    with pytest.raises(InvalidInputError, match="8-bit"):
        require_hounsfield(windowed, windowed.dtype)
    unit = ((hu - hu.min()) / np.ptp(hu)).astype(np.float32)
    with pytest.raises(InvalidInputError, match="normalised"):
        require_hounsfield(unit, unit.dtype)
    z = ((hu - hu.mean()) / hu.std()).astype(np.float32)
    with pytest.raises(InvalidInputError, match="z-scored"):
        require_hounsfield(z, z.dtype)


def test_padding_outside_the_reconstruction_circle_is_accepted() -> None:
    hu = _load("totalseg_example_ct_sm.nii.gz").astype(np.int16)
    i, j = np.ogrid[: hu.shape[0], : hu.shape[1]]
    outside = (i - hu.shape[0] / 2) ** 2 + (j - hu.shape[1] / 2) ** 2 > (0.45 * hu.shape[0]) ** 2
    padded = np.where(outside[:, :, None], np.int16(-3024), hu)
    assert detect_modality(padded, padded.dtype) == Modality.CT
    with pytest.raises(InvalidInputError, match="below"):
        require_hounsfield(padded - 1000, padded.dtype)  # values below any CT padding


def test_phantom_is_hounsfield() -> None:
    hu, _ = make_thorax_phantom((64, 64, 40), (5.6, 5.6, 9.0))
    assert detect_modality(hu, hu.dtype) == Modality.CT
    require_hounsfield(hu, hu.dtype)
