"""The brain's dural compartments: the midsagittal surface (falx) and the tentorium, from the image.

A glioma cannot grow through the falx cerebri or the tentorium cerebelli: it reaches the other
hemisphere only through the corpus callosum (the "butterfly" pattern) and the posterior fossa only
through the brainstem. The growth model makes these surfaces no-flux boundaries
(:mod:`longisynth.growth.glioma`), so it must know where they are in *this* brain, including a
midline already shifted by a mass.

**Midsagittal surface.** The affine MNI152 registration gives a first midline (MNI x = 0), but a
mass bends the real one by millimetres to centimetres (subfalcine shift). We refine it from the
tissue maps: in MNI coordinates the brain is cut into 4 × 4 mm (y, z) columns, and along x each
column's brain-tissue fraction (GM + WM) is a profile. Within ±20 mm of the registered midline,
the midline is where that profile best matches its own mirror image over ±30 mm (a lateral
ventricle or a sulcus is locally symmetric too, hence the wide mirror), with a small preference
for little tissue (the interhemispheric fissure, the falx, the third ventricle). Columns with
brain on both sides whose best position stands out from the rest (score ≥ 0.1 below the
column's median) are kept; a median filter drops those that disagree with their neighbours
(a sulcus, a necrotic core), and a normalised Gaussian interpolation fills the others from their
neighbours. The result is a smooth surface ``x = m(y, z)`` in MNI mm.

**Tentorium.** The posterior fossa (cerebellum, brainstem) is found by a watershed of the tissue
map from markers placed in MNI coordinates (:func:`posterior_fossa`), so its boundary lies in the
CSF and dura between cerebellum and cerebrum. The tentorial notch is not modelled as a passage:
a glioma stays in the compartment (supratentorial or posterior fossa) where it starts.

**Corpus callosum.** White matter (WM > 0.5) within 15 mm of the midline, −40 < y < 35 mm,
0 < z < 35 mm (MNI; the callosum spans y ≈ −38…+32, z ≈ +5…+30 in MNI152 2009, ± the few
millimetres an affine registration leaves).

Worlds: RAS+ mm; MNI coordinates via ``anatomy.mni_to_scan``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.brain import in_mirrored_ellipsoid
from longisynth.geometry import Box

BIN_MM = 4.0  # (y, z) column size of the midline search, mm
SEARCH_MM = 20.0  # the midline is looked for within this of the registered MNI x = 0, mm
FLANK_MM = (4.0, 12.0)  # tissue on each side of a trough is averaged this far from it, mm
MIN_FLANK_TISSUE = 0.5  # both flanks must be brain tissue (GM + WM fraction)
MIRROR_MM = 30.0  # the tissue profile is compared with its mirror image this far on each side, mm
TROUGH_WEIGHT = 0.3  # weight of the tissue fraction at the midline against the mirror mismatch
MIN_CONTRAST = (
    0.1  # the best position must beat the column's median score by this  # flank tissue minus trough tissue
)
OUTLIER_MM = 4.0  # a column's trough this far from its neighbours' median is dropped
FILL_SIGMA_BINS = 1.5  # smoothing / interpolation of the surface, in columns (6 mm)
CALLOSUM_HALF_WIDTH_MM = 15.0

LEFT, RIGHT, INFRATENTORIAL = 1, 2, 3  # compartment labels (0: outside the brain)
COMPARTMENT_NAMES = {LEFT: "left hemisphere", RIGHT: "right hemisphere", INFRATENTORIAL: "posterior fossa"}


@dataclass(frozen=True)
class MidlineSurface:
    """The midsagittal surface ``x = m(y, z)`` in MNI mm, sampled on (y, z) columns.

    Attributes:
        y0_mm, z0_mm: MNI y and z of the centre of column (0, 0), mm.
        x_mm: m at each column, MNI mm (shape (ny, nz)).
        reliable_fraction: fraction of the columns with brain on both sides whose midline was
            found (the others are interpolated).
        found: the columns where it was found.
    """

    y0_mm: float
    z0_mm: float
    x_mm: NDArray[np.float64]
    reliable_fraction: float
    found: NDArray[np.bool_]

    def at(self, y_mm: NDArray[np.float64], z_mm: NDArray[np.float64]) -> NDArray[np.float64]:
        """m(y, z), MNI mm (bilinear between columns; the edge columns extend outwards)."""
        coords = np.stack([(y_mm - self.y0_mm) / BIN_MM, (z_mm - self.z0_mm) / BIN_MM])
        out: NDArray[np.float64] = ndimage.map_coordinates(self.x_mm, coords, order=1, mode="nearest")
        return out

    @property
    def shift_p95_mm(self) -> float:
        """95th percentile of |m| over the columns where the midline was found: how far this
        brain's midline bends away from the registered plane, mm."""
        found = np.abs(self.x_mm[self.found])
        return float(np.percentile(found, 95)) if found.size else 0.0


def _mni_axes(
    affine_vox_to_mni: NDArray[np.float64], shape: tuple[int, int, int], box: Box
) -> tuple[NDArray[np.float32], ...]:
    """MNI x, y, z (mm) of every voxel of ``box`` (float32 arrays of the box's shape)."""
    grids = np.ogrid[tuple(slice(s.start, s.stop) for s in box.slices)]
    out = []
    for row in range(3):
        a = affine_vox_to_mni[row]
        out.append(
            (a[3] + sum(np.float32(a[k]) * grids[k].astype(np.float32) for k in range(3))).astype(np.float32)
        )
    return tuple(np.broadcast_to(o, box.shape) for o in out)


def _brain_box(brain: NDArray[np.bool_]) -> Box:
    found = ndimage.find_objects(brain.astype(np.uint8))
    if not found or found[0] is None:
        return Box((0, 0, 0), (0, 0, 0))
    sl = found[0]
    return Box(tuple(s.start for s in sl), tuple(s.stop for s in sl))  # type: ignore[arg-type]


def vox_to_mni(geometry_affine: NDArray[np.float64], mni_to_scan: NDArray[np.float64]) -> NDArray[np.float64]:
    """4×4 scan voxel → MNI mm."""
    out: NDArray[np.float64] = np.linalg.inv(mni_to_scan) @ geometry_affine
    return out


def estimate_midline(
    tissue: NDArray[np.floating], brain: NDArray[np.bool_], vox_to_mni_affine: NDArray[np.float64]
) -> MidlineSurface:
    """The midsagittal surface of one brain (see the module docstring).

    Args:
        tissue: GM + WM probability on the scan grid (0 outside the brain).
        brain: brain mask on the scan grid.
        vox_to_mni_affine: 4×4 scan voxel → MNI mm (:func:`vox_to_mni`).
    """
    box = _brain_box(brain)
    if box.shape == (0, 0, 0):
        return MidlineSurface(0.0, 0.0, np.zeros((1, 1)), 0.0, np.zeros((1, 1), dtype=bool))
    half = SEARCH_MM + MIRROR_MM + 2.0
    x, y, z = _mni_axes(vox_to_mni_affine, brain.shape, box)  # type: ignore[arg-type]
    near = np.abs(x) <= half
    xs, ys, zs = x[near], y[near], z[near]
    t = np.asarray(tissue[box.slices], dtype=np.float32)[near]
    y0, z0 = float(ys.min()), float(zs.min())
    yi = np.floor((ys - y0) / BIN_MM).astype(np.intp)
    zi = np.floor((zs - z0) / BIN_MM).astype(np.intp)
    nx = int(2 * half) + 1
    xi = np.clip(np.round(xs + half).astype(np.intp), 0, nx - 1)
    ny, nz = int(yi.max()) + 1, int(zi.max()) + 1
    flat = (yi * nz + zi) * nx + xi
    sums = np.bincount(flat, weights=t, minlength=ny * nz * nx).reshape(ny, nz, nx)
    counts = np.bincount(flat, minlength=ny * nz * nx).reshape(ny, nz, nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = sums / counts
    # Columns sampled at every x: fill the few empty 1 mm bins (coarse slices) along x.
    valid = counts > 0
    filled = np.where(valid, profile, 0.0)
    w = ndimage.uniform_filter1d(valid.astype(np.float64), 3, axis=2)
    v = ndimage.uniform_filter1d(filled, 3, axis=2)
    profile = np.where(valid, profile, np.divide(v, w, out=np.full_like(v, np.nan), where=w > 0))
    complete = ~np.isnan(profile).any(axis=2)
    profile = ndimage.gaussian_filter1d(np.nan_to_num(profile, nan=0.0), 1.5, axis=2)

    centre = int(half)
    lo, hi = centre - int(SEARCH_MM), centre + int(SEARCH_MM)
    # The midline has mirror-image brain around it over a wide range; a lateral ventricle or a
    # sulcus is locally symmetric only.
    asymmetry = np.zeros((*profile.shape[:2], hi - lo + 1))
    for d in range(2, int(MIRROR_MM) + 1):
        asymmetry += np.abs(profile[..., lo + d : hi + 1 + d] - profile[..., lo - d : hi + 1 - d])
    asymmetry /= int(MIRROR_MM) - 1
    score = asymmetry + TROUGH_WEIGHT * profile[..., lo : hi + 1]
    best = np.argmin(score, axis=2)
    trough = best + lo
    f1, f2 = int(FLANK_MM[0]), int(FLANK_MM[1])
    ii = np.arange(nx)
    rel = ii[None, None, :] - trough[..., None]
    left = np.where((rel <= -f1) & (rel >= -f2), profile, np.nan)
    right = np.where((rel >= f1) & (rel <= f2), profile, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        flank = np.minimum(np.nanmean(left, axis=2), np.nanmean(right, axis=2))
    contrast = np.median(score, axis=2) - np.take_along_axis(score, best[..., None], axis=2)[..., 0]
    both_sides = complete & (flank >= MIN_FLANK_TISSUE)
    reliable = both_sides & (contrast >= MIN_CONTRAST)
    m = (trough - centre).astype(np.float64)

    # Drop troughs that disagree with their neighbours' median (sulci, necrotic cores).
    med = _masked_median(m, reliable, 5)
    reliable &= np.abs(m - med) <= OUTLIER_MM
    weight = ndimage.gaussian_filter(reliable.astype(np.float64), FILL_SIGMA_BINS, mode="nearest")
    value = ndimage.gaussian_filter(np.where(reliable, m, 0.0), FILL_SIGMA_BINS, mode="nearest")
    fallback = float(np.median(m[reliable])) if reliable.any() else 0.0
    surface = np.where(weight > 0.05, value / np.maximum(weight, 1e-9), fallback)
    n_both = int(both_sides.sum())
    fraction = float(reliable.sum()) / n_both if n_both else 0.0
    return MidlineSurface(y0 + BIN_MM / 2, z0 + BIN_MM / 2, surface, fraction, reliable)


def _masked_median(values: NDArray[np.float64], mask: NDArray[np.bool_], size: int) -> NDArray[np.float64]:
    """Median of ``values`` over the ``mask``ed neighbours in a size × size window (NaN if none)."""
    pad = size // 2
    padded = np.pad(np.where(mask, values, np.nan), pad, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as documented
        out: NDArray[np.float64] = np.nanmedian(windows.reshape(*values.shape, -1), axis=-1)
    return out


@dataclass(frozen=True)
class Compartments:
    """Dural compartments of the brain on (a box of) the scan grid.

    Attributes:
        labels: 0 outside the brain, :data:`LEFT` / :data:`RIGHT` supratentorial hemisphere,
            :data:`INFRATENTORIAL` posterior fossa (int8).
        callosum: the corpus callosum, where a "butterfly" glioma may cross the midline.
        lateral_mm: signed distance to the midsagittal surface along MNI x, mm (negative = left).
    """

    labels: NDArray[np.int8]
    callosum: NDArray[np.bool_]
    lateral_mm: NDArray[np.float32]


def compartments(
    brain: NDArray[np.bool_],
    tissue: NDArray[np.floating],
    wm: NDArray[np.floating],
    vox_to_mni_affine: NDArray[np.float64],
    surface: MidlineSurface,
) -> Compartments:
    """Compartments of every voxel of the grid of ``brain`` (all inputs on that grid)."""
    whole = Box((0, 0, 0), brain.shape)  # type: ignore[arg-type]
    x, y, z = _mni_axes(vox_to_mni_affine, brain.shape, whole)  # type: ignore[arg-type]
    lateral = (x - surface.at(np.asarray(y, np.float64), np.asarray(z, np.float64))).astype(np.float32)
    labels = np.where(lateral < 0, LEFT, RIGHT).astype(np.int8)
    labels[posterior_fossa(brain, tissue, vox_to_mni_affine)] = INFRATENTORIAL
    labels[~brain] = 0
    callosum = (
        brain
        & (np.asarray(wm) > 0.5)
        & (np.abs(lateral) < CALLOSUM_HALF_WIDTH_MM)
        & (y > -40.0)
        & (y < 35.0)
        & (z > 0.0)
        & (z < 35.0)
    )
    return Compartments(labels, np.asarray(callosum), lateral)


def posterior_fossa(
    brain: NDArray[np.bool_], tissue: NDArray[np.floating], vox_to_mni_affine: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Cerebellum and brainstem: the brain below the tentorium, on the full grid.

    A watershed of the tissue map (GM + WM) from two sets of markers in MNI coordinates —
    cerebellar hemispheres (±28, −62, −35) mm, vermis (0, −65, −25) mm and pons (0, −25, −32) mm
    below; everything above z = +10 mm, and the anterior temporal lobes (y > −15 mm, |x| > 20 mm)
    above — puts the boundary in the CSF and dura between them, where the tentorium is, rather
    than on a plane through the temporal and occipital lobes.
    """
    box = _brain_box(brain)
    out = np.zeros(brain.shape, dtype=bool)
    if box.shape == (0, 0, 0):
        return out
    x, y, z = _mni_axes(vox_to_mni_affine, brain.shape, box)  # type: ignore[arg-type]
    inside = brain[box.slices]
    t = np.asarray(tissue[box.slices], dtype=np.float32)
    solid = inside & (t > 0.5)
    ax = np.abs(x)
    below = (
        in_mirrored_ellipsoid(ax, y, z, (28.0, -62.0, -35.0), (15.0, 15.0, 10.0))  # cerebellum
        | in_mirrored_ellipsoid(ax, y, z, (0.0, -65.0, -25.0), (6.0, 10.0, 8.0))  # vermis
        | in_mirrored_ellipsoid(ax, y, z, (0.0, -25.0, -32.0), (8.0, 8.0, 8.0))  # pons
    )
    above = (z > 10.0) | ((y > -15.0) & (ax > 20.0))
    markers = np.zeros(box.shape, dtype=np.int16)
    markers[solid & above] = 1
    markers[solid & below & ~above] = 2
    if not (markers == 2).any() or not (markers == 1).any():
        return out
    cost = np.where(inside, np.clip(255.0 * (1.0 - t), 0, 254), 255).astype(np.uint8)
    basins = ndimage.watershed_ift(cost, markers)
    out[box.slices] = inside & (basins == 2)
    return out


def hemisphere_at(compartment: int, lateral_mm: float) -> int:
    """The supratentorial side a voxel belongs to (posterior fossa: by its side of the midline)."""
    if compartment in (LEFT, RIGHT):
        return compartment
    return LEFT if lateral_mm < 0 else RIGHT
