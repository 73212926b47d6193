"""What the review page shows of one case: every timepoint cropped around the lesion, as the VTT does.

All timepoints share one crop box (centred on the union of the lesion masks, at most
:data:`REVIEW_CROP_VOXELS` voxels per axis, native voxels, RAS+ canonical order), so the viewer can
show them side by side at the same slice. Intensities are quantised like the VTT's crops (CT:
rounded HU; MRI: rescaled to 0..1000 by the *baseline* scan's foreground percentiles, so one
window fits every timepoint). Masks are the lesion label maps (0 outside), as uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from longisynth.bundle import BundleReader
from longisynth.bundle.format import MASK
from longisynth.errors import InvalidInputError
from longisynth.vtt.study import MRI_CONTRAST_ORDER, _canonical, _mri_scale, crop_at, presets_for

REVIEW_CROP_VOXELS = 112


@dataclass(frozen=True)
class CaseView:
    """The crops of one case. ``images[k]``/``masks[k]`` belong to ``timepoints[k]``."""

    contrast: str
    modality: str
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    timepoints: list[dict[str, Any]]  # {"index": k, "days": float}
    images: list[NDArray[np.int16]]
    masks: list[NDArray[np.uint8]]
    presets: list[dict[str, Any]]
    default_preset: str
    focus: tuple[int, int, int]  # lesion centre (union of the masks) in crop voxels: first slices shown

    def public(self) -> dict[str, Any]:
        """What the page needs besides the voxels (JSON)."""
        return {
            "contrast": self.contrast,
            "modality": self.modality,
            "shape": list(self.shape),
            "spacing_mm": [round(s, 4) for s in self.spacing_mm],
            "timepoints": self.timepoints,
            "presets": self.presets,
            "default_preset": self.default_preset,
            "focus": list(self.focus),
        }


def _contrast(contrasts: list[str]) -> str:
    if "ct" in contrasts:
        return "ct"
    return next((c for c in MRI_CONTRAST_ORDER if c in contrasts), contrasts[0])


def load_case_view(bundle: Path, crop_voxels: int = REVIEW_CROP_VOXELS) -> CaseView:
    """Crop every timepoint of ``bundle`` (see module docstring).

    Raises:
        InvalidInputError: an unreadable bundle or a timepoint without the chosen contrast.
    """
    source = bundle.name
    with BundleReader(bundle) as reader:
        meta = reader.metadata
        contrast = _contrast([f["contrast"] for f in meta["input"]["files"]])
        tps = [{"index": int(tp["index"]), "days": float(tp["days"])} for tp in meta["timepoints"]]
        if not tps:
            raise InvalidInputError(f"{source}: the bundle has no timepoints")
        vols, masks = [], []
        for k in (int(tp["index"]) for tp in tps):
            if k not in reader.members or not reader.has(k, contrast) or not reader.has(k, MASK):
                raise InvalidInputError(f"{source}: timepoint {k} has no {contrast} image or mask")
            modality = "ct" if contrast == "ct" else "mri"
            vols.append(_canonical(reader.image(k, contrast), source, modality))
            mask_img: Any = nib.as_closest_canonical(reader.image(k, MASK))
            masks.append(np.asarray(mask_img.dataobj) > 0)
    shape = vols[0].data.shape
    if any(v.data.shape != shape for v in vols) or any(m.shape != shape for m in masks):
        raise InvalidInputError(f"{source}: timepoints differ in shape")
    union = np.logical_or.reduce(masks)
    if union.any():
        idx = np.nonzero(union)
        lesion = np.array([(int(i.min()) + int(i.max())) // 2 for i in idx], dtype=np.int64)
    else:
        lesion = np.array(shape, dtype=np.int64) // 2
    size = (min(crop_voxels, shape[0]), min(crop_voxels, shape[1]), min(crop_voxels, shape[2]))
    # the box inside the image (no padding), as centred on the lesion as that allows
    start = np.clip(lesion - np.asarray(size) // 2, 0, np.asarray(shape) - np.asarray(size))
    centre = start + np.asarray(size) // 2
    base = vols[0]
    pad = -1024.0 if base.modality == "ct" else 0.0
    lo, hi = _mri_scale(base) if base.modality == "mri" else (0.0, 1.0)
    images = []
    for v in vols:
        crop = crop_at(v.data, centre, pad, size)
        if base.modality == "ct":
            images.append(np.asarray(np.clip(np.rint(crop), -1024, 3071), dtype=np.int16))
        else:
            scaled = (crop - lo) / (hi - lo) * 1000.0
            images.append(np.asarray(np.clip(np.rint(scaled), 0, 1200), dtype=np.int16))
    crops = [
        np.asarray(crop_at(m.astype(np.float32), centre, 0.0, size) > 0.5, dtype=np.uint8) for m in masks
    ]
    presets, default = presets_for(images[0], base.modality)
    focus = (int(lesion[0] - start[0]), int(lesion[1] - start[1]), int(lesion[2] - start[2]))
    return CaseView(
        contrast, base.modality, size, base.spacing_mm, tps, images, crops, presets, default, focus
    )
