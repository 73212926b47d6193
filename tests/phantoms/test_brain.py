"""MNI152 brain phantom: contrasts, noise, bias, determinism (template from the nilearn wheel)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.phantoms.brain import (
    CONTRASTS,
    brain_phantom_tissues,
    make_brain_phantom,
    mni_template_affine,
)


@pytest.fixture(scope="module")
def phantom() -> tuple[dict[str, NDArray[np.int16]], NDArray[np.float64]]:
    return make_brain_phantom(seed=0)


@pytest.fixture(scope="module")
def tissues() -> dict[str, NDArray[np.float32]]:
    return brain_phantom_tissues()


def _pure(tissues: dict[str, NDArray[np.float32]], name: str) -> NDArray[np.bool_]:
    """Voxels that are (almost) only ``name``, eroded by one voxel away from other tissues."""
    core: NDArray[np.bool_] = ndimage.binary_erosion(tissues[name] > 0.95)
    return core


def test_grid_dtype_and_orientation(phantom, tissues) -> None:
    images, affine = phantom
    assert list(images) == list(CONTRASTS)
    expected_affine, shape = mni_template_affine(1.0)
    np.testing.assert_array_equal(affine, expected_affine)
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    assert shape == (197, 233, 189)
    for img in images.values():
        assert img.dtype == np.int16 and img.shape == shape
    # MNI origin (0, 0, 0) lies between the hemispheres, inside the brain.
    ijk = np.round(np.linalg.solve(affine, [0.0, 0.0, 0.0, 1.0])[:3]).astype(int)
    total = tissues["csf"] + tissues["gm"] + tissues["wm"]
    assert total[tuple(ijk)] > 0.9
    assert float(total.max()) <= 1.0 + 1e-5


def test_tissue_contrasts_follow_mr_physics(phantom, tissues) -> None:
    images, _ = phantom
    means = {
        c: {t: float(images[c][_pure(tissues, t)].mean()) for t in ("csf", "gm", "wm")} for c in CONTRASTS
    }
    t1, t2, flair = means["t1"], means["t2"], means["flair"]
    assert t1["wm"] > t1["gm"] > t1["csf"]
    assert 600 < t1["wm"] < 800  # scanner-like units: WM ≈ 700 on T1
    assert t2["csf"] > 1.5 * t2["gm"] and t2["gm"] > t2["wm"]
    assert flair["gm"] > flair["wm"] > flair["csf"]
    assert flair["csf"] < 0.4 * flair["gm"]  # CSF is nulled on FLAIR


def test_noise_is_two_to_four_percent_of_white_matter(phantom, tissues) -> None:
    images, _ = phantom
    wm = _pure(tissues, "wm")
    pair = wm[1:] & wm[:-1]
    for c in CONTRASTS:
        img = images[c].astype(np.float64)
        # Differences of neighbours cancel the smooth signal and bias; std/√2 is the noise σ.
        sigma = float((img[1:] - img[:-1])[pair].std()) / np.sqrt(2.0)
        assert 0.02 < sigma / float(img[wm].mean()) < 0.04, c


def test_bias_field_is_mild_but_present(phantom, tissues) -> None:
    images, _ = phantom
    wm = _pure(tissues, "wm")
    img = images["t1"].astype(np.float64)
    idx = np.argwhere(wm)
    centre = idx.mean(axis=0)
    octant_medians = []
    for bits in range(8):
        sel = np.ones(len(idx), dtype=bool)
        for ax in range(3):
            sel &= (idx[:, ax] > centre[ax]) if (bits >> ax) & 1 else (idx[:, ax] <= centre[ax])
        octant_medians.append(float(np.median(img[tuple(idx[sel].T)])))
    ratio = max(octant_medians) / min(octant_medians)
    assert 1.01 < ratio < 1.25


def test_skull_and_scalp_surround_the_brain(phantom, tissues) -> None:
    images, affine = phantom
    t1 = images["t1"]
    # Walk up from the top of the right hemisphere: brain, then dark bone, then bright scalp.
    i, j, _ = np.round(np.linalg.solve(affine, [20.0, -20.0, 0.0, 1.0])[:3]).astype(int)
    column = t1[i, j, :].astype(float)
    inside = tissues["csf"][i, j, :] + tissues["gm"][i, j, :] + tissues["wm"][i, j, :]
    brain_top = int(np.nonzero(inside > 0.5)[0].max())
    above = column[brain_top + 1 : brain_top + 16]
    assert above[:8].min() < 150  # skull: no MR signal from cortical bone
    assert above.max() > 600  # scalp fat, T1-bright
    assert column[brain_top + 30 :].mean() < 60  # air: only Rayleigh background noise


def test_deterministic_and_contrast_independent(phantom) -> None:
    images, _ = phantom
    alone, _ = make_brain_phantom(("t2",), seed=0)
    np.testing.assert_array_equal(alone["t2"], images["t2"])
    other, _ = make_brain_phantom(("t2",), seed=1)
    assert np.mean(other["t2"] != images["t2"]) > 0.3


def test_coarser_spacing_and_errors() -> None:
    images, affine = make_brain_phantom(("flair",), seed=3, spacing_mm=2.0)
    expected, shape = mni_template_affine(2.0)
    np.testing.assert_allclose(affine, expected)
    np.testing.assert_allclose(np.diag(affine)[:3], [2.0, 2.0, 2.0])
    assert images["flair"].shape == shape == brain_phantom_tissues(2.0)["wm"].shape
    with pytest.raises(ValueError, match="unknown contrast"):
        make_brain_phantom(("dwi",))


def test_demo_flair_has_flair_contrast() -> None:
    """The demo's FLAIR (what ``longisynth demo --kind glioma`` simulates on): GM brighter than WM,
    CSF nulled — median over tissue cores (fraction > 0.9), in the scan's physical values."""
    from longisynth.demo import demo_input

    demo = demo_input("glioma")
    assert demo.brain_tissues is not None
    flair = np.asarray(demo.scans["flair"].values())
    med = {t: float(np.median(flair[demo.brain_tissues[t] > 0.9])) for t in ("csf", "gm", "wm")}
    assert med["gm"] > 1.15 * med["wm"] and med["wm"] > 2.0 * med["csf"], med
    t1 = np.asarray(demo.scans["t1"].values())
    wm, gm = (float(np.median(t1[demo.brain_tissues[t] > 0.9])) for t in ("wm", "gm"))
    assert wm > gm  # and T1 the other way round
