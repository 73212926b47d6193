"""Read a single-series DICOM folder (CT or MR) into a :class:`Scan` in RAS+ world coordinates."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from longisynth.errors import InvalidInputError
from longisynth.geometry import Geometry
from longisynth.io.scan import Scan

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def read_dicom_series(folder: Path | str, max_voxels: int | None = None) -> Scan:
    """Read every DICOM slice in ``folder`` (one series) into a 3D scan.

    Slices are ordered by their position along the slice normal (not by file name or
    InstanceNumber), the affine is built from ImageOrientationPatient/ImagePositionPatient/
    PixelSpacing and converted from DICOM's LPS to RAS. Array axes: i = column, j = row,
    k = slice. Stored values keep the pixel dtype; RescaleSlope/Intercept become the scan's
    scaling (physical = raw·slope + inter, HU for CT).

    Raises:
        InvalidInputError: no readable DICOM files, several series, missing geometry tags,
            inconsistent slice geometry, uneven slice spacing (gaps) or too many voxels.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    datasets = []
    for p in files:
        try:
            ds = pydicom.dcmread(p, force=False)
        except (InvalidDicomError, OSError, EOFError, ValueError):
            continue
        if "PixelData" in ds:
            datasets.append(ds)
    if not datasets:
        raise InvalidInputError(f"no readable DICOM image files in {folder.name!r}")
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise InvalidInputError(
            f"{folder.name!r} holds {len(series)} DICOM series; give a folder with exactly one"
        )
    if len(datasets) < 2:
        raise InvalidInputError("a DICOM series needs at least 2 slices for a 3D volume")
    try:
        iop = np.array([float(v) for v in datasets[0].ImageOrientationPatient])
        spacing_rc = [float(v) for v in datasets[0].PixelSpacing]
        positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
    except AttributeError as exc:
        raise InvalidInputError(f"DICOM series lacks geometry tags: {exc}") from None
    for ds in datasets:
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], iop, atol=1e-4):
            raise InvalidInputError("DICOM slices have different orientations (not one volume)")
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    order = np.argsort(positions @ normal, kind="stable")
    datasets = [datasets[i] for i in order]
    positions = positions[order]
    steps = np.diff(positions @ normal)
    if np.any(steps <= 1e-4):
        raise InvalidInputError("DICOM series has duplicate slice positions")
    if np.ptp(steps) > 0.01 * np.mean(steps) + 1e-3:
        raise InvalidInputError(
            f"DICOM slice spacing is uneven ({steps.min():.3f}-{steps.max():.3f} mm): missing slices?"
        )
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    shape = (cols, rows, len(datasets))
    if max_voxels is not None and int(np.prod(shape)) > max_voxels:
        raise InvalidInputError(f"DICOM series has {int(np.prod(shape)):,} voxels, over {max_voxels:,}")
    slices = []
    for ds in datasets:
        if int(ds.Rows) != rows or int(ds.Columns) != cols:
            raise InvalidInputError("DICOM slices have different sizes")
        try:
            slices.append(ds.pixel_array.T)
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise InvalidInputError(f"cannot decode DICOM pixel data: {exc}") from None
    raw = np.stack(slices, axis=-1)
    slope = float(datasets[0].get("RescaleSlope", 1.0) or 1.0)
    inter = float(datasets[0].get("RescaleIntercept", 0.0) or 0.0)
    if slope == round(slope) and inter == round(inter) and raw.dtype.kind in "iu":
        # Store integer HU directly (like dicom2nifti): int16 covers -32768..32767 HU.
        hu = raw.astype(np.int32) * int(slope) + int(inter)
        if hu.min() >= -32768 and hu.max() <= 32767:
            raw, slope, inter = hu.astype(np.int16), 1.0, 0.0
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing_rc[1]  # along a row = increasing column index i
    lps[:3, 1] = col_dir * spacing_rc[0]  # along a column = increasing row index j
    lps[:3, 2] = normal * float(np.mean(steps))
    lps[:3, 3] = positions[0]
    affine = np.eye(4)
    affine[:3, :] = _LPS_TO_RAS @ lps[:3, :]
    digest = hashlib.sha256()
    for ds in datasets:
        digest.update(ds.PixelData)
    # a neutral name: folder names can be patient names (the sha256 identifies the series)
    return Scan(raw, Geometry(affine, shape), slope, inter, "dicom_series.nii.gz", digest.hexdigest())
