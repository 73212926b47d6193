"""CT appearance of lung nodules: Hounsfield-unit priors, partial-volume blending, matched noise.

Random → deterministic pair: :func:`nodule_texture` draws the nodule's heterogeneity once per
study (shared by every timepoint, so the nodule keeps its look as it grows); :func:`render_nodule`
blends the nodule into the scan with fresh noise per timepoint (each scan has its own noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.appearance.noise import NoiseModel, synthesize_noise
from longisynth.spec import Calcification, NoduleType

# Solid nodules attenuate like soft tissue, ≈ 0…+60 HU unenhanced (docs/design.md §3.1). Calibrated
# on the shared LIDC-IDRI crops (readers' texture score 5, ≥ 10 mm, core 2 voxels inside the
# reader's contour): median +52 HU (quartiles +28…+68), and a spread beyond the scan's own noise
# (≈ 22 HU in their soft tissue) of median 38 HU (quartiles 22…102; the top quartile holds
# cavities, air bronchograms and calcium, drawn separately). Per nodule: mean ~ N(45, 20) HU,
# heterogeneity ~ lognormal(median 35 HU, σ_ln 0.6), within the ranges below. The solid core of
# a part-solid nodule uses the same prior, well above the −160 HU "solid component" threshold of
# Lee et al. (PLOS One 2018).
SOLID_MEAN_HU = 45.0
SOLID_MEAN_SD_HU = 20.0
SOLID_MEAN_RANGE_HU = (-20.0, 100.0)
SOLID_TEXTURE_HU = 35.0
SOLID_TEXTURE_RANGE_HU = (12.0, 110.0)
# Ground glass spans −750…−300 HU (docs/design.md §3.1); pure GGO ≤ 1 cm had a mean ≤ −600 HU
# (PMC3388248); the shared crops with texture score 1–3 have a core median of −544 HU (quartiles
# −639…−428) and a heterogeneity of ≈ 100 HU, part of it the vessels that run through them —
# which the rendering keeps from the host. Per nodule: mean ~ N(−620, 50) HU, heterogeneity ~
# lognormal(median 55 HU, σ_ln 0.4).
GGO_MEAN_HU = -620.0
GGO_MEAN_SD_HU = 50.0
GGO_MEAN_RANGE_HU = (-750.0, -450.0)
GGO_TEXTURE_HU = 55.0
GGO_TEXTURE_RANGE_HU = (25.0, 120.0)
TEXTURE_SIGMA_LN = {"solid": 0.6, "ggo": 0.4}
# Correlation length of the heterogeneity. In the shared solid crops the spread beyond noise is
# fine-grained: local (3×3 pixel, ≈ 2 mm) sd 32 HU in the core vs 22 HU of noise, i.e. ≈ 23 HU of
# a ≈ 38 HU total excess; a Gaussian kernel of 0.7 mm gives that ratio (local 21 of 35 HU). On
# coarser grids a voxel averages it (see nodule_texture).
TEXTURE_KERNEL_MM = 0.7
# Benign calcification (Fleischner glossary; Khan et al., AJR 2010): calcium is ≥ 200 HU and
# reaches several hundred HU in a granuloma or hamartoma; we draw the focus density per nodule.
CALCIUM_HU_RANGE = (350.0, 900.0)


@dataclass(frozen=True)
class NoduleAppearance:
    """The HU prior of one nodule (drawn once per study by :func:`sample_appearance`).

    Attributes:
        solid_mean_hu, solid_texture_hu: mean and heterogeneity (sd) of the solid component, HU.
        ggo_mean_hu, ggo_texture_hu: the same for the ground glass, HU.
        calcium_hu: density of calcified foci, HU (used only where a pattern is drawn).
    """

    solid_mean_hu: float = SOLID_MEAN_HU
    solid_texture_hu: float = SOLID_TEXTURE_HU
    ggo_mean_hu: float = GGO_MEAN_HU
    ggo_texture_hu: float = GGO_TEXTURE_HU
    calcium_hu: float = 600.0

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 2) for k, v in self.__dict__.items()}


def sample_appearance(rng: np.random.Generator) -> NoduleAppearance:
    """Draw one nodule's HU prior from the calibrated distributions above."""

    def lognormal(median: float, sigma_ln: float, bounds: tuple[float, float]) -> float:
        return float(np.clip(median * math.exp(sigma_ln * rng.standard_normal()), *bounds))

    return NoduleAppearance(
        solid_mean_hu=float(np.clip(rng.normal(SOLID_MEAN_HU, SOLID_MEAN_SD_HU), *SOLID_MEAN_RANGE_HU)),
        solid_texture_hu=lognormal(SOLID_TEXTURE_HU, TEXTURE_SIGMA_LN["solid"], SOLID_TEXTURE_RANGE_HU),
        ggo_mean_hu=float(np.clip(rng.normal(GGO_MEAN_HU, GGO_MEAN_SD_HU), *GGO_MEAN_RANGE_HU)),
        ggo_texture_hu=lognormal(GGO_TEXTURE_HU, TEXTURE_SIGMA_LN["ggo"], GGO_TEXTURE_RANGE_HU),
        calcium_hu=float(rng.uniform(*CALCIUM_HU_RANGE)),
    )


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
    """Smooth zero-mean random field (dimensionless), shared across timepoints.

    White noise smoothed by a Gaussian of std :data:`TEXTURE_KERNEL_MM` (mm) along each axis, of
    unit std on a fine grid; a voxel of size s averages it, which leaves a std of
    Π (1 + s²/(24 k²))^(−1/4) (box average of a field of Gaussian correlation). :func:`render_nodule`
    scales it to HU per component.
    """
    white = rng.standard_normal(crop_shape, dtype=np.float32)
    k = TEXTURE_KERNEL_MM
    k_vox = [k / s for s in spacing_mm]
    field = ndimage.gaussian_filter(white, sigma=k_vox, mode="wrap")
    field -= field.mean()
    sd = float(field.std())
    averaged = math.prod((1.0 + s**2 / (24.0 * k**2)) ** -0.25 for s in spacing_mm)
    return (field * np.float32(averaged / sd) if sd > 0 else field).astype(np.float32)


def render_nodule(
    background_hu: NDArray[np.float32],
    occupancy: NDArray[np.float32],
    solid_occupancy: NDArray[np.float32],
    nodule_type: NoduleType,
    noise: NoiseModel,
    spacing_mm: tuple[float, float, float],
    texture: NDArray[np.float32],
    rng: np.random.Generator,
    appearance: NoduleAppearance | None = None,
    calcified: NDArray[np.float32] | None = None,
) -> NDArray[np.float32]:
    """Blend a nodule into a CT crop (HU) with partial volume and noise matched to the scan.

    out = bg·(1 − o) + L_solid·o_s + max(L_ggo, bg)·(o − o_s) + g·n, with o the nodule occupancy,
    o_s the solid occupancy, L the lesion HU (prior mean + texture), n noise drawn from the scan's
    :class:`NoiseModel`. The blend keeps (1 − o)² of the background's noise variance σ², so the
    added noise has gain g = √(1 − (1 − o)²): a voxel fully inside the nodule has noise std σ
    (that of the scan's soft tissue), and a voxel with o = 0 is the background, bit for bit.
    Ground glass fills air spaces only: the host's vessels and septa denser than it stay visible
    through it, as on real CT. Calcified foci (occupancy ``calcified`` ≤ o) replace the rest at
    the calcium density.
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
        appearance: the nodule's HU prior (:func:`sample_appearance`); None: the typical one.
        calcified: occupancy of calcified foci, [0, occupancy], or None.
    """
    look = appearance or NoduleAppearance()
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
    solid_hu = np.float32(look.solid_mean_hu) + np.float32(look.solid_texture_hu) * tex
    ggo_hu = np.maximum(np.float32(look.ggo_mean_hu) + np.float32(look.ggo_texture_hu) * tex, bg)
    n = synthesize_noise(bg.shape, spacing_mm, noise, rng)
    gain = np.sqrt(np.maximum(np.float32(0.0), np.float32(1.0) - (np.float32(1.0) - occ) ** 2))
    lesion = solid_hu * solid + ggo_hu * ggo  # the nodule's share of each voxel, HU × fraction
    if calcified is not None:  # calcium replaces the nodule tissue in its foci
        calc = np.minimum(np.clip(np.asarray(calcified, dtype=np.float32), 0.0, 1.0), occ)
        mean_hu = np.where(occ > 0, lesion / np.maximum(occ, np.float32(1e-6)), np.float32(0.0))
        lesion = lesion + calc * (np.float32(look.calcium_hu) - mean_hu)
    out = bg * (np.float32(1.0) - occ) + lesion + gain * n
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


@dataclass(frozen=True)
class CalcificationFoci:
    """Calcified foci of a benign nodule, relative to it (drawn once by :func:`sample_calcification`).

    Attributes:
        pattern: central, laminated or popcorn.
        centers: ball centres (k, 3) in units of the nodule's mean radius (array-axis mm space).
        radii: ball radii (k,) in the same unit.
        shells: radii (m,) of concentric calcified shells around the nodule centre (laminated).
        shell_width: their thickness in the same unit.
    """

    pattern: Calcification
    centers: NDArray[np.float64]
    radii: NDArray[np.float64]
    shells: NDArray[np.float64]
    shell_width: float = 0.1

    def to_dict(self) -> dict[str, object]:
        return {
            "pattern": self.pattern.value,
            "centers": self.centers.round(4).tolist(),
            "radii": self.radii.round(4).tolist(),
            "shells": self.shells.round(4).tolist(),
        }


def sample_calcification(pattern: Calcification, rng: np.random.Generator) -> CalcificationFoci | None:
    """Draw the foci of a benign calcification pattern (Khan et al., AJR 2010): a central nidus
    (granuloma), concentric lamellae around one, or scattered chunky "popcorn" foci (hamartoma)."""
    if pattern == Calcification.NONE:
        return None
    if pattern == Calcification.POPCORN:
        k = int(rng.integers(4, 9))
        dirs = rng.standard_normal((k, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        centers = dirs * rng.uniform(0.1, 0.6, size=k)[:, None]
        return CalcificationFoci(pattern, centers, rng.uniform(0.12, 0.22, size=k), np.zeros(0))
    nidus = rng.normal(0.0, 0.05, size=(1, 3))
    if pattern == Calcification.CENTRAL:
        return CalcificationFoci(pattern, nidus, rng.uniform(0.25, 0.45, size=1), np.zeros(0))
    shells = np.array([rng.uniform(0.38, 0.48), rng.uniform(0.62, 0.72)])
    return CalcificationFoci(
        pattern, nidus, rng.uniform(0.12, 0.2, size=1), shells, float(rng.uniform(0.07, 0.1))
    )


def calcification_occupancy(
    foci: CalcificationFoci,
    crop_shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    center_vox: NDArray[np.floating],
    scale_mm: float,
) -> NDArray[np.float32]:
    """Partial-volume occupancy [0, 1] of the calcified foci of a nodule of mean radius ``scale_mm``
    (mm) centred at ``center_vox`` (crop voxels); a linear ramp one voxel wide at each surface."""
    sp = np.asarray(spacing_mm, dtype=np.float64)
    axes = [(np.arange(n) - c) * s for n, c, s in zip(crop_shape, center_vox, sp, strict=True)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    h = float(np.linalg.norm(sp) / math.sqrt(3.0))
    occ = np.zeros(crop_shape, dtype=np.float64)
    for c, r in zip(foci.centers, foci.radii, strict=True):
        d = np.sqrt((x - c[0] * scale_mm) ** 2 + (y - c[1] * scale_mm) ** 2 + (z - c[2] * scale_mm) ** 2)
        occ = np.maximum(occ, np.clip(0.5 - (d - r * scale_mm) / h, 0.0, 1.0))
    if foci.shells.size:
        d = np.sqrt(x**2 + y**2 + z**2)
        half = max(0.5 * foci.shell_width * scale_mm, 0.5 * float(sp.min()))
        for r in foci.shells:
            occ = np.maximum(occ, np.clip(0.5 - (np.abs(d - r * scale_mm) - half) / h, 0.0, 1.0))
    return occ.astype(np.float32)
