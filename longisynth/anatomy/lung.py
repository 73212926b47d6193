"""Lungs and (approximate) lobes of a chest CT in Hounsfield units, on a coarse grid.

:func:`segment_lungs` works on block means of ≈ 2.8 mm voxels (integer factors per axis), which is
fine enough to place a nodule and keeps a 512×512×300 scan to a couple of seconds. Steps:

1. *Outside air*: very low density (< −950 HU) connected to any face of the volume, grown by one
   voxel to swallow the skin's partial-volume shell. Aerated lung (≈ −900…−800 HU, docs/design.md §3.1)
   is denser than air, so lungs cut by the field of view's border are not mistaken for outside.
2. *Airways*: the remaining pockets of pure air (trachea, main bronchi; also bowel gas) with a
   one-voxel margin are removed, so the trachea cannot connect the two lungs.
3. *Candidates*: voxels below −400 HU, opened once to cut thin bridges, split into components.
4. *Selection*: a lung is a component of ≥ 15 mL whose median lies in the lung range and which
   lies inside the patient: in its axial slice, patient tissue on both sides along the row or the
   column (the table is removed first by an opening, being thinner than the body).
5. *Sides and holes*: the midline is the gap between the lungs (or the body's centre); a
   component goes to the side holding ≥ 90 % of it, else (lungs touching at a junction line) it
   is cut at the midline. Vessels and intrapulmonary airways are filled back slice by slice, per
   lung, so the mediastinum between the lungs is never filled.

Lobes without a label map are an approximation by position, not a fissure segmentation (see
:func:`approximate_lobes`). With a TotalSegmentator label map, lobes are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Box, Geometry, block_mean
from longisynth.spec import TOTALSEG_LOBE_LABELS, Depth, Level, LungLobe, Side

COARSE_MM = 2.8  # working voxel size, mm
LUNG_MAX_HU = -400.0  # aerated lung is below this
PURE_AIR_HU = -950.0  # air (outside, airway lumen, bowel gas) on the coarse grid is below this
TISSUE_HU = -500.0  # patient tissue (fat, muscle, organs) is above this
LUNG_MEDIAN_HU = (-960.0, -600.0)  # median of a lung component (bases blur with the diaphragm)
MIN_LUNG_ML = 15.0  # smaller air-like components are bowel, bullae, noise
MAX_PURE_FRACTION = 0.35  # bowel gas is mostly pure air, lung is not
MIN_ENCLOSED_FRACTION = 0.5
TYPICAL_LUNG_HEIGHT_MM = 250.0  # adult apex-to-base; extrapolates lungs cut by the field of view
PERIPHERAL_MM = 15.0  # subpleural band
CENTRAL_FRACTION = 0.6  # central: depth ≥ 60 % of the deepest point (the inner 40 %)
LEFT_LOBES = (10, 11)
RIGHT_LOBES = (12, 13, 14)


@dataclass(frozen=True)
class LungAnatomy:
    """Lungs and lobes on ``geometry`` (the input grid or an integer coarsening of it).

    Attributes:
        geometry: grid of the masks.
        lungs: lungs including vessels and airways inside the pleura; not trachea/main bronchi.
        lobes: TotalSegmentator labels 10 LUL, 11 LLL, 12 RUL, 13 RML, 14 RLL; 0 elsewhere.
        lobes_exact: True when the lobes come from a supplied label map.
    """

    geometry: Geometry
    lungs: NDArray[np.bool_]
    lobes: NDArray[np.uint8]
    lobes_exact: bool

    def mask_in_box(self, geometry: Geometry, box: Box) -> NDArray[np.bool_]:
        """Lungs resampled (nearest) onto ``box`` of the full-resolution grid ``geometry``."""
        return _resample_nearest(self.lungs, self.geometry, geometry, box)

    def lobes_in_box(self, geometry: Geometry, box: Box) -> NDArray[np.uint8]:
        """Lobe labels resampled (nearest) onto ``box`` of the full-resolution grid ``geometry``."""
        return _resample_nearest(self.lobes, self.geometry, geometry, box)


def segment_lungs(
    hu: NDArray[Any],
    geometry: Geometry,
    labels: NDArray[np.integer] | None = None,
) -> LungAnatomy:
    """Find the lungs (and lobes) of a CT in Hounsfield units.

    Args:
        hu: the CT, HU, on ``geometry``.
        geometry: grid of ``hu``.
        labels: optional TotalSegmentator-style label map on the same grid; lungs are then
            labels 10–14 and the lobes are exact.

    Returns:
        The anatomy on a grid of ≈ :data:`COARSE_MM` voxels (the input grid when it is coarser).
        Without lung parenchyma the lung mask is empty (see :func:`require_lungs`).
    """
    if hu.shape != geometry.shape:
        raise InvalidInputError(f"CT shape {hu.shape} does not match its geometry {geometry.shape}")
    factors = tuple(max(1, round(COARSE_MM / s)) for s in geometry.spacing_mm)
    coarse_geom = _coarse_geometry(geometry, factors)
    if labels is not None:
        if labels.shape != hu.shape:
            raise InvalidInputError(f"label map shape {labels.shape} differs from the CT's {hu.shape}")
        lab = _stride(labels, factors, coarse_geom.shape)
        lobes = np.where(np.isin(lab, list(TOTALSEG_LOBE_LABELS.values())), lab, 0).astype(np.uint8)
        if not lobes.any():
            raise InvalidInputError("label map has no lung lobe labels 10-14 (TotalSegmentator numbering)")
        return LungAnatomy(coarse_geom, lobes > 0, lobes, True)
    v = block_mean(hu, factors)
    side = _segment(v, coarse_geom)
    lungs = side > 0
    return LungAnatomy(coarse_geom, lungs, approximate_lobes(side, coarse_geom), False)


def require_lungs(anatomy: LungAnatomy) -> None:
    """Raise :class:`LesionDoesNotFitError` when no lung was found."""
    if not anatomy.lungs.any():
        raise LesionDoesNotFitError("no lung parenchyma found in this CT — lung nodules need a chest CT")


def approximate_lobes(side: NDArray[np.int8], geometry: Geometry) -> NDArray[np.uint8]:
    """Lobes by position (an approximation: fissures are not visible at this resolution).

    Within each lung, ``fz`` is the cranio-caudal fraction (0 base, 1 apex) and ``fy`` the
    antero-posterior fraction (0 posterior, 1 anterior). The oblique fissure is a plane rising
    posteriorly: lower lobe below ``fz = c + 0.4 (0.5 − fy)`` with c = 0.55 right, 0.45 left
    (the left upper lobe takes the top ≈ 55 %, lingula included). On the right, the part above
    the oblique plane and below ``fz = 0.6`` is the middle lobe (≈ 20 % of the height,
    anteriorly), the rest the upper lobe (top 40 %).
    """
    lobes = np.zeros(side.shape, dtype=np.uint8)
    for s, (upper, lower) in ((1, (12, 14)), (2, (10, 11))):
        m = side == s
        if not m.any():
            continue
        fz, fy = _fractions(m, geometry)
        oblique = (0.55 if s == 1 else 0.45) + 0.4 * (0.5 - fy)
        lab = np.where(fz < oblique, lower, upper)
        if s == 1:
            lab = np.where((fz >= oblique) & (fz < 0.6), 13, lab)
        lobes[m] = lab
    return lobes


def lung_region(
    anatomy: LungAnatomy,
    side: Side | None = None,
    level: Level | None = None,
    lung_lobe: LungLobe | None = None,
    depth: Depth | None = None,
) -> NDArray[np.bool_]:
    """The part of the lungs (on ``anatomy.geometry``) matching the location words; None = any.

    ``level`` splits each lung in cranio-caudal thirds; ``depth`` central is the inner 40 % by
    distance to the lung surface (depth ≥ 60 % of the deepest point of the requested zone, per
    side), peripheral the band within :data:`PERIPHERAL_MM` of the pleura (the field of view's
    border is not pleura).

    Raises:
        LesionDoesNotFitError: when the requested region is empty.
    """
    region = anatomy.lungs.copy()
    words = []
    if side is not None:
        region &= np.isin(anatomy.lobes, RIGHT_LOBES if side == Side.RIGHT else LEFT_LOBES)
        words.append(f"{side.value} lung")
    if lung_lobe is not None:
        region &= anatomy.lobes == TOTALSEG_LOBE_LABELS[lung_lobe]
        words.append(f"{lung_lobe.value.replace('_', ' ')} lobe")
    if level is not None:
        zone = np.zeros_like(region)
        for lobes in (LEFT_LOBES, RIGHT_LOBES):
            m = anatomy.lungs & np.isin(anatomy.lobes, lobes)
            if m.any():
                fz, _ = _fractions(m, anatomy.geometry)
                lo, hi = {
                    Level.LOWER: (0.0, 1 / 3),
                    Level.MIDDLE: (1 / 3, 2 / 3),
                    Level.UPPER: (2 / 3, 1.01),
                }[level]
                zone[m] = (fz >= lo) & (fz < hi)
        region &= zone
        words.append(f"{level.value} zone")
    if depth is not None:
        dist = ndimage.distance_transform_edt(anatomy.lungs, sampling=anatomy.geometry.spacing_mm)
        if depth == Depth.PERIPHERAL:
            region &= dist <= PERIPHERAL_MM
        else:
            # Relative to the deepest point of the zone asked for on each side, so that a thin
            # lobe (the middle lobe, the lingula) still has a central part.
            central = np.zeros_like(region)
            for lobes in (LEFT_LOBES, RIGHT_LOBES):
                m = region & np.isin(anatomy.lobes, lobes)
                if m.any():
                    central |= m & (dist >= CENTRAL_FRACTION * dist[m].max())
            region &= central
        words.append(f"{depth.value} part")
    if not region.any():
        what = ", ".join(words) if words else "lung"
        raise LesionDoesNotFitError(f"no {what} in this field of view")
    return region


def _segment(v: NDArray[np.float32], geometry: Geometry) -> NDArray[np.int8]:
    """Side map (0 none, 1 right, 2 left) on the coarse grid ``v`` (HU)."""
    pure = v < PURE_AIR_HU
    lab, _ = ndimage.label(pure)
    border = np.unique(_faces(lab))
    outside = np.isin(lab, border[border > 0])
    outside = ndimage.binary_dilation(outside)
    inner_air = pure & ~outside
    cand = (v < LUNG_MAX_HU) & ~outside & ~ndimage.binary_dilation(inner_air & _small(inner_air, geometry))
    enclosed = _enclosed(v, geometry)
    comp, n = ndimage.label(cand)
    if n == 0:
        return np.zeros(v.shape, dtype=np.int8)
    idx = np.arange(1, n + 1)
    vox_ml = geometry.voxel_volume_mm3 / 1000.0
    size = ndimage.sum_labels(np.ones_like(cand), comp, idx) * vox_ml
    frac_enclosed = ndimage.mean(enclosed, comp, idx)
    frac_pure = ndimage.mean(pure, comp, idx)
    keep = []
    for c, ml, fe, fp in zip(idx, size, frac_enclosed, frac_pure, strict=True):
        if ml < MIN_LUNG_ML or fe < MIN_ENCLOSED_FRACTION or fp > MAX_PURE_FRACTION:
            continue
        med = float(np.median(v[comp == c]))
        if LUNG_MEDIAN_HU[0] <= med <= LUNG_MEDIAN_HU[1]:
            keep.append(c)
    side = np.zeros(v.shape, dtype=np.int8)
    if not keep:
        return side
    lungs = np.isin(comp, keep)
    lr_axis, lr_sign = geometry.world_axis_index(0)
    mid = _midline(lungs, enclosed, lr_axis)
    pos = np.arange(v.shape[lr_axis]).reshape([-1 if a == lr_axis else 1 for a in range(3)])
    on_right = np.sign(pos - mid) == lr_sign  # +R is +lr_sign along the array axis
    for c in keep:
        m = comp == c
        share = float((m & on_right).sum()) / float(m.sum())
        if 0.1 < share < 0.9:  # straddles the midline (lungs touching at a junction line): split
            side[m & on_right] = 1
            side[m & ~on_right] = 2
        else:
            side[m] = 1 if share >= 0.9 else 2
    out = np.zeros_like(side)
    s_axis, _ = geometry.world_axis_index(2)
    for s in (1, 2):
        filled = _fill_slices(side == s, s_axis)
        out[filled & (out == 0)] = s
    return out


def _faces(lab: NDArray[np.int32]) -> NDArray[np.int32]:
    return np.concatenate(
        [
            lab[0].ravel(),
            lab[-1].ravel(),
            lab[:, 0].ravel(),
            lab[:, -1].ravel(),
            lab[:, :, 0].ravel(),
            lab[:, :, -1].ravel(),
        ]
    )


def _small(air: NDArray[np.bool_], geometry: Geometry) -> NDArray[np.bool_]:
    """Pure-air components under 300 mL (airways, bowel gas); larger ones may be emphysematous lung."""
    lab, n = ndimage.label(air)
    if n == 0:
        return air
    ml = ndimage.sum_labels(air, lab, np.arange(1, n + 1)) * geometry.voxel_volume_mm3 / 1000.0
    return np.concatenate([[False], ml < 300.0])[lab]


def _enclosed(v: NDArray[np.float32], geometry: Geometry) -> NDArray[np.bool_]:
    """Voxels with patient tissue on both sides along their row or column of the axial slice."""
    tissue = ndimage.binary_opening(v > TISSUE_HU, iterations=1)  # drops the thin table shells
    lab, n = ndimage.label(tissue)
    if n == 0:
        return np.zeros(v.shape, dtype=bool)
    sizes = ndimage.sum_labels(tissue, lab, np.arange(1, n + 1))
    patient = lab == (int(np.argmax(sizes)) + 1)
    s_axis, _ = geometry.world_axis_index(2)
    out = np.zeros(v.shape, dtype=bool)
    for ax in range(3):
        if ax == s_axis:
            continue
        fwd = np.logical_or.accumulate(patient, axis=ax)
        bwd = np.flip(np.logical_or.accumulate(np.flip(patient, axis=ax), axis=ax), axis=ax)
        out |= fwd & bwd
    return out


def _midline(lungs: NDArray[np.bool_], enclosed: NDArray[np.bool_], axis: int) -> float:
    """Index along the left-right axis between the lungs: the emptiest column of the lung
    profile between its two halves' peaks when there is a clear gap, else the body's centre."""
    other = tuple(a for a in range(3) if a != axis)
    prof = lungs.sum(axis=other).astype(np.float64)
    nz = np.flatnonzero(prof)
    lo, hi = nz[0], nz[-1]
    centre = 0.5 * (lo + hi)
    if hi - lo >= 4:
        q1, q3 = int(lo + 0.25 * (hi - lo)), int(lo + 0.75 * (hi - lo))
        k = q1 + int(np.argmin(prof[q1 : q3 + 1]))
        if prof[k] <= 0.15 * min(prof[: k + 1].max(), prof[k:].max()):
            return float(k)
    body = enclosed.sum(axis=other)
    bz = np.flatnonzero(body)
    return float(0.5 * (bz[0] + bz[-1])) if len(bz) else float(centre)


def _fill_slices(mask: NDArray[np.bool_], axis: int) -> NDArray[np.bool_]:
    """Fill holes in every slice normal to ``axis`` (vessels, airways inside the lung)."""
    structure = np.moveaxis(np.pad(np.ones((1, 3, 3), dtype=bool), ((1, 1), (0, 0), (0, 0))), 0, axis)
    pad = [(1, 1) if a == axis else (0, 0) for a in range(3)]
    # Padding along ``axis`` keeps the first and last slices from counting as the volume's border.
    filled = ndimage.binary_fill_holes(np.pad(mask, pad), structure=structure)
    return np.take(filled, np.arange(1, mask.shape[axis] + 1), axis=axis)


def _fractions(mask: NDArray[np.bool_], geometry: Geometry) -> tuple[NDArray, NDArray]:
    """Cranio-caudal (0 base → 1 apex) and antero-posterior (0 posterior → 1 anterior) position of
    each voxel of ``mask`` within the lung's extent; a lung cut by the top or bottom face of the
    volume is extended to :data:`TYPICAL_LUNG_HEIGHT_MM`."""
    ijk = np.argwhere(mask).astype(np.float64)
    world = geometry.voxel_to_world(ijk)
    z, y = world[:, 2], world[:, 1]
    zlo, zhi = z.min(), z.max()
    s_axis, s_sign = geometry.world_axis_index(2)
    last = geometry.shape[s_axis] - 1
    top, bottom = (last, 0) if s_sign > 0 else (0, last)
    cut_top = bool(np.take(mask, top, axis=s_axis).any())
    cut_bottom = bool(np.take(mask, bottom, axis=s_axis).any())
    if cut_top and not cut_bottom:
        zhi = max(zhi, zlo + TYPICAL_LUNG_HEIGHT_MM)
    elif cut_bottom and not cut_top:
        zlo = min(zlo, zhi - TYPICAL_LUNG_HEIGHT_MM)
    fz = (z - zlo) / max(zhi - zlo, 1e-6)
    fy = (y - y.min()) / max(float(np.ptp(y)), 1e-6)
    return fz, fy


def _coarse_geometry(geometry: Geometry, factors: tuple[int, ...]) -> Geometry:
    scale = np.eye(4)
    for ax, f in enumerate(factors):
        scale[ax, ax] = f
        scale[ax, 3] = (f - 1) / 2.0
    dims, k = geometry.shape, factors
    return Geometry(geometry.affine @ scale, (-(-dims[0] // k[0]), -(-dims[1] // k[1]), -(-dims[2] // k[2])))


def _stride(labels: NDArray, factors: tuple[int, ...], shape: tuple[int, int, int]) -> NDArray:
    """Label at each block's centre voxel (nearest-neighbour downsampling)."""
    idx = [
        np.minimum(np.arange(n) * f + f // 2, m - 1)
        for n, f, m in zip(shape, factors, labels.shape, strict=True)
    ]
    return np.asarray(labels)[np.ix_(*idx)]


def _resample_nearest(mask: NDArray, src: Geometry, dst: Geometry, box: Box) -> NDArray:
    """Nearest-neighbour values of ``mask`` (on ``src``) at the voxels of ``box`` on ``dst``."""
    m = np.linalg.inv(src.affine) @ dst.affine
    out = np.zeros(box.shape, dtype=mask.dtype)
    if np.allclose(m[:3, :3], np.diag(np.diag(m[:3, :3])), atol=1e-6):
        idx, ok = [], []
        for ax in range(3):
            i = np.arange(box.start[ax], box.stop[ax])
            c = np.rint(m[ax, ax] * i + m[ax, 3]).astype(np.int64)
            idx.append(np.clip(c, 0, mask.shape[ax] - 1))
            ok.append((c >= 0) & (c < mask.shape[ax]))
        valid = ok[0][:, None, None] & ok[1][None, :, None] & ok[2][None, None, :]
        out[...] = np.where(valid, mask[np.ix_(*idx)], 0)
        return out
    grid = np.stack(
        np.meshgrid(*[np.arange(a, b) for a, b in zip(box.start, box.stop, strict=True)], indexing="ij"), -1
    )
    c = np.rint(grid @ m[:3, :3].T + m[:3, 3]).astype(np.int64)
    valid = np.all((c >= 0) & (c < np.asarray(mask.shape)), axis=-1)
    cc = np.clip(c, 0, np.asarray(mask.shape) - 1)
    out[...] = np.where(valid, mask[cc[..., 0], cc[..., 1], cc[..., 2]], 0)
    return out
