"""CT appearance of lung nodules: Hounsfield-unit priors, partial-volume blending, matched noise.

Random → deterministic pair: :func:`nodule_texture` draws the nodule's heterogeneity once per
study (shared by every timepoint, so the nodule keeps its look as it grows); :func:`render_nodule`
blends the nodule into the scan with fresh noise per timepoint (each scan has its own noise).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.appearance.noise import NoiseModel, synthesize_noise
from longisynth.spec import NoduleType

# Solid nodules attenuate like soft tissue, ≈ 0…+60 HU unenhanced (docs/design.md §3.1): mean +30 HU with
# a ±15 HU heterogeneity. The solid core of a part-solid nodule uses the same prior, well above
# the −160 HU "solid component" threshold of Lee et al. (PLOS One 2018).
SOLID_MEAN_HU = 30.0
SOLID_TEXTURE_HU = 12.0
# Ground glass spans −750…−300 HU (docs/design.md §3.1); phantoms are built at −800 and −630 HU, and pure
# GGO ≤ 1 cm had a mean ≤ −600 HU (PMC3388248): −620 HU keeps a small pure GGO below −600 HU.
GGO_MEAN_HU = -620.0
GGO_TEXTURE_HU = 40.0
# Correlation length of the heterogeneity: a few mm, coarser than CT noise (≈ 1 mm) so that the
# texture reads as structure, not as extra noise.
TEXTURE_KERNEL_MM = 2.5

LABEL_BACKGROUND = 0
LABEL_SOLID = 1
LABEL_GROUND_GLASS = 2
# The scanner's point-spread function beyond the voxel's own integration (which the partial-volume
# occupancy already models): a Gaussian of std 0.5 mm (FWHM 1.2 mm) per axis — real LIDC-IDRI
# nodules at 0.5–0.9 mm pixels have an edge width of ≈ 1.2 mm (median of the shared crops), wider
# than their pixels. On coarse grids the voxel dominates and the PSF adds little.
PSF_SIGMA_MM = 0.5
# Reader contours (LIDC-IDRI max-voting masks of the shared crops) enclose the partial-volume rim:
# their boundary pixels sit at a median −490 HU and the first pixel outside at −710 HU, between
# lung (≈ −850) and solid nodule (≈ +30), i.e. where the visible nodule has faded to about a
# quarter of its contrast. Our masks follow the same convention.
READER_CONTOUR_FRACTION = 0.2


def nodule_texture(
    crop_shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], rng: np.random.Generator
) -> NDArray[np.float32]:
    """Smooth zero-mean, unit-std random field (dimensionless), shared across timepoints.

    White noise smoothed by a Gaussian of std :data:`TEXTURE_KERNEL_MM` (mm) along each axis;
    :func:`render_nodule` scales it to HU per component.
    """
    white = rng.standard_normal(crop_shape, dtype=np.float32)
    k_vox = [TEXTURE_KERNEL_MM / s for s in spacing_mm]
    field = ndimage.gaussian_filter(white, sigma=k_vox, mode="wrap")
    field -= field.mean()
    sd = float(field.std())
    return (field / sd if sd > 0 else field).astype(np.float32)


def render_nodule(
    background_hu: NDArray[np.float32],
    occupancy: NDArray[np.float32],
    solid_occupancy: NDArray[np.float32],
    nodule_type: NoduleType,
    noise: NoiseModel,
    spacing_mm: tuple[float, float, float],
    texture: NDArray[np.float32],
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Blend a nodule into a CT crop (HU) with partial volume and noise matched to the scan.

    out = bg·(1 − o) + L_solid·o_s + L_ggo·(o − o_s) + g·n, with o the nodule occupancy, o_s the
    solid occupancy, L the lesion HU (prior mean + texture), n noise drawn from the scan's
    :class:`NoiseModel`. The blend keeps (1 − o)² of the background's noise variance σ², so the
    added noise has gain g = √(1 − (1 − o)²): a voxel fully inside the nodule has noise std σ
    (that of the scan's soft tissue), and a voxel with o = 0 is the background, bit for bit.
    This assumes the background's own noise has the model's level (CT noise in lung and soft
    tissue of one slab is similar; the real-scan test measures it).

    Args:
        background_hu: the (deformed) scan crop, HU.
        occupancy: nodule fraction per voxel, [0, 1].
        solid_occupancy: solid-component fraction per voxel, [0, occupancy].
        nodule_type: solid / part_solid / ground_glass. A ground-glass nodule ignores
            ``solid_occupancy``; a solid one renders all of ``occupancy`` as solid.
        noise: the scan's noise model (:func:`~longisynth.appearance.noise.estimate_noise`).
        spacing_mm: voxel size along each array axis, mm.
        texture: :func:`nodule_texture` of the crop (unit std), the same at every timepoint.
        rng: the study's generator (draws this timepoint's noise).
    """
    bg = np.asarray(background_hu, dtype=np.float32)
    occ = np.clip(np.asarray(occupancy, dtype=np.float32), 0.0, 1.0)
    if nodule_type == NoduleType.SOLID:
        solid = occ
    elif nodule_type == NoduleType.GROUND_GLASS:
        solid = np.zeros_like(occ)
    else:
        solid = np.minimum(np.clip(np.asarray(solid_occupancy, dtype=np.float32), 0.0, 1.0), occ)
    ggo = occ - solid
    tex = np.asarray(texture, dtype=np.float32)
    solid_hu = np.float32(SOLID_MEAN_HU) + np.float32(SOLID_TEXTURE_HU) * tex
    ggo_hu = np.float32(GGO_MEAN_HU) + np.float32(GGO_TEXTURE_HU) * tex
    n = synthesize_noise(bg.shape, spacing_mm, noise, rng)
    gain = np.sqrt(np.maximum(np.float32(0.0), np.float32(1.0) - (np.float32(1.0) - occ) ** 2))
    out = bg * (np.float32(1.0) - occ) + solid_hu * solid + ggo_hu * ggo + gain * n
    return np.where(occ > 0, out, bg).astype(np.float32)


def visible_occupancy(
    occupancy: NDArray[np.float32], spacing_mm: tuple[float, float, float]
) -> NDArray[np.float32]:
    """The occupancy as the scanner shows it: blurred by the point-spread function
    (:data:`PSF_SIGMA_MM` per axis)."""
    sigma = [PSF_SIGMA_MM / s for s in spacing_mm]
    return np.asarray(ndimage.gaussian_filter(occupancy, sigma, mode="constant"), np.float32)


def nodule_labels(
    occupancy: NDArray[np.float32],
    solid_occupancy: NDArray[np.float32],
    threshold: float = READER_CONTOUR_FRACTION,
    allowed: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Label map of the nodule: 0 background, 1 solid (o_s ≥ threshold), 2 ground glass (o ≥
    threshold, not solid), only inside ``allowed`` (the lung: a reader's contour stops at the pleura).

    With the visible (PSF-blurred) occupancies and the default threshold, this is the reader
    convention of LIDC-IDRI (:data:`READER_CONTOUR_FRACTION`); 0.5 on the geometric occupancy
    gives the voxels whose centre is inside the surface.
    """
    labels = np.zeros(np.shape(occupancy), dtype=np.uint8)
    labels[np.asarray(occupancy) >= threshold] = LABEL_GROUND_GLASS
    labels[np.asarray(solid_occupancy) >= threshold] = LABEL_SOLID
    if allowed is not None:
        labels[~np.asarray(allowed, dtype=bool)] = LABEL_BACKGROUND
    return labels
