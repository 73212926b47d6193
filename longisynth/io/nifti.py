"""NIfTI reading and deterministic, fast writing.

Reading streams through ISA-L (``isal.igzip``), several times faster than Python's gzip, and reads the
header first: no more than the image the header announces (checked against the limits) is ever
decompressed.
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
import math
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import nibabel as nib
import numpy as np
from isal import igzip, isal_zlib
from numpy.typing import NDArray

from longisynth.errors import InputTooLargeError, InvalidInputError
from longisynth.geometry import Geometry
from longisynth.io.scan import Scan

GZIP_LEVEL = 1  # same as nibabel's default for .nii.gz; ISA-L level 1 is ≈ 3-5x faster than zlib's


NIFTI1_HEADER_BYTES = 348  # sizeof_hdr of NIfTI-1; anything shorter cannot be a NIfTI file
_READ_CHUNK = 1 << 20  # bytes decompressed per read: bounds the decompressor's own buffers


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _parse_header(block: bytes, name: str) -> nib.Nifti1Header:
    """The NIfTI-1 header of the first 348 bytes (nibabel's logged header repairs silenced: our
    error message says what matters in one line)."""
    if len(block) < NIFTI1_HEADER_BYTES:
        raise InvalidInputError(
            f"could not read {name!r} as NIfTI: {len(block)} bytes, shorter than the "
            f"{NIFTI1_HEADER_BYTES}-byte NIfTI-1 header"
        )
    log = logging.getLogger("nibabel.global")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(block[:NIFTI1_HEADER_BYTES]), check=True)
    except (ValueError, nib.spatialimages.HeaderDataError) as exc:
        raise InvalidInputError(f"could not read {name!r} as NIfTI: {_one_line(exc)}") from None
    finally:
        log.setLevel(level)
    if hdr["magic"].item() != b"n+1":
        raise InvalidInputError(f"could not read {name!r} as NIfTI: not a single-file NIfTI-1 image")
    return hdr


def _read_exactly(stream: IO[bytes], n: int, name: str) -> bytearray:
    """Up to ``n`` bytes of ``stream`` — never more, however much the stream could still give."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    try:
        while got < n:
            chunk = stream.read(min(n - got, _READ_CHUNK))
            if not chunk:
                break
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
    except (OSError, EOFError, ValueError, zlib.error, isal_zlib.error) as exc:  # type: ignore[misc]
        raise InvalidInputError(f"could not read {name!r} as NIfTI: {_one_line(exc)}") from None
    finally:
        view.release()
    del buf[got:]
    return buf


def _parse_stream(
    stream: IO[bytes], name: str, max_voxels: int | None, max_bytes: int | None
) -> tuple[NDArray[Any], nib.Nifti1Header]:
    """Header first, limits next, then exactly the voxel bytes the header announces.

    The decompressed size is bounded by the header (``vox_offset`` + voxels × bytes per voxel),
    itself bounded by ``max_voxels`` and ``max_bytes``: a gzip bomb inflates no further than that.
    """
    hdr = _parse_header(bytes(_read_exactly(stream, NIFTI1_HEADER_BYTES, name)), name)
    full = tuple(int(s) for s in hdr.get_data_shape())
    shape = full[:3] if len(full) == 4 and full[3] == 1 else full
    if len(shape) != 3:
        raise InvalidInputError(
            f"{name!r} has {len(shape)} dimensions {shape}; a single 3D volume is required"
        )
    if min(shape) < 2:
        raise InvalidInputError(f"{name!r} has shape {shape}: a 3D volume needs >= 2 voxels per axis")
    n_voxels = math.prod(shape)
    if max_voxels is not None and n_voxels > max_voxels:
        raise InputTooLargeError(f"{name!r} has {n_voxels:,} voxels, more than the limit of {max_voxels:,}")
    dtype = hdr.get_data_dtype()
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise InvalidInputError(f"{name!r} has unsupported voxel type {dtype}")
    offset = max(int(hdr["vox_offset"]), NIFTI1_HEADER_BYTES)
    needed = offset + n_voxels * dtype.itemsize
    if max_bytes is not None and needed > max_bytes:
        raise InputTooLargeError(
            f"{name!r} holds {needed:,} bytes of image, more than the limit of {max_bytes:,}"
        )
    body = _read_exactly(stream, needed - NIFTI1_HEADER_BYTES, name)
    if len(body) + NIFTI1_HEADER_BYTES < needed:
        raise InvalidInputError(
            f"{name!r} is truncated or corrupt: {len(body) + NIFTI1_HEADER_BYTES:,} of {needed:,} bytes"
        )
    start = offset - NIFTI1_HEADER_BYTES
    raw = np.frombuffer(body, dtype=dtype, count=n_voxels, offset=start).reshape(shape, order="F")
    return raw, hdr


def _open(source: IO[bytes]) -> IO[bytes]:
    """``source`` itself, or a streaming gunzip of it (multi-member gzip included)."""
    magic = source.read(2)
    source.seek(0)
    if magic == b"\x1f\x8b":
        return igzip.IGzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    return source


def read_nifti(
    path: Path | str, name: str | None = None, max_voxels: int | None = None, max_bytes: int | None = None
) -> Scan:
    """Read a ``.nii``/``.nii.gz`` file into a :class:`Scan`, in bounded memory.

    Accepts any orientation (the affine is taken from the sform, else the qform); a trailing
    singleton 4th axis is dropped. The header is read and checked against the limits before any
    voxel is decompressed, and no more than the header's image size is ever decompressed.

    Args:
        path: the file.
        name: the name used in messages and kept in :attr:`Scan.name` (and so in a bundle's
            metadata). Default: the file's name in messages, and the neutral ``scan.nii.gz`` (or
            ``scan.nii``) in the scan: file names can be patient names; the sha256 identifies it.
        max_voxels: largest accepted number of voxels (None: no limit).
        max_bytes: largest accepted decompressed image, header + voxels, bytes (None: no limit).

    Raises:
        InputTooLargeError: more than ``max_voxels`` voxels or ``max_bytes`` bytes.
        InvalidInputError: unreadable/corrupt/truncated file, not 3D, non-finite or constant values,
            degenerate affine.
    """
    path = Path(path)
    label = name or path.name  # for messages to the caller only
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
            if f.tell() == 0:
                raise InvalidInputError(f"{label!r} is empty (0 bytes)")
            f.seek(0)
            raw, hdr = _parse_stream(_open(f), label, max_voxels, max_bytes)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {label!r}: {exc.strerror or exc}") from None
    neutral = "scan.nii.gz" if path.name.lower().endswith(".gz") else "scan.nii"
    return _to_scan(raw, hdr, label, digest.hexdigest(), name or neutral)


def scan_from_nifti_bytes(
    data: bytes, name: str, max_voxels: int | None = None, max_bytes: int | None = None
) -> Scan:
    """Parse NIfTI bytes (gzipped or not) into a :class:`Scan` (see :func:`read_nifti`)."""
    if not data:
        raise InvalidInputError(f"{name!r} is empty (0 bytes)")
    raw, hdr = _parse_stream(_open(io.BytesIO(data)), name, max_voxels, max_bytes)
    return _to_scan(raw, hdr, name, hashlib.sha256(data).hexdigest(), name)


def _to_scan(raw: NDArray[Any], hdr: nib.Nifti1Header, name: str, digest: str, kept_name: str) -> Scan:
    try:
        slope, inter = hdr.get_slope_inter()
    except nib.spatialimages.HeaderDataError:
        slope, inter = None, None
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        raise InvalidInputError(f"{name!r} contains NaN or infinite values")
    if raw.min() == raw.max():
        raise InvalidInputError(f"{name!r} is constant (every voxel = {raw.flat[0]}): no anatomy")
    affine = np.asarray(hdr.get_best_affine(), dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InvalidInputError(f"{name!r} has a degenerate voxel-to-world affine")
    units = int(hdr["xyzt_units"]) or 10
    return Scan(raw, Geometry(affine, tuple(raw.shape)), slope, inter, kept_name, digest, units)


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
