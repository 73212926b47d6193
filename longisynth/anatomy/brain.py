"""Brain anatomy of an MRI: brain mask, CSF/GM/WM probabilities and approximate lobes.

Route: the MNI152 phantom is registered to the scan (:mod:`longisynth.anatomy.brain_registration`,
which also rejects images that show no brain). The MNI tissue maps are warped onto the scan grid
and refined by intensity with an atlas-prior Gaussian mixture (EM), so the result follows this
person's ventricles and sulci, not the population's. Lobes, sides and depths for a glioma's
start come from MNI coordinates of the scan's voxels.

Worlds: RAS+ mm everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.brain_registration import (
    NO_BRAIN,
    BrainRegistration,
    check_contrast,
    check_image,
    detect_brain,
    warp_to_scan,
)
from longisynth.anatomy.mri_intensity import non_negative_copy
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Geometry
from longisynth.phantoms.brain import mni_template_affine, tissue_stack
from longisynth.spec import BrainLobe, Depth, Side

# Registration names re-exported here: callers import them from this module.
__all__ = [
    "NO_BRAIN",
    "BrainAnatomy",
    "BrainRegistration",
    "brain_anatomy",
    "brain_region",
    "detect_brain",
    "lobe_masks",
    "region_name",
]

_CENTRAL_DEPTH_MM = 15.0  # deep white matter: farther than this from the brain surface
_PERIPHERAL_DEPTH_MM = 10.0  # cortex-adjacent: within this of the surface
_EM_ITERATIONS = 6
_OPENING_MM = 3.0  # radius of the opening that detaches non-brain shells from the brain


@dataclass(frozen=True)
class BrainAnatomy:
    """Brain of one scan, on the scan's own grid.

    Attributes:
        geometry: grid of the maps below (the input grid).
        brain: brain parenchyma + internal CSF (no skull/scalp).
        csf, gm, wm: tissue probabilities in [0, 1], sum ≤ 1, 0 outside ``brain``.
        mni_to_scan: 4×4 affine world(MNI mm, RAS+) → world(scan mm, RAS+) from registration.
    """

    geometry: Geometry
    brain: NDArray[np.bool_]
    csf: NDArray[np.float32]
    gm: NDArray[np.float32]
    wm: NDArray[np.float32]
    mni_to_scan: NDArray[np.float64]


def _on_mni_grid(geometry: Geometry) -> bool:
    """Whether ``geometry`` is the phantom's MNI grid (then scan world = MNI world)."""
    spacing = geometry.spacing_mm[0]
    try:
        aff, shape = mni_template_affine(round(spacing, 6))
    except ValueError:
        return False
    return shape == geometry.shape and bool(np.allclose(aff, geometry.affine, atol=1e-3))


@lru_cache(maxsize=1)
def _mni_priors() -> NDArray[np.float32]:
    """CSF/GM/WM of the MNI phantom at 1 mm, blurred by 2 mm: affine registration leaves
    millimetres of error, so the atlas should not be sharper than that. Shape (3, *grid)."""
    stack = tissue_stack(1.0)
    priors = np.stack([ndimage.gaussian_filter(stack[k], 2.0) for k in range(3)])
    priors.setflags(write=False)
    return priors


def _segment(
    img: NDArray[np.float32],
    hull: NDArray[np.bool_],
    priors: list[NDArray[np.float32]],
    spacing_mm: tuple[float, float, float],
) -> tuple[NDArray[np.bool_], list[NDArray[np.float32]]]:
    """Brain mask and CSF/GM/WM posteriors: Gaussian mixture with spatial atlas priors (EM).

    Two non-brain classes share the prior 1 − atlas brain (at least 5 %): a Gaussian started at
    the darkest intensities (bone and air, dark in every MR contrast) and a flat one (anything
    else: scalp, vessels). They absorb what an affine registration leaves inside the warped hull,
    so those voxels neither widen the tissue classes nor stay in the brain mask. Tissue priors
    are floored at 5 % so that intensity can overrule the atlas where this brain differs from MNI.
    """
    y_all = img[hull]
    tissue = np.stack([p[hull] for p in priors], axis=1)
    total = tissue.sum(axis=1, keepdims=True)
    other = np.clip(1.0 - total, 0.05, 0.95)
    tissue = (1.0 - other) * (0.85 * tissue / np.maximum(total, 1e-6) + 0.05)
    prior_all = np.concatenate([tissue, 0.5 * other, 0.5 * other], axis=1).astype(np.float32)
    lo, hi = (float(v) for v in np.percentile(y_all, [0.5, 99.5]))
    flat = np.float32(1.0 / max(hi - lo, 1e-6))
    min_sd = 0.01 * (hi - lo)
    step = max(1, len(y_all) // 400_000)  # parameters from a subsample; posteriors for all
    y, prior = y_all[::step], prior_all[::step]
    # Start: tissue classes from their atlas cores, the dark class at the 2nd percentile.
    resp = np.concatenate([prior[:, :3] * (prior[:, :3] > 0.5), np.zeros((len(y), 2), np.float32)], axis=1)
    resp[:, 3] = y <= np.percentile(y, 2)
    for _ in range(_EM_ITERATIONS):
        w = resp[:, :4].sum(axis=0) + 1e-6
        mu = (resp[:, :4] * y[:, None]).sum(axis=0) / w
        var = (resp[:, :4] * (y[:, None] - mu) ** 2).sum(axis=0) / w
        # GM and WM share one variance: otherwise GM, the class between the others, widens to
        # swallow every partial-volume voxel (seen on T2, where GM–WM contrast is weak).
        var[1] = var[2] = (var[1] * w[1] + var[2] * w[2]) / (w[1] + w[2])
        sd = np.sqrt(np.maximum(var, min_sd**2))
        resp = _posterior(y, prior, mu, sd, flat)
    post = _posterior(y_all, prior_all, mu, sd, flat)
    brain = np.zeros(img.shape, dtype=bool)
    brain[hull] = post[:, :3].sum(axis=1) >= 0.5
    brain = _main_blob(brain, spacing_mm) & hull
    out = []
    for k in range(3):
        full = np.zeros(img.shape, dtype=np.float32)
        full[hull] = post[:, k] / np.maximum(post[:, :3].sum(axis=1), 1e-6)
        full[~brain] = 0.0
        out.append(full)
    return brain, out


def _main_blob(mask: NDArray[np.bool_], spacing_mm: tuple[float, float, float]) -> NDArray[np.bool_]:
    """Largest component of ``mask`` after an opening of radius ``_OPENING_MM``, holes filled.

    The opening cuts thin bridges: a shell of dura/CSF-bright tissue left outside the skull by a
    slightly too large warped hull touches the brain only through narrow contacts. Enclosed
    non-brain voxels (vessels, choroid plexus) are filled back in.
    """
    box = ndimage.find_objects(mask.astype(np.uint8))
    if not box or box[0] is None:
        return mask
    sl = box[0]
    sub = mask[sl]
    core = ndimage.distance_transform_edt(np.pad(sub, 1), sampling=spacing_mm)[1:-1, 1:-1, 1:-1] > _OPENING_MM
    labels, n = ndimage.label(core)
    if n == 0:
        return mask
    core = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    opened = (ndimage.distance_transform_edt(~core, sampling=spacing_mm) <= _OPENING_MM + 0.5) & sub
    out = np.zeros_like(mask)
    out[sl] = ndimage.binary_fill_holes(opened)
    return out


def _posterior(
    y: NDArray[np.float32],
    prior: NDArray[np.float32],
    mu: NDArray[np.floating],
    sd: NDArray[np.floating],
    flat: np.float32,
) -> NDArray[np.float32]:
    """Class posteriors (n, 5): four Gaussians (CSF, GM, WM, dark) and the flat class."""
    like = prior.copy()
    like[:, :4] *= (np.exp(-0.5 * ((y[:, None] - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))).astype(
        np.float32
    )
    like[:, 4] *= flat
    like /= np.maximum(like.sum(axis=1, keepdims=True), np.float32(1e-30))
    return like


def brain_anatomy(
    image: NDArray[np.generic],
    geometry: Geometry,
    contrast: str,
    tissues: Mapping[str, NDArray[Any]] | None = None,
    brain_mask: NDArray[np.generic] | None = None,
) -> BrainAnatomy:
    """Brain mask, tissue probabilities and MNI registration of a brain MRI.

    Args:
        image: the MRI (any orientation; raw, min–max normalised or z-scored, skull-stripped or
            not), array axes as in ``geometry``.
        geometry: the image grid.
        contrast: ``"t1"``, ``"t1c"``, ``"t2"`` or ``"flair"``.
        tissues: optional known ``{"csf", "gm", "wm"}`` probabilities on the same grid (e.g. the
            phantom's ground truth); used as given, skipping segmentation.
        brain_mask: optional known brain mask on the same grid.

    Raises:
        LesionDoesNotFitError: the image does not show a brain (see :func:`detect_brain`).
        InvalidInputError: unknown contrast or arrays that do not match ``geometry``.
    """
    c = check_contrast(contrast)
    img = non_negative_copy(check_image(image, geometry))  # z-scored: background 0, tissue above
    if tissues is not None:
        maps = []
        for name in ("csf", "gm", "wm"):
            if name not in tissues or np.shape(tissues[name]) != geometry.shape:
                raise InvalidInputError(
                    f"tissue map {name!r} missing or not on the image grid {geometry.shape}"
                )
            maps.append(np.clip(np.asarray(tissues[name], dtype=np.float32), 0.0, 1.0))
        total = maps[0] + maps[1] + maps[2]
        brain = total > 0.5 if brain_mask is None else _mask(brain_mask, geometry)
        scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32) * brain
        # A scan on the phantom's grid *is* in MNI space; otherwise register for the lobes.
        mni_to_scan = np.eye(4) if _on_mni_grid(geometry) else detect_brain(img, geometry, c).mni_to_scan
        return BrainAnatomy(geometry, brain, maps[0] * scale, maps[1] * scale, maps[2] * scale, mni_to_scan)

    found = detect_brain(img, geometry, c)
    scan_to_mni = np.asarray(np.linalg.inv(found.mni_to_scan), dtype=np.float64)
    maff, _ = mni_template_affine(1.0)
    priors = [warp_to_scan(p, maff, scan_to_mni, geometry) for p in _mni_priors()]
    hull = (priors[0] + priors[1] + priors[2]) > 0.5
    if brain_mask is not None:
        hull = _mask(brain_mask, geometry)
    brain, (csf, gm, wm) = _segment(img, hull, priors, geometry.spacing_mm)
    if brain_mask is not None:
        brain = hull
    return BrainAnatomy(geometry, brain, csf, gm, wm, found.mni_to_scan)


def _mask(mask: NDArray[np.generic], geometry: Geometry) -> NDArray[np.bool_]:
    if np.shape(mask) != geometry.shape:
        raise InvalidInputError(
            f"brain mask shape {np.shape(mask)} does not match the image {geometry.shape}"
        )
    return np.asarray(mask).astype(bool)


def _mni_coordinates(anatomy: BrainAnatomy, voxels: NDArray[np.intp]) -> NDArray[np.float64]:
    """MNI world mm (RAS+) of the given scan voxels (n, 3)."""
    world = anatomy.geometry.voxel_to_world(voxels.astype(np.float64))
    scan_to_mni = np.linalg.inv(anatomy.mni_to_scan)
    return world @ scan_to_mni[:3, :3].T + scan_to_mni[:3, 3]


def in_mirrored_ellipsoid(
    x_abs: NDArray[np.floating],
    y: NDArray[np.floating],
    z: NDArray[np.floating],
    centre: tuple[float, float, float],
    semi_axes: tuple[float, float, float],
) -> NDArray[np.bool_]:
    """Points inside an ellipsoid mirrored in both hemispheres (``centre`` given as (|x|, y, z), mm)."""
    (cx, cy, cz), (rx, ry, rz) = centre, semi_axes
    inside: NDArray[np.bool_] = ((x_abs - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0
    return inside


def lobe_masks(xyz: NDArray[np.float64]) -> dict[BrainLobe, NDArray[np.bool_]]:
    """Approximate lobes and deep / infratentorial regions of MNI points (n, 3), in mm.

    Boundaries are deliberately coarse (MNI152 2009 coordinates; an affine registration adds a few
    millimetres of error, and the boxes themselves are uncertain by ≈ ±5 mm). Lobes:

    * infratentorial (cerebellum, stem; in no lobe): z < −15 with y < −40, or |x| < 15,
      −45 < y < −10, z < −10;
    * temporal: −70 < y < 15, z < 10, |x| > 30, except its upper front corner (y > −20, z ≥ 0)
      which is the frontal operculum;
    * frontal: y > −20 and z > −10, plus orbitofrontal y > 10, z > −30, |x| < 30;
    * parietal: −70 ≤ y ≤ −20 and z > 15;
    * occipital: y < −70.

    Deep and infratentorial regions (they overlap the lobes' boxes, which were drawn for the
    cortex and keep their meaning; a request names one region):

    * insula: ellipsoid centred at (±38, −2, +5), semi-axes (5, 24, 14) mm — the insular cortex
      deep to the sylvian fissure, |x| ≈ 33–43, y ≈ −26…+22, z ≈ −9…+19;
    * thalamus: ellipsoid centred at (±12, −18, +7), semi-axes (8, 14, 9) mm (|x| ≈ 4–20,
      y ≈ −32…−4, z ≈ −2…+16);
    * basal ganglia: lentiform nucleus (putamen + globus pallidus) centred at (±22, +3, +1),
      semi-axes (9, 15, 9) mm, and caudate head at (±13, +12, +10), semi-axes (5, 9, 8) mm;
    * corpus callosum: |x| < 15, −38 < y < 32, 0 < z < 32 (genu to splenium; :func:`brain_region`
      keeps its white matter only);
    * brainstem (midbrain, pons, medulla): |x| < 12, z < −10, in front of y = −40 (y = −48 below
      z = −40, where the medulla leans back), behind y = −10;
    * cerebellum: z < −15 and y < −40, outside the brainstem (the tentorium is approximated by
      the same box as the infratentorial exclusion above).
    """
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ax = np.abs(x)
    infratentorial = ((z < -15) & (y < -40)) | ((ax < 15) & (y > -45) & (y < -10) & (z < -10))
    temporal = (y > -70) & (y < 15) & (z < 10) & (ax > 30) & ~((y > -20) & (z >= 0))
    frontal = (((y > -20) & (z > -10)) | ((y > 10) & (z > -30) & (ax < 30))) & ~temporal
    parietal = (y >= -70) & (y <= -20) & (z > 15)
    occipital = y < -70
    brainstem = (ax < 12) & (z < -10) & (y < -10) & (y > np.where(z < -40, -48.0, -40.0))
    return {
        BrainLobe.FRONTAL: frontal & ~infratentorial,
        BrainLobe.TEMPORAL: temporal & ~infratentorial,
        BrainLobe.PARIETAL: parietal & ~infratentorial,
        BrainLobe.OCCIPITAL: occipital & ~infratentorial,
        BrainLobe.INSULA: in_mirrored_ellipsoid(ax, y, z, (38.0, -2.0, 5.0), (5.0, 24.0, 14.0)),
        BrainLobe.THALAMUS: in_mirrored_ellipsoid(ax, y, z, (12.0, -18.0, 7.0), (8.0, 14.0, 9.0)),
        BrainLobe.BASAL_GANGLIA: in_mirrored_ellipsoid(ax, y, z, (22.0, 3.0, 1.0), (9.0, 15.0, 9.0))
        | in_mirrored_ellipsoid(ax, y, z, (13.0, 12.0, 10.0), (5.0, 9.0, 8.0)),
        BrainLobe.CORPUS_CALLOSUM: (ax < 15) & (y > -38) & (y < 32) & (z > 0) & (z < 32),
        BrainLobe.BRAINSTEM: brainstem,
        BrainLobe.CEREBELLUM: (z < -15) & (y < -40) & ~brainstem,
    }


_LOBES = (BrainLobe.FRONTAL, BrainLobe.PARIETAL, BrainLobe.TEMPORAL, BrainLobe.OCCIPITAL)


def region_name(lobe: BrainLobe) -> str:
    """How a region reads in a sentence: "frontal lobe", "basal ganglia", "corpus callosum"."""
    return f"{lobe.value} lobe" if lobe in _LOBES else lobe.value.replace("_", " ")


def brain_region(
    anatomy: BrainAnatomy, side: Side | None, lobe: BrainLobe | None, depth: Depth | None
) -> NDArray[np.bool_]:
    """Voxels where a glioma may start: brain tissue (GM + WM > 0.5) in the requested place.

    Side from MNI x (x < 0 is left); lobes and deep / infratentorial regions from MNI coordinates
    (:func:`lobe_masks`, approximate; the corpus callosum is its white matter, WM > 0.5); depth
    ``central`` = deep white matter (WM > 0.5, farther than 15 mm from the brain surface),
    ``peripheral`` = within 10 mm of the surface (cortex and juxtacortical WM).

    Raises:
        LesionDoesNotFitError: no such voxel (e.g. the lobe is outside a partial field of view).
    """
    valid = anatomy.brain & ((anatomy.gm + anatomy.wm) > 0.5)
    if lobe == BrainLobe.CORPUS_CALLOSUM:
        valid &= anatomy.wm > 0.5
    if depth is not None:
        depth_mm = _depth_mm(anatomy)
        if depth == Depth.CENTRAL:
            valid &= (depth_mm > _CENTRAL_DEPTH_MM) & (anatomy.wm > 0.5)
        else:
            valid &= depth_mm <= _PERIPHERAL_DEPTH_MM
    if side is not None or lobe is not None:
        voxels = np.argwhere(valid)
        xyz = _mni_coordinates(anatomy, voxels)
        keep = np.ones(len(voxels), dtype=bool)
        if side is not None:
            keep &= xyz[:, 0] < 0 if side == Side.LEFT else xyz[:, 0] > 0
        if lobe is not None:
            keep &= lobe_masks(xyz)[lobe]
        valid = np.zeros_like(valid)
        valid[tuple(voxels[keep].T)] = True
    if not valid.any():
        words = " ".join(w.value for w in (depth, side) if w is not None)
        where = f"{words} {region_name(lobe)}".strip() if lobe is not None else (words or "brain")
        raise LesionDoesNotFitError(
            f"no brain tissue in the {where} within this scan's field of view "
            "(lobes and regions are approximate, from MNI152 coordinates)"
        )
    return valid


def _depth_mm(anatomy: BrainAnatomy) -> NDArray[np.float32]:
    """Distance (mm) from each brain voxel to the brain surface, exact up to ``_CENTRAL_DEPTH_MM``
    (deeper voxels may read less but never below it). The field of view's edges are not a
    surface: the mask is extended across them (edge padding) before the distance transform."""
    spacing = anatomy.geometry.spacing_mm
    pad = [int(np.ceil(_CENTRAL_DEPTH_MM / s)) + 1 for s in spacing]
    padded = np.pad(anatomy.brain, [(p, p) for p in pad], mode="edge")
    out = np.zeros(anatomy.geometry.shape, dtype=np.float32)
    box = ndimage.find_objects(padded.astype(np.uint8))
    if not box or box[0] is None:
        return out
    # The nearest background of any brain voxel lies within the brain's bounding box + 1 voxel.
    sl = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box[0])
    dist = np.zeros(padded.shape, dtype=np.float32)
    dist[sl] = ndimage.distance_transform_edt(padded[sl], sampling=spacing)
    inner = tuple(slice(p, p + n) for p, n in zip(pad, anatomy.geometry.shape, strict=True))
    out[...] = dist[inner]
    return out
