"""The bundle format, in one place: member names, labels, channels and the metadata model.

A bundle is a zip::

    metadata.json                     # BundleMetadata below
    timepoint_NN/<contrast>.nii.gz    # ct, or t1 / t1c / t2 / flair: input grid, affine and dtype
    timepoint_NN/mask.nii.gz          # uint8 labels (LABELS), same grid
    timepoint_NN/displacement.nii.gz  # optional: float32 mm, RAS+, (X, Y, Z, 1, 3)
    preview.png                       # optional

The writer (:mod:`longisynth.bundle.writer`), the reader (:mod:`longisynth.bundle.reader`), the
dataset exports (nnU-Net, MONAI, BIDS, DICOM SEG), ``evaluate``, the Visual Turing Test and the
SDK's nnU-Net helper (through a copy kept equal by a test) all take names from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

# 1.1: timepoints[].clinical_diameter_mm; 1.2: nodule attachment, appearance, solid components,
# calcification; 1.3: contains_real_lesion and simulation.source_lesion (library lesions); 1.4:
# spec.archetype, spec.growth.volume_ratio and simulation.archetype (progression archetypes)
FORMAT_VERSION = "1.4"
METADATA = "metadata.json"
PREVIEW = "preview.png"
MASK = "mask"
DISPLACEMENT = "displacement"
NON_IMAGE = (MASK, DISPLACEMENT)
IMAGE_SUFFIX = ".nii.gz"
DISPLACEMENT_DOC = "pull-back field: output voxel at world x shows the input tissue at x + d(x) (mm, RAS+)"
WORLD_COORDINATES = "RAS+ mm (NIfTI/nibabel convention)"
MEMBER = re.compile(r"^timepoint_(\d+)/([A-Za-z0-9_\-]+)\.nii(\.gz)?$")

# Channel order of every multi-channel export (nnU-Net _CCCC index, MONAI image lists, BIDS) and the
# channel names they show. nnU-Net reads "CT" as "use CT normalisation"; the MR names are labels.
CONTRASTS = ("ct", "t1", "t1c", "t2", "flair")
CHANNEL_NAMES = {"ct": "CT", "t1": "T1", "t1c": "T1c", "t2": "T2", "flair": "FLAIR"}


def timepoint_folder(index: int) -> str:
    return f"timepoint_{index:02d}"


def member_name(index: int, name: str) -> str:
    """Zip path of image ``name`` (a contrast, ``mask`` or ``displacement``) at timepoint ``index``."""
    return f"{timepoint_folder(index)}/{name}{IMAGE_SUFFIX}"


def ordered_contrasts(contrasts: Iterable[str] | str) -> list[str]:
    """Contrasts in the channel order :data:`CONTRASTS` (``"t2,t1"`` → ``["t1", "t2"]``)."""
    items = contrasts.split(",") if isinstance(contrasts, str) else list(contrasts)
    unknown = [c for c in items if c not in CONTRASTS]
    if unknown:
        raise ValueError(f"unknown contrast(s) {', '.join(unknown)}: use {', '.join(CONTRASTS)}")
    return sorted(items, key=CONTRASTS.index)


@dataclass(frozen=True)
class Label:
    """One value of the mask: its number, the key exports use, and what it is (for people)."""

    value: int
    key: str
    description: str


# Our masks: lung 1 solid / 2 ground-glass component; glioma BraTS 2023 numbering (1 necrotic /
# non-enhancing core, 2 peritumoral oedema, 3 enhancing tumour).
LABELS: dict[str, tuple[Label, ...]] = {
    "lung_nodule": (
        Label(0, "background", "background"),
        Label(1, "solid", "solid component"),
        Label(2, "ground_glass", "ground-glass component"),
    ),
    "glioma": (
        Label(0, "background", "background"),
        Label(1, "necrotic_core", "necrotic / non-enhancing core"),
        Label(2, "edema", "peritumoral oedema"),
        Label(3, "enhancing_tumor", "enhancing tumour"),
    ),
}


def label_descriptions(family: str) -> dict[str, str]:
    """``metadata.json`` → ``labels``: value (as text) → description."""
    return {str(label.value): label.description for label in LABELS[str(family)]}


def label_keys(family: str) -> dict[str, int]:
    """Export labels (nnU-Net ``dataset.json``, MONAI, BIDS ``dseg.tsv``): key → value."""
    return {label.key: label.value for label in LABELS[str(family)]}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputFile(_Strict):
    contrast: str
    name: str  # a neutral name (scan.nii.gz, dicom_series.nii.gz): file and folder names can be patient names
    shape: list[int]
    spacing_mm: list[float]
    orientation: str  # axis codes, e.g. "LPS"
    dtype: str
    sha256: str


class InputInfo(_Strict):
    files: list[InputFile]


class TimepointInfo(_Strict):
    index: int
    days: float  # since the first scan
    files: list[str]
    lesion_volume_mm3: float
    simulated_volume_mm3: float
    longest_diameter_mm: float
    centroid_mm: list[float]  # world RAS+ mm
    clinical_diameter_mm: float | None = None  # mean of axial long and short axis of the body (1.1)


class CheckInfo(_Strict):
    name: str
    value: bool | int | float
    limit: str
    passed: bool
    hard: bool
    timepoint: int | None = None


class CropBox(_Strict):
    start: list[int]
    stop: list[int]


class BundleMetadata(_Strict):
    """``metadata.json``: what was simulated, on what, and how it checked out. No patient identifiers."""

    format_version: str = FORMAT_VERSION
    prompt: str
    spec: dict[str, Any]  # the resolved LesionSpec (longisynth.spec), JSON mode
    seed: int
    input: InputInfo
    world_coordinates: str = WORLD_COORDINATES
    labels: dict[str, str]
    timepoints: list[TimepointInfo]
    checks: list[CheckInfo]
    unparsed_words: list[str]
    notes: list[str]
    crop_box: CropBox
    displacement: str = DISPLACEMENT_DOC
    simulation: dict[str, Any]  # family-specific parameters drawn for this study
    # True when the lesion's texture is a real patient's (a library lesion: simulation.source_lesion
    # names it by id, content hash and licence); such a bundle carries real patient data.
    contains_real_lesion: bool = False
    software: dict[str, Any]  # package versions, refiner model name and hash
    timings_s: dict[str, float]
