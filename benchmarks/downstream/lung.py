"""Lung-nodule samples for the downstream benchmark: real LIDC-IDRI crops and synthetic nodules.

Both go through one function, :func:`nodule_sample`, so that the network cannot tell them apart by
how they were cut: the shared LIDC-IDRI crops hold **only the nodule's own slices** (± 1) and about
30 mm in-plane, so a synthetic nodule is cut the same way — its slices ± 1 along the scan's slice
axis, everything else padded as air — then both are resampled onto one patch of
:data:`PATCH` voxels at :data:`SPACING_MM` (RAS+ axes, centred on the nodule's centroid), HU clipped
to −1000…400 and scaled to 0…1. Labels: 1 nodule (reader max-voting mask / our mask > 0).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.geometry import Geometry

from .common import Sample

PATCH = (32, 32, 16)
SPACING_MM = (0.8, 0.8, 2.0)  # LIDC-IDRI crops: 0.5–0.9 mm in-plane, 1–2.5 mm slices
HU_WINDOW = (-1000.0, 400.0)
AIR_HU = -1000.0
EXTRA_SLICES = 1  # the crops keep about one slice beyond the nodule on either side
# LIDC-IDRI texture score (1 ground-glass … 5 solid) → our nodule type, for per-type Dice
TEXTURE_TYPE = {"1": "ground-glass", "2": "ground-glass", "3": "part-solid", "4": "part-solid", "5": "solid"}


def slice_axis(affine: NDArray[Any]) -> int:
    """Voxel axis closest to the world S–I direction."""
    return Geometry(np.asarray(affine, dtype=np.float64), (1, 1, 1)).world_axis_index(2)[0]


def nodule_sample(
    hu: NDArray[Any],
    mask: NDArray[np.bool_],
    affine: NDArray[Any],
    name: str,
    group: str,
    info: dict[str, Any],
) -> Sample:
    """Cut a nodule LIDC-style (its slices ± 1) and resample it onto the benchmark patch (see module doc)."""
    axis = slice_axis(affine)
    present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
    lo, hi = int(present[0]) - EXTRA_SLICES, int(present[-1]) + EXTRA_SLICES
    centre_world = affine[:3, :3] @ np.argwhere(mask).mean(axis=0) + affine[:3, 3]
    offsets = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(PATCH, SPACING_MM, strict=True)]
    world = np.stack(np.meshgrid(*offsets, indexing="ij"), axis=-1) + centre_world  # RAS+ mm
    voxel = np.einsum("ij,...j->...i", np.linalg.inv(affine)[:3, :3], world) + np.linalg.inv(affine)[:3, 3]
    coords = np.moveaxis(voxel, -1, 0)
    inside_slab = (coords[axis] >= lo - 0.5) & (coords[axis] <= hi + 0.5)
    image = ndimage.map_coordinates(np.asarray(hu, np.float32), coords, order=1, cval=AIR_HU)
    image = np.where(inside_slab, image, AIR_HU)
    labels = ndimage.map_coordinates(mask.astype(np.float32), coords, order=1, cval=0.0) >= 0.5
    lo_hu, hi_hu = HU_WINDOW
    scaled = np.clip((image - lo_hu) / (hi_hu - lo_hu), 0.0, 1.0).astype(np.float32)
    return Sample(scaled[None], (labels & inside_slab).astype(np.int64), group, name, None, info)


def _sheet(folder: Path) -> dict[str, dict[str, str]]:
    """File stem (``PATIENT_R_K``) -> its ``nodules.csv`` row."""
    sheet = folder / "nodules.csv"
    if not sheet.is_file():
        return {}
    with open(sheet, newline="", encoding="utf-8") as fh:
        return {f"{r['patient_id']}_R_{r['nodule_id']}": r for r in csv.DictReader(fh)}


def real_samples(folder: Path) -> list[Sample]:
    """Every nodule of a ``lidc_nodules``-layout folder (``image/``, ``mask/``, ``nodules.csv``)."""
    import nibabel as nib

    rows = _sheet(folder)
    out = []
    for image_path in sorted((folder / "image").glob("*.nii*")):
        mask_path = folder / "mask" / image_path.name
        if not mask_path.is_file():
            raise FileNotFoundError(f"{folder}: {image_path.name} has no mask/{image_path.name}")
        img = nib.Nifti1Image.from_filename(image_path)
        hu = np.asarray(img.get_fdata(dtype=np.float32))  # type: ignore[attr-defined]
        mask = np.asarray(nib.Nifti1Image.from_filename(mask_path).dataobj) > 0
        if not mask.any():
            continue
        stem = image_path.name.split(".nii")[0]
        row = rows.get(stem, {})
        patient = row.get("patient_id") or stem.rsplit("_R_", 1)[0]
        kind = TEXTURE_TYPE.get(row.get("Texture_value", ""), "unknown")
        out.append(nodule_sample(hu, mask, img.affine, stem, patient, {"type": kind}))
    if not out:
        raise FileNotFoundError(f"{folder}: no image/*.nii.gz nodules (expected the lidc_nodules layout)")
    return out


def synthetic_studies(
    n_per_host: int, n_phantoms: int, seed: int, library: Any = None
) -> Iterator[tuple[str, Any, str, str]]:
    """(host name, study, nodule type, prompt) for nodules grown on the realism hosts.

    Hosts, types, shapes and sizes are those of ``benchmarks/realism_sets.py`` (the real chest CTs of
    ``../shared/data`` and thorax phantoms on LIDC-IDRI-like grids); the learned model as the engine's
    default (off unless ``LONGISYNTH_REFINER`` names one: ``--refiner``). With ``library``
    (a lesion library) each nodule is a library nodule of the drawn type near the drawn size.
    """
    from realism_sets import (
        NODULE_TYPES,
        SHAPES,
        SIZE_MM,
        grow_nodule_study,
        library_nodule_study,
        lung_hosts,
    )

    rng = np.random.default_rng(seed)
    for host, scan, locations in lung_hosts(n_phantoms):
        for _ in range(n_per_host):
            size = float(np.exp(rng.uniform(*np.log(SIZE_MM))))
            kind, shape, where = rng.choice(NODULE_TYPES), rng.choice(SHAPES), rng.choice(locations)
            case_seed = int(rng.integers(0, 2**31 - 1))
            if library is not None:
                grown = library_nodule_study(scan, library, str(kind), size * 0.8, str(where), case_seed)
            else:
                grown = grow_nodule_study(scan, str(kind), str(shape), size, str(where), case_seed)
            if grown is not None:
                yield host, grown[0], str(kind), grown[1]


def synthetic_samples(n_per_host: int, n_phantoms: int, seed: int, library: Any = None) -> list[Sample]:
    """Every timepoint of :func:`synthetic_studies` as a sample (group = host scan)."""
    out = []
    for k, (host, study, kind, _) in enumerate(synthetic_studies(n_per_host, n_phantoms, seed, library)):
        affine = study.geometry.affine
        scan = next(iter(study.scans.values()))
        for i in range(len(study.timepoints)):
            mask = study.mask(i) > 0
            if mask.sum() >= 2:
                hu = study.image(i).astype(np.float32) * np.float32(scan.slope) + np.float32(scan.inter)
                out.append(nodule_sample(hu, mask, affine, f"{host}_{k:03d}_tp{i}", host, {"type": kind}))
    return out
