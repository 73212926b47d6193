"""Tiles, refinement bands, intensity normalisation and training pairs.

Shared by the sampler and ``models/train_refiner.py`` so that the model sees at inference exactly
the kind of input it was trained on. All sizes here are in voxels of the scan's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

TILE = 24  # model input edge (voxels); the network is fully convolutional but batching needs one size
STRIDE = 18  # tile stride (voxels): 6 voxels of overlap, blended with a tent window
BAND_OUT_VOX = 2  # band reaches this many voxels outside the lesion mask …
BAND_IN_VOX = 2  # … and this many inside it
CHANNELS = ("x_t", "guide", "band", "lesion")  # model input channels, in order

# CT is normalised with a fixed window so every scan and the training data share units:
# aerated lung (−850 HU) → −0.7, soft tissue (+40 HU) → 1.08.
CT_CENTER_HU = -500.0
CT_SCALE_HU = 500.0


@dataclass(frozen=True)
class Intensity:
    """Affine map stored values → model units: ``(v − center) / scale`` (units of the scan: HU for CT)."""

    center: float
    scale: float

    def forward(self, values: NDArray[np.floating]) -> NDArray[np.float32]:
        return ((values - self.center) / self.scale).astype(np.float32)

    def backward(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        return (x * self.scale + self.center).astype(np.float32)


CT_INTENSITY = Intensity(CT_CENTER_HU, CT_SCALE_HU)


def _ball(radius: int) -> NDArray[np.bool_]:
    r = np.arange(-radius, radius + 1)
    return np.asarray(r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2 <= radius**2)


def band_of(lesion: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The voxels the refiner may rewrite: within ``BAND_OUT_VOX`` outside and ``BAND_IN_VOX`` inside
    the lesion boundary (a shell of ≈ 4 voxels). Empty for an empty lesion."""
    if not lesion.any():
        return np.zeros(lesion.shape, dtype=bool)
    outer = ndimage.binary_dilation(lesion, _ball(BAND_OUT_VOX))
    inner = ndimage.binary_erosion(lesion, _ball(BAND_IN_VOX), border_value=1)
    return np.asarray(outer & ~inner)


REGIONS = ("band", "lesion", "interior")


def region_of(lesion: NDArray[np.bool_], region: str = "band") -> NDArray[np.bool_]:
    """The voxels a model rewrites: the boundary ``band`` (:func:`band_of`); the whole ``lesion``
    and its outside band (a texture model: interior and boundary); or the lesion's ``interior``
    (the lesion less its outermost voxel: a texture model that keeps the rule-based margin)."""
    if region == "band":
        return band_of(lesion)
    if region not in REGIONS:
        raise ValueError(f"unknown refiner region {region!r}: {', '.join(REGIONS)}")
    if not lesion.any():
        return np.zeros(lesion.shape, dtype=bool)
    if region == "interior":
        return np.asarray(ndimage.binary_erosion(lesion, _ball(1)))
    return np.asarray(ndimage.binary_dilation(lesion, _ball(BAND_OUT_VOX)))


def centred_tile(shape: tuple[int, ...], centre: NDArray[np.integer]) -> tuple[slice, slice, slice]:
    """The TILE³ window of an array of ``shape`` (≥ TILE per axis) closest to centred on ``centre``."""
    lo = [int(np.clip(int(c) - TILE // 2, 0, n - TILE)) for c, n in zip(centre, shape, strict=True)]
    return (slice(lo[0], lo[0] + TILE), slice(lo[1], lo[1] + TILE), slice(lo[2], lo[2] + TILE))


def nearest_distance(
    query: NDArray[np.float32], region: NDArray[np.bool_], bank: NDArray[np.float32]
) -> float:
    """Smallest RMS difference over ``region`` between the tile ``query`` and the tiles of ``bank``
    (N, TILE, TILE, TILE), model units: the memorisation distance of a texture model."""
    q = query[region]
    return float(np.sqrt(((bank[:, region] - q[None, :]) ** 2).mean(axis=1)).min())


def tent_window() -> NDArray[np.float32]:
    """Blending weight of a tile: highest in the middle, > 0 at the edge."""
    w = np.minimum(np.arange(TILE) + 1, TILE - np.arange(TILE)).astype(np.float32)
    return w[:, None, None] * w[None, :, None] * w[None, None, :]


def tile_starts(lo: int, hi: int, size: int) -> list[int]:
    """Start indices of tiles covering [lo, hi) on an axis of ``size`` ≥ TILE voxels."""
    lo, hi = max(0, lo), min(size, hi)
    if hi - lo <= TILE:
        return [int(np.clip((lo + hi) // 2 - TILE // 2, 0, size - TILE))]
    starts = list(range(lo, hi - TILE, STRIDE))
    return [*starts, hi - TILE]


def random_blob(
    rng: np.random.Generator, shape: tuple[int, int, int] = (TILE, TILE, TILE)
) -> NDArray[np.float32]:
    """Soft occupancy (0…1) of an irregular ellipsoid, radius 3–10 voxels, edge 0.4–1.2 voxels wide."""
    center = rng.uniform(TILE * 0.3, TILE * 0.7, size=3)
    radii = rng.uniform(3.0, 10.0, size=3)
    grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    rho = np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii, strict=True)))
    bumps = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 3.0)
    bumps *= 0.25 / (np.abs(bumps).max() + 1e-6)
    signed = (rho - 1.0 - bumps) * float(radii.mean())  # ≈ signed distance, voxels
    width = rng.uniform(0.4, 1.2)
    return (1.0 / (1.0 + np.exp(signed / width))).astype(np.float32)


def training_example(
    patch: NDArray[np.float32], noise_std: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """One training stack (4, TILE, TILE, TILE) from a healthy patch in model units.

    Channels: target x0, guide, band, lesion (the x_t channel is formed by the trainer from x0
    and noise). The target is the patch plus a soft blob of constant offset,
    so the lesion carries the patch's *real* noise and texture; the guide is what the rule-based
    renderer produces: inside the band, a blurred target plus white noise of about the scan's
    noise level (right amplitude, wrong texture); outside the band, the target itself.
    """
    blob = random_blob(rng) if rng.random() > 0.1 else np.zeros(patch.shape, np.float32)
    offset = float(rng.uniform(-1.5, 1.5))
    x0 = (patch + offset * blob).astype(np.float32)
    lesion = blob > 0.5
    band = band_of(lesion)
    blurred = ndimage.gaussian_filter(x0, float(rng.uniform(0.6, 1.4)))
    white = rng.standard_normal(patch.shape).astype(np.float32) * noise_std * float(rng.uniform(0.5, 1.5))
    guide = np.where(band, blurred + white, x0).astype(np.float32)
    return np.stack([x0, guide, band.astype(np.float32), lesion.astype(np.float32)])


def noise_std_estimate(patch: NDArray[np.float32]) -> float:
    """Robust white-noise level of a patch (model units): MAD of the patch minus its 3×3×3 mean,
    rescaled by √(1 − 1/27) so white noise of σ gives σ."""
    high = patch - ndimage.uniform_filter(patch, 3)
    mad = float(np.median(np.abs(high - np.median(high))))
    return 1.4826 * mad / np.sqrt(1.0 - 1.0 / 27.0)
