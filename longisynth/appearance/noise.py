"""Estimate a scan's noise (level and spatial correlation) and synthesise noise that matches it.

Random → deterministic pair: :func:`estimate_noise` measures a :class:`NoiseModel` from the scan;
:func:`synthesize_noise` draws a field with that model from the study's generator. A lesion
rendered with this noise is neither smoother nor noisier than real tissue of the same scan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

_BLOCK = 40  # voxels per side of the homogeneous blocks used for estimation
_MAX_BLOCKS = 8


@dataclass(frozen=True)
class NoiseModel:
    """Stationary Gaussian noise: white noise smoothed by a Gaussian kernel.

    Attributes:
        sigma: standard deviation of the noise, in image units (HU for CT).
        kernel_mm: standard deviation (mm) of the Gaussian smoothing kernel along each array axis;
            0 means white noise along that axis.
    """

    sigma: float
    kernel_mm: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _candidate_blocks(mask: NDArray[np.bool_]) -> list[tuple[slice, slice, slice]]:
    """Blocks of side ``_BLOCK`` (or the whole array if smaller) that are mostly inside ``mask``."""
    b = [min(_BLOCK, n) for n in mask.shape]
    counts = [n // bb for n, bb in zip(mask.shape, b, strict=True)]
    trimmed = mask[: counts[0] * b[0], : counts[1] * b[1], : counts[2] * b[2]]
    blocks6 = trimmed.reshape(counts[0], b[0], counts[1], b[1], counts[2], b[2])
    # exact integer counts, one axis at a time (3× faster than a float mean over three axes)
    frac = blocks6.sum(axis=5, dtype=np.int32).sum(axis=3).sum(axis=1) / float(b[0] * b[1] * b[2])
    order = np.argsort(frac, axis=None, kind="stable")[::-1][:_MAX_BLOCKS]
    blocks = []
    for flat in order:
        i, j, k = np.unravel_index(flat, frac.shape)
        if frac[i, j, k] < 0.3:
            break
        blocks.append(
            (
                slice(i * b[0], (i + 1) * b[0]),
                slice(j * b[1], (j + 1) * b[1]),
                slice(k * b[2], (k + 1) * b[2]),
            )
        )
    return blocks


def estimate_noise(
    values: NDArray[np.floating] | NDArray[np.integer],
    spacing_mm: tuple[float, float, float],
    mask: NDArray[np.bool_],
) -> NoiseModel:
    """Measure noise level and correlation inside homogeneous tissue, bias-corrected.

    The raw estimator (:func:`_raw_estimate`) is biased low because detrending removes part of
    correlated noise; we correct it by running the same estimator on noise synthesised from the
    raw estimate (fixed calibration seed, so the result is deterministic) and scaling by the ratio.

    Args:
        values: the image in its physical units (HU for CT, scanner units for MRI).
        spacing_mm: voxel size along each array axis, mm.
        mask: candidate homogeneous tissue (e.g. soft tissue -100…150 HU, or white matter).
            Voxels near edges inside it are discarded automatically.

    Returns:
        The noise model. With too little homogeneous tissue, ``sigma`` is 0 (no noise added).
    """
    raw = _raw_estimate(values, spacing_mm, mask)
    if raw.sigma == 0.0:
        return raw
    probe = synthesize_noise((_BLOCK,) * 3, spacing_mm, raw, np.random.default_rng(12345))
    again = _raw_estimate(probe, spacing_mm, np.ones(probe.shape, dtype=bool))
    if again.sigma == 0.0:
        return raw
    kernel = tuple(r * r / a if a > 0 else r for r, a in zip(raw.kernel_mm, again.kernel_mm, strict=True))
    return NoiseModel(raw.sigma * raw.sigma / again.sigma, (kernel[0], kernel[1], kernel[2]))


def _raw_estimate(
    values: NDArray[np.floating] | NDArray[np.integer],
    spacing_mm: tuple[float, float, float],
    mask: NDArray[np.bool_],
) -> NoiseModel:
    """Uncorrected estimate; see :func:`estimate_noise`."""
    blocks = _candidate_blocks(mask)
    if not blocks:
        return NoiseModel(0.0, (0.0, 0.0, 0.0))
    residuals: list[NDArray[np.float64]] = []
    keeps: list[NDArray[np.bool_]] = []
    for sl in blocks:
        v = np.asarray(values[sl], dtype=np.float64)
        m = ndimage.binary_erosion(mask[sl], iterations=2)
        # Detrend with a 7-voxel local mean: removes anatomy, keeps (most of) the noise.
        r = v - ndimage.uniform_filter(v, size=7, mode="nearest")
        # (the running mean of r² can come out a rounding error below 0 on flat, exactly-zero data)
        local_sd = np.sqrt(np.maximum(ndimage.uniform_filter(r * r, size=5, mode="nearest"), 0.0))
        if m.sum() < 100:
            continue
        # Drop edges: keep voxels whose local spread is below the block's median inside the mask.
        m &= local_sd <= np.median(local_sd[m]) * 2.0
        residuals.append(r)
        keeps.append(m)
    if not residuals:
        return NoiseModel(0.0, (0.0, 0.0, 0.0))
    var = float(np.mean(np.concatenate([r[m] ** 2 for r, m in zip(residuals, keeps, strict=True)])))
    # local-mean removal scales white-noise variance by (1 - 1/343); ignore that 0.3 %.
    sigma = float(np.sqrt(var))
    kernel = []
    for ax in range(3):
        num = 0.0
        den = 0.0
        for r, m in zip(residuals, keeps, strict=True):
            a = np.take(r, range(r.shape[ax] - 1), axis=ax)
            b = np.take(r, range(1, r.shape[ax]), axis=ax)
            mm = np.take(m, range(r.shape[ax] - 1), axis=ax) & np.take(m, range(1, r.shape[ax]), axis=ax)
            num += float(np.sum(a[mm] * b[mm]))
            den += float(np.sum(a[mm] ** 2))
        rho = num / den if den > 0 else 0.0
        # Gaussian-filtered white noise with kernel s (mm) has autocorrelation exp(-d²/(4 s²)).
        if rho <= 0.02:
            kernel.append(0.0)
        else:
            rho = min(rho, 0.98)
            kernel.append(float(spacing_mm[ax] / np.sqrt(-4.0 * np.log(rho))))
    return NoiseModel(sigma, (kernel[0], kernel[1], kernel[2]))


def synthesize_noise(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    model: NoiseModel,
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Draw a zero-mean noise field with the model's level and correlation (image units)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    if model.sigma == 0.0:
        return np.zeros(shape, dtype=np.float32)
    k_vox = [k / s for k, s in zip(model.kernel_mm, spacing_mm, strict=True)]
    field = ndimage.gaussian_filter(white, sigma=k_vox, mode="wrap") if any(k_vox) else white
    # Analytic gain of a (sampled) Gaussian filter on unit white noise: 1/sqrt(prod(2*sqrt(pi)*k)).
    gain = 1.0
    for k in k_vox:
        if k > 0:
            x = np.arange(-int(4 * k + 0.5), int(4 * k + 0.5) + 1)
            w = np.exp(-0.5 * (x / k) ** 2)
            w /= w.sum()
            gain *= float(np.sqrt(np.sum(w * w)))
    return (field * np.float32(model.sigma / gain)).astype(np.float32)
