"""The one bundle writer (the format itself is :mod:`longisynth.bundle.format`).

Images are streamed slab by slab (the crop pasted on the fly), gzip-compressed with ISA-L in a
small thread pool (ISA-L releases the GIL) and stored uncompressed in the zip (they are already
gzip). Zip entries carry a fixed timestamp, so the same study gives the same images, byte for byte.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from longisynth import __version__
from longisynth.bundle.format import (
    DISPLACEMENT,
    MASK,
    METADATA,
    PREVIEW,
    BundleMetadata,
    CheckInfo,
    CropBox,
    InputFile,
    InputInfo,
    TimepointInfo,
    label_descriptions,
    member_name,
)
from longisynth.geometry import Box
from longisynth.io.nifti import gzip_chunks, nifti_header_block
from longisynth.result import Study

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SLAB = 16


def _pasted_chunks(base: NDArray[Any], crop: NDArray[Any], box: Box) -> Iterator[bytes]:
    """Fortran-order bytes of ``base`` with ``crop`` pasted at ``box``, one k-slab at a time."""
    k0, k1 = box.start[2], box.stop[2]
    for k in range(0, base.shape[2], SLAB):
        slab = base[:, :, k : k + SLAB]
        lo, hi = max(k, k0), min(k + SLAB, k1)
        if lo < hi:
            slab = slab.copy()
            slab[box.slices[0], box.slices[1], lo - k : hi - k] = crop[:, :, lo - k0 : hi - k0]
        yield np.asarray(slab).tobytes(order="F")


def _entries(
    study: Study, displacement: bool, compact: bool = False
) -> list[tuple[str, Callable[[], bytes]]]:
    geometry = study.geometry
    affine = geometry.affine
    jobs: list[tuple[str, Callable[[], bytes]]] = []
    zeros_u8 = np.zeros(geometry.shape, dtype=np.uint8)
    for tp in study.timepoints:
        for name, scan in study.scans.items():
            header = nifti_header_block(
                geometry.shape, scan.raw.dtype, affine, scan.slope, scan.inter, scan.xyzt_units
            )
            jobs.append((member_name(tp.index, name), _job(header, scan.raw, tp.crops[name], study.box)))
        header = nifti_header_block(geometry.shape, np.dtype(np.uint8), affine, intent="label")
        jobs.append((member_name(tp.index, MASK), _job(header, zeros_u8, tp.mask, study.box)))
        if displacement:
            shape5 = (*geometry.shape, 1, 3)
            disp = tp.displacement_mm
            if compact:
                slope = compact_displacement_step_mm(disp)
                header = nifti_header_block(shape5, np.dtype(np.int16), affine, slope=slope, intent="vector")
                quantised = np.rint(disp / slope).astype(np.int16)
                jobs.append((member_name(tp.index, DISPLACEMENT), _vector_job(header, quantised, study)))
            else:
                header = nifti_header_block(shape5, np.dtype(np.float32), affine, intent="vector")
                jobs.append((member_name(tp.index, DISPLACEMENT), _vector_job(header, disp, study)))
    return jobs


COMPACT_STEP_MM = 0.001  # int16 displacement step: 1 µm, ±32.767 mm


def compact_displacement_step_mm(disp: NDArray[np.floating]) -> float:
    """The step (mm) of a compact displacement field: 1 µm, or coarser when the largest
    displacement exceeds what int16 holds at 1 µm (|d| > 32.767 mm)."""
    peak = float(np.abs(disp).max()) if disp.size else 0.0
    return max(COMPACT_STEP_MM, peak / 32767.0)


def _job(header: bytes, base: NDArray[Any], crop: NDArray[Any], box: Box) -> Callable[[], bytes]:
    return lambda: gzip_chunks(itertools.chain([header], _pasted_chunks(base, crop, box)))


def _vector_job(header: bytes, disp: NDArray[Any], study: Study) -> Callable[[], bytes]:
    def run() -> bytes:
        zeros = np.zeros(study.geometry.shape, dtype=disp.dtype)
        chunks = itertools.chain.from_iterable(_pasted_chunks(zeros, disp[c], study.box) for c in range(3))
        return gzip_chunks(itertools.chain([header], chunks))

    return run


def software_versions() -> dict[str, str]:
    out = {"longisynth": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "nibabel", "pydantic", "SimpleITK", "isal"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def build_metadata(study: Study, files: dict[int, list[str]], timings_s: dict[str, float]) -> BundleMetadata:
    """``metadata.json`` of ``study`` (see :class:`BundleMetadata`). No paths, no patient identifiers."""
    assert study.spec.family is not None and study.spec.seed is not None
    g = study.geometry
    return BundleMetadata(
        prompt=study.prompt,
        spec=study.spec.model_dump(mode="json"),
        seed=study.spec.seed,
        input=InputInfo(
            files=[
                InputFile(
                    contrast=name,
                    name=scan.name,
                    shape=list(g.shape),
                    spacing_mm=[round(s, 6) for s in g.spacing_mm],
                    orientation="".join(nib.aff2axcodes(g.affine)),
                    dtype=str(scan.raw.dtype),
                    sha256=scan.sha256,
                )
                for name, scan in study.scans.items()
            ]
        ),
        labels=label_descriptions(study.spec.family),
        timepoints=[
            TimepointInfo(
                index=tp.index,
                days=tp.days,
                files=files.get(tp.index, []),
                lesion_volume_mm3=tp.lesion_volume_mm3,
                simulated_volume_mm3=tp.simulated_volume_mm3,
                longest_diameter_mm=tp.longest_diameter_mm,
                centroid_mm=list(tp.centroid_mm),
                clinical_diameter_mm=tp.clinical_diameter_mm,
            )
            for tp in study.timepoints
        ],
        checks=[CheckInfo(**c.to_dict()) for c in study.checks],
        unparsed_words=study.unparsed_words,
        notes=study.notes,
        crop_box=CropBox(start=list(study.box.start), stop=list(study.box.stop)),
        simulation=study.extra,
        contains_real_lesion="source_lesion" in study.extra,
        software={**software_versions(), "refiner_model": None},
        timings_s=timings_s,
    )


def write_bundle(
    study: Study,
    path: Path | str,
    *,
    displacement: bool = True,
    preview: bool = True,
    threads: int = 2,
    timings_s: dict[str, float] | None = None,
    record_timings: bool = True,
    compact: bool = False,
) -> Path:
    """Write the study as a zip at ``path`` (atomically: a temp file renamed on success).

    Args:
        displacement: include ``timepoint_NN/displacement.nii.gz`` (float32, mm, 3 components).
        preview: include ``preview.png``.
        threads: gzip workers (ISA-L releases the GIL, so 2 threads use 2 cores).
        timings_s: extra stage timings to record (e.g. reading the input).
        record_timings: write wall times (s) into ``metadata.json``; False leaves ``timings_s``
            empty, so the whole zip is byte-identical across runs (dataset generation).
        compact: store displacement fields as int16 with a NIfTI scale (1 µm steps; readers see
            float mm as before) instead of float32: smaller bundles for sharing, at most 0.5 µm
            off. Images and masks are never reduced.
    """
    path = Path(path)
    t0 = time.perf_counter()
    jobs = _entries(study, displacement, compact)
    files: dict[int, list[str]] = {}
    for name, _ in jobs:
        files.setdefault(int(name.split("/")[0].split("_")[1]), []).append(name.split("/")[1])
    fd, tmp = tempfile.mkstemp(prefix=".longisynth-", suffix=".zip.part", dir=path.parent or Path("."))
    os.close(fd)
    try:
        with (
            zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf,
            ThreadPoolExecutor(max_workers=max(1, threads)) as pool,
        ):
            # Bounded look-ahead: at most `threads` compressed files are held in memory.
            pending = []
            for name, job in jobs:
                pending.append((name, pool.submit(job)))
                if len(pending) > threads:
                    n, fut = pending.pop(0)
                    _add(zf, n, fut.result())
            for n, fut in pending:
                _add(zf, n, fut.result())
            t_images = time.perf_counter() - t0
            if preview:
                from longisynth.bundle.preview import render_preview

                _add(zf, PREVIEW, render_preview(study))
            timings = (
                {
                    **study.timings_s,
                    **(timings_s or {}),
                    "write_images": round(t_images, 4),
                    "write_total": round(time.perf_counter() - t0, 4),
                }
                if record_timings
                else {}
            )
            meta = build_metadata(study, files, timings)
            _add(zf, METADATA, json.dumps(meta.model_dump(mode="json"), indent=2).encode())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the bundle the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
