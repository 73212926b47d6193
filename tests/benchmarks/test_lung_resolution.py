"""``benchmarks/lung_resolution.py``: a nodule re-imaged on a coarser grid keeps its place and size
and loses its fine texture, as it would on a coarser scanner."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import lung_resolution as lr

from longisynth.evaluate.realism import features as ft


def _crop(spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 10 mm textured solid sphere in lung, centred in a 40 mm crop (HU, mask, affine)."""
    shape = tuple(round(40.0 / s) for s in spacing)
    grid = np.stack(
        np.meshgrid(
            *[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
        )
    )
    mask = np.sqrt((grid**2).sum(axis=0)) <= 5.0
    rng = np.random.default_rng(0)
    hu = np.where(mask, 40.0, -850.0) + rng.normal(0.0, 60.0, shape)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -np.asarray(shape) * np.asarray(spacing) / 2
    return hu.astype(np.float32), mask, affine


def test_reimaged_nodule_keeps_its_geometry_and_loses_fine_texture() -> None:
    spacing = np.array([0.7, 0.7, 1.25])
    hu, mask, affine = _crop((0.7, 0.7, 1.25))
    coarse_hu, coarse_mask, coarse_affine = lr.reimage(hu, mask, affine, spacing, 3.0)
    # voxels of 3 mm along every axis, the same origin
    np.testing.assert_allclose(np.sqrt((coarse_affine[:3, :3] ** 2).sum(axis=0)), [3.0, 3.0, 3.0], rtol=0.05)
    np.testing.assert_allclose(coarse_affine[:3, 3], affine[:3, 3])
    # the same volume within 15 % and the same centre within a voxel (mm)
    vol = mask.sum() * spacing.prod()
    coarse_spacing = np.sqrt((coarse_affine[:3, :3] ** 2).sum(axis=0))
    assert abs(coarse_mask.sum() * coarse_spacing.prod() - vol) < 0.15 * vol
    centre = nib.affines.apply_affine(affine, np.argwhere(mask).mean(axis=0))
    coarse_centre = nib.affines.apply_affine(coarse_affine, np.argwhere(coarse_mask).mean(axis=0))
    assert np.linalg.norm(coarse_centre - centre) < 3.0
    # what the yardstick measures: texture inside the mask falls (HU)
    fine = ft.lung_features(*lr.ls.largest_axial_slice(hu, mask, affine))
    coarse = ft.lung_features(*lr.ls.largest_axial_slice(coarse_hu, coarse_mask, coarse_affine))
    assert coarse["hu_laplacian_abs"] < 0.5 * fine["hu_laplacian_abs"]


def test_a_crop_is_never_refined() -> None:
    hu, mask, affine = _crop((1.5, 1.5, 1.5))
    same_hu, same_mask, same_affine = lr.reimage(hu, mask, affine, np.array([1.5, 1.5, 1.5]), 1.0)
    np.testing.assert_allclose(same_affine, affine)
    np.testing.assert_array_equal(same_mask, mask)
    np.testing.assert_allclose(same_hu, hu, atol=1e-3)
