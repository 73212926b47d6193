"""Reading and writing scans: every real volume round-trips exactly; bad files give clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from longisynth.errors import InvalidInputError
from longisynth.io import nifti_bytes, read_dicom_series, read_scan
from tests.conftest import shared_file

REAL_VOLUMES = [
    "totalseg_chest_ct_crop.nii.gz",
    "totalseg_example_ct.nii.gz",
    "totalseg_example_ct_sm.nii.gz",
    "totalseg_example_mr_sm.nii.gz",
    "totalseg_example_seg.nii.gz",
    "totalseg_example_seg_dicom.nii.gz",
    "niivue_chris_t1.nii.gz",
    "niivue_t2w.nii.gz",
    "niivue_mr_gd_skullstripped.nii.gz",
    "brats2015_pat0005/Flair_subtrMeanDivStd.nii.gz",
]


@pytest.mark.parametrize("name", REAL_VOLUMES)
def test_real_volume_round_trips_exactly(name: str, tmp_path: Path) -> None:
    path = shared_file(name)
    ref = nib.load(path)
    scan = read_scan(path)
    assert scan.geometry.shape == ref.shape[:3]
    assert np.allclose(scan.geometry.affine, ref.affine)
    assert scan.raw.dtype == ref.get_data_dtype()
    out = tmp_path / "x.nii.gz"
    out.write_bytes(nifti_bytes(scan.raw, scan.geometry.affine, scan.slope, scan.inter))
    back = nib.load(out)
    assert back.get_data_dtype() == ref.get_data_dtype()
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(ref.affine)
    assert np.allclose(back.affine, ref.affine)
    assert np.array_equal(back.get_fdata(), ref.get_fdata())


def test_nifti_bytes_are_deterministic() -> None:
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    aff = np.diag([-0.7, -0.7, 1.25, 1.0])
    assert nifti_bytes(arr, aff) == nifti_bytes(arr.copy(), aff.copy())
    assert gzip.decompress(nifti_bytes(arr, aff))[:4] == (348).to_bytes(4, "little")


def test_dicom_series_matches_reference_nifti() -> None:
    folder = shared_file("totalseg_ct_dicom")
    seg_path = shared_file("totalseg_example_seg_dicom.nii.gz")
    scan = read_dicom_series(folder)
    assert scan.geometry.shape == (512, 512, 20)
    assert scan.raw.dtype == np.int16 and scan.raw.min() >= -1024
    ours = nib.as_closest_canonical(nib.Nifti1Image(scan.raw, scan.geometry.affine))
    ref = nib.as_closest_canonical(nib.load(seg_path))
    assert np.allclose(ours.affine, ref.affine, atol=1e-3)
    seg = np.asarray(ref.dataobj)
    hu = np.asarray(ours.dataobj)
    liver = seg == 5  # TotalSegmentator: 5 = liver
    assert liver.sum() > 1000
    # Liver in a contrast CT is ≈ 50–150 HU: the label map lands on liver only if our geometry is right.
    assert 40 < float(np.median(hu[liver])) < 160
    assert float(np.median(hu[seg == 0])) < -500  # mostly air around the body


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (lambda t: _write(t, "empty.nii.gz", b""), "empty"),
        (lambda t: _write(t, "junk.nii.gz", b"\x1f\x8b" + b"not really gzip" * 10), "could not read"),
        (lambda t: _write(t, "junk.nii", b"x" * 400), "could not read"),
        (lambda t: t / "missing.nii.gz", "does not exist"),
        (lambda t: _write(t, "scan.mha", b"whatever"), "unsupported input"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, maker, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        read_scan(maker(tmp_path))


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(-1000, 1000, (40, 40, 40)).astype(np.int16)
    data = nifti_bytes(arr, np.eye(4))
    p = _write(tmp_path, "cut.nii.gz", data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=r"cut\.nii\.gz"):
        read_scan(p)


@pytest.mark.parametrize(
    ("shape", "message"),
    [((30, 30), "dimensions"), ((10, 10, 10, 3), "dimensions"), ((10, 10, 1), "2 voxels")],
)
def test_wrong_dimensionality(tmp_path: Path, shape: tuple[int, ...], message: str) -> None:
    arr = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    p = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.eye(4)), p)
    with pytest.raises(InvalidInputError, match=message):
        read_scan(p)


def test_singleton_fourth_axis_is_accepted(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).normal(size=(8, 9, 10, 1)).astype(np.float32)
    p = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.eye(4)), p)
    assert read_scan(p).geometry.shape == (8, 9, 10)


def test_nan_constant_and_huge_inputs(tmp_path: Path) -> None:
    arr = np.zeros((10, 10, 10), dtype=np.float32)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "const.nii.gz")
    with pytest.raises(InvalidInputError, match="constant"):
        read_scan(tmp_path / "const.nii.gz")
    arr[0, 0, 0] = np.nan
    arr[1, 1, 1] = 5
    nib.save(nib.Nifti1Image(arr, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InvalidInputError, match="NaN"):
        read_scan(tmp_path / "nan.nii.gz")
    big = np.random.default_rng(0).normal(size=(20, 20, 20)).astype(np.float32)
    nib.save(nib.Nifti1Image(big, np.eye(4)), tmp_path / "big.nii.gz")
    with pytest.raises(InvalidInputError, match="limit"):
        read_scan(tmp_path / "big.nii.gz", max_voxels=1000)


def test_gzip_bomb_inflates_no_further_than_the_header_says(tmp_path: Path) -> None:
    """Issue 16: a 10 GiB gzip behind a small header is read up to the header's image size only."""
    import resource
    import time

    from longisynth.errors import InputTooLargeError
    from longisynth.io.nifti import read_nifti
    from tests.bombs import GIB, write_gzip_bomb

    bomb = write_gzip_bomb(tmp_path / "bomb.nii.gz", (64, 64, 64), 10 * GIB)
    assert bomb.stat().st_size < 20 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(InvalidInputError, match="constant"):  # zeros: read, then refused
        read_nifti(bomb, max_voxels=1 << 20, max_bytes=8 << 20)
    assert time.perf_counter() - t0 < 5  # 512 KiB decompressed, not 10 GiB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB
    big = write_gzip_bomb(tmp_path / "big.nii.gz", (2048, 2048, 1280), 10 * GIB)
    with pytest.raises(InputTooLargeError, match="voxels"):
        read_nifti(big, max_voxels=1 << 24)
    with pytest.raises(InputTooLargeError, match="bytes"):
        read_nifti(big, max_bytes=1 << 30)


@pytest.mark.parametrize("size", [1, 100, 347])
def test_files_shorter_than_a_header_are_invalid(tmp_path: Path, size: int) -> None:
    arr = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    data = nifti_bytes(arr, np.eye(4), compress=False)[:size]
    for name, payload in (("short.nii", data), ("short.nii.gz", gzip.compress(data))):
        with pytest.raises(InvalidInputError, match="348"):
            read_scan(_write(tmp_path, name, payload))


def test_file_and_folder_names_are_not_kept(tmp_path: Path) -> None:
    """Issue 16: names like DOE_JOHN are patient data; the scan (and so metadata.json) keeps a
    neutral name, the sha256 identifies the input. Error messages still name the user's file."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    from longisynth.io.nifti import read_nifti

    arr = np.random.default_rng(0).integers(-1000, 1000, (8, 8, 4)).astype(np.int16)
    path = _write(tmp_path, "DOE_JOHN.nii.gz", nifti_bytes(arr, np.eye(4)))
    assert read_scan(path).name == "scan.nii.gz"
    assert read_nifti(path, name="opt-in.nii.gz").name == "opt-in.nii.gz"
    with pytest.raises(InvalidInputError, match="DOE_JANE"):
        read_scan(_write(tmp_path, "DOE_JANE.nii", b"x" * 10))
    folder = tmp_path / "DOE_JOHN"
    folder.mkdir()
    series = generate_uid()
    for k in range(arr.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID = "CT", series
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, float(k)], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.Rows, ds.Columns = [1.0, 1.0], 8, 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = arr[:, :, k].tobytes()
        ds.save_as(folder / f"{k}.dcm", enforce_file_format=True)
    scan = read_dicom_series(folder)
    assert scan.geometry.shape == (8, 8, 4) and scan.name == "dicom_series.nii.gz"
