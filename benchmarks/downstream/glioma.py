"""Glioma samples for the downstream benchmark: real BraTS brains and synthetic gliomas.

Every brain becomes one sample on a 2 mm grid (2×2×2 block means of the 1 mm BraTS grid), four
channels :data:`CONTRASTS`, each z-scored over the brain (zero outside), labels ours (1 necrotic
core, 2 oedema, 3 enhancing; BraTS 2018 4 → 3) by majority over each block.

Synthetic gliomas grow on healthy hosts: the **tumour-free hemisphere of the training brains**
(the side opposite the real tumour; the real tumour, dilated by :data:`IGNORE_MARGIN_MM`, gets
weight 0 so the network is never told that a real tumour is background) and the MNI152 brain
phantom (skull-stripped with its own tissue maps). Test brains never host anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .common import Sample

CONTRASTS = ("t1", "t1c", "t2", "flair")
BRATS_FILES = {"t1": "t1", "t1c": "t1ce", "t2": "t2", "flair": "flair"}
BRATS_TO_OURS = {1: 1, 2: 2, 3: 1, 4: 3}
FACTOR = 2  # 1 mm → 2 mm
IGNORE_MARGIN_MM = 4.0
SIZES_MM = (40.0, 80.0)  # final longest diameter of a synthetic glioma (BraTS tumours: ≈ 50–90 mm)


def _blocks(x: NDArray[Any]) -> NDArray[Any]:
    """Pad to a multiple of :data:`FACTOR` (edge values) and view as (X, Y, Z, f, f, f) blocks."""
    pad = [(0, (-s) % FACTOR) for s in x.shape]
    x = np.pad(x, pad, mode="edge")
    X, Y, Z = (s // FACTOR for s in x.shape)
    return x.reshape(X, FACTOR, Y, FACTOR, Z, FACTOR).transpose(0, 2, 4, 1, 3, 5)


def downsample_image(x: NDArray[Any]) -> NDArray[np.float32]:
    return np.asarray(_blocks(np.asarray(x, np.float32)).mean(axis=(3, 4, 5)), np.float32)


def downsample_labels(labels: NDArray[Any], classes: int = 4) -> NDArray[np.int64]:
    """Majority label of each block (ties to the higher label: tumour wins over background)."""
    blocks = _blocks(np.asarray(labels, np.int64))
    counts = np.stack([(blocks == k).sum(axis=(3, 4, 5)) for k in range(classes)])
    return np.asarray(classes - 1 - np.argmax(counts[::-1], axis=0), np.int64)


def brain_sample(
    images: Mapping[str, NDArray[Any]],
    labels: NDArray[Any],
    brain: NDArray[np.bool_],
    name: str,
    group: str,
    ignore: NDArray[np.bool_] | None = None,
) -> Sample:
    """One brain on the benchmark grid: z-scored channels (over ``brain``), labels, loss weight."""
    channels = []
    for c in CONTRASTS:
        x = np.asarray(images[c], np.float32)
        v = x[brain]
        z = np.where(brain, (x - v.mean()) / max(float(v.std()), 1e-6), 0.0)
        channels.append(downsample_image(z))
    weight = None
    if ignore is not None:
        weight = (1.0 - np.ceil(downsample_image(ignore.astype(np.float32)))).astype(np.float32)
    return Sample(np.stack(channels), downsample_labels(labels), group, name, weight)


def brats_case(
    case: Path,
) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.uint8], NDArray[np.bool_], Any]:
    """(images by our contrast name, our labels, brain mask, affine) of a BraTS-layout case folder."""
    import nibabel as nib

    images = {}
    for ours, theirs in BRATS_FILES.items():
        found = sorted(case.glob(f"*_{theirs}.nii*"))
        if not found:
            raise FileNotFoundError(f"{case}: no *_{theirs}.nii.gz")
        images[ours] = np.asarray(nib.Nifti1Image.from_filename(found[0]).get_fdata(dtype=np.float32))
    seg_path = next(iter(sorted(case.glob("*_seg.nii*"))), None)
    if seg_path is None:
        raise FileNotFoundError(f"{case}: no *_seg.nii.gz")
    seg_img = nib.Nifti1Image.from_filename(seg_path)
    seg = np.asarray(seg_img.dataobj).astype(np.int64)
    labels = np.zeros(seg.shape, np.uint8)
    for their_label, our_label in BRATS_TO_OURS.items():
        labels[seg == their_label] = our_label
    brain = np.zeros(seg.shape, bool)
    for x in images.values():
        brain |= x != 0
    return images, labels, brain, seg_img.affine


def brats_cases(folder: Path) -> list[Path]:
    cases = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*_seg.nii*")))
    if not cases:
        raise FileNotFoundError(f"{folder}: no BraTS cases (CASE/CASE_{{t1,t1ce,t2,flair,seg}}.nii.gz)")
    return cases


def real_sample(case: Path) -> Sample:
    images, labels, brain, _ = brats_case(case)
    return brain_sample(images, labels, brain, case.name, case.name)


def _opposite_side(labels: NDArray[Any], brain: NDArray[np.bool_], affine: NDArray[Any]) -> str:
    world = lambda m: affine[:3, :3] @ np.argwhere(m).mean(axis=0) + affine[:3, 3]  # noqa: E731
    return "left" if world(labels > 0)[0] > world(brain)[0] else "right"  # RAS+: x grows to the right


def _prompt(rng: np.random.Generator, side: str | None) -> str:
    grade = "low-grade" if rng.random() < 0.2 else "high-grade"
    lobe = rng.choice(["frontal", "temporal", "parietal"])
    where = f"{side} {lobe} lobe" if side else f"{rng.choice(['left', 'right'])} {lobe} lobe"
    size = rng.uniform(*SIZES_MM)
    return f"{grade} glioma {size:.0f} mm in the {where}, scans at 0, 3 and 6 months"


def _grow(scans: Any, prompt: str, seed: int, tissues: Any = None) -> Any:
    import longisynth
    from longisynth.errors import LesionDoesNotFitError

    for shrink in (1.0, 0.8, 0.6):  # a hemisphere may not hold the size drawn
        text = prompt
        if shrink != 1.0:
            mm = float(prompt.split(" glioma ")[1].split(" mm")[0])
            text = prompt.replace(f" {mm:.0f} mm", f" {mm * shrink:.0f} mm")
        try:
            return longisynth.generate(scans, text, seed=seed, brain_tissues=tissues), text
        except LesionDoesNotFitError:
            continue
    return None, prompt


def _grow_library(
    scans: Any, side: str | None, library: Any, lesion_id: str, seed: int, tissues: Any = None
) -> Any:
    """A library glioma (``lesion_id``) copied into the ``side`` hemisphere and grown, or None."""
    import longisynth
    from longisynth.errors import LesionDoesNotFitError

    prompt = f"glioma in the {side or 'left'} hemisphere, scans at 0, 3 and 6 months"
    try:
        study = longisynth.generate(
            scans, prompt, {"library_lesion_id": lesion_id}, seed=seed, brain_tissues=tissues, library=library
        )
    except LesionDoesNotFitError:
        return None, prompt
    return study, f"{prompt} (library lesion {lesion_id})"


def synthetic_on_brats(
    case: Path, rng: np.random.Generator, library: Any = None, lesion_id: str | None = None
) -> tuple[list[Sample], str]:
    """Every timepoint of one glioma grown in the tumour-free hemisphere of a BraTS case (a copy of
    the library lesion ``lesion_id`` with ``library``)."""
    from longisynth.io.scan import Scan

    images, labels, brain, affine = brats_case(case)
    scans = {c: Scan.from_array(images[c], affine, f"{case.name}_{c}.nii.gz") for c in CONTRASTS}
    side = _opposite_side(labels, brain, affine)
    if library is not None and lesion_id is not None:
        study, prompt = _grow_library(scans, side, library, lesion_id, int(rng.integers(2**31 - 1)))
    else:
        study, prompt = _grow(scans, _prompt(rng, side), int(rng.integers(2**31 - 1)))
    if study is None:
        return [], prompt
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    ignore = ndimage.distance_transform_edt(labels == 0, sampling=spacing) <= IGNORE_MARGIN_MM
    out = []
    for i in range(len(study.timepoints)):
        imgs = {c: study.image(i, c) for c in CONTRASTS}
        out.append(brain_sample(imgs, study.mask(i), brain, f"{case.name}_syn_tp{i}", case.name, ignore))
    return out, prompt


def synthetic_on_phantom(
    seed: int, rng: np.random.Generator, library: Any = None, lesion_id: str | None = None
) -> tuple[list[Sample], str]:
    """Every timepoint of one glioma grown in the MNI152 brain phantom (noise seed ``seed``; a copy
    of the library lesion ``lesion_id`` with ``library``)."""
    from longisynth.io.scan import Scan
    from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

    images, affine = make_brain_phantom(CONTRASTS, seed=seed)
    tissues = brain_phantom_tissues()
    brain = (tissues["csf"] + tissues["gm"] + tissues["wm"]) > 0.5
    scans = {c: Scan.from_array(images[c], affine, f"mni152_{c}.nii.gz") for c in CONTRASTS}
    if library is not None and lesion_id is not None:
        side = str(rng.choice(["left", "right"]))
        study, prompt = _grow_library(scans, side, library, lesion_id, int(rng.integers(2**31 - 1)), tissues)
    else:
        study, prompt = _grow(scans, _prompt(rng, None), int(rng.integers(2**31 - 1)), tissues)
    if study is None:
        return [], prompt
    out = []
    for i in range(len(study.timepoints)):
        imgs = {c: study.image(i, c) for c in CONTRASTS}
        out.append(brain_sample(imgs, study.mask(i), brain, f"mni152_{seed}_tp{i}", f"mni152_{seed}"))
    return out, prompt
