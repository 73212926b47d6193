"""Decompression bombs for the tests, written streaming: gigabytes inflated, megabytes on disk."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from longisynth.io.nifti import nifti_header_block

GIB = 1 << 30
_MEMBER_BYTES = 64 << 20  # zeros per gzip member


def _gzip_member(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def write_gzip_bomb(path: Path, shape: tuple[int, int, int], inflated_bytes: int = 10 * GIB) -> Path:
    """A ``.nii.gz`` whose NIfTI header announces an int16 ``shape`` and whose gzip stream inflates to
    ``inflated_bytes`` (a valid multi-member gzip: one member holds the header, then identical
    members of 64 MiB of zeros each, ≈ 64 KiB compressed)."""
    header = nifti_header_block(shape, np.dtype(np.int16), np.eye(4))
    zeros = _gzip_member(bytes(_MEMBER_BYTES))
    with path.open("wb") as f:
        f.write(_gzip_member(header))
        for _ in range(max(1, (inflated_bytes - len(header)) // _MEMBER_BYTES)):
            f.write(zeros)
    return path


def write_zip_bomb(path: Path, inflated_bytes: int = GIB, entries: int = 1) -> Path:
    """A ``.zip`` of ``entries`` DICOM-named entries of zeros, ``inflated_bytes`` in all when
    extracted; deflate of zeros is ≈ 1000:1, so 1 GiB is ≈ 1 MiB on disk."""
    per_entry = inflated_bytes // entries
    chunk = bytes(min(per_entry, 16 << 20))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(entries):
            with zf.open(f"series/{i:06d}.dcm", "w", force_zip64=True) as out:
                left = per_entry
                while left > 0:
                    out.write(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
    return path
