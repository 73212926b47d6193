"""Readers and writers: every format returns a :class:`~longisynth.io.scan.Scan`."""

from __future__ import annotations

from pathlib import Path

from longisynth.errors import InvalidInputError
from longisynth.io.dicom import read_dicom_series
from longisynth.io.nifti import nifti_bytes, read_nifti, scan_from_nifti_bytes, write_nifti
from longisynth.io.scan import Scan

__all__ = [
    "Scan",
    "nifti_bytes",
    "read_dicom_series",
    "read_nifti",
    "read_scan",
    "scan_from_nifti_bytes",
    "write_nifti",
]


def read_scan(path: Path | str, max_voxels: int | None = None) -> Scan:
    """Read a NIfTI file (``.nii``/``.nii.gz``) or a DICOM series folder."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"input {path.name!r} does not exist")
    if path.is_dir():
        return read_dicom_series(path, max_voxels=max_voxels)
    if path.name.endswith((".nii", ".nii.gz")):
        return read_nifti(path, max_voxels=max_voxels)
    raise InvalidInputError(
        f"unsupported input {path.name!r}: give a .nii/.nii.gz file or a DICOM series folder"
    )
