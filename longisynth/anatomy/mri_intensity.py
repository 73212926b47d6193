"""How a brain MRI's intensities are normalised, and what the engine may and may not do to them.

Brain MRI arrives raw (scanner units, non-negative), min–max normalised (0…1) or z-scored (signed,
brain mean 0 and sd 1), skull-stripped or not. Skull-stripped and many masked images have a large
*exact-zero background* (air, or everything outside the brain); a z-scored brain then has negative
values inside the brain and exactly 0 outside, so "dark" no longer means "not tissue".

* :func:`detect_convention` names the convention once per image (recorded in the bundle metadata);
* :func:`non_negative_copy` is the image the brain is registered and segmented on: non-negative,
  background at 0 and the darkest brain tissue above it, as in a raw scan (intensity-weighted
  moments, the dark-as-air check and the atlas EM all assume that);
* :func:`zero_background` and :class:`BackgroundGuard` keep the exact-zero background exactly 0 in
  every output, and a magnitude image (minimum ≥ 0) non-negative.

The tumour itself is rendered in z-scores of the brain's own mean and sd
(:mod:`longisynth.appearance.mri`), so it carries over to any of these conventions unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.geometry import Box

Convention = Literal["raw", "zscore", "minmax"]

ZERO_BACKGROUND_FRACTION = 0.05  # ≥ 5 % of the voxels exactly 0: a background set to 0
SIGNED_FRACTION = 0.01  # ≥ 1 % of the foreground negative: a signed (z-scored) image
MINMAX_MAX = 1.0 + 1e-6  # non-negative with nothing above 1: min–max normalised
# In the non-negative copy of a z-scored brain, its 0.5th percentile sits at this fraction of its
# 99.5th (raw BraTS 2018 brains: 0.01–0.23); far enough above the 0 background that no brain
# tissue reads "as dark as air" (5 % of the 99th percentile).
DARKEST_BRAIN_RATIO = 0.1
SKULL_STRIPPED_BRAIN_FRACTION = 0.75  # ≥ 75 % of the non-zero voxels are brain: skull-stripped
_MAX_SAMPLES = 2_000_000


@dataclass(frozen=True)
class IntensityConvention:
    """The value convention of one MRI.

    Attributes:
        convention: ``"raw"`` (scanner units, non-negative), ``"minmax"`` (non-negative, ≤ 1) or
            ``"zscore"`` (signed: z-scored or otherwise zero-centred).
        zero_background: at least 5 % of the voxels are exactly 0 (air or outside a skull-stripped
            brain), and 0 is not a tissue value.
        non_negative: no voxel below 0 (a magnitude image); outputs stay ≥ 0.
    """

    convention: Convention
    zero_background: bool
    non_negative: bool


def _sample(values: NDArray[np.generic]) -> NDArray[np.float32]:
    """A deterministic, evenly strided subsample (≤ 2 M values) as float32."""
    a = np.asarray(values)
    if a.ndim == 3 and a.size > _MAX_SAMPLES:
        step = int(np.ceil((a.size / _MAX_SAMPLES) ** (1 / 3)))
        a = a[::step, ::step, ::step]
    return np.asarray(a, dtype=np.float32).reshape(-1)


def detect_convention(values: NDArray[np.generic]) -> IntensityConvention:
    """Name the value convention of an MRI (physical values; any orientation, any units)."""
    v = _sample(values)
    zero = v == 0
    has_background = bool(zero.mean() >= ZERO_BACKGROUND_FRACTION)
    foreground = v[~zero] if has_background else v
    non_negative = bool(np.min(values) >= 0)
    if foreground.size and float(np.mean(foreground < 0)) >= SIGNED_FRACTION:
        return IntensityConvention("zscore", has_background, non_negative)
    if non_negative and float(np.max(values)) <= MINMAX_MAX:
        return IntensityConvention("minmax", has_background, non_negative)
    return IntensityConvention("raw", has_background, non_negative)


def non_negative_copy(
    values: NDArray[np.generic], convention: IntensityConvention | None = None
) -> NDArray[np.float32]:
    """The image as registration and segmentation need it: ≥ 0, background 0, tissue above it.

    Raw and min–max images are returned as float32 (negative noise, if any, clipped to 0). A
    z-scored image with an exact-zero background is shifted so that its brain's 0.5th percentile
    lies at :data:`DARKEST_BRAIN_RATIO` of its 99.5th, the background staying 0; one without
    (the whole field of view z-scored) is shifted so that its darkest 0.5 % (air) reads 0.
    Only a monotone map of the brain's values: the tissue order is unchanged. Idempotent.
    """
    conv = convention or detect_convention(values)
    img = np.asarray(values, dtype=np.float32)
    if conv.convention != "zscore":
        return img if conv.non_negative else np.maximum(img, np.float32(0))
    v = _sample(img)
    if conv.zero_background:
        lo, hi = (float(p) for p in np.percentile(v[v != 0], [0.5, 99.5]))
        floor = DARKEST_BRAIN_RATIO / (1.0 - DARKEST_BRAIN_RATIO) * max(hi - lo, 1e-6)
        shifted = np.maximum(img - np.float32(lo), np.float32(0)) + np.float32(floor)
        return np.where(img != 0, shifted, np.float32(0)).astype(np.float32)
    lo = float(np.percentile(v, 0.5))
    return np.maximum(img - np.float32(lo), np.float32(0)).astype(np.float32)


def zero_background(values: NDArray[np.generic]) -> NDArray[np.bool_]:
    """Voxels exactly 0 and connected (6-neighbourhood) to the field of view's border.

    The air of a head set to 0, or everything outside a skull-stripped brain; zeros enclosed by
    tissue (e.g. the darkest voxel of a min–max normalised brain) are not background.
    """
    zero = np.asarray(values) == 0
    if not zero.any():
        return zero
    labels, n = ndimage.label(zero)
    faces = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    on_border = np.zeros(n + 1, dtype=bool)
    on_border[np.concatenate([f.ravel() for f in faces])] = True
    on_border[0] = False
    out: NDArray[np.bool_] = on_border[labels]
    return out


def skull_stripped(values: NDArray[np.generic], brain: NDArray[np.bool_]) -> bool:
    """Whether an MRI shows its brain alone: an exact-zero background and ≥ 75 % of the non-zero
    voxels inside ``brain`` (the segmented brain, same grid). With skull and scalp, the head's
    non-zero voxels are two to three times the brain's."""
    v = np.asarray(values)[::2, ::2, ::2]
    nonzero = v != 0
    if float(np.mean(~nonzero)) < ZERO_BACKGROUND_FRACTION or not nonzero.any():
        return False
    inside = float(np.count_nonzero(nonzero & np.asarray(brain)[::2, ::2, ::2]))
    return inside >= SKULL_STRIPPED_BRAIN_FRACTION * float(np.count_nonzero(nonzero))


@dataclass(frozen=True)
class BackgroundGuard:
    """What an MRI's outputs must keep, on the lesion's crop.

    Attributes:
        background: crop mask of the exact-zero background (:func:`zero_background`).
        non_negative: the input has no negative value (a magnitude image).
    """

    background: NDArray[np.bool_]
    non_negative: bool

    @classmethod
    def of(cls, values: NDArray[np.generic], box: Box) -> BackgroundGuard:
        """The guard of a whole image's physical ``values`` for the crop ``box``."""
        return cls(zero_background(values)[box.slices], bool(np.min(values) >= 0))

    def apply(self, crop: NDArray[np.float32]) -> NDArray[np.float32]:
        """``crop`` (physical units) with the background at exactly 0 and, for a magnitude image,
        nothing below 0 (a new array)."""
        out = np.where(self.background, np.float32(0), crop).astype(np.float32)
        if self.non_negative:
            np.maximum(out, np.float32(0), out=out)
        return out
