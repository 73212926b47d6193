"""Real and synthetic lesions as feature rows: read a folder of real lesions and a set of bundles.

Real lung nodules come in the ``lidc_nodules`` layout (``image/NAME.nii.gz``, ``mask/NAME.nii.gz``,
optional ``nodules.csv`` with a ``patient_id`` column); real gliomas in the BraTS layout
(``CASE/CASE_{flair,t1,t1ce,t2,seg}.nii.gz``, labels 1 necrotic core, 2 oedema, 4 enhancing).
Synthetic lesions are every timepoint of longisynth bundles of the same family whose lesion is at
least :data:`MIN_DIAMETER_MM` across. Each lesion keeps a *group* — the patient of a real lesion,
the host scan of a synthetic one — so that cross-validation never splits a patient or a host.

For gliomas the bundles must have been grown in the real cases' own brains (the host scan's
sha256 in ``metadata.json`` is matched with the real files): real and synthetic tumours of one
brain share a group, so the host cannot give the answer away.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.bundle.reader import BundleReader
from longisynth.errors import InvalidInputError
from longisynth.evaluate.realism import features as ft
from longisynth.geometry import Geometry
from longisynth.library.build import lidc_kind

MIN_DIAMETER_MM = {"lung_nodule": 3.0, "glioma": 10.0}  # LIDC-IDRI marks nodules ≥ 3 mm
LUNG_CONTEXT_MM = 15.0  # in-plane margin kept around a synthetic nodule before resampling
GLIOMA_CONTEXT_MM = 6.0  # margin kept around a glioma (edge rings reach 2 mm)
BRATS_CONTRASTS = {"flair": "flair", "t1": "t1", "t1ce": "t1c", "t2": "t2"}  # BraTS file -> ours
BRATS_TO_OURS = {1: 1, 2: 2, 3: 1, 4: 3}  # 2015 "3 non-enhancing" and 2018 "1 NCR/NET" -> core
FAMILIES = ("lung_nodule", "glioma")


@dataclass
class Lesion:
    """One lesion: its class, group, features, size and a thumbnail for the report."""

    name: str
    real: bool
    group: str
    diameter_mm: float  # equivalent diameter (lung: of the largest axial slice; glioma: 3D)
    features: dict[str, float]
    thumbnail: NDArray[np.float32] = field(repr=False)  # 2D, already windowed to 0…1
    # lung: solid / part_solid / ground_glass (real: the readers' texture score in nodules.csv;
    # synthetic: the bundle's nodule type); None when unknown (gliomas, a sheet without scores)
    kind: str | None = None


def _load(path: Path) -> nib.Nifti1Image:
    try:
        img = cast(nib.Nifti1Image, nib.load(path))
        img.get_fdata(dtype=np.float32)  # force the read so a corrupt file fails here
    except Exception as err:  # nibabel raises many types for a bad file
        raise InvalidInputError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    return img


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- lung ------------------------------------------------------------------------------------


def axial_axis(affine: NDArray[Any]) -> int:
    """Voxel axis closest to the world S–I direction (the slice axis of an axial scan)."""
    return Geometry(np.asarray(affine, dtype=np.float64), (1, 1, 1)).world_axis_index(2)[0]


def box_around(mask: NDArray[np.bool_], margin_vox: Any) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin_vox`` voxels per axis (clipped to the array)."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - np.asarray(margin_vox, dtype=int), 0)
    hi = idx.max(axis=0) + 1 + np.asarray(margin_vox, dtype=int)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def largest_axial_slice(
    hu: NDArray[Any], mask: NDArray[np.bool_], affine: NDArray[Any]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The axial slice where the mask is largest, resampled to ``LUNG_PIXEL_MM`` (HU, mask)."""
    axis = axial_axis(affine)
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    areas = mask.sum(axis=tuple(a for a in range(3) if a != axis))
    k = int(np.argmax(areas))
    image2d = np.take(hu, k, axis=axis).astype(np.float64)
    mask2d = np.take(mask, k, axis=axis)
    pixel = [float(spacing[a]) for a in range(3) if a != axis]
    zoom = [p / ft.LUNG_PIXEL_MM for p in pixel]
    image2d = ndimage.zoom(image2d, zoom, order=1)
    mask2d = ndimage.zoom(mask2d.astype(np.float32), zoom, order=1) >= 0.5
    return image2d, mask2d


def _lung_window(hu: NDArray[Any]) -> NDArray[np.float32]:
    return np.clip((hu + 1000.0) / 1400.0, 0, 1).astype(np.float32)  # lung window −1000…400 HU


def _lung_lesion(
    name: str, real: bool, group: str, hu: NDArray[Any], mask2d: NDArray[np.bool_], kind: str | None = None
) -> Lesion:
    return Lesion(
        name=name,
        real=real,
        group=group,
        diameter_mm=ft.equivalent_diameter_mm(mask2d, (ft.LUNG_PIXEL_MM,) * 2),
        features=ft.lung_features(hu, mask2d),
        thumbnail=_lung_window(hu),
        kind=kind,
    )


def _kinds(folder: Path) -> dict[str, str]:
    """Lesion file stem (``PATIENT_R_NODULE``, the lidc_nodules naming) -> nodule type from the
    readers' texture score in ``nodules.csv`` (:func:`~longisynth.library.build.lidc_kind`, as the
    lesion library reads it)."""
    sheet = folder / "nodules.csv"
    if not sheet.is_file():
        return {}
    out: dict[str, str] = {}
    with open(sheet, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                texture = int(float(row.get("Texture_value") or ""))
            except ValueError:
                continue
            out[f"{row.get('patient_id')}_R_{row.get('nodule_id')}"] = lidc_kind(texture)
    return out


def _patients(folder: Path) -> dict[str, str]:
    """Lesion file stem -> patient id from ``nodules.csv`` (``patient_id`` prefixing the file name)."""
    sheet = folder / "nodules.csv"
    if not sheet.is_file():
        return {}
    with open(sheet, newline="", encoding="utf-8") as fh:
        ids = sorted({row["patient_id"] for row in csv.DictReader(fh) if row.get("patient_id")}, key=len)
    out: dict[str, str] = {}
    for image in (folder / "image").glob("*.nii*"):
        stem = image.name.split(".nii")[0]
        match = [pid for pid in ids if stem.startswith(pid)]
        if match:
            out[stem] = match[-1]
    return out


def real_lung_lesions(folder: Path) -> Iterator[Lesion]:
    """Real nodules of a ``lidc_nodules``-layout folder (one per image, its mask beside it)."""
    images = sorted((folder / "image").glob("*.nii*"))
    if not (folder / "image").is_dir() or not images:
        raise InvalidInputError(f"{folder}: no image/*.nii.gz (expected the lidc_nodules layout)")
    patients = _patients(folder)
    kinds = _kinds(folder)
    for image_path in images:
        mask_path = folder / "mask" / image_path.name
        if not mask_path.is_file():
            raise InvalidInputError(f"{folder}: real lesion {image_path.name} has no mask/{image_path.name}")
        img, seg = _load(image_path), _load(mask_path)
        hu = np.asarray(img.get_fdata(dtype=np.float32))
        mask = np.asarray(seg.dataobj) > 0
        if mask.shape != hu.shape:
            raise InvalidInputError(f"{folder}: mask of {image_path.name} is not on the image's grid")
        if not mask.any():
            raise InvalidInputError(f"{folder}: mask of {image_path.name} is empty")
        stem = image_path.name.split(".nii")[0]
        hu2d, mask2d = largest_axial_slice(hu, mask, img.affine)
        yield _lung_lesion(stem, True, patients.get(stem, stem), hu2d, mask2d, kinds.get(stem))


# --- glioma ----------------------------------------------------------------------------------


@dataclass
class BratsCase:
    name: str
    contrasts: dict[str, Path]  # our contrast name -> file
    seg: Path


def brats_cases(folder: Path) -> list[BratsCase]:
    """Cases of a BraTS-layout folder: ``CASE/CASE_{flair,t1,t1ce,t2}.nii.gz`` + ``CASE_seg.nii.gz``."""
    cases = []
    for case in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        seg = next(iter(sorted(case.glob("*_seg.nii*"))), None)
        contrasts = {}
        for theirs, ours in BRATS_CONTRASTS.items():
            found = sorted(case.glob(f"*_{theirs}.nii*"))
            if found:
                contrasts[ours] = found[0]
        if seg is None and contrasts:
            raise InvalidInputError(f"{folder}: case {case.name} has no *_seg.nii.gz (expert mask)")
        if seg is not None:
            if not contrasts:
                raise InvalidInputError(
                    f"{folder}: case {case.name} has a mask but no flair/t1/t1ce/t2 image"
                )
            cases.append(BratsCase(case.name, contrasts, seg))
    if not cases:
        raise InvalidInputError(
            f"{folder}: no BraTS cases (expected CASE/CASE_{{flair,t1,t1ce,t2,seg}}.nii.gz)"
        )
    return cases


def brain_zscore(image: NDArray[Any]) -> NDArray[np.float64]:
    """Z-score over the brain (non-zero voxels of a skull-stripped image); zero stays outside."""
    x = np.asarray(image, dtype=np.float64)
    brain = x != 0
    if brain.sum() < 100:
        raise InvalidInputError("an MRI contrast has (almost) no non-zero voxels: not a skull-stripped brain")
    mean, sd = x[brain].mean(), x[brain].std()
    return np.where(brain, (x - mean) / (sd if sd > 0 else 1.0), 0.0)


def _glioma_lesion(
    name: str,
    real: bool,
    group: str,
    images: dict[str, NDArray[Any]],
    labels: NDArray[np.uint8],
    spacing: Any,
) -> Lesion:
    margin = np.ceil(GLIOMA_CONTEXT_MM / np.asarray(spacing)).astype(int)
    box = box_around(labels > 0, margin)
    crop = {k: brain_zscore(v)[box] for k, v in images.items()}
    lab = labels[box]
    zoom = np.asarray(spacing, dtype=float)  # resample to 1 mm where the grid differs
    if not np.allclose(zoom, 1.0, atol=0.05):
        crop = {k: ndimage.zoom(v, zoom, order=1) for k, v in crop.items()}
        lab = ndimage.zoom(lab, zoom, order=0)
    k = int(np.argmax((lab > 0).sum(axis=(0, 1))))
    thumb_src = crop.get("flair", next(iter(crop.values())))[:, :, k]
    return Lesion(
        name=name,
        real=real,
        group=group,
        diameter_mm=ft.equivalent_diameter_mm(lab > 0, (1.0, 1.0, 1.0)),
        features=ft.glioma_features(crop, lab, (1.0, 1.0, 1.0)),
        thumbnail=np.clip((thumb_src + 3.0) / 8.0, 0, 1).astype(np.float32),
    )


def real_glioma_lesions(cases: list[BratsCase], contrasts: list[str]) -> Iterator[Lesion]:
    """The expert-segmented tumour of every case (BraTS labels mapped to ours: 1 core, 2 oedema, 3 enh)."""
    for case in cases:
        seg_img = _load(case.seg)
        seg = np.asarray(seg_img.dataobj).astype(np.int64)
        labels = np.zeros(seg.shape, dtype=np.uint8)
        for theirs, ours in BRATS_TO_OURS.items():
            labels[seg == theirs] = ours
        if not labels.any():
            raise InvalidInputError(f"case {case.name}: the segmentation is empty")
        images = {c: np.asarray(_load(case.contrasts[c]).get_fdata(dtype=np.float32)) for c in contrasts}
        spacing = seg_img.header.get_zooms()[:3]
        yield _glioma_lesion(case.name, True, case.name, images, labels, spacing)


# --- synthetic -------------------------------------------------------------------------------


def bundle_family(reader: BundleReader) -> str:
    family = str((reader.metadata.get("spec") or {}).get("family") or "")
    if family not in FAMILIES:
        raise InvalidInputError(f"{reader.path}: metadata.json names no lesion family")
    return family


TIMEPOINTS = ("all", "first", "last")


def synthetic_lesions(
    path: Path,
    family: str,
    host_group: Callable[[BundleReader], str],
    contrasts: list[str] | None = None,
    timepoints: str = "all",
) -> Iterator[Lesion]:
    """Every timepoint of a bundle (or only its ``first`` or ``last``, see :data:`TIMEPOINTS`) whose
    lesion is at least ``MIN_DIAMETER_MM[family]`` across."""
    with BundleReader(path) as reader:
        got = bundle_family(reader)
        if got != family:
            raise InvalidInputError(f"{path}: a {got} bundle, but this comparison is for {family} (--family)")
        group = host_group(reader)
        indices = list(reader.indices)
        chosen = {"all": indices, "first": indices[:1], "last": indices[-1:]}[timepoints]
        for index in chosen:
            labels, geometry = reader.mask(index)
            if not labels.any():
                continue
            name = f"{path.name}:tp{index:02d}"
            if family == "lung_nodule":
                arr, _, slope, inter = reader.raw(index, "ct")
                # crop first (in-plane context only): full scans are far larger than a nodule
                axis = axial_axis(geometry.affine)
                margin = [
                    0 if a == axis else math.ceil(LUNG_CONTEXT_MM / s)
                    for a, s in enumerate(geometry.spacing_mm)
                ]
                box = box_around(labels > 0, margin)
                hu = arr[box].astype(np.float64) * slope + inter
                hu2d, mask2d = largest_axial_slice(hu, labels[box] > 0, geometry.affine)
                kind = (reader.metadata.get("spec") or {}).get("nodule_type")
                lesion = _lung_lesion(name, False, group, hu2d, mask2d, str(kind) if kind else None)
            else:
                missing = [c for c in contrasts or [] if c not in reader.contrasts_of(index)]
                if missing:
                    raise InvalidInputError(f"{path}: no {', '.join(missing)} image (the real cases have it)")
                images = {}
                for c in contrasts or []:
                    arr, _, slope, inter = reader.raw(index, c)
                    images[c] = arr.astype(np.float64) * slope + inter
                lesion = _glioma_lesion(name, False, group, images, labels, geometry.spacing_mm)
            if lesion.diameter_mm >= MIN_DIAMETER_MM[family]:
                yield lesion


def host_sha256(reader: BundleReader) -> list[str]:
    files = (reader.metadata.get("input") or {}).get("files") or []
    return [str(f.get("sha256", "")) for f in files if f.get("sha256")]


def lung_host_group(reader: BundleReader) -> str:
    """A synthetic nodule's group: its host scan (the input file's sha256, shortened)."""
    digests = host_sha256(reader)
    return "host-" + (digests[0][:12] if digests else re.sub(r"\W", "_", reader.path.stem))


def glioma_host_matcher(cases: list[BratsCase]) -> Callable[[BundleReader], str]:
    """Group of a synthetic glioma: the real case whose files the bundle was grown on."""
    owner = {_sha256(p): case.name for case in cases for p in case.contrasts.values()}

    def group(reader: BundleReader) -> str:
        for digest in host_sha256(reader):
            if digest in owner:
                return owner[digest]
        raise InvalidInputError(
            f"{reader.path}: its host brain is none of the real cases (glioma realism compares a synthetic "
            "tumour with the real one in the same brain: grow it on that case's own images)"
        )

    return group
