"""Build a lesion library from a folder of real lesions (``longisynth library build``).

Layouts recognised (:func:`detect_layout`):

* ``lidc`` — LIDC-IDRI nodule crops: ``image/<case>_R_<k>.nii.gz``, ``mask/…`` (the readers'
  mask on the same grid) and ``nodules.csv`` (one row per nodule with the readers' scores);
* ``brats`` — BraTS cases: ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz`` (skull-stripped, one grid;
  labels 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing, or BraTS 2023's 3 enhancing);
* ``pairs`` — any image/mask pairs: ``images/`` (or ``image/``) and ``masks/`` (or ``mask/``)
  holding files of the same name. CT images give lung nodules, MRI images gliomas (one contrast,
  named by ``contrast``).

Per lesion the patch is normalised (HU for CT; z-scores over the source brain per contrast for
MRI), its labels are mapped to our label table (:data:`longisynth.bundle.format.LABELS`), its
size is measured on the mask, and its content hash, licence and the sheet's scores are recorded.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.modality import detect_modality
from longisynth.appearance.noise import estimate_noise
from longisynth.errors import InvalidInputError
from longisynth.geometry import Geometry
from longisynth.io import read_nifti
from longisynth.io.contrasts import contrast_key
from longisynth.io.scan import Scan
from longisynth.library.format import (
    INDEX,
    LESIONS_DIR,
    MANIFEST,
    LibraryEntry,
    LibraryManifest,
    content_hash,
)
from longisynth.library.memorisation import descriptor, write_descriptors
from longisynth.measure import clinical_diameter_mm, longest_diameter_mm
from longisynth.spec import Modality

LAYOUTS = ("lidc", "brats", "pairs")
DEFAULT_LICENCE = {
    "lidc": "CC BY 3.0 (LIDC-IDRI; Armato et al., Med Phys 2011)",
    "brats": "BraTS data terms, research use (Menze et al., IEEE TMI 2015; Bakas et al., Sci Data 2017)",
    "pairs": "unspecified (pass --licence)",
}
SOLID_HU = -300.0  # part-solid nodules: the solid component is denser than this (smoothed), HU
LUNG_HU = (-1000.0, -500.0)  # aerated lung around a nodule, HU (the CT tissue reference)
ENHANCING_HIGH_GRADE = 0.05  # BraTS case: enhancing / whole tumour above this → high grade
GLIOMA_MARGIN_MM = 10.0  # brain kept around a glioma's whole tumour, mm
BRATS_CONTRASTS = ("flair", "t1", "t1ce", "t2")
BRATS_LABELS = {1: 1, 2: 2, 3: 3, 4: 3}  # BraTS 2018 (4 = enhancing) and 2023 (3 = enhancing) → ours
MIN_LESION_VOXELS = 8  # smaller masks are skipped (a reader's dot, not a lesion)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class Lesion:
    """One lesion ready to be written: normalised images per contrast, labels and attributes."""

    images: dict[str, NDArray[np.float32]]
    labels: NDArray[np.uint8]
    affine: NDArray[np.float64]
    family: str
    kind: str
    shape: str
    attributes: dict[str, Any]
    reference: dict[str, float]
    noise_sd: dict[str, float]
    source_dataset: str
    source_case: str


def detect_layout(folder: Path) -> str:
    """The layout of ``folder`` (see the module docstring).

    Raises:
        InvalidInputError: the folder is missing or matches no layout.
    """
    if not folder.is_dir():
        raise InvalidInputError(f"{folder.name!r} is not a folder of lesions")
    if (folder / "nodules.csv").is_file() and (folder / "image").is_dir() and (folder / "mask").is_dir():
        return "lidc"
    if _brats_cases(folder):
        return "brats"
    if _pair_dirs(folder) is not None:
        return "pairs"
    raise InvalidInputError(
        f"{folder.name!r} matches no lesion layout: expected LIDC crops (image/, mask/, nodules.csv), "
        "BraTS cases (<case>/<case>_seg.nii.gz with flair, t1, t1ce, t2) or image/mask pairs "
        "(images/ and masks/ with the same file names)"
    )


def _brats_cases(folder: Path) -> list[Path]:
    dirs = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    return [d for d in dirs if (d / f"{d.name}_seg.nii.gz").is_file()]


def _pair_dirs(folder: Path) -> tuple[Path, Path] | None:
    for img, msk in (("images", "masks"), ("image", "mask")):
        if (folder / img).is_dir() and (folder / msk).is_dir():
            return folder / img, folder / msk
    return None


def _nifti_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith((".nii.gz", ".nii")))


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def _read(path: Path) -> Scan:
    return read_nifti(path)


def _same_grid(a: Scan, b: Scan, what: str) -> None:
    if a.geometry.shape != b.geometry.shape or not np.allclose(
        a.geometry.affine, b.geometry.affine, atol=1e-3
    ):
        raise InvalidInputError(f"{what}: image and mask are not on the same grid")


# --- CT (lung nodules) -------------------------------------------------------------------------


def lidc_kind(texture: int) -> str:
    """LIDC texture score → nodule type (1–2 ground glass, 3 part-solid, 4–5 solid)."""
    return "ground_glass" if texture <= 2 else "part_solid" if texture == 3 else "solid"


def _lidc_shape(spiculation: int, lobulation: int) -> str:
    """LIDC readers' spiculation / lobulation scores (1 none … 5 marked) → our margin kind."""
    return "spiculated" if spiculation >= 3 else "lobulated" if lobulation >= 3 else "smooth"


def _nodule_labels(
    hu: NDArray[np.float32], mask: NDArray[np.bool_], kind: str, spacing: tuple[float, ...]
) -> NDArray[np.uint8]:
    """Our nodule labels (1 solid, 2 ground glass) inside the readers' mask."""
    labels = np.zeros(mask.shape, dtype=np.uint8)
    if kind == "solid":
        labels[mask] = 1
    elif kind == "ground_glass":
        labels[mask] = 2
    else:
        smooth = ndimage.gaussian_filter(hu, [0.5 / s for s in spacing])
        labels[mask] = 2
        labels[mask & (smooth > SOLID_HU)] = 1
    return labels


def _ct_lesion(
    scan: Scan,
    mask: NDArray[np.bool_],
    kind: str,
    shape: str,
    attributes: dict[str, Any],
    dataset: str,
    case: str,
) -> Lesion:
    hu = scan.values().astype(np.float32)
    spacing = scan.geometry.spacing_mm
    near = ndimage.binary_dilation(mask, iterations=2)
    lung = (hu > LUNG_HU[0]) & (hu < LUNG_HU[1]) & ~near
    reference = float(np.median(hu[lung])) if lung.sum() >= 20 else -850.0
    noise = estimate_noise(hu, spacing, lung).sigma if lung.any() else 0.0
    return Lesion(
        images={"ct": hu},
        labels=_nodule_labels(hu, mask, kind, spacing),
        affine=scan.geometry.affine,
        family="lung_nodule",
        kind=kind,
        shape=shape,
        attributes=attributes,
        reference={"lung_hu": round(reference, 1)},
        noise_sd={"ct": round(float(noise), 3)},
        source_dataset=dataset,
        source_case=case,
    )


def _int(row: dict[str, str], key: str, default: int) -> int:
    try:
        return int(float(row.get(key, "") or default))
    except ValueError:
        return default


LIDC_SCORES = (
    "Malignancy",
    "Calcification",
    "InternalStructure",
    "Lobulation",
    "Margin",
    "Sphericity",
    "Spiculation",
    "Subtlety",
    "Texture",
)


def _lidc(folder: Path) -> Iterator[Callable[[], Lesion]]:
    with (folder / "nodules.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "patient_id" not in rows[0]:
        raise InvalidInputError("nodules.csv has no rows or no patient_id column")
    for row in rows:
        name = f"{row['patient_id']}_R_{row['nodule_id']}.nii.gz"
        image, mask = folder / "image" / name, folder / "mask" / name
        if not image.is_file() or not mask.is_file():
            continue

        def load(row: dict[str, str] = row, image: Path = image, mask: Path = mask) -> Lesion:
            scan, m = _read(image), _read(mask)
            _same_grid(scan, m, image.name)
            scores: dict[str, Any] = {k.lower(): _int(row, f"{k}_value", 0) for k in LIDC_SCORES}
            scores["reader_diameter_mm"] = round(float(row.get("diameter_mm") or 0.0), 3)
            kind = lidc_kind(scores["texture"])
            shape = _lidc_shape(scores["spiculation"], scores["lobulation"])
            return _ct_lesion(scan, m.values() > 0, kind, shape, scores, "lidc", _stem(image))

        yield load


# --- MRI (gliomas) -----------------------------------------------------------------------------


def _zscore(values: NDArray[Any], brain: NDArray[np.bool_]) -> NDArray[np.float32]:
    v = values.astype(np.float64)
    inside = v[brain]
    sd = float(inside.std())
    if sd <= 0:
        raise InvalidInputError("a contrast is constant inside the brain")
    return ((v - inside.mean()) / sd).astype(np.float32)


def _glioma_lesion(
    images: dict[str, NDArray[Any]],
    labels: NDArray[np.uint8],
    brain: NDArray[np.bool_],
    geometry: Geometry,
    dataset: str,
    case: str,
    attributes: dict[str, Any],
) -> Lesion:
    """Crop the whole tumour plus a margin of brain, z-score each contrast over the source brain."""
    tumour = labels > 0
    spacing = geometry.spacing_mm
    margin = [int(np.ceil(GLIOMA_MARGIN_MM / s)) for s in spacing]
    idx = np.argwhere(tumour)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + 1 + np.asarray(margin), tumour.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    healthy = brain & ~ndimage.binary_dilation(tumour, iterations=3)
    out: dict[str, NDArray[np.float32]] = {}
    noise: dict[str, float] = {}
    for c, v in images.items():
        z = _zscore(v, brain)
        z[~brain] = np.nan  # outside the source brain: no lesion context to copy
        out[c] = z[sl].copy()
        noise[c] = round(float(estimate_noise(np.nan_to_num(z), spacing, healthy).sigma), 4)
    # The side of the source brain the tumour lies on: world x (RAS+, toward the patient's right)
    # of its centroid against the brain's.
    x_tumour = geometry.voxel_to_world(np.asarray(ndimage.center_of_mass(tumour)))[0]
    x_brain = geometry.voxel_to_world(np.asarray(ndimage.center_of_mass(brain)))[0]
    side = "right" if x_tumour > x_brain else "left"
    et = float(np.mean(labels[tumour] == 3))
    grade = "high" if et >= ENHANCING_HIGH_GRADE else "low"
    affine = geometry.affine.copy()
    affine[:3, 3] = geometry.voxel_to_world(np.asarray(lo, dtype=np.float64))
    return Lesion(
        images=out,
        labels=labels[sl].copy(),
        affine=affine,
        family="glioma",
        kind=grade,
        shape="smooth",
        attributes={
            **attributes,
            "enhancing_fraction": round(et, 4),
            "grade_from": "enhancing fraction",
            "side": side,
        },
        reference={},
        noise_sd=noise,
        source_dataset=dataset,
        source_case=case,
    )


def _map_glioma_labels(seg: NDArray[Any], what: str) -> NDArray[np.uint8]:
    values = {int(v) for v in np.unique(seg)} - {0}
    unknown = values - set(BRATS_LABELS)
    if unknown:
        raise InvalidInputError(f"{what}: glioma labels {sorted(unknown)} are not BraTS labels (1, 2, 3/4)")
    out = np.zeros(seg.shape, dtype=np.uint8)
    for src, ours in BRATS_LABELS.items():
        out[seg == src] = ours
    return out


def _brats(folder: Path) -> Iterator[Callable[[], Lesion]]:
    for case in _brats_cases(folder):

        def load(case: Path = case) -> Lesion:
            name = case.name
            seg = _read(case / f"{name}_seg.nii.gz")
            images: dict[str, NDArray[Any]] = {}
            for c in BRATS_CONTRASTS:
                path = case / f"{name}_{c}.nii.gz"
                if path.is_file():
                    scan = _read(path)
                    _same_grid(scan, seg, path.name)
                    images[contrast_key(c)] = scan.values()
            if not images:
                raise InvalidInputError(f"{name}: no contrast ({', '.join(BRATS_CONTRASTS)}) beside the seg")
            brain = np.any([v > 0 for v in images.values()], axis=0)
            labels = _map_glioma_labels(seg.values(), name)
            return _glioma_lesion(images, labels, brain, seg.geometry, "brats", name, {})

        yield load


# --- any image/mask pairs ----------------------------------------------------------------------


def _is_ct(values: NDArray[Any], dtype: np.dtype) -> bool:
    """Whether a lesion crop is CT: aerated lung below −500 HU (no MRI convention, raw or z-scored,
    goes that low), or the whole-scan detector (:func:`detect_modality`) says so."""
    if float(np.mean(values < -500.0)) > 0.05:
        return True
    return detect_modality(values, dtype) == Modality.CT


def _pairs(folder: Path, contrast: str) -> Iterator[Callable[[], Lesion]]:
    dirs = _pair_dirs(folder)
    assert dirs is not None
    for image in _nifti_files(dirs[0]):
        mask = dirs[1] / image.name
        if not mask.is_file():
            continue

        def load(image: Path = image, mask: Path = mask) -> Lesion:
            scan, m = _read(image), _read(mask)
            _same_grid(scan, m, image.name)
            values = scan.values()
            seg = np.rint(m.values()).astype(np.int64)
            if _is_ct(values, scan.raw.dtype):
                hu = values.astype(np.float32)
                inside = seg > 0
                solid = float(np.mean(ndimage.gaussian_filter(hu, 0.5)[inside] > SOLID_HU))
                kind = "solid" if solid > 0.9 else "ground_glass" if solid < 0.1 else "part_solid"
                return _ct_lesion(scan, inside, kind, "smooth", {}, "pairs", _stem(image))
            labels = _map_glioma_labels(seg, image.name) if seg.max() > 1 else (seg > 0).astype(np.uint8)
            brain = values != 0 if np.mean(values == 0) > 0.1 else np.ones(values.shape, dtype=bool)
            return _glioma_lesion(
                {contrast_key(contrast): values}, labels, brain, scan.geometry, "pairs", _stem(image), {}
            )

        yield load


# --- writing -----------------------------------------------------------------------------------


def _entry(lesion: Lesion, licence: str, lesion_id: str, digest: str) -> LibraryEntry:
    geometry = Geometry(lesion.affine, lesion.labels.shape)
    spacing = geometry.spacing_mm
    mask = lesion.labels > 0
    longest = longest_diameter_mm(mask, spacing)
    if lesion.family == "lung_nodule":
        size = clinical_diameter_mm(mask, spacing, geometry.world_axis_index(2)[0])
    else:
        size = longest
    return LibraryEntry(
        id=lesion_id,
        family=lesion.family,
        modality="ct" if lesion.family == "lung_nodule" else "mr",
        kind=lesion.kind,
        shape=lesion.shape,
        contrasts=sorted(lesion.images),
        size_mm=round(size, 3),
        longest_diameter_mm=round(longest, 3),
        volume_mm3=round(float(mask.sum()) * geometry.voxel_volume_mm3, 3),
        spacing_mm=[round(s, 6) for s in spacing],
        grid=list(lesion.labels.shape),
        attributes=lesion.attributes,
        reference=lesion.reference,
        noise_sd=lesion.noise_sd,
        source_dataset=lesion.source_dataset,
        source_case=lesion.source_case,
        licence=licence,
        sha256=digest,
        file=f"{LESIONS_DIR}/{lesion_id}.npz",
    )


def patch_arrays(lesion: Lesion) -> dict[str, NDArray[Any]]:
    """The arrays stored in a lesion's ``.npz`` (and hashed by :func:`content_hash`)."""
    arrays: dict[str, NDArray[Any]] = {
        "labels": lesion.labels,
        "affine": np.asarray(lesion.affine, np.float64),
    }
    for c, v in lesion.images.items():
        arrays[f"img_{c}"] = v.astype(np.float32)
    return arrays


def build_library(
    source: Path,
    out: Path,
    *,
    layout: str | None = None,
    licence: str | None = None,
    contrast: str = "t1",
    exclude_cases: frozenset[str] = frozenset(),
    progress: ProgressFn | None = None,
) -> LibraryManifest:
    """Build a library in ``out`` from the real lesions in ``source``.

    Args:
        source: a folder in one of :data:`LAYOUTS`.
        out: the library folder (created; must not hold a library already).
        layout: force a layout instead of detecting it.
        licence: the source's licence string (default: the layout's known licence).
        contrast: the MRI contrast of single-image ``pairs``.
        exclude_cases: source case names to leave out (e.g. the real test lesions of an evaluation).
        progress: called as ``progress(done, total)``.

    Raises:
        InvalidInputError: an unknown layout, a corrupt file, mixed modalities, or no lesion at all.
    """
    layout = layout or detect_layout(source)
    if layout not in LAYOUTS:
        raise InvalidInputError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if (out / INDEX).exists():
        raise InvalidInputError(f"{out.name!r} already holds a library; choose a new folder")
    loaders = list({"lidc": _lidc, "brats": _brats}.get(layout, lambda f: _pairs(f, contrast))(source))
    licence = licence or DEFAULT_LICENCE[layout]
    (out / LESIONS_DIR).mkdir(parents=True, exist_ok=True)
    entries: list[LibraryEntry] = []
    rows: list[NDArray[np.float32]] = []
    for i, load in enumerate(loaders):
        lesion = load()
        if progress:
            progress(i + 1, len(loaders))
        if lesion.source_case in exclude_cases or int((lesion.labels > 0).sum()) < MIN_LESION_VOXELS:
            continue
        arrays = patch_arrays(lesion)
        digest = content_hash(arrays)
        lesion_id = digest[:16]
        if any(e.id == lesion_id for e in entries):
            continue  # the same lesion twice
        np.savez_compressed(out / LESIONS_DIR / f"{lesion_id}.npz", **arrays)  # type: ignore[arg-type]
        entries.append(_entry(lesion, licence, lesion_id, digest))
        rows.append(descriptor(lesion.images, lesion.labels > 0, lesion.affine, sorted(lesion.images)))
    if not entries:
        raise InvalidInputError(f"no lesion found in {source.name!r} (layout {layout})")
    modalities = {e.modality for e in entries}
    if len(modalities) > 1:
        raise InvalidInputError("the lesions mix CT and MRI; build one library per modality")
    contrast_sets = {tuple(e.contrasts) for e in entries}
    nn_median = None
    if len(contrast_sets) == 1:  # one descriptor layout for the whole library
        nn = write_descriptors(out, [e.id for e in entries], entries[0].contrasts, rows)
        for e, d in zip(entries, nn, strict=True):
            e.nearest_other_distance = round(float(d), 4) if np.isfinite(d) else None
        finite = nn[np.isfinite(nn)]
        nn_median = round(float(np.median(finite)), 4) if finite.size else None
    with (out / INDEX).open("w") as f:
        for e in entries:
            f.write(json.dumps(e.model_dump(mode="json"), sort_keys=True) + "\n")
    manifest = LibraryManifest(
        modality=entries[0].modality,
        family=entries[0].family,
        n_lesions=len(entries),
        sources=sorted({e.source_dataset for e in entries}),
        nn_median_distance=nn_median,
    )
    (out / MANIFEST).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    return manifest
