"""Radiomics-style features on shapes and textures whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from longisynth.evaluate.realism.features import (
    edge_features,
    equivalent_diameter_mm,
    glcm_features,
    shape2d_features,
    shape3d_features,
)
from longisynth.evaluate.realism.lesions import axial_axis, largest_axial_slice


def _disc(r: float, n: int = 81) -> np.ndarray:
    y, x = np.indices((n, n)) - (n - 1) / 2
    return x**2 + y**2 <= r**2


def test_disc_is_compact_solid_and_round() -> None:
    f = shape2d_features(_disc(20), 0.7)
    assert f["shape_compactness"] == pytest.approx(1.0, abs=0.05)
    assert f["shape_solidity"] == pytest.approx(1.0, abs=0.03)
    assert f["shape_eccentricity"] < 0.1
    assert f["shape_extent"] == pytest.approx(math.pi * 20**2 / 41**2, abs=0.02)  # area / (2r + 1)² box


def test_ellipse_eccentricity_and_star_solidity() -> None:
    y, x = np.indices((81, 81)) - 40.0
    ellipse = (x / 30) ** 2 + (y / 15) ** 2 <= 1
    assert shape2d_features(ellipse, 1.0)["shape_eccentricity"] == pytest.approx(
        math.sqrt(1 - 0.25), abs=0.03
    )
    theta, r = np.arctan2(y, x), np.hypot(x, y)
    star = r <= 18 + 12 * np.cos(6 * theta)
    f = shape2d_features(star, 1.0)
    assert f["shape_solidity"] < 0.85
    assert f["shape_compactness"] < 0.6


def test_sphere_3d_shape() -> None:
    idx = np.indices((41, 41, 41)) - 20.0
    ball = (idx**2).sum(axis=0) <= 15**2
    f = shape3d_features(ball, (1.0, 1.0, 1.0))
    assert f["shape_sphericity"] == pytest.approx(1.0, abs=0.08)
    assert f["shape_solidity"] == pytest.approx(1.0, abs=0.06)
    assert f["shape_elongation"] == pytest.approx(1.0, abs=0.02)
    flat = (idx[0] / 15) ** 2 + (idx[1] / 15) ** 2 + (idx[2] / 5) ** 2 <= 1
    assert shape3d_features(flat, (1.0, 1.0, 1.0))["shape_flatness"] == pytest.approx(1 / 3, abs=0.05)
    assert equivalent_diameter_mm(ball, (1.0, 1.0, 1.0)) == pytest.approx(30.0, rel=0.02)


def test_glcm_uniform_vs_noise() -> None:
    mask = _disc(15, 41)
    flat = glcm_features(np.full(mask.shape, 30.0), mask, 25.0, "x")
    assert flat["x_glcm_energy"] == 1.0 and flat["x_glcm_contrast"] == 0.0 and flat["x_glcm_entropy"] == 0.0
    noisy = glcm_features(np.random.default_rng(0).normal(0, 100, mask.shape), mask, 25.0, "x")
    assert noisy["x_glcm_energy"] < 0.05 and noisy["x_glcm_contrast"] > 10
    assert abs(noisy["x_glcm_correlation"]) < 0.1  # white noise: neighbours uncorrelated


def test_edge_width_grows_with_blur() -> None:
    mask = _disc(15, 61)
    step = np.where(mask, 0.0, -800.0)
    sharp = edge_features(step, mask, (0.7, 0.7), "hu")
    soft = edge_features(ndimage.gaussian_filter(step, 3.0), mask, (0.7, 0.7), "hu")
    assert soft["hu_edge_width_mm"] > 1.3 * sharp["hu_edge_width_mm"]
    assert soft["hu_edge_gradient"] < 0.5 * sharp["hu_edge_gradient"]
    assert sharp["hu_edge_contrast"] == pytest.approx(800.0, rel=0.01)


def test_largest_axial_slice_follows_the_affine() -> None:
    # slice axis is voxel axis 0 here (sagittal-stored volume rotated so axis 0 points S)
    affine = np.array([[0, 0, 0.7, 0], [0, 0.7, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1.0]])
    assert axial_axis(affine) == 0
    mask = np.zeros((6, 30, 30), dtype=bool)
    mask[2, 5:25, 5:25] = True
    mask[3, 10:20, 10:20] = True
    hu, m2 = largest_axial_slice(np.where(mask, 40.0, -800.0), mask, affine)
    assert m2.sum() * 0.7**2 == pytest.approx(400 * 0.49, rel=0.1)
    assert hu.shape == (30, 30)
