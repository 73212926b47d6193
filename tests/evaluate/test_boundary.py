"""Boundary realism metrics (longisynth.evaluate.boundary) on phantoms whose answer is known.

The background is correlated Gaussian noise (like CT noise: white noise through a Gaussian PSF).
A *good* insertion adds a sphere of constant contrast to it, so the sphere and its surroundings
keep the background's own texture; *bad* insertions mimic what a seam looks like: the
refinement band replaced by blurred image plus white noise (right level, wrong texture), or a
noise-free sphere alpha-blended with a blurred edge.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from longisynth.evaluate import boundary as realism
from longisynth.refine.patches import BAND_OUT_VOX, band_of

N = 44
RADIUS = 7.0
STD = 20.0  # background noise std (HU)
SPACING = (1.0, 1.0, 1.0)


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float = 1.0) -> np.ndarray:
    """Stationary noise of std STD: white noise through a Gaussian (σ in voxels), filtered on a
    larger array and cropped so the array's faces carry no filter artefact."""
    pad = 8
    big = ndimage.gaussian_filter(rng.standard_normal(tuple(n + 2 * pad for n in shape)), sigma)
    out = big[tuple(slice(pad, pad + n) for n in shape)]
    return STD * out / out.std()


@pytest.fixture(scope="module")
def phantom() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    bg = -800.0 + correlated_noise(rng, (N, N, N))
    c = (N - 1) / 2.0
    z, y, x = np.mgrid[:N, :N, :N]
    r = np.sqrt((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2)
    lesion = r <= RADIUS
    good = bg + 300.0 * lesion
    band = band_of(lesion)
    white = STD * rng.standard_normal(bg.shape)
    bad_white = np.where(band, ndimage.gaussian_filter(good, 1.2) + white, good)
    alpha = ndimage.gaussian_filter(lesion.astype(float), 1.5)
    bad_paste = (1.0 - alpha) * bg + alpha * -500.0
    return {"lesion": lesion, "good": good, "bad_white": bad_white, "bad_paste": bad_paste, "bg": bg}


def test_seam_masks_sit_on_the_band_outer_surface(phantom: dict[str, np.ndarray]) -> None:
    lesion = phantom["lesion"]
    masks = realism.seam_masks(lesion)
    dist = ndimage.distance_transform_edt(~lesion)
    assert not (masks["seam"] & lesion).any()
    assert not (masks["band_out"] & lesion).any()
    assert (masks["band_out"] <= masks["band"]).all()
    seam_dist = dist[masks["seam"]]
    assert seam_dist.min() >= 1.0
    assert seam_dist.max() <= BAND_OUT_VOX + 2.0
    # Both layers are there: rewritten (in the band) and untouched (just outside it).
    assert (masks["seam"] & masks["band"]).any()
    assert (masks["seam"] & masks["outside"]).any()
    shell = realism.reference_shell(lesion)
    assert not (shell & masks["band"]).any()


@pytest.mark.parametrize("bad", ["bad_white", "bad_paste"])
def test_seam_score_flags_a_seam(phantom: dict[str, np.ndarray], bad: str) -> None:
    good = realism.seam_score(phantom["good"], phantom["lesion"], SPACING)
    worse = realism.seam_score(phantom[bad], phantom["lesion"], SPACING)
    assert good["intensity_matched"]
    assert good["seam_ks"] < 0.15
    assert 0.85 < good["median_ratio"] < 1.2
    assert worse["seam_ks"] > good["seam_ks"] + 0.3
    assert worse["median_ratio"] > 1.5


def test_seam_gradient_is_per_mm(phantom: dict[str, np.ndarray]) -> None:
    one = realism.seam_score(phantom["good"], phantom["lesion"], (1.0, 1.0, 1.0))
    two = realism.seam_score(phantom["good"], phantom["lesion"], (2.0, 2.0, 2.0))
    assert two["seam_median_grad"] == pytest.approx(one["seam_median_grad"] / 2.0, rel=1e-9)
    assert two["seam_ks"] == pytest.approx(one["seam_ks"])


@pytest.mark.parametrize("bad", ["bad_white", "bad_paste"])
def test_nps_distance_flags_foreign_texture(phantom: dict[str, np.ndarray], bad: str) -> None:
    good = realism.nps_distance(phantom["good"], phantom["lesion"], SPACING)
    worse = realism.nps_distance(phantom[bad], phantom["lesion"], SPACING)
    # A thin shell of ~1300 voxels gives a noisy spectrum: ≈ 0.01–0.15 between two regions of
    # the same stationary noise.
    assert good["nps_l1"] < 0.2
    assert 0.85 < good["std_ratio"] < 1.2  # the lesion's contrast does not leak into the residual
    assert worse["nps_l1"] > max(0.25, 2.0 * good["nps_l1"])
    assert worse["nps_lsd_db"] > good["nps_lsd_db"] + 3.0
    assert worse["std_ratio"] > 1.5
    assert sum(good["nps_adjacent"]) == pytest.approx(1.0)


def test_nps_sees_texture_not_only_level(phantom: dict[str, np.ndarray]) -> None:
    """Band replaced by white noise of the *same residual std* as the background: the noise level
    matches, the spectrum does not."""
    lesion, bg = phantom["lesion"], phantom["bg"]
    band_out = realism.seam_masks(lesion)["band_out"]
    res_std = realism.highpass_residual(bg, np.zeros_like(lesion)).std()
    rng = np.random.default_rng(3)
    white = rng.standard_normal(bg.shape)
    white_res_std = (white - ndimage.gaussian_filter(white, realism.DETREND_SIGMA_VOX, mode="nearest")).std()
    image = np.where(band_out, -800.0 + white * res_std / white_res_std, bg)
    out = realism.nps_distance(image, lesion, SPACING)
    assert 0.8 < out["std_ratio"] < 1.25
    assert out["nps_l1"] > 0.25
    # White noise is flat; the correlated background falls off towards Nyquist.
    assert out["nps_adjacent"][-1] > 2.0 * out["nps_reference"][-1]


def test_highpass_residual_removes_the_lesion_step(phantom: dict[str, np.ndarray]) -> None:
    lesion = phantom["lesion"]
    with_lesion = realism.highpass_residual(phantom["good"], lesion)
    without = realism.highpass_residual(phantom["bg"], lesion)
    band = realism.seam_masks(lesion)["band"]
    # The constant-contrast step is gone up to the noise of the contrast estimate.
    assert np.abs(with_lesion - without)[band].std() < 0.25 * without[band].std()


def _patches(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    noise = rng.standard_normal((n, 9, 9, 9))
    out = ndimage.gaussian_filter(noise, (0, sigma, sigma, sigma)) if sigma > 0 else noise
    return out / out.std()


def test_auc_of_identical_distributions_is_near_half() -> None:
    aucs = []
    for seed in range(4):
        rng = np.random.default_rng(100 + seed)
        aucs.append(realism.patch_classifier_auc(_patches(rng, 150, 1.0), _patches(rng, 150, 1.0), seed))
    assert all(0.35 < a < 0.65 for a in aucs)
    assert abs(float(np.mean(aucs)) - 0.5) < 0.07


def test_auc_of_different_textures_is_high() -> None:
    rng = np.random.default_rng(5)
    # Same std, different spectrum: white vs correlated noise.
    assert realism.patch_classifier_auc(_patches(rng, 100, 1.0), _patches(rng, 100, 0.0), seed=0) > 0.9
    # Same texture, 1.6× the noise level.
    louder = 1.6 * _patches(rng, 100, 1.0)
    assert realism.patch_classifier_auc(_patches(rng, 100, 1.0), louder, seed=0) > 0.9


def test_auc_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(9)
    real, syn = _patches(rng, 60, 1.0), _patches(rng, 60, 0.6)
    assert realism.patch_classifier_auc(real, syn, seed=4) == realism.patch_classifier_auc(real, syn, seed=4)


def test_mann_whitney_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(2)
    neg, pos = rng.integers(0, 5, 40).astype(float), rng.integers(1, 6, 30).astype(float)
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert realism.mann_whitney_auc(neg, pos) == pytest.approx(pairs)


def test_realism_patches_are_deterministic_and_placed_right(phantom: dict[str, np.ndarray]) -> None:
    lesion = phantom["lesion"]
    real, syn = realism.realism_patches(phantom["good"], lesion, seed=1)
    real2, syn2 = realism.realism_patches(phantom["good"], lesion, seed=1)
    assert np.array_equal(real, real2) and np.array_equal(syn, syn2)
    assert real.shape[1:] == (realism.PATCH_EDGE,) * 3 and len(real) >= 20 and len(syn) >= 20
    # Real patch cubes never touch the lesion or its band.
    band = band_of(lesion)
    mask = lesion | band
    centres = realism.patch_centres(np.ones(lesion.shape, bool), 0, max_patches=10**6)
    assert len(centres) > 0
    region = ~ndimage.binary_dilation(mask, np.ones((9, 9, 9), bool))
    for c in realism.patch_centres(region, 3):
        assert not mask[tuple(slice(k - 4, k + 5) for k in c)].any()


def test_realism_metrics_rank_good_above_bad(phantom: dict[str, np.ndarray]) -> None:
    good = realism.realism_metrics(phantom["good"], phantom["lesion"], SPACING, seed=0)
    bad = realism.realism_metrics(phantom["bad_white"], phantom["lesion"], SPACING, seed=0)
    assert bad["patch_auc"] > 0.95
    assert good["patch_auc"] < bad["patch_auc"] - 0.1
    assert good["seam_ks"] < bad["seam_ks"] and good["nps_l1"] < bad["nps_l1"]


def test_anisotropic_spacing_and_errors(phantom: dict[str, np.ndarray]) -> None:
    out = realism.nps_distance(phantom["good"], phantom["lesion"], (0.8, 0.8, 2.0))
    assert len(out["freq_cyc_per_mm"]) == realism.NPS_BINS
    assert out["freq_cyc_per_mm"][-1] < 0.5 / 2.0
    with pytest.raises(ValueError, match="empty"):
        realism.seam_score(phantom["good"], np.zeros((N, N, N), bool), SPACING)
    with pytest.raises(ValueError, match="shape"):
        realism.nps_distance(phantom["good"], phantom["lesion"][:-1], SPACING)
    with pytest.raises(ValueError, match="at least 2"):
        realism.patch_classifier_auc(np.zeros((1, 9, 9, 9)), np.zeros((5, 9, 9, 9)), seed=0)
