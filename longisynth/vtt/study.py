"""Build a blinded reading study: 3D crops around synthetic lesions, real lesions and healthy regions.

Study folder layout (everything but ``key.json`` may be shown to readers)::

    study.json          public: item ids in reading order, crop shape, spacing, window presets
    items/<id>.npy      int16 crop, C order, axes (x, y, z) of the RAS+ canonical orientation
    key.json            PRIVATE answer key: item -> truth ("synthetic" | "real"), kind, source
    answers.sqlite      readers' answers (made by ``vtt serve``)

Crops are native voxels (no resampling, so no interpolation texture differs between real and
synthetic items); the voxel spacing goes into ``study.json`` and the viewer draws non-axial
views with the right aspect ratio. CT crops are rounded HU; MRI crops are rescaled per source
scan (foreground p0.5..p99.5 -> 0..1000) so real and synthetic items share one quantisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.bundle import BundleReader
from longisynth.bundle.format import MASK, member_name
from longisynth.errors import InvalidInputError

STUDY_FORMAT = "longisynth-vtt/1"
CROP_VOXELS = 48
# Off-centre jitter of the lesion inside its crop, so "lesion dead centre" is not a cue of any kind.
JITTER_VOXELS = 6
CT_PRESETS = [
    {"name": "Lung", "window": 1500.0, "level": -600.0},
    {"name": "Soft tissue", "window": 400.0, "level": 40.0},
]
MRI_CONTRAST_ORDER = ("flair", "t1c", "t1", "t2")
TRUTH_SYNTHETIC, TRUTH_REAL = "synthetic", "real"


@dataclass(frozen=True)
class Volume:
    """A scan in RAS+ canonical voxel order with its spacing; ``modality`` is "ct" or "mri"."""

    data: NDArray[np.float32]
    spacing_mm: tuple[float, float, float]
    modality: str
    source: str


@dataclass(frozen=True)
class Item:
    """One crop of the study with its (private) truth."""

    crop: NDArray[np.int16]
    spacing_mm: tuple[float, float, float]
    modality: str
    truth: str
    kind: str
    source: str
    detail: dict[str, Any]


def _canonical(img: nib.Nifti1Image, source: str, modality: str | None) -> Volume:
    if len(img.shape) != 3:
        raise InvalidInputError(f"{source}: expected a 3D image, got shape {tuple(img.shape)}")
    img = nib.as_closest_canonical(img)
    data = np.asarray(img.get_fdata(dtype=np.float32))
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    if modality is None:
        # CT carries air near -1000 HU; MRI intensities are non-negative.
        modality = "ct" if float(np.percentile(data, 1)) < -500 else "mri"
    return Volume(data, (zooms[0], zooms[1], zooms[2]), modality, source)


def load_nifti(path: Path, modality: str | None = None) -> Volume:
    """A NIfTI file as a canonical :class:`Volume` (modality guessed from intensities if None)."""
    try:
        img = nib.load(str(path))
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        raise InvalidInputError(f"cannot read {str(path)!r}: {exc}") from None
    return _canonical(img, str(path), modality)  # type: ignore[arg-type]


def load_bundle(
    path: Path, timepoint: str, rng: np.random.Generator
) -> tuple[Volume, NDArray[np.bool_], int]:
    """Image and lesion mask of one timepoint of a bundle (``timepoint``: "random", "last" or an index)."""
    source = str(path)
    with BundleReader(path) as reader:
        meta = reader.metadata
        contrasts = [f["contrast"] for f in meta["input"]["files"]]
        if "ct" in contrasts:
            contrast = "ct"
        else:
            contrast = next((c for c in MRI_CONTRAST_ORDER if c in contrasts), contrasts[0])
        indices = [int(tp["index"]) for tp in meta["timepoints"] if tp.get("lesion_volume_mm3", 1) > 0]
        if not indices:
            raise InvalidInputError(f"{source}: no timepoint has a lesion")
        if timepoint == "random":
            index = int(rng.choice(indices))
        elif timepoint == "last":
            index = indices[-1]
        else:
            index = int(timepoint)
            if index not in indices:
                raise InvalidInputError(f"{source}: no lesion at timepoint {index} (have {indices})")
        if index not in reader.members or not reader.has(index, contrast):
            raise InvalidInputError(f"{source}: bundle has no {member_name(index, contrast)}")
        image = reader.image(index, contrast)
        mask_img = reader.image(index, MASK)
    vol = _canonical(image, source, "ct" if contrast == "ct" else "mri")
    mask = np.asarray(nib.as_closest_canonical(mask_img).dataobj) > 0
    return vol, mask, index


def _largest_component(mask: NDArray[np.bool_], source: str) -> NDArray[np.bool_]:
    labels, n = ndimage.label(mask)
    if n == 0:
        raise InvalidInputError(f"{source}: the lesion mask is empty")
    sizes = np.bincount(labels.ravel())[1:]
    return np.asarray(labels == int(np.argmax(sizes)) + 1)


def _lesion_centre(mask: NDArray[np.bool_], rng: np.random.Generator) -> NDArray[np.int64]:
    """Bounding-box centre of the mask, jittered but keeping the lesion inside the crop if it fits."""
    idx = np.nonzero(mask)
    lo = np.array([i.min() for i in idx])
    hi = np.array([i.max() for i in idx])
    centre = (lo + hi) // 2
    half = CROP_VOXELS // 2
    # Largest shift that still keeps [lo, hi] inside [centre - half, centre + half).
    room = np.maximum(0, half - 1 - (hi - lo + 1) // 2)
    limit = np.minimum(room, JITTER_VOXELS)
    return np.asarray(centre + rng.integers(-limit, limit + 1), dtype=np.int64)


def crop_at(
    data: NDArray[np.float32],
    centre: NDArray[np.int64],
    pad_value: float,
    size: tuple[int, int, int] = (CROP_VOXELS,) * 3,
) -> NDArray[np.float32]:
    """Block of ``size`` voxels (default ``CROP_VOXELS``³) of ``data`` centred at ``centre``
    (padded with ``pad_value`` outside)."""
    out = np.full(size, pad_value, dtype=np.float32)
    start = centre - np.asarray(size) // 2
    src, dst = [], []
    for axis in range(3):
        a0, a1 = max(0, start[axis]), min(data.shape[axis], start[axis] + size[axis])
        if a0 >= a1:
            raise InvalidInputError("crop centre lies outside the image")
        src.append(slice(a0, a1))
        dst.append(slice(a0 - start[axis], a1 - start[axis]))
    out[tuple(dst)] = data[tuple(src)]
    return out


def _mri_scale(vol: Volume) -> tuple[float, float]:
    fg = vol.data[vol.data > 0]
    if fg.size == 0:
        raise InvalidInputError(f"{vol.source}: the image is empty")
    lo, hi = np.percentile(fg, [0.5, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def _to_int16(crop: NDArray[np.float32], vol: Volume) -> NDArray[np.int16]:
    if vol.modality == "ct":
        return np.asarray(np.clip(np.rint(crop), -1024, 3071), dtype=np.int16)
    lo, hi = _mri_scale(vol)
    scaled = (crop - lo) / (hi - lo) * 1000.0
    return np.asarray(np.clip(np.rint(scaled), 0, 1200), dtype=np.int16)


def presets_for(crop: NDArray[np.int16], modality: str) -> tuple[list[dict[str, Any]], str]:
    """Window/level presets of one item and the default preset's name."""
    if modality == "ct":
        default = "Lung" if float(np.median(crop)) < -300 else "Soft tissue"
        return [dict(p) for p in CT_PRESETS], default
    fg = crop[crop > 0]
    p1, p99 = np.percentile(fg, [1, 99]) if fg.size else (0.0, 1000.0)
    p1, p99 = float(p1), float(max(p99, p1 + 1))
    name = "Brain (p1-p99)"
    brain = {"name": name, "window": round(p99 - p1, 1), "level": round((p1 + p99) / 2, 1)}
    full = {"name": "Full range", "window": 1200.0, "level": 600.0}
    return [brain, full], name


def _pad_value(vol: Volume) -> float:
    return -1024.0 if vol.modality == "ct" else 0.0


def synthetic_item(path: Path, timepoint: str, rng: np.random.Generator) -> Item:
    """A crop around the lesion of one bundle timepoint."""
    vol, mask, index = load_bundle(path, timepoint, rng)
    lesion = _largest_component(mask, vol.source)
    centre = _lesion_centre(lesion, rng)
    crop = _to_int16(crop_at(vol.data, centre, _pad_value(vol)), vol)
    detail = {"timepoint": index, "centre_voxel": centre.tolist()}
    return Item(crop, vol.spacing_mm, vol.modality, TRUTH_SYNTHETIC, "synthetic", vol.source, detail)


def real_lesion_item(image: Path, mask_path: Path, rng: np.random.Generator) -> Item:
    """A crop around the largest lesion component of a user-supplied image + mask."""
    vol = load_nifti(image)
    mask_vol = load_nifti(mask_path, modality="mri")
    if mask_vol.data.shape != vol.data.shape:
        raise InvalidInputError(
            f"mask {str(mask_path)!r} has shape {mask_vol.data.shape}, image has {vol.data.shape}"
        )
    lesion = _largest_component(mask_vol.data > 0, str(mask_path))
    centre = _lesion_centre(lesion, rng)
    crop = _to_int16(crop_at(vol.data, centre, _pad_value(vol)), vol)
    detail = {"mask": str(mask_path), "centre_voxel": centre.tolist()}
    return Item(crop, vol.spacing_mm, vol.modality, TRUTH_REAL, "real_lesion", vol.source, detail)


def healthy_candidates(vol: Volume) -> NDArray[np.int64]:
    """Flat indices where a healthy crop may be centred: lung parenchyma for CT (air enclosed by
    the body outline), brain/body foreground for MRI; at least half a crop from every edge."""
    d = vol.data
    if vol.modality == "ct":
        # Lungs: air enclosed by the body outline in each axial slice (slice-wise, because in 3D
        # the airway joins the lungs to the air outside the patient).
        body = d > -500
        enclosed = np.stack([ndimage.binary_fill_holes(body[:, :, k]) for k in range(d.shape[2])], axis=2)
        region = enclosed & (d < -400)
        if region.sum() < 1000:  # no lungs in view: anywhere inside the body
            region = enclosed
    else:
        lo, hi = _mri_scale(vol)
        region = d > lo + 0.1 * (hi - lo)
    region = ndimage.binary_erosion(region, iterations=4)
    half = CROP_VOXELS // 2
    inner = np.zeros_like(region)
    slices = tuple(slice(min(half, n // 2), max(n - half, n // 2 + 1)) for n in region.shape)
    inner[slices] = True
    return np.flatnonzero(region & inner)


def healthy_items(vol: Volume, n: int, rng: np.random.Generator) -> list[Item]:
    """``n`` crops of an untouched scan at random, mutually non-overlapping places inside the organ."""
    candidates = healthy_candidates(vol)
    if candidates.size == 0:
        raise InvalidInputError(f"{vol.source}: no region inside the body/organ to sample from")
    centres: list[NDArray[np.int64]] = []
    for _ in range(200 * n):
        if len(centres) == n:
            break
        c = np.array(np.unravel_index(int(rng.choice(candidates)), vol.data.shape), dtype=np.int64)
        if all(np.abs(c - other).max() >= CROP_VOXELS for other in centres):
            centres.append(c)
    if len(centres) < n:
        raise InvalidInputError(f"{vol.source}: room for only {len(centres)} non-overlapping crops, not {n}")
    return [
        Item(
            _to_int16(crop_at(vol.data, c, _pad_value(vol)), vol),
            vol.spacing_mm,
            vol.modality,
            TRUTH_REAL,
            "healthy",
            vol.source,
            {"centre_voxel": c.tolist()},
        )
        for c in centres
    ]


def build_study(
    out: Path,
    synthetic: list[Path],
    real_lesions: list[tuple[Path, Path]] = (),  # type: ignore[assignment]
    healthy: list[Path] = (),  # type: ignore[assignment]
    n_healthy: int | None = None,
    seed: int = 0,
    timepoint: str = "random",
) -> dict[str, Any]:
    """Make the study folder ``out`` and return its public ``study.json`` content.

    Args:
        n_healthy: healthy crops in total, spread over the ``healthy`` scans in turn (default: as
            many as needed to balance real against synthetic items, at least one per scan).
        seed: the only source of randomness (timepoints, jitter, healthy places, order, ids).
    """
    if not synthetic:
        raise InvalidInputError("give at least one --synthetic bundle")
    if (out / "study.json").exists():
        raise InvalidInputError(f"{str(out)!r} already holds a study; choose a new folder")
    if not out.parent.exists():
        raise InvalidInputError(f"output folder {str(out.parent)!r} does not exist")
    rng = np.random.default_rng(seed)
    items = [synthetic_item(p, timepoint, rng) for p in synthetic]
    items += [real_lesion_item(img, msk, rng) for img, msk in real_lesions]
    if healthy:
        n = n_healthy if n_healthy is not None else max(len(healthy), len(synthetic) - len(real_lesions))
        if n < 0:
            raise InvalidInputError("--n must be >= 0")
        per_scan = [n // len(healthy) + (i < n % len(healthy)) for i in range(len(healthy))]
        for path, k in zip(healthy, per_scan, strict=True):
            if k:
                items += healthy_items(load_nifti(path), k, rng)
    elif n_healthy:
        raise InvalidInputError("--n needs at least one --healthy scan")
    modalities = sorted({it.modality for it in items})
    if len(modalities) > 1:
        raise InvalidInputError(f"all items must share one modality, got {', '.join(modalities)}")
    order = rng.permutation(len(items))
    ids: list[str] = []
    while len(ids) < len(items):
        new = rng.bytes(6).hex()
        if new not in ids:
            ids.append(new)
    out.mkdir(exist_ok=True)
    (out / "items").mkdir(exist_ok=True)
    public_items, key_items = [], {}
    for item_id, i in zip(ids, order, strict=True):
        it = items[int(i)]
        np.save(out / "items" / f"{item_id}.npy", np.ascontiguousarray(it.crop))
        presets, default = presets_for(it.crop, it.modality)
        public_items.append(
            {
                "id": item_id,
                "shape": list(it.crop.shape),
                "spacing_mm": [round(s, 4) for s in it.spacing_mm],
                "presets": presets,
                "default_preset": default,
            }
        )
        key_items[item_id] = {"truth": it.truth, "kind": it.kind, "source": it.source, **it.detail}
    public = {"format": STUDY_FORMAT, "crop_voxels": CROP_VOXELS, "items": public_items}
    key = {"format": STUDY_FORMAT, "seed": seed, "timepoint": timepoint, "items": key_items}
    (out / "key.json").write_text(json.dumps(key, indent=2))
    (out / "study.json").write_text(json.dumps(public, indent=2))
    return public


def read_public(study: Path) -> dict[str, Any]:
    """``study.json`` of a study folder."""
    try:
        return json.loads((study / "study.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{str(study)!r} is not a VTT study folder: {exc}") from None


def read_key(study: Path) -> dict[str, Any]:
    """The private answer key (``key.json``) of a study folder."""
    try:
        return json.loads((study / "key.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{str(study)!r} has no readable key.json: {exc}") from None
