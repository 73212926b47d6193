"""Radiomics-style features of one lesion: first-order intensity, edge, texture (GLCM) and shape.

Written here (pure NumPy/SciPy) because ``pyradiomics`` does not install on Python ≥ 3.10; the
definitions follow the IBSI / pyradiomics conventions closely enough to read the same way
(Zwanenburg et al., Radiology 2020). No feature measures *size*: the yardstick compares how lesions
look, and size is reported apart (see :func:`equivalent_diameter_mm`).

* Lung nodules are described **in-plane on the axial slice where the lesion is largest**,
  resampled to :data:`LUNG_PIXEL_MM` — the LIDC-IDRI crops hold only the nodule's own slices at
  1.25–2.5 mm, so 3D shape would mostly measure slice thickness. Units: HU, HU/mm.
* Gliomas are described in 3D at 1 mm (BraTS grid), per contrast in brain z-scores, per BraTS
  sub-region (1 necrotic core, 2 oedema, 3 enhancing) and for the whole tumour.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, Delaunay, QhullError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

LUNG_PIXEL_MM = 0.7  # in-plane grid of the lung features (LIDC-IDRI crops are 0.5–0.9 mm)
LUNG_BIN_HU = 25.0  # GLCM grey-level bin width (HU), fixed width as IBSI recommends for CT
LUNG_RING_MM = (2.0, 5.0)  # surrounding parenchyma: this far outside the nodule's contour
EDGE_RING_MM = 2.0  # edge contrast: mean inside vs mean outside within this distance of the contour
GLIOMA_BIN_Z = 0.25  # GLCM bin width for brain-z-scored MRI (standard deviations)


def _stats(values: FloatArray, prefix: str) -> dict[str, float]:
    """First-order statistics: mean, sd, 10th/90th percentile, skewness, kurtosis (excess)."""
    if values.size < 3:
        return {f"{prefix}_{k}": math.nan for k in ("mean", "sd", "p10", "p90", "skewness", "kurtosis")}
    mean, sd = float(values.mean()), float(values.std())
    z = (values - mean) / sd if sd > 0 else np.zeros_like(values)
    return {
        f"{prefix}_mean": mean,
        f"{prefix}_sd": sd,
        f"{prefix}_p10": float(np.percentile(values, 10)),
        f"{prefix}_p90": float(np.percentile(values, 90)),
        f"{prefix}_skewness": float((z**3).mean()),
        f"{prefix}_kurtosis": float((z**4).mean() - 3.0),
    }


def glcm_features(image: FloatArray, mask: BoolArray, bin_width: float, prefix: str) -> dict[str, float]:
    """Grey-level co-occurrence features inside ``mask`` (2D or 3D), offsets of one voxel.

    Symmetric matrices are accumulated over the axis-aligned neighbour directions (4 in 2D, 13 in
    3D), pooled, and normalised; grey levels are fixed-width bins of ``bin_width`` image units.
    Returns contrast, homogeneity (inverse difference moment), energy (angular second moment),
    correlation and joint entropy (bits).
    """
    keys = ("contrast", "homogeneity", "energy", "correlation", "entropy")
    if mask.sum() < 4:
        return {f"{prefix}_glcm_{k}": math.nan for k in keys}
    levels = np.floor((image - image[mask].min()) / bin_width).astype(np.int64)
    n_levels = int(levels[mask].max()) + 1
    shifted = [tuple(int(v) - 1 for v in o) for o in np.ndindex(*(3,) * image.ndim)]
    offsets = [o for o in shifted if any(o) and next(v for v in o if v != 0) > 0]  # one of each ± pair
    matrix = np.zeros((n_levels, n_levels))
    for off in offsets:
        src = tuple(slice(max(0, -d), s - max(0, d)) for d, s in zip(off, image.shape, strict=True))
        dst = tuple(slice(max(0, d), s - max(0, -d)) for d, s in zip(off, image.shape, strict=True))
        both = mask[src] & mask[dst]
        a, b = levels[src][both], levels[dst][both]
        np.add.at(matrix, (a, b), 1.0)
        np.add.at(matrix, (b, a), 1.0)
    total = matrix.sum()
    if total == 0:
        return {f"{prefix}_glcm_{k}": math.nan for k in keys}
    p = matrix / total
    i, j = np.indices(p.shape)
    mu = float((i * p).sum())
    var = float((((i - mu) ** 2) * p).sum())
    nz = p[p > 0]
    return {
        f"{prefix}_glcm_contrast": float((((i - j) ** 2) * p).sum()),
        f"{prefix}_glcm_homogeneity": float((p / (1.0 + (i - j) ** 2)).sum()),
        f"{prefix}_glcm_energy": float((p**2).sum()),
        f"{prefix}_glcm_correlation": float((((i - mu) * (j - mu)) * p).sum() / var) if var > 0 else 1.0,
        f"{prefix}_glcm_entropy": float(-(nz * np.log2(nz)).sum()),
    }


def _boundary(mask: BoolArray) -> BoolArray:
    return mask & ~ndimage.binary_erosion(mask)


def _shells(mask: BoolArray, spacing_mm: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """Distance (mm) of every voxel outside the mask to it, and inside the mask to the outside."""
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing_mm)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing_mm)
    return np.asarray(outside, dtype=np.float64), np.asarray(inside, dtype=np.float64)


def edge_features(
    image: FloatArray,
    mask: BoolArray,
    spacing_mm: Sequence[float],
    prefix: str,
    valid: BoolArray | None = None,
) -> dict[str, float]:
    """Edge sharpness: gradient magnitude on the contour (units per mm) and contrast across it.

    ``edge_contrast`` is the mean inside minus the mean outside within :data:`EDGE_RING_MM` of the
    contour; ``edge_gradient`` is the mean gradient magnitude on the contour voxels; their ratio
    ``edge_width_mm`` is a blur width (a sharp step gives ≈ one voxel, a soft margin more).
    """
    valid = np.ones(mask.shape, dtype=bool) if valid is None else valid
    grads = np.gradient(image, *spacing_mm)
    magnitude = np.sqrt(sum(g**2 for g in grads))
    contour = _boundary(mask) & valid
    outside_mm, inside_mm = _shells(mask, spacing_mm)
    inner = mask & (inside_mm <= EDGE_RING_MM) & valid
    outer = ~mask & (outside_mm <= EDGE_RING_MM) & valid
    if not contour.any() or not inner.any() or not outer.any():
        return {f"{prefix}_edge_{k}": math.nan for k in ("gradient", "contrast", "width_mm")}
    gradient = float(magnitude[contour].mean())
    contrast = float(image[inner].mean() - image[outer].mean())
    return {
        f"{prefix}_edge_gradient": gradient,
        f"{prefix}_edge_contrast": contrast,
        f"{prefix}_edge_width_mm": abs(contrast) / gradient if gradient > 0 else math.nan,
    }


def shape2d_features(mask: BoolArray, pixel_mm: float) -> dict[str, float]:
    """Solidity (area / convex-hull area), compactness 4πA/P², eccentricity, extent (area / box)."""
    area = float(mask.sum()) * pixel_mm**2
    perimeter = _perimeter_2d(mask) * pixel_mm
    points = np.argwhere(mask).astype(np.float64)
    lo, hi = points.min(axis=0), points.max(axis=0)
    hull_area = _convex_hull_pixels(mask, points, lo, hi) * pixel_mm**2
    box = float(np.prod(hi - lo + 1)) * pixel_mm**2
    cov = np.cov(points.T) if len(points) > 2 else np.eye(2)
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    return {
        "shape_solidity": area / hull_area if hull_area > 0 else 1.0,
        "shape_compactness": min(1.0, 4 * math.pi * area / perimeter**2) if perimeter > 0 else 1.0,
        "shape_eccentricity": float(math.sqrt(max(0.0, 1.0 - ev[1] / ev[0]))) if ev[0] > 0 else 0.0,
        "shape_extent": area / box if box > 0 else 1.0,
    }


def _convex_hull_pixels(mask: BoolArray, points: FloatArray, lo: FloatArray, hi: FloatArray) -> float:
    """Pixels whose centre lies in the convex hull of the mask's pixel centres (digital convex hull),
    so a digital disc or square has solidity 1 and a notch or a spicule lowers it."""
    try:
        hull = Delaunay(points[ConvexHull(points).vertices])
    except (QhullError, ValueError):  # a line or a single pixel: its own hull
        return float(mask.sum())
    grid = np.stack(
        np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1
    )
    inside = hull.find_simplex(grid.reshape(-1, 2).astype(np.float64), tol=1e-6) >= 0
    return float(max(mask.sum(), np.count_nonzero(inside)))


def _perimeter_2d(mask: BoolArray) -> float:
    """Contour length (pixels) of a binary mask: crack length with a diagonal correction.

    Counting exposed pixel edges over-estimates a digital circle's perimeter by 4/π; the factor
    π/4 removes that bias for smooth shapes, so a disc has compactness ≈ 1.
    """
    padded = np.pad(mask, 1)
    edges = sum(int(np.count_nonzero(padded != np.roll(padded, 1, axis=a))) for a in (0, 1))
    return edges * math.pi / 4


def shape3d_features(mask: BoolArray, spacing_mm: Sequence[float]) -> dict[str, float]:
    """Sphericity (π^⅓(6V)^⅔ / A), solidity (V / convex hull V), elongation and flatness (PCA)."""
    voxel = float(np.prod(spacing_mm))
    volume = float(mask.sum()) * voxel
    padded = np.pad(mask, 1)
    faces = [spacing_mm[(a + 1) % 3] * spacing_mm[(a + 2) % 3] for a in range(3)]
    faces_mm2 = sum(np.count_nonzero(padded != np.roll(padded, 1, axis=a)) * faces[a] for a in range(3))
    area = float(faces_mm2) * 2.0 / 3.0  # voxel faces over-estimate a smooth surface by ≈ 3/2 (Lindblad 2005)
    points = np.argwhere(_boundary(mask)).astype(np.float64) * np.asarray(spacing_mm)
    try:
        hull = ConvexHull(points).volume if len(points) >= 4 else volume
    except (QhullError, ValueError):
        hull = volume
    cov = np.cov((np.argwhere(mask) * np.asarray(spacing_mm)).T)
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    return {
        "shape_sphericity": float(math.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area) if area else 1.0,
        "shape_solidity": min(1.0, volume / hull) if hull > 0 else 1.0,
        "shape_elongation": float(math.sqrt(ev[1] / ev[0])) if ev[0] > 0 else 1.0,
        "shape_flatness": float(math.sqrt(ev[2] / ev[0])) if ev[0] > 0 else 1.0,
    }


def equivalent_diameter_mm(mask: BoolArray, spacing_mm: Sequence[float]) -> float:
    """Diameter (mm) of the circle (2D mask) or sphere (3D mask) with the mask's area or volume."""
    size = float(mask.sum()) * float(np.prod(spacing_mm))
    if mask.ndim == 2:
        return 2.0 * math.sqrt(size / math.pi)
    return (6.0 * size / math.pi) ** (1.0 / 3.0)


def lung_features(hu: FloatArray, mask: BoolArray, valid: BoolArray | None = None) -> dict[str, float]:
    """Features of a nodule on its largest axial slice (2D arrays on the :data:`LUNG_PIXEL_MM` grid).

    ``valid`` marks pixels that hold image data (a tight crop is padded outside it); rings and edge
    statistics use only valid pixels.
    """
    valid = np.ones(mask.shape, dtype=bool) if valid is None else valid
    px = (LUNG_PIXEL_MM, LUNG_PIXEL_MM)
    core = ndimage.binary_erosion(mask)
    core = core if core.sum() >= 3 else mask
    out = _stats(hu[core], "hu_inside")
    out["hu_laplacian_abs"] = float(np.abs(ndimage.laplace(hu))[core].mean())
    out |= glcm_features(hu, mask, LUNG_BIN_HU, "hu")
    out |= edge_features(hu, mask, px, "hu", valid)
    outside_mm, _ = _shells(mask, px)
    ring = ~mask & valid & (outside_mm > LUNG_RING_MM[0]) & (outside_mm <= LUNG_RING_MM[1])
    out["hu_surrounding_mean"] = float(hu[ring].mean()) if ring.any() else math.nan
    out["hu_surrounding_sd"] = float(hu[ring].std()) if ring.any() else math.nan
    out |= shape2d_features(mask, LUNG_PIXEL_MM)
    return out


def glioma_features(
    images_z: Mapping[str, FloatArray], labels: NDArray[np.uint8], spacing_mm: Sequence[float]
) -> dict[str, float]:
    """Features of a glioma: ``images_z`` brain-z-scored contrasts, ``labels`` 1 core / 2 oedema / 3 enh.

    Per contrast: first-order statistics of the whole tumour and of each sub-region present, edge
    sharpness at the whole-tumour boundary, GLCM texture inside the whole tumour. Shape: 3D
    sphericity, solidity, elongation and flatness of the whole tumour and of the tumour core
    (1 ∪ 3), and the sub-region fractions of the whole tumour (dimensionless).
    """
    whole = labels > 0
    core = (labels == 1) | (labels == 3)
    out: dict[str, float] = {}
    for name in sorted(images_z):
        z = images_z[name]
        out |= _stats(z[whole], f"{name}_whole")
        for label, region in ((1, "necrotic"), (2, "oedema"), (3, "enhancing")):
            sel = labels == label
            stats = _stats(z[sel], f"{name}_{region}") if sel.sum() >= 20 else {}
            out |= {k: v for k, v in stats.items() if k.endswith(("_mean", "_sd", "_p10", "_p90"))}
        out |= edge_features(z, whole, spacing_mm, name)
        out |= glcm_features(z, whole, GLIOMA_BIN_Z, name)
    out |= shape3d_features(whole, spacing_mm)
    if core.sum() >= 20:
        out |= {f"core_{k}": v for k, v in shape3d_features(core, spacing_mm).items()}
    n = float(whole.sum())
    for label, region in ((1, "necrotic"), (2, "oedema"), (3, "enhancing")):
        out[f"fraction_{region}"] = float((labels == label).sum()) / n if n else math.nan
    return out
