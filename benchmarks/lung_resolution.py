"""Real LIDC-IDRI nodules re-imaged on the real hosts' grids: the lung VTT features at 1.5 and 3 mm.

    .venv/bin/python benchmarks/lung_resolution.py out/lidc_split/real_test               # ≈ 1 min
    .venv/bin/python benchmarks/lung_resolution.py out/lidc_split/real_test out/realism/l  # + bundles

Two of the three real chest CTs that issue 13 grows nodules on are much coarser than the
LIDC-IDRI crops the yardstick compares with (the TotalSegmentator chest crop has 1.5 mm voxels,
the abdomen CT 3 mm; the crops 0.5–0.9 mm in-plane). Texture features such as the mean
|Laplacian| inside the mask mostly measure the grid there. This script answers: what would the
*real* nodules measure on those grids? Each real crop is re-imaged on an isotropic grid of
``GRIDS_MM``: a Gaussian of FWHM = the new voxel (the voxel's integration, beyond the crop's own
voxel) and linear resampling, the reader mask resampled the same way (kept where ≥ 0.5). Then the
features are measured exactly as ``longisynth evaluate realism --family lung`` does (largest axial
slice at 0.7 mm; lesions ≥ 3 mm across). With bundle folders, each host's synthetic medians follow.

Prints a Markdown table of medians; measures, asserts nothing.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from longisynth.evaluate.realism import features as ft
from longisynth.evaluate.realism import lesions as ls

GRIDS_MM = (None, 1.5, 3.0)  # None: the crop's own grid
FEATURES = (
    "hu_inside_sd", "hu_inside_mean", "hu_laplacian_abs", "hu_glcm_entropy",
    "shape_solidity", "shape_compactness", "shape_eccentricity",
)  # fmt: skip
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def reimage(
    hu: np.ndarray, mask: np.ndarray, affine: np.ndarray, spacing: np.ndarray, grid_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(HU, mask, affine) of a crop re-imaged with isotropic ``grid_mm`` voxels (never finer than
    the crop's own); HU and mm."""
    target = np.maximum(spacing, grid_mm)
    sigma_vox = np.sqrt(np.maximum(target**2 - spacing**2, 0.0)) * FWHM_TO_SIGMA / spacing
    zoom = spacing / target
    hu = ndimage.zoom(ndimage.gaussian_filter(hu, sigma_vox, mode="nearest"), zoom, order=1)
    occupancy = ndimage.gaussian_filter(mask.astype(np.float32), sigma_vox, mode="nearest")
    mask = ndimage.zoom(occupancy, zoom, order=1) >= 0.5
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] / zoom
    return hu, mask, new_affine


def real_rows(folder: Path, grid_mm: float | None) -> list[dict[str, float]]:
    rows = []
    for image_path in sorted((folder / "image").glob("*.nii*")):
        img = nib.Nifti1Image.from_filename(image_path)
        hu = np.asarray(img.get_fdata(dtype=np.float32))
        mask = np.asarray(nib.Nifti1Image.from_filename(folder / "mask" / image_path.name).dataobj) > 0
        affine = np.asarray(img.affine, dtype=np.float64)
        if grid_mm is not None:
            spacing = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
            hu, mask, affine = reimage(hu, mask, affine, spacing, grid_mm)
        if not mask.any():
            continue
        hu2d, mask2d = ls.largest_axial_slice(hu, mask, affine)
        if not mask2d.any() or ft.equivalent_diameter_mm(mask2d, (ft.LUNG_PIXEL_MM,) * 2) < 3.0:
            continue
        rows.append(ft.lung_features(hu2d, mask2d))
    return rows


def synthetic_rows(folder: Path) -> dict[str, list[dict[str, float]]]:
    """Feature rows of every bundle in ``folder``, keyed by host (the bundle name before ``_NN``)."""
    out: dict[str, list[dict[str, float]]] = defaultdict(list)
    for bundle in sorted(folder.glob("*.zip")):
        host = bundle.stem.rsplit("_", 1)[0]
        for lesion in ls.synthetic_lesions(bundle, "lung_nodule", ls.lung_host_group):
            out[host].append(lesion.features)
    return dict(out)


def row(label: str, rows: list[dict[str, float]]) -> str:
    cells = [f"{np.nanmedian([r[f] for r in rows]):.2f}" for f in FEATURES]
    return f"| {label} | {len(rows)} | " + " | ".join(cells) + " |"


def main(argv: list[str]) -> int:
    if not argv or not (Path(argv[0]) / "image").is_dir():
        print(
            "usage: lung_resolution.py REAL_LIDC_FOLDER [BUNDLE_FOLDER ...]  (lidc_nodules layout)",
            file=sys.stderr,
        )
        return 2
    real = Path(argv[0])
    print("| lesions | n | " + " | ".join(FEATURES) + " |")
    print("|---|---:|" + "---:|" * len(FEATURES))
    for grid in GRIDS_MM:
        label = "real, own grid" if grid is None else f"real, re-imaged at {grid} mm"
        print(row(label, real_rows(real, grid)), flush=True)
    for folder in argv[1:]:
        for host, rows in synthetic_rows(Path(folder)).items():
            print(row(f"ours, {host}", rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
