"""Procedural chest CT phantom in Hounsfield units: the embedded default scan for lung nodules.

The anatomy is built from implicit shapes evaluated on coordinate grids, one slab of axial slices
at a time (so a 512×512×300 volume needs little more memory than its int16 output):

* air (−1000 HU) outside a curved CT table (carbon-fibre shells around a foam core) and the body;
* an elliptical body (flatter back) with a subcutaneous fat layer (≈ −100 HU), a muscular chest
  wall (≈ +45 HU) and paraspinal muscles;
* twelve pairs of ribs as sloping tubes (cortex ≈ +850 HU around marrow ≈ +220 HU), a sternum,
  vertebral bodies with discs, spinal canal and posterior elements;
* a mediastinum of fat (≈ −90 HU) holding the heart (≈ +40 HU, left of the midline), the
  ascending aorta, arch and descending aorta, the SVC, the pulmonary arteries, the oesophagus and
  the air-filled trachea, which splits at the carina into the main and lobar bronchi;
* two lungs (the right one larger; parenchyma ≈ −870…−820 HU, denser posteriorly as in a supine
  patient) with apical domes near the top of the field of view, a seeded branching vessel tree
  tapering from each hilum (Murray's law radii, partial volume at the walls), and diaphragm domes
  near the bottom (right higher) over the liver (≈ +60 HU) and the spleen/stomach with a gas bubble;
* an in-plane blur like a CT point-spread function and correlated Gaussian noise
  (:func:`longisynth.appearance.noise.synthesize_noise`).

Anatomy scales with the field of view (the body fills ≈ 90 % of the width, the lungs ≈ 80 % of
the height), so any grid gives a complete chest. Orientation is what DICOM→NIfTI converters
produce for an axial CT series: array i → patient Left, j → Posterior, k → Superior
(``nib.aff2axcodes(affine) == ('L', 'P', 'S')``), world RAS+ mm with the origin at the centre.

Deterministic: the same shape, spacing and seed give the same bytes. The seed drives only the
vessel tree, the parenchyma texture and the noise; :func:`thorax_phantom_labels` gives the
(seed-independent) ground truth, lungs split into lobes by fissure-like oblique planes.

The shapes themselves (body frame, lungs, ribs, tubes, vessel tree, tube rasteriser) live in
:mod:`longisynth.phantoms.thorax_shapes`; this module turns them into HU and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.appearance.noise import NoiseModel, synthesize_noise
from longisynth.phantoms.thorax_shapes import (
    Frame,
    anatomy_tubes,
    lobe_of,
    lung_side,
    rasterize_tubes,
    rib_q,
    vessel_tree,
)

# Tissue values (HU) of an unenhanced chest CT; lung parenchyma ≈ −900…−800 HU (docs/design.md §3.1).
AIR_HU = -1000.0
FAT_HU = -100.0
MEDIASTINAL_FAT_HU = -90.0
MUSCLE_HU = 45.0
BLOOD_HU = 40.0  # unenhanced blood and myocardium
LIVER_HU = 60.0
SPLEEN_HU = 45.0
LUNG_HU = -870.0  # anterior (non-dependent) lung
LUNG_GRADIENT_HU = 50.0  # supine gravity gradient: posterior lung is denser
MARROW_HU = 220.0
CORTEX_HU = 850.0
DISC_HU = 80.0
CSF_HU = 20.0
TABLE_SHELL_HU = 250.0
TABLE_CORE_HU = -900.0  # foam core of the table: lung-like density, outside the body
HU_RANGE = (-1024, 3071)  # 12-bit CT range

# Scanner-like noise: 15 HU, correlated in-plane by a 0.7 mm reconstruction kernel; no
# through-plane correlation at slice spacings ≥ 1 mm (slices are reconstructed independently).
PHANTOM_NOISE = NoiseModel(sigma=15.0, kernel_mm=(0.7, 0.7, 0.0))
PSF_MM = 0.6  # in-plane blur (standard deviation) standing in for the scanner's point-spread function

# Ground-truth labels of :func:`thorax_phantom_labels`; lung lobes use TotalSegmentator's 10–14.
LABEL_AIRWAY = 1  # trachea and main bronchi (lumen)
LABEL_HEART = 2
LABEL_AORTA = 3
LABEL_BONE = 4
LABEL_LIVER = 5
LUNG_LOBE_LABELS = (10, 11, 12, 13, 14)  # LUL, LLL, RUL, RML, RLL

_SLAB = 16  # axial slices per slab


def thorax_affine(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float]) -> NDArray[np.float64]:
    """LPS-style voxel→world (RAS+ mm) affine with the volume's centre at the world origin."""
    s = np.asarray(spacing_mm, dtype=np.float64)
    c = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    aff = np.diag([-s[0], -s[1], s[2], 1.0])
    aff[:3, 3] = [s[0] * c[0], s[1] * c[1], -s[2] * c[2]]
    return aff


def make_thorax_phantom(
    shape: tuple[int, int, int] = (256, 256, 180),
    spacing_mm: tuple[float, float, float] = (1.4, 1.4, 2.0),
    seed: int = 0,
) -> tuple[NDArray[np.int16], NDArray[np.float64]]:
    """A procedural chest CT.

    Args:
        shape: array shape (i → Left, j → Posterior, k → Superior).
        spacing_mm: voxel size along each array axis, mm.
        seed: seeds the vessel tree, parenchyma texture and noise.

    Returns:
        ``(hu, affine)``: int16 Hounsfield units and the 4×4 voxel→world RAS+ mm affine.
    """
    rng = np.random.default_rng(seed)
    out = np.empty(shape, dtype=np.int16)
    _render(shape, spacing_mm, rng, out, None)
    return out, thorax_affine(shape, spacing_mm)


def thorax_phantom_labels(
    shape: tuple[int, int, int] = (256, 256, 180),
    spacing_mm: tuple[float, float, float] = (1.4, 1.4, 2.0),
) -> NDArray[np.uint8]:
    """Ground truth of :func:`make_thorax_phantom` on the same grid (any seed).

    Labels: 0 background/other, :data:`LABEL_AIRWAY` trachea + main bronchi lumen,
    :data:`LABEL_HEART`, :data:`LABEL_AORTA`, :data:`LABEL_BONE`, :data:`LABEL_LIVER`, and the
    lungs (vessels and lobar bronchi inside them included) as lobes 10 LUL, 11 LLL, 12 RUL,
    13 RML, 14 RLL, separated by fissure-like oblique and horizontal planes.
    """
    out = np.zeros(shape, dtype=np.uint8)
    _render(shape, spacing_mm, None, None, out)
    return out


@dataclass(frozen=True)
class _Grid:
    x: NDArray[np.float32]  # (nx, 1, 1) world R mm
    y: NDArray[np.float32]  # (1, ny, 1) world A mm
    z: NDArray[np.float32]  # (nz,) world S mm of every slice


def _render(
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator | None,
    hu_out: NDArray[np.int16] | None,
    label_out: NDArray[np.uint8] | None,
) -> None:
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    if min(shape) < 8:
        raise ValueError(f"phantom shape {shape} is too small (need ≥ 8 voxels per axis)")
    aff = thorax_affine(shape, spacing_mm)
    grid = _Grid(
        (aff[0, 0] * np.arange(shape[0]) + aff[0, 3]).astype(np.float32).reshape(-1, 1, 1),
        (aff[1, 1] * np.arange(shape[1]) + aff[1, 3]).astype(np.float32).reshape(1, -1, 1),
        (aff[2, 2] * np.arange(shape[2]) + aff[2, 3]).astype(np.float32),
    )
    fov = (shape[0] * spacing_mm[0], shape[1] * spacing_mm[1], shape[2] * spacing_mm[2])
    frame = Frame.for_fov(fov, float(grid.z[0]))
    tubes = anatomy_tubes(frame, airway_label=LABEL_AIRWAY, aorta_label=LABEL_AORTA)
    if rng is not None:
        tubes = tubes + vessel_tree(frame, rng)
        texture = rng.uniform(0.0, 2.0 * np.pi, size=(4, 3)), rng.uniform(15.0, 45.0, size=(4, 3))
    fixed = _fixed_fields(frame, grid)
    for k0 in range(0, shape[2], _SLAB):
        k1 = min(k0 + _SLAB, shape[2])
        soft, air, excl, tube_lab = rasterize_tubes(
            tubes, aff, shape, spacing_mm, k0, k1, want_labels=label_out is not None
        )
        z = grid.z[k0:k1].reshape(1, 1, -1)
        parts = _slab_parts(frame, grid, fixed, z)
        side = np.where(excl, 0, parts["lung_side"]).astype(np.int8)
        if label_out is not None:
            lab = np.zeros(side.shape, dtype=np.uint8)
            lab[parts["liver"]] = LABEL_LIVER
            lab[parts["heart"]] = LABEL_HEART
            lab[parts["bone"] > 0] = LABEL_BONE
            lobes = lobe_of(frame, grid.y, z, side)
            lab[lobes > 0] = lobes[lobes > 0]
            lab[tube_lab > 0] = tube_lab[tube_lab > 0]
            label_out[:, :, k0:k1] = lab
        if hu_out is None or rng is None:
            continue
        v = parts["base"]
        lung = side > 0
        dens = LUNG_HU + LUNG_GRADIENT_HU * np.clip(
            (frame.yc + 0.6 * frame.b - grid.y) / (1.6 * frame.b), 0, 1
        )
        tex = _texture(grid, z, *texture)
        v = np.where(lung, dens + tex, v)
        v = np.where(parts["bone"] == 1, MARROW_HU, v)
        v = np.where(parts["bone"] == 2, CORTEX_HU, v)
        v += (BLOOD_HU - v) * soft
        v += (AIR_HU - v) * air
        sig = [PSF_MM / spacing_mm[0], PSF_MM / spacing_mm[1], 0.0]
        v = ndimage.gaussian_filter(v.astype(np.float32), sigma=sig, mode="nearest")
        v += synthesize_noise(v.shape, spacing_mm, PHANTOM_NOISE, rng)
        hu_out[:, :, k0:k1] = np.clip(np.rint(v), *HU_RANGE).astype(np.int16)


def _texture(
    grid: _Grid, z: NDArray[np.float32], phase: NDArray[np.float64], wavelength_mm: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Smooth ±≈15 HU parenchymal heterogeneity: a sum of separable cosines (seamless across slabs)."""
    out = np.zeros((grid.x.shape[0], grid.y.shape[1], z.shape[2]), dtype=np.float32)
    for n in range(phase.shape[0]):
        cx = np.cos(2 * np.pi * grid.x / wavelength_mm[n, 0] + phase[n, 0]).astype(np.float32)
        cy = np.cos(2 * np.pi * grid.y / wavelength_mm[n, 1] + phase[n, 1]).astype(np.float32)
        cz = np.cos(2 * np.pi * z / wavelength_mm[n, 2] + phase[n, 2]).astype(np.float32)
        out += np.float32(6.0) * (cx * cy) * cz
    return out


def _fixed_fields(frame: Frame, grid: _Grid) -> dict[str, NDArray]:
    """In-plane fields that do not change along z: body shell, table, spine, wall depth."""
    x, y, f = grid.x, grid.y, frame
    depth = f.depth(x, y)
    inside = depth > 0
    base = np.full(depth.shape, AIR_HU, dtype=np.float32)
    # Curved table under the back (supine patient), 5 mm below the skin at the midline.
    top = f.y_back - 5.0 * f.g + 6e-4 * x * x
    d = top - y
    on_table = np.abs(x) < 0.47 * (f.a / 0.45)
    base[on_table & (d >= 0) & (d < 2.5 * f.g)] = TABLE_SHELL_HU
    base[on_table & (d >= 2.5 * f.g) & (d < 17.5 * f.g)] = TABLE_CORE_HU
    base[on_table & (d >= 17.5 * f.g) & (d < 20 * f.g)] = TABLE_SHELL_HU
    base[inside] = FAT_HU
    paraspinal = f.paraspinal(x, y)
    muscle = inside & (depth > f.fat_mm) & ((depth <= f.wall_mm) | paraspinal)
    base[muscle] = MUSCLE_HU
    cavity = inside & (depth > f.wall_mm) & ~paraspinal
    base[cavity] = MEDIASTINAL_FAT_HU
    dv = np.hypot(x, y - f.yv)
    dc = np.hypot(x, y - f.ycan)
    canal = dc < f.rcan
    arch = (dc >= f.rcan) & (dc < f.rcan + 5 * f.g) & (y > f.ycan - 1.3 * f.rcan)
    spinous = (np.abs(x) < 4 * f.g) & (y < f.ycan) & (y > f.y_back + 12 * f.g)
    transverse = (np.abs(y - f.ycan) < 5 * f.g) & (np.abs(x) < 0.17 * f.a)
    posterior_bone = (arch | spinous | transverse) & ~canal
    sternum = (np.abs(x) < 14 * f.g) & (depth > 6 * f.g) & (depth < 18 * f.g) & (y > f.yc)
    return {
        "depth": depth,
        "inside": inside,
        "cavity": cavity,
        "base": base,
        "dv": dv,
        "canal": canal,
        "posterior_bone": posterior_bone,
        "sternum": sternum,
    }


def _slab_parts(frame: Frame, grid: _Grid, fixed: dict[str, NDArray], z: NDArray[np.float32]) -> dict:
    """Base HU (soft tissues), bone code (1 marrow, 2 cortex), lung side, heart and liver masks."""
    f, x, y = frame, grid.x, grid.y
    nz = z.shape[2]
    full = (x.shape[0], y.shape[1], nz)
    base = np.repeat(fixed["base"], nz, axis=2)
    cavity = fixed["cavity"]
    dome = f.dome_z(x, y)
    below = cavity & (z < dome)
    right = x > f.xm
    liver = below & (x > f.xm - 0.15 * f.a)
    base[np.broadcast_to(below, full)] = SPLEEN_HU
    base[liver] = LIVER_HU
    bubble = (
        ((x - (f.xm - 0.42 * f.a)) / (30 * f.g)) ** 2
        + ((y - (f.yc + 0.15 * f.b)) / (25 * f.g)) ** 2
        + ((z - (f.dome_top_left - 32 * f.g)) / (18 * f.g)) ** 2
    ) < 1
    base[below & bubble & ~right] = AIR_HU
    heart = f.heart_r(x, y, z) < 1.0
    base[heart] = BLOOD_HU
    base[np.broadcast_to(fixed["canal"], full)] = CSF_HU
    # Bone: 1 marrow / 2 cortex. Vertebral bodies alternate with discs every ≈ 28 mm.
    bone = np.zeros(full, dtype=np.int8)
    in_disc = np.mod(z - f.z0, f.vert_pitch) < 0.25 * f.vert_pitch
    vb = np.broadcast_to(fixed["dv"] < f.rv, full)
    base[vb & in_disc] = DISC_HU
    bone[vb & ~in_disc] = 1
    bone[vb & ~in_disc & (fixed["dv"] > f.rv - 2.0 * f.g)] = 2
    bone[np.broadcast_to(fixed["posterior_bone"], full)] = 2
    u = (z - f.z0) / f.height
    st = fixed["sternum"] & (u > 0.42) & (u < 0.86)
    bone[st] = 1
    bone[st & ((fixed["depth"] < 7.5 * f.g) | (fixed["depth"] > 16.5 * f.g))] = 2
    q = rib_q(f, x, y, z, fixed["depth"])
    bone[q < 1.0] = 1
    bone[(q >= 0.62) & (q < 1.0)] = 2
    side = lung_side(f, x, y, z)
    side[bone > 0] = 0
    return {"base": base, "bone": bone, "lung_side": side, "heart": heart & cavity, "liver": liver}
