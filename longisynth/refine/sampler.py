"""RePaint/SDEdit-style band inpainting with a batched denoiser.

For every item (one contrast of one timepoint) the crop is normalised, the band around the lesion
boundary is pushed ``strength`` of the way through the forward diffusion, and DDIM steps bring it
back while, at every step, the voxels outside the band are re-imposed from the input (forward-
noised to the current level). Tiles of all items go through the denoiser together, in batches of
at most ``max_batch``. Only band voxels are written back: everything else stays bit-identical.

Noise is drawn once per *noise group* from the study seed, so items of the same group (the same
contrast at every timepoint) share it and the synthesised texture is stable over time. Within a
group the noise follows the lesion's growth: the item with the largest lesion holds the group's
field, and a smaller lesion of the same group reads it along the radial growth field (at
c + (x − c)·R_ref/R, c the reference lesion's centroid, R the equivalent radii), so a texture
detail at a given depth inside the lesion at one scan is at the same relative depth at the next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.refine.patches import TILE, Intensity, region_of, tent_window, tile_starts
from longisynth.refine.schedule import alphas_cumprod, ddim_timesteps

Denoise = Callable[[NDArray[np.float32], NDArray[np.int64]], NDArray[np.float32]]
FEATHER_VOX = 2.0  # composite weight reaches 1 this far (voxels) inside the band
CONTEXT_VOX = 4  # tissue around the band the tiles reach into (voxels)
X0_CLIP = 8.0  # predicted x0 is clipped to ±8 model units (e.g. −4500…3500 HU) against blow-ups


@dataclass(frozen=True)
class RefineSettings:
    """How the refiner samples: DDIM ``steps`` from SDEdit ``strength`` (0…1: the fraction of the
    forward process the band is pushed through), DDIM ``eta`` (0: deterministic ODE, 1: DDPM-like
    fresh noise at each step — seeded, so still reproducible) and ``max_batch`` tiles per call."""

    # Defaults chosen on benchmarks/bench_realism.py with the shipped model: stronger settings
    # (strength 0.05–0.3, 4 steps) made the CT band seam measurably worse (benchmarks/RESULTS.md).
    steps: int = 2
    strength: float = 0.02
    eta: float = 1.0
    max_batch: int = 16
    # What the model rewrites: "band" (the boundary refiner) or "lesion" (a lesion-texture model:
    # interior and boundary); and the grid it was trained on (None: the scan's own grid; else
    # isotropic, mm: crops are resampled to it and back). A model's card sets both.
    region: str = "band"
    grid_mm: float | None = None


def _pad_to_tile(a: NDArray, mode: str) -> NDArray:
    pad = [(0, max(0, TILE - n)) for n in a.shape]
    return np.pad(a, pad, mode=mode) if any(p[1] for p in pad) else a  # type: ignore[call-overload]


def _tiles(band: NDArray[np.bool_]) -> list[tuple[slice, slice, slice]]:
    """Tiles over the band's bounding box (plus context) that hold band voxels."""
    idx = np.argwhere(band)
    lo = idx.min(axis=0) - CONTEXT_VOX
    hi = idx.max(axis=0) + 1 + CONTEXT_VOX
    axes = [tile_starts(int(a), int(b), n) for a, b, n in zip(lo, hi, band.shape, strict=True)]
    out = []
    for i in axes[0]:
        for j in axes[1]:
            for k in axes[2]:
                sl = (slice(i, i + TILE), slice(j, j + TILE), slice(k, k + TILE))
                if band[sl].any():
                    out.append(sl)
    return out


def follow_growth(
    field: NDArray[np.float32], center: NDArray[np.float64], factor: float
) -> NDArray[np.float32]:
    """``field`` read at c + (x − c)·``factor`` (nearest voxel, wrapping at the faces): the noise
    of a lesion ``factor`` times smaller than the one that owns ``field``, centred on ``center``
    (voxels). With ``factor`` ≥ 1 distinct voxels read distinct voxels, so the result is still
    white noise of the same distribution; ``factor`` 1 returns ``field`` itself."""
    if factor == 1.0:
        return field
    idx = []
    for ax, n in enumerate(field.shape):
        coord = center[ax] + (np.arange(n, dtype=np.float64) - center[ax]) * factor
        idx.append(np.mod(np.rint(coord).astype(np.intp), n))
    return field[np.ix_(*idx)]


def _growth_alignment(
    lesions: Sequence[NDArray[np.float32]], noise_groups: Sequence[int]
) -> list[tuple[NDArray[np.float64], float]]:
    """Per item: the centroid (voxels) of its group's largest lesion and the ratio of that
    lesion's equivalent radius to the item's own (1 for the reference and for empty masks)."""
    volumes = [float(les.sum()) for les in lesions]
    ref: dict[int, int] = {}
    for i, g in enumerate(noise_groups):
        if g not in ref or volumes[i] > volumes[ref[g]]:
            ref[g] = i
    centers = {g: np.argwhere(lesions[r] > 0).mean(axis=0) for g, r in ref.items() if volumes[r] > 0}
    out = []
    for i, g in enumerate(noise_groups):
        r = ref[g]
        if volumes[i] <= 0 or volumes[r] <= 0:
            out.append((np.zeros(3), 1.0))
            continue
        out.append((centers[g], float(np.cbrt(volumes[r] / volumes[i]))))
    return out


def refine_crops(
    images: Sequence[NDArray[np.float32]],
    lesions: Sequence[NDArray[np.bool_]],
    intensities: Sequence[Intensity],
    noise_groups: Sequence[int],
    denoise: Denoise,
    seed: int,
    settings: RefineSettings = RefineSettings(),
) -> tuple[list[NDArray[np.float32]], list[int]]:
    """Refine the lesion band of every item; returns the new images and each item's band size (voxels).

    Args:
        images: rendered crops (stored units, e.g. HU), all the same shape.
        lesions: the lesion mask of each crop.
        intensities: map of each item to model units.
        noise_groups: items with the same group share their noise field (temporal consistency),
            aligned along the growth of their lesions (:func:`follow_growth`).
        denoise: ``denoise(x (B,4,T,T,T), t (B,)) → ε̂ (B,1,T,T,T)``; any batch size.
        seed: the study's refiner seed.
    """
    shape = images[0].shape
    bands = [region_of(les, settings.region) for les in lesions]
    sizes = [int(b.sum()) for b in bands]
    if not any(sizes):
        return [img.copy() for img in images], sizes

    known = [_pad_to_tile(it.forward(img), "edge") for img, it in zip(images, intensities, strict=True)]
    band = [_pad_to_tile(b, "constant") for b in bands]
    lesion = [_pad_to_tile(les.astype(np.float32), "constant") for les in lesions]
    band_f = [b.astype(np.float32) for b in band]
    # Each item gets the tiles its own band needs (an early, small lesion needs few).
    tiles = [_tiles(b) if b.any() else [] for b in band]
    window = tent_window()
    weights = []
    for item_tiles in tiles:
        w = np.zeros(known[0].shape, np.float32)
        for sl in item_tiles:
            w[sl] += window
        weights.append(w)
    eps0 = {
        g: np.random.default_rng([seed, g]).standard_normal(known[0].shape, dtype=np.float32)
        for g in sorted(set(noise_groups))
    }
    aligned = _growth_alignment(lesion, noise_groups)
    noise = [follow_growth(eps0[g], *aligned[i]) for i, g in enumerate(noise_groups)]

    ab = alphas_cumprod()
    ts = ddim_timesteps(settings.strength, settings.steps)
    a0 = np.float32(np.sqrt(ab[ts[0]]))
    s0 = np.float32(np.sqrt(1.0 - ab[ts[0]]))
    x = [a0 * k + s0 * e for k, e in zip(known, noise, strict=True)]
    for step, t in enumerate(ts):
        eps = _predict(x, known, band_f, lesion, tiles, t, denoise, settings.max_batch)
        a_t = np.float32(np.sqrt(ab[t]))
        s_t = np.float32(np.sqrt(1.0 - ab[t]))
        ab_prev = ab[ts[step + 1]] if step + 1 < len(ts) else 1.0
        a_p = np.float32(np.sqrt(ab_prev))
        s_p = np.float32(np.sqrt(1.0 - ab_prev))
        # DDIM (Song et al. 2021, eq. 12): σ of the fresh noise, and the ε̂ direction's weight
        sigma = settings.eta * np.sqrt((1 - ab_prev) / (1 - ab[t]) * (1 - ab[t] / ab_prev))
        direction = np.float32(np.sqrt(max(1 - ab_prev - sigma**2, 0.0)))
        fresh = {
            g: np.random.default_rng([seed, g, step + 1]).standard_normal(known[0].shape, dtype=np.float32)
            for g in (eps0 if sigma > 0 else {})
        }
        for i in range(len(x)):
            if not tiles[i]:
                continue
            w = weights[i]
            e = np.where(w > 0, eps[i] / np.maximum(w, 1e-12), noise[i])
            x0 = np.clip((x[i] - s_t * e) / a_t, -X0_CLIP, X0_CLIP)
            moved = a_p * x0 + direction * e
            if sigma > 0:
                moved = moved + np.float32(sigma) * follow_growth(fresh[noise_groups[i]], *aligned[i])
            kept = a_p * known[i] + s_p * noise[i]
            x[i] = np.where(band[i], moved, kept).astype(np.float32)

    out = []
    crop = tuple(slice(0, n) for n in shape)
    for img, xi, b, it, k in zip(images, x, bands, intensities, known, strict=True):
        # Feathered composite: full weight FEATHER_VOX voxels into the band, fading towards its
        # faces, so the band's edge does not become a seam of its own.
        w = np.minimum(ndimage.distance_transform_edt(b) / FEATHER_VOX, 1.0).astype(np.float32)
        mixed = k[crop] + w * (xi[crop] - k[crop])
        new = img.copy()
        new[b] = it.backward(mixed[b])
        out.append(new)
    return out, sizes


def _predict(
    x: list[NDArray[np.float32]],
    guide: list[NDArray[np.float32]],
    band: list[NDArray[np.float32]],
    lesion: list[NDArray[np.float32]],
    tiles: list[list[tuple[slice, slice, slice]]],
    t: int,
    denoise: Denoise,
    max_batch: int,
) -> list[NDArray[np.float32]]:
    """ε̂ summed over tiles with the tent window, per item (divide by the summed window)."""
    jobs = [(i, sl) for i in range(len(x)) for sl in tiles[i]]
    window = tent_window()
    out = [np.zeros(x[0].shape, np.float32) for _ in x]
    for start in range(0, len(jobs), max_batch):
        chunk = jobs[start : start + max_batch]
        batch = np.stack(
            [np.stack([x[i][sl], guide[i][sl], band[i][sl], lesion[i][sl]]) for i, sl in chunk]
        ).astype(np.float32)
        pred = denoise(batch, np.full(len(chunk), t, dtype=np.int64))
        for (i, sl), p in zip(chunk, pred, strict=True):
            out[i][sl] += p[0] * window
    return out
