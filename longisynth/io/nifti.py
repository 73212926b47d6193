"""NIfTI reading and deterministic, fast writing.

Reading decompresses with ISA-L (``isal.igzip``), several times faster than Python's gzip.
Writing produces the header and the raw voxel bytes ourselves so that (a) the stored values are
exactly ours — nibabel would otherwise recompute the scaling of integer images — and (b) the
gzip stream is reproducible (mtime 0, no file name), so the same study is the same bytes.
Free-text header fields and extensions are dropped on write: they can hold identifiers.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from isal import igzip, isal_zlib
from numpy.typing import NDArray

from longisynth.errors import InvalidInputError
from longisynth.geometry import Geometry
from longisynth.io.scan import Scan

GZIP_LEVEL = 1  # same as nibabel's default for .nii.gz; ISA-L level 1 is ≈ 3-5x faster than zlib's


def _load_image(data: bytes, name: str) -> nib.Nifti1Image:
    # nibabel logs its header repairs ("sizeof_hdr should be 348...") to stderr; our error message
    # says what matters in one line, so silence that logger while parsing.
    log = logging.getLogger("nibabel.global")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        if data[:2] == b"\x1f\x8b":
            data = igzip.decompress(data)
        return nib.Nifti1Image.from_bytes(data)
    except (
        OSError,
        EOFError,
        ValueError,
        zlib.error,
        nib.filebasedimages.ImageFileError,
        nib.spatialimages.HeaderDataError,
    ) as exc:
        raise InvalidInputError(f"could not read {name!r} as NIfTI: {_one_line(exc)}") from None
    finally:
        log.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_nifti(path: Path | str, name: str | None = None, max_voxels: int | None = None) -> Scan:
    """Read a ``.nii``/``.nii.gz`` file into a :class:`Scan`.

    Accepts any orientation (the affine is taken from the sform, else the qform); a trailing
    singleton 4th axis is dropped.

    Raises:
        InvalidInputError: unreadable/corrupt/truncated file, not 3D, non-finite or constant values,
            degenerate affine, or more than ``max_voxels`` voxels.
    """
    path = Path(path)
    name = name or path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {name!r}: {exc.strerror or exc}") from None
    if not data:
        raise InvalidInputError(f"{name!r} is empty (0 bytes)")
    return scan_from_nifti_bytes(data, name, max_voxels)


def scan_from_nifti_bytes(data: bytes, name: str, max_voxels: int | None = None) -> Scan:
    """Parse NIfTI bytes (gzipped or not) into a :class:`Scan` (see :func:`read_nifti`)."""
    img = _load_image(data, name)
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InvalidInputError(
            f"{name!r} has {len(shape)} dimensions {shape}; a single 3D volume is required"
        )
    if min(shape) < 2:
        raise InvalidInputError(f"{name!r} has shape {shape}: a 3D volume needs >= 2 voxels per axis")
    if max_voxels is not None and int(np.prod(shape)) > max_voxels:
        raise InvalidInputError(
            f"{name!r} has {int(np.prod(shape)):,} voxels, more than the limit of {max_voxels:,}"
        )
    try:
        proxy: Any = img.dataobj
        raw = np.asanyarray(proxy.get_unscaled()).reshape(shape)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise InvalidInputError(f"{name!r} is truncated or corrupt: {_one_line(exc)}") from None
    slope, inter = proxy.slope, proxy.inter
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    if raw.dtype.kind not in "iuf" or raw.dtype.itemsize > 8:
        raise InvalidInputError(f"{name!r} has unsupported voxel type {raw.dtype}")
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise InvalidInputError(f"{name!r} contains NaN or infinite values")
    if raw.min() == raw.max():
        raise InvalidInputError(f"{name!r} is constant (every voxel = {raw.flat[0]}): no anatomy")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InvalidInputError(f"{name!r} has a degenerate voxel-to-world affine")
    if not raw.flags.writeable:
        raw = raw.copy()
    units = int(img.header["xyzt_units"]) or 10
    digest = hashlib.sha256(data).hexdigest()
    return Scan(raw, Geometry(affine, shape), slope, inter, name, digest, units)


def nifti_header_block(
    shape: tuple[int, ...],
    dtype: np.dtype,
    affine: NDArray[np.float64],
    slope: float = 1.0,
    inter: float = 0.0,
    xyzt_units: int = 10,
    intent: str | None = None,
) -> bytes:
    """The 352-byte NIfTI-1 single-file header (+ padding to ``vox_offset``) for our own writes.

    Args:
        shape: array shape (3D, or (X, Y, Z, 1, 3) for vector fields).
        dtype: the stored voxel type.
        affine: voxel→world RAS+ (mm), written to both sform and qform (code 1, scanner).
        slope, inter: intensity scaling recorded in the header (physical = raw·slope + inter).
        xyzt_units: NIfTI units code (10 = mm and seconds).
        intent: optional NIfTI intent ("vector" for displacement fields, "label" for masks).
    """
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_sform(affine, code=1)
    hdr.set_qform(affine, code=1)
    hdr["xyzt_units"] = xyzt_units
    if intent in ("vector", "label"):
        hdr.set_intent(intent)
    if slope != 1.0 or inter != 0.0:
        hdr.set_slope_inter(slope, inter)
    else:
        hdr.set_slope_inter(np.nan, np.nan)
    buf = io.BytesIO()
    hdr.write_to(buf)
    buf.write(b"\x00" * (int(hdr["vox_offset"]) - buf.tell()))
    return buf.getvalue()


def gzip_chunks(chunks: Iterable[bytes]) -> bytes:
    """Gzip a stream of byte chunks (ISA-L level :data:`GZIP_LEVEL`, mtime 0: reproducible)."""
    comp = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    parts = [comp.compress(chunk) for chunk in chunks]
    parts.append(comp.flush())
    return b"".join(parts)


def volume_chunks(raw: NDArray[np.generic], slab: int = 16) -> Iterator[bytes]:
    """Voxel bytes in NIfTI (Fortran) order, one slab of the last axis at a time (bounded memory)."""
    for k in range(0, raw.shape[2], slab):
        yield np.asarray(raw[:, :, k : k + slab]).tobytes(order="F")


def nifti_bytes(
    raw: NDArray[np.generic],
    affine: NDArray[np.float64],
    slope: float = 1.0,
    inter: float = 0.0,
    xyzt_units: int = 10,
    intent: str | None = None,
    compress: bool = True,
) -> bytes:
    """Serialise a 3D array as a single-file NIfTI-1 image, byte-for-byte reproducibly.

    ``raw`` is stored exactly as given (its dtype is the file's dtype); see
    :func:`nifti_header_block` for the other arguments.
    """
    header = nifti_header_block(raw.shape, raw.dtype, affine, slope, inter, xyzt_units, intent)
    if not compress:
        return header + np.asarray(raw).tobytes(order="F")
    return gzip_chunks(itertools.chain([header], volume_chunks(raw)))


def write_nifti(
    path: Path | str, raw: NDArray[np.generic], affine: NDArray[np.float64], **kwargs: object
) -> None:
    """Write :func:`nifti_bytes` to ``path`` (``.nii.gz`` compressed, ``.nii`` not)."""
    path = Path(path)
    data = nifti_bytes(raw, affine, compress=path.name.endswith(".gz"), **kwargs)  # type: ignore[arg-type]
    path.write_bytes(data)
