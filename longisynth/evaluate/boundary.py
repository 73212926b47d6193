"""Boundary realism of inserted lesions: does the lesion boundary look like the scan around it?

Three complementary measurements, all comparing tissue next to the lesion boundary (where the
renderer and the learned refiner write) with *untouched* tissue of the same scan and the same
intensity class a little further away. Lower is better for the first two; 0.5 is ideal for the
third.

* :func:`seam_score` — a seam is a jump where rewritten voxels meet untouched ones: the gradient
  magnitude (image units per mm, e.g. HU/mm) on the outer edge of the refinement band is compared
  with the gradient magnitude of untouched tissue 6–12 voxels outside the lesion (two-sample
  Kolmogorov–Smirnov distance ``seam_ks`` and the ratio of medians).
* :func:`nps_distance` — noise texture: the radially averaged noise power spectrum (NPS) of the
  high-pass residual in the outer half of the band vs that of untouched tissue (L1 distance
  ``nps_l1`` between the normalised curves, log-spectral distance, and the noise std of each).
* :func:`patch_classifier_auc` — can a small classifier (logistic regression on handcrafted
  texture features, 5-fold cross-validated) tell boundary patches from untouched patches?

Everything is pure NumPy/SciPy and deterministic. Distances along the grid (band widths, shells,
patch edges) are in voxels of the image's own grid, as the refiner's band is; gradients and
spatial frequencies use the physical spacing (mm). The band is the refiner's own
(:func:`longisynth.refine.patches.band_of`): ``BAND_IN_VOX`` voxels inside to ``BAND_OUT_VOX``
voxels outside the lesion boundary.

Typical use on a study (``image`` in physical units, ``lesion`` a boolean mask on the same grid,
both cropped with some margin — ≥ 16 voxels — around the lesion)::

    seam = seam_score(image, lesion, spacing_mm)["seam_ks"]
    nps = nps_distance(image, lesion, spacing_mm)["nps_l1"]
    real, synthetic = realism_patches(image, lesion, seed=0)
    auc = patch_classifier_auc(real, synthetic, seed=0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, stats

from longisynth.refine.patches import BAND_IN_VOX, BAND_OUT_VOX, band_of

__all__ = [
    "BAND_IN_VOX",
    "BAND_OUT_VOX",
    "PATCH_EDGE",
    "REFERENCE_SHELL_VOX",
    "extract_patches",
    "gradient_magnitude",
    "highpass_residual",
    "intensity_matched",
    "mann_whitney_auc",
    "nps_distance",
    "patch_centres",
    "patch_classifier_auc",
    "patch_features",
    "realism_metrics",
    "realism_patches",
    "reference_shell",
    "seam_masks",
    "seam_score",
]

PATCH_EDGE = 9  # patch edge (voxels)
REFERENCE_SHELL_VOX = (6.0, 12.0)  # untouched reference tissue: this far outside the lesion (voxels)
DETREND_SIGMA_VOX = 1.5  # Gaussian σ (voxels) of the local mean removed before texture statistics
FACE_MARGIN_VOX = 3  # texture statistics skip this many voxels at the array's faces (≈ 2 σ of the high-pass)
CLASS_SIGMA_VOX = 2.0  # Gaussian σ (voxels) of the local mean that defines a voxel's intensity class
CLASS_WIDTH_SD = 3.0  # intensity class: probe median ± this many robust sd of the probe's class values
NPS_MAX_LAG_VOX = 5  # autocovariance lags used for the NPS (voxels per axis)
NPS_BINS = 5  # radial frequency bins between 0 and the (coarsest-axis) Nyquist frequency
MIN_PATCHES = 40  # fewer candidates on the stride-2 grid → every voxel is a candidate centre
MIN_REFERENCE_VOXELS = 64  # fewer intensity-matched reference voxels → use the whole shell

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_FACES = ndimage.generate_binary_structure(3, 1)  # 6-connectivity


# ----------------------------------------------------------------------------- regions


def _as_float(image: NDArray[Any]) -> FloatArray:
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3D image, got shape {arr.shape}")
    return arr


def _as_mask(lesion: NDArray[Any], shape: tuple[int, ...]) -> BoolArray:
    mask = np.asarray(lesion) > 0
    if mask.shape != shape:
        raise ValueError(f"lesion mask shape {mask.shape} differs from the image's {shape}")
    if not mask.any():
        raise ValueError("the lesion mask is empty")
    return mask


def _interior(shape: tuple[int, ...], margin: int) -> BoolArray:
    """True more than ``margin`` − 1 voxels away from every face of the array (margin in voxels)."""
    out = np.zeros(shape, dtype=bool)
    if all(n > 2 * margin for n in shape):
        out[tuple(slice(margin, n - margin) for n in shape)] = True
    return out


def _masked_mean(image: FloatArray, mask: BoolArray, sigma_vox: float) -> FloatArray:
    """Gaussian local mean of ``image`` over ``mask`` only (normalised convolution, σ in voxels);
    NaN where the mask has no weight nearby."""
    weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma_vox, mode="nearest")
    total = ndimage.gaussian_filter(np.where(mask, image, 0.0), sigma_vox, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 1e-3, total / np.maximum(weight, 1e-12), np.nan)


def seam_masks(lesion: NDArray[Any]) -> dict[str, BoolArray]:
    """The refinement band and its outer seam, as boolean masks on the lesion's grid.

    * ``band``: ``band_of(lesion)`` — ``BAND_IN_VOX`` voxels inside to ``BAND_OUT_VOX`` voxels
      outside the lesion boundary (what the refiner may rewrite).
    * ``outside``: untouched voxels outside the lesion, ``~band & ~lesion``.
    * ``band_out``: band voxels outside the lesion, ``band & ~lesion`` (rewritten healthy tissue).
    * ``seam``: the two voxel layers that meet at the band's outer surface, 6-connected:
      ``(dilate(band) & outside) | (band_out & dilate(outside))`` — the first untouched layer and
      the outermost rewritten layer. A central difference at any seam voxel spans the surface.
    """
    mask = np.asarray(lesion) > 0
    band = band_of(mask)
    outside = ~band & ~mask
    band_out = band & ~mask
    first_untouched = ndimage.binary_dilation(band, _FACES) & outside
    last_rewritten = band_out & ndimage.binary_dilation(outside, _FACES)
    return {
        "band": band,
        "outside": outside,
        "band_out": band_out,
        "seam": first_untouched | last_rewritten,
    }


def reference_shell(lesion: NDArray[Any], shell_vox: tuple[float, float] = REFERENCE_SHELL_VOX) -> BoolArray:
    """Voxels whose Euclidean distance (voxels) to the nearest lesion voxel lies in ``shell_vox``
    (inclusive): untouched tissue near, but clear of, the lesion and its band."""
    mask = np.asarray(lesion) > 0
    dist = ndimage.distance_transform_edt(~mask)
    return np.asarray((dist >= shell_vox[0]) & (dist <= shell_vox[1]))


def intensity_matched(
    image: NDArray[Any],
    lesion: NDArray[Any],
    probe: BoolArray,
    candidates: BoolArray,
    width_sd: float = CLASS_WIDTH_SD,
) -> tuple[BoolArray, BoolArray, bool]:
    """Restrict probe and candidate voxels to the probe's dominant intensity class.

    A voxel's class value is the Gaussian local mean (σ = ``CLASS_SIGMA_VOX`` voxels, image units)
    of *untouched tissue outside the lesion* around it, so neither the lesion nor the rewritten
    band leaks into it (and it is the same with and without refinement). The class is the probe's
    median class value ± ``width_sd`` robust standard deviations (1.4826 · MAD): e.g. aerated lung
    around a nodule, without the vessel walls or pleura that a few probe voxels touch.

    Returns ``(probe_kept, candidates_kept, matched)``; ``matched`` is False — and the inputs are
    returned unchanged — when fewer than ``MIN_REFERENCE_VOXELS`` candidates (or 8 probe voxels)
    fall in the class.
    """
    img = _as_float(image)
    masks = seam_masks(_as_mask(lesion, img.shape))
    local = _masked_mean(img, masks["outside"], CLASS_SIGMA_VOX)
    probe_values = local[probe & np.isfinite(local)]
    if probe_values.size == 0:
        return probe, candidates, False
    centre = float(np.median(probe_values))
    spread = 1.4826 * float(np.median(np.abs(probe_values - centre)))
    half = width_sd * spread + 1e-6 * max(1.0, abs(centre))
    with np.errstate(invalid="ignore"):
        in_class = np.abs(local - centre) <= half
    probe_kept, matched = probe & in_class, candidates & in_class
    if int(matched.sum()) < MIN_REFERENCE_VOXELS or int(probe_kept.sum()) < 8:
        return probe, candidates, False
    return probe_kept, matched, True


# ----------------------------------------------------------------------------- seam


def gradient_magnitude(image: NDArray[Any], spacing_mm: Sequence[float]) -> FloatArray:
    """|∇image| by central differences in physical units (image units per mm, e.g. HU/mm);
    one-sided on the array's faces."""
    img = _as_float(image)
    grads = np.gradient(img, *[float(s) for s in spacing_mm])
    return np.sqrt(sum(g * g for g in grads))


def seam_score(
    image: NDArray[Any],
    lesion: NDArray[Any],
    spacing_mm: Sequence[float],
    shell_vox: tuple[float, float] = REFERENCE_SHELL_VOX,
) -> dict[str, Any]:
    """Boundary-seam statistic: is the gradient at the band's outer surface like tissue gradient?

    Samples |∇image| (central differences, image units per mm) on the ``seam`` of
    :func:`seam_masks` — the first untouched voxel layer outside the refinement band plus the
    band's outermost (rewritten, outside-the-lesion) layer — and on reference tissue: voxels
    ``shell_vox`` (default 6–12) voxels outside the lesion. Both sets are restricted to the
    seam's dominant intensity class of the surrounding untouched tissue (:func:`intensity_matched`;
    e.g. aerated lung, not vessel walls or pleura). Voxels on the array's outer face are excluded.

    Args:
        image: 3D image in physical units (HU for CT).
        lesion: lesion mask on the same grid (> 0 = lesion).
        spacing_mm: voxel spacing per array axis, mm.
        shell_vox: reference shell, voxels from the lesion (inclusive).

    Returns:
        ``seam_ks`` (main score): two-sample Kolmogorov–Smirnov distance between the seam and
        reference gradient distributions, 0…1, lower = less seam; ``seam_ks_pvalue``;
        ``median_ratio``: median seam gradient / median reference gradient (1 = no seam, > 1 a
        visible edge, < 1 an over-smoothed band); ``seam_median_grad``, ``reference_median_grad``
        (image units / mm); ``n_seam``, ``n_reference`` (voxels); ``intensity_matched`` (False:
        too few same-class voxels, no class restriction was applied).
    """
    img = _as_float(image)
    mask = _as_mask(lesion, img.shape)
    inner = _interior(img.shape, 1)
    seam = seam_masks(mask)["seam"] & inner
    if not seam.any():
        raise ValueError("the lesion's band has no outer surface inside the image")
    seam, ref, matched = intensity_matched(img, mask, seam, reference_shell(mask, shell_vox) & inner)
    if not ref.any():
        raise ValueError("no reference tissue in the shell around the lesion: crop with a larger margin")
    grad = gradient_magnitude(img, spacing_mm)
    g_seam, g_ref = grad[seam], grad[ref]
    ks = stats.ks_2samp(g_seam, g_ref)
    med_seam, med_ref = float(np.median(g_seam)), float(np.median(g_ref))
    return {
        "seam_ks": float(ks.statistic),
        "seam_ks_pvalue": float(ks.pvalue),
        "median_ratio": med_seam / med_ref if med_ref > 0 else float("inf"),
        "seam_median_grad": med_seam,
        "reference_median_grad": med_ref,
        "n_seam": int(g_seam.size),
        "n_reference": int(g_ref.size),
        "intensity_matched": matched,
    }


# ----------------------------------------------------------------------------- noise power spectrum


def highpass_residual(
    image: NDArray[Any], lesion: NDArray[Any], sigma_vox: float = DETREND_SIGMA_VOX
) -> FloatArray:
    """Noise and fine texture: the image minus its local mean, taken separately inside and
    outside the lesion (image units).

    The local mean is a normalised Gaussian convolution (σ = ``sigma_vox`` voxels) over the
    voxel's own compartment — lesion or not — so the lesion's different mean intensity leaves no
    ring of residual around its mask (a lesion of constant contrast leaves no trace at all),
    while whatever the renderer did *not* confine to the mask (a blurred edge spilling outside,
    missing or foreign noise) does remain.
    """
    img = _as_float(image)
    mask = np.asarray(lesion) > 0
    if not mask.any() or mask.all():
        return img - ndimage.gaussian_filter(img, sigma_vox, mode="nearest")
    local = np.where(mask, _masked_mean(img, mask, sigma_vox), _masked_mean(img, ~mask, sigma_vox))
    return img - local


def _masked_autocovariance(residual: FloatArray, region: BoolArray, max_lag: int) -> tuple[FloatArray, int]:
    """Autocovariance C(τ) of ``residual`` over the voxel pairs that both lie in ``region``, for
    lags |τ_i| ≤ max_lag voxels: Σ r(x)r(x+τ) / #pairs, via zero-padded FFTs. Returns the
    (2·max_lag+1)³ array centred on τ = 0 and the smallest pair count used."""
    r = np.where(region, residual - residual[region].mean(), 0.0)
    m = region.astype(np.float64)
    # Crop to the region's bounding box (plus the lag) to keep the FFTs small.
    idx = np.argwhere(region)
    lo = np.maximum(idx.min(axis=0) - max_lag, 0)
    hi = np.minimum(idx.max(axis=0) + max_lag + 1, region.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    r, m = r[sl], m[sl]
    shape = [n + max_lag for n in r.shape]
    fr, fm = np.fft.rfftn(r, shape, axes=(0, 1, 2)), np.fft.rfftn(m, shape, axes=(0, 1, 2))
    num = np.fft.irfftn(fr * np.conj(fr), shape, axes=(0, 1, 2))
    den = np.fft.irfftn(fm * np.conj(fm), shape, axes=(0, 1, 2))
    lags = np.r_[np.arange(-max_lag, 0), np.arange(0, max_lag + 1)]
    grid = np.ix_(lags, lags, lags)
    num_c, den_c = num[grid], np.rint(den[grid])
    cov = np.where(den_c >= 1, num_c / np.maximum(den_c, 1), 0.0)
    return cov, int(den_c.min())


def _radial_nps(cov: FloatArray, spacing_mm: Sequence[float], n_bins: int) -> tuple[FloatArray, FloatArray]:
    """Radially averaged NPS (image units² · mm³) from a centred autocovariance cube, with a
    separable Bartlett taper on the lags; returns bin centres (cycles/mm) and powers."""
    n = cov.shape[0]
    max_lag = n // 2
    taper_1d = 1.0 - np.abs(np.arange(-max_lag, max_lag + 1)) / (max_lag + 1.0)
    taper = taper_1d[:, None, None] * taper_1d[None, :, None] * taper_1d[None, None, :]
    voxel_mm3 = float(np.prod([float(s) for s in spacing_mm]))
    power = np.real(np.fft.fftn(np.fft.ifftshift(cov * taper))) * voxel_mm3
    freqs = [np.fft.fftfreq(n, d=float(s)) for s in spacing_mm]
    fz, fy, fx = freqs
    radius = np.sqrt(fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2)
    nyquist = 0.5 / max(float(s) for s in spacing_mm)
    edges = np.linspace(0.0, nyquist, n_bins + 1)
    edges[-1] += 1e-9
    which = np.digitize(radius.ravel(), edges) - 1
    flat = power.ravel()
    out = np.array([flat[which == b].mean() if np.any(which == b) else 0.0 for b in range(n_bins)])
    return 0.5 * (edges[:-1] + edges[1:]), np.maximum(out, 0.0)


def nps_distance(
    image: NDArray[Any],
    lesion: NDArray[Any],
    spacing_mm: Sequence[float],
    shell_vox: tuple[float, float] = REFERENCE_SHELL_VOX,
    max_lag_vox: int = NPS_MAX_LAG_VOX,
    n_bins: int = NPS_BINS,
) -> dict[str, Any]:
    """Noise texture next to the lesion vs untouched tissue: distance between radial NPS curves.

    Both regions are first high-pass filtered by :func:`highpass_residual` (local mean of the
    voxel's own compartment removed, σ = ``DETREND_SIGMA_VOX`` voxels) so the lesion's own contrast does not
    enter; voxels within ``FACE_MARGIN_VOX`` voxels of the array's faces are left out (filter
    edge). The *adjacent* region is the rewritten healthy tissue, ``band & ~lesion`` (up to
    ``BAND_OUT_VOX`` voxels outside the lesion); the *reference* region is the shell
    ``shell_vox`` voxels outside the lesion; both restricted to the adjacent region's dominant
    intensity class (:func:`intensity_matched`).
    Because these regions are thin shells, not cubes, the NPS is computed as the Fourier
    transform (Wiener–Khinchin) of the masked autocovariance over voxel pairs that both lie in
    the region, lags up to ``max_lag_vox`` voxels per axis with a Bartlett taper, radially
    averaged in ``n_bins`` bins of physical frequency from 0 to the Nyquist frequency of the
    coarsest axis (cycles/mm).

    Returns:
        ``nps_l1`` (main score): L1 distance between the two NPS curves each normalised to sum 1
        (0…2; shape of the spectrum, i.e. noise *texture*, independent of its level; lower = more
        alike); ``nps_lsd_db``: RMS log-spectral distance of the unnormalised curves, dB (texture
        and level); ``std_adjacent``, ``std_reference``: residual noise std in each region
        (image units, e.g. HU), and their ratio ``std_ratio``; ``robust_std_ratio``: the same
        with 1.4826 · MAD instead of the std (insensitive to a few vessels); ``freq_cyc_per_mm`` and the
        normalised curves ``nps_adjacent``, ``nps_reference``; ``n_adjacent``, ``n_reference``
        (voxels); ``intensity_matched``.
    """
    img = _as_float(image)
    mask = _as_mask(lesion, img.shape)
    if len(spacing_mm) != 3:
        raise ValueError("spacing_mm needs one value per axis")
    residual = highpass_residual(img, mask)
    masks = seam_masks(mask)
    inner = _interior(img.shape, FACE_MARGIN_VOX)
    adjacent = masks["band_out"] & inner
    if int(adjacent.sum()) < 8:
        raise ValueError("too few band voxels outside the lesion for a noise spectrum")
    adjacent, ref, matched = intensity_matched(img, mask, adjacent, reference_shell(mask, shell_vox) & inner)
    if int(ref.sum()) < 8:
        raise ValueError("no reference tissue in the shell around the lesion: crop with a larger margin")
    curves, stds, robust = [], [], []
    for region in (adjacent, ref):
        values = residual[region]
        robust.append(1.4826 * float(np.median(np.abs(values - np.median(values)))))
        cov, _ = _masked_autocovariance(residual, region, max_lag_vox)
        freq, power = _radial_nps(cov, spacing_mm, n_bins)
        curves.append(power)
        stds.append(float(np.sqrt(max(cov[max_lag_vox, max_lag_vox, max_lag_vox], 0.0))))
    tiny = 1e-12 * max(float(curves[1].max()), float(curves[0].max()), 1e-30)
    norm = [c / max(float(c.sum()), tiny) for c in curves]
    lsd = np.sqrt(np.mean((10.0 * np.log10((curves[0] + tiny) / (curves[1] + tiny))) ** 2))
    return {
        "nps_l1": float(np.abs(norm[0] - norm[1]).sum()),
        "nps_lsd_db": float(lsd),
        "std_adjacent": stds[0],
        "std_reference": stds[1],
        "std_ratio": stds[0] / stds[1] if stds[1] > 0 else float("inf"),
        "robust_std_ratio": robust[0] / robust[1] if robust[1] > 0 else float("inf"),
        "freq_cyc_per_mm": freq.tolist(),
        "nps_adjacent": norm[0].tolist(),
        "nps_reference": norm[1].tolist(),
        "n_adjacent": int(adjacent.sum()),
        "n_reference": int(ref.sum()),
        "intensity_matched": matched,
    }


# ----------------------------------------------------------------------------- patches


def patch_centres(
    region: BoolArray,
    seed: int,
    edge: int = PATCH_EDGE,
    max_patches: int = 200,
    stride: int = 2,
) -> NDArray[np.intp]:
    """Deterministic patch centres (voxel indices, shape (n, 3)) in ``region``.

    Candidates are the region's voxels on a grid of ``stride`` voxels (fewer near-duplicate,
    overlapping patches) whose ``edge``-voxel cube lies wholly inside the array; at most
    ``max_patches`` are drawn without replacement with ``numpy.random.default_rng(seed)`` and
    returned in C order.
    """
    half = edge // 2
    ok = np.asarray(region, dtype=bool) & _interior(region.shape, half)
    grid = np.zeros_like(ok)
    grid[::stride, ::stride, ::stride] = True
    idx = np.argwhere(ok & grid)
    if len(idx) > max_patches:
        pick = np.sort(np.random.default_rng(seed).choice(len(idx), size=max_patches, replace=False))
        idx = idx[pick]
    return idx


def extract_patches(volume: NDArray[Any], centres: NDArray[np.integer], edge: int = PATCH_EDGE) -> FloatArray:
    """Cubes of ``edge`` voxels centred on ``centres`` (n, 3) → float64 array (n, edge, edge, edge).
    Centres must be at least ``edge // 2`` voxels from every face."""
    vol = np.asarray(volume, dtype=np.float64)
    half = edge // 2
    out = np.empty((len(centres), edge, edge, edge), dtype=np.float64)
    for k, centre in enumerate(np.asarray(centres, dtype=np.intp)):
        lo = centre - half
        out[k] = vol[lo[0] : lo[0] + edge, lo[1] : lo[1] + edge, lo[2] : lo[2] + edge]
    return out


def realism_patches(
    image: NDArray[Any],
    lesion: NDArray[Any],
    seed: int,
    edge: int = PATCH_EDGE,
    max_patches: int = 200,
    max_distance_vox: float = 20.0,
) -> tuple[FloatArray, FloatArray]:
    """Real and synthetic patches of one image for :func:`patch_classifier_auc`.

    Patches are cut from the :func:`highpass_residual` (image units) so the classifier sees
    texture, noise and seams, not the mere presence of a lesion of other mean intensity.

    * synthetic: centred on refinement-band voxels (the lesion boundary);
    * real: the whole cube is untouched (no lesion or band voxel in it), the centre lies within
      ``max_distance_vox`` voxels of the lesion and is of the band's intensity class.

    Each set has at most ``max_patches`` patches (see :func:`patch_centres`: a stride-2 grid, or
    every voxel when that gives fewer than ``MIN_PATCHES``; the real set uses ``seed + 1``);
    cubes stay ``FACE_MARGIN_VOX`` voxels clear of the array's faces. Returns
    ``(real, synthetic)``, each (n, edge, edge, edge).
    """
    img = _as_float(image)
    mask = _as_mask(lesion, img.shape)
    masks = seam_masks(mask)
    residual = highpass_residual(img, mask)
    inner = _interior(img.shape, FACE_MARGIN_VOX + edge // 2)
    touched = ndimage.binary_dilation(mask | masks["band"], np.ones((edge, edge, edge), dtype=bool))
    near = ndimage.distance_transform_edt(~mask) <= max_distance_vox
    _, real_region, _ = intensity_matched(img, mask, masks["band_out"], near & ~touched & inner)
    centres = []
    for region, offset in ((real_region, 1), (masks["band"] & inner, 0)):
        found = patch_centres(region, seed + offset, edge, max_patches)
        if len(found) < MIN_PATCHES:  # small lesion: every voxel, not every other one
            found = patch_centres(region, seed + offset, edge, max_patches, stride=1)
        centres.append(found)
    return extract_patches(residual, centres[0], edge), extract_patches(residual, centres[1], edge)


def _hann3(edge: int) -> FloatArray:
    w = np.hanning(edge + 2)[1:-1]
    return w[:, None, None] * w[None, :, None] * w[None, None, :]


def patch_features(patches: NDArray[Any]) -> FloatArray:
    """Handcrafted texture features per patch, shape (n, 12); patches (n, e, e, e), image units.

    Features: mean, log std, skewness and excess kurtosis of the high-pass residual (patch minus
    its 3×3×3 mean); log of the 25th, 50th and 90th percentile of the gradient magnitude (central
    differences, image units per voxel); log total power and the fraction of power in three
    radial frequency bands (< 0.15, 0.15–0.3, ≥ 0.3 cycles/voxel) of the Hann-windowed,
    mean-removed patch; log std of the patch.
    """
    arr = np.asarray(patches, dtype=np.float64)
    if arr.ndim != 4 or len(set(arr.shape[1:])) != 1:
        raise ValueError(f"expected patches of shape (n, e, e, e), got {arr.shape}")
    n, edge = arr.shape[0], arr.shape[1]
    eps = 1e-9 * max(1.0, float(np.abs(arr).max()) if arr.size else 1.0)
    hp = arr - ndimage.uniform_filter(arr, size=(1, 3, 3, 3), mode="reflect")
    flat = hp.reshape(n, -1)
    hp_std = flat.std(axis=1)
    z = (flat - flat.mean(axis=1, keepdims=True)) / (hp_std[:, None] + eps)
    skew = (z**3).mean(axis=1)
    kurt = (z**4).mean(axis=1) - 3.0
    grads = np.gradient(arr, axis=(1, 2, 3))
    gmag = np.sqrt(sum(g * g for g in grads)).reshape(n, -1)
    gq = np.quantile(gmag, [0.25, 0.5, 0.9], axis=1).T
    centred = (arr - arr.mean(axis=(1, 2, 3), keepdims=True)) * _hann3(edge)
    power = np.abs(np.fft.fftn(centred, axes=(1, 2, 3))) ** 2
    f = np.fft.fftfreq(edge)
    radius = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    total = power.reshape(n, -1).sum(axis=1) + eps
    bands = [
        power[:, (radius > 0) & (radius < 0.15)].sum(axis=1),
        power[:, (radius >= 0.15) & (radius < 0.3)].sum(axis=1),
        power[:, radius >= 0.3].sum(axis=1),
    ]
    feats = [
        flat.mean(axis=1),
        np.log(hp_std + eps),
        skew,
        kurt,
        *np.log(gq + eps).T,
        np.log(total),
        *(b / total for b in bands),
        np.log(arr.reshape(n, -1).std(axis=1) + eps),
    ]
    return np.stack(feats, axis=1)


def _fit_logistic(X: FloatArray, y: FloatArray, ridge: float, iterations: int = 50) -> FloatArray:
    """L2-penalised logistic regression by Newton's method (IRLS); X carries a leading 1 column
    (its weight, the intercept, is not penalised). Returns the weights."""
    d = X.shape[1]
    w = np.zeros(d)
    penalty = np.full(d, ridge)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30.0, 30.0)))
        grad = X.T @ (p - y) + penalty * w
        hess = (X * (p * (1.0 - p))[:, None]).T @ X + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def mann_whitney_auc(scores_negative: NDArray[Any], scores_positive: NDArray[Any]) -> float:
    """AUC = P(score of a positive > score of a negative) + ½ P(tie), by the Mann–Whitney U
    statistic on average ranks."""
    neg, pos = np.asarray(scores_negative, float), np.asarray(scores_positive, float)
    ranks = stats.rankdata(np.concatenate([neg, pos]))
    u = ranks[len(neg) :].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(neg) * len(pos)))


def patch_classifier_auc(
    real_patches: NDArray[Any],
    synthetic_patches: NDArray[Any],
    seed: int,
    folds: int = 5,
    ridge: float = 1.0,
) -> float:
    """Cross-validated AUC of a real-vs-synthetic patch classifier (0.5 = indistinguishable).

    Features are :func:`patch_features`; the classifier is L2-penalised logistic regression
    (``ridge`` on standardised features), fitted in NumPy. Folds are stratified: each class is
    shuffled with ``numpy.random.default_rng(seed)`` and dealt round-robin into ``folds`` folds
    (fewer when a class has fewer patches). Held-out scores of all folds are pooled and the AUC
    is the Mann–Whitney statistic (synthetic = positive class). Values well below 0.5 can occur
    by chance with few patches; ≥ 0.5 + a few 1/√n means the classifier finds a difference.

    With independent patches of one distribution the AUC is 0.5 ± ≈ 0.03 (150 per class). Patches
    of *one* image are not independent: boundary patches overlap and all come from one small
    region, so even an invisible insertion scores above 0.5 (≈ 0.6–0.75 on stationary noise, more
    in heterogeneous anatomy). Compare values on the same anatomy and masks (e.g. with vs without
    refinement, and the unmodified input as the floor), not with 0.5.

    Raises:
        ValueError: fewer than 2 patches in a class.
    """
    real = patch_features(real_patches)
    syn = patch_features(synthetic_patches)
    if len(real) < 2 or len(syn) < 2:
        raise ValueError(f"need at least 2 patches per class (got {len(real)} real, {len(syn)} synthetic)")
    k = int(min(folds, len(real), len(syn)))
    X = np.concatenate([real, syn])
    y = np.concatenate([np.zeros(len(real)), np.ones(len(syn))])
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.intp)
    for cls in (0.0, 1.0):
        members = np.flatnonzero(y == cls)
        fold[rng.permutation(members)] = np.arange(len(members)) % k
    scores = np.empty(len(y))
    for f in range(k):
        test, train = fold == f, fold != f
        mu, sd = X[train].mean(axis=0), X[train].std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        design = np.column_stack([np.ones(len(X)), (X - mu) / sd])
        w = _fit_logistic(design[train], y[train], ridge)
        scores[test] = design[test] @ w
    return mann_whitney_auc(scores[y == 0], scores[y == 1])


# ----------------------------------------------------------------------------- all together


def realism_metrics(
    image: NDArray[Any], lesion: NDArray[Any], spacing_mm: Sequence[float], seed: int = 0
) -> dict[str, Any]:
    """All three metrics of one image: ``seam_ks``, ``nps_l1``, ``patch_auc`` plus the full
    ``seam`` and ``nps`` dictionaries and the patch counts (``n_real_patches``,
    ``n_synthetic_patches``). ``patch_auc`` is NaN when a patch set has fewer than 2 patches."""
    seam = seam_score(image, lesion, spacing_mm)
    nps = nps_distance(image, lesion, spacing_mm)
    real, syn = realism_patches(image, lesion, seed)
    auc = patch_classifier_auc(real, syn, seed) if min(len(real), len(syn)) >= 2 else float("nan")
    return {
        "seam_ks": seam["seam_ks"],
        "nps_l1": nps["nps_l1"],
        "patch_auc": auc,
        "seam": seam,
        "nps": nps,
        "n_real_patches": len(real),
        "n_synthetic_patches": len(syn),
    }
