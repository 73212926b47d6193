"""Value conventions of brain MRI (raw, min–max, z-scored; skull-stripped or not) and the
guarantees the engine keeps for them (exact-zero background, no negatives in magnitude images)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from longisynth.anatomy import brain_registration as br
from longisynth.anatomy.mri_intensity import (
    BackgroundGuard,
    detect_convention,
    non_negative_copy,
    skull_stripped,
    zero_background,
)
from longisynth.errors import LesionDoesNotFitError
from longisynth.geometry import Box, Geometry


def _skull_stripped_raw(seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """A 'brain' ellipsoid of positive tissue values (raw scanner units) in an exact-zero background."""
    rng = np.random.default_rng(seed)
    grid = np.mgrid[:40, :48, :36].astype(np.float32)
    r = np.sqrt(((grid[0] - 20) / 16) ** 2 + ((grid[1] - 24) / 20) ** 2 + ((grid[2] - 18) / 14) ** 2)
    brain = r < 1.0
    img = np.where(brain, 300.0 + 80.0 * rng.standard_normal(brain.shape), 0.0).astype(np.float32)
    img[brain] = np.maximum(img[brain], 20.0)
    return img, brain


def _zscore(img: NDArray[np.float32], brain: NDArray[np.bool_]) -> NDArray[np.float32]:
    out = np.zeros_like(img)
    out[brain] = (img[brain] - img[brain].mean()) / img[brain].std()
    return out


def test_conventions_are_detected() -> None:
    raw, brain = _skull_stripped_raw()
    z = _zscore(raw, brain)
    minmax = raw / raw.max()
    assert detect_convention(raw).convention == "raw"
    assert detect_convention(raw.astype(np.int16)).convention == "raw"
    assert detect_convention(minmax).convention == "minmax"
    assert detect_convention(z).convention == "zscore"
    assert all(detect_convention(a).zero_background for a in (raw, minmax, z))
    assert detect_convention(raw).non_negative and not detect_convention(z).non_negative
    # The whole field of view z-scored (air included): signed, no exact-zero background.
    whole = (raw - raw.mean()) / raw.std()
    conv = detect_convention(whole)
    assert conv.convention == "zscore" and not conv.zero_background


def test_non_negative_copy_of_a_zscored_brain_keeps_background_and_order() -> None:
    raw, brain = _skull_stripped_raw()
    z = _zscore(raw, brain)
    pos = non_negative_copy(z)
    assert pos.dtype == np.float32
    assert np.all(pos[~brain] == 0)
    assert pos[brain].min() > 0
    # The darkest brain voxels sit well above the background ("not as dark as air").
    assert np.percentile(pos[brain], 0.5) >= 0.09 * np.percentile(pos[brain], 99.5)
    # Monotone inside the brain (above its 0.5th percentile, the tissue order is unchanged).
    lo = np.percentile(z[brain], 0.5)
    keep = brain & (z > lo)
    order = np.argsort(z[keep], kind="stable")
    assert np.all(np.diff(pos[keep][order]) >= 0)
    # Idempotent, and raw/min–max images are left as they are.
    assert np.array_equal(non_negative_copy(pos), pos)
    assert np.array_equal(non_negative_copy(raw), raw)
    whole = (raw - raw.mean()) / raw.std()
    shifted = non_negative_copy(whole)
    assert shifted.min() == 0 and np.all(shifted >= 0) and shifted.max() > 0


def test_zero_background_is_the_border_connected_zeros() -> None:
    raw, brain = _skull_stripped_raw()
    raw[20, 24, 18] = 0.0  # an exact zero inside the brain (e.g. the minimum of a min–max image)
    bg = zero_background(raw)
    assert np.array_equal(bg, ~brain)
    assert not bg[20, 24, 18]
    assert not zero_background(raw + 1.0).any()


def test_skull_stripped_needs_the_non_zero_voxels_to_be_brain() -> None:
    raw, brain = _skull_stripped_raw()
    assert skull_stripped(raw, brain)
    head = raw.copy()
    shell = ~brain & (np.mgrid[:40, :48, :36][0] > 1)  # 'scalp' filling most of the background
    head[shell] = 150.0
    assert not skull_stripped(head, brain)


def test_background_guard_zeroes_background_and_clips_magnitude_images() -> None:
    raw, brain = _skull_stripped_raw()
    box = Box((5, 5, 5), (35, 43, 31))
    guard = BackgroundGuard.of(raw, box)
    crop = raw[box.slices].copy()
    crop[0, 0, 0] = 12.5  # something written into the background
    crop[15, 19, 13] = -3.0  # a negative value inside the brain
    out = guard.apply(crop)
    assert np.all(out[~brain[box.slices]] == 0)
    assert out[15, 19, 13] == 0 and out.min() >= 0
    signed = BackgroundGuard.of(_zscore(raw, brain), box)
    assert not signed.non_negative
    z = _zscore(raw, brain)[box.slices]
    assert np.array_equal(signed.apply(z), z)  # negatives of a z-scored brain are tissue


def test_registration_failure_is_a_no_brain_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fixed: object, contrast: str) -> None:
        raise RuntimeError("All samples map outside moving image buffer")

    monkeypatch.setattr(br, "_register", fail)
    raw, _ = _skull_stripped_raw()
    with pytest.raises(LesionDoesNotFitError, match="no brain found"):
        br.detect_brain(raw, Geometry(np.diag([4.0, 4.0, 4.0, 1.0]), raw.shape), "t1")
