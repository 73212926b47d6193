"""The procedural chest CT phantom: orientation, HU per structure, determinism, lungs' extent, speed."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from longisynth.geometry import Geometry
from longisynth.phantoms.thorax import (
    LABEL_AIRWAY,
    LABEL_AORTA,
    LABEL_BONE,
    LABEL_HEART,
    LABEL_LIVER,
    make_thorax_phantom,
    thorax_phantom_labels,
)

SMALL = ((128, 128, 90), (2.8, 2.8, 4.0))


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hu, aff = make_thorax_phantom(*SMALL, seed=0)
    return hu, aff, thorax_phantom_labels(*SMALL)


def test_orientation_dtype_and_centre(small: tuple) -> None:
    hu, aff, _ = small
    assert hu.dtype == np.int16 and hu.shape == SMALL[0]
    assert nib.aff2axcodes(aff) == ("L", "P", "S")
    assert np.allclose(np.linalg.norm(aff[:3, :3], axis=0), SMALL[1])
    centre = Geometry(aff, hu.shape).voxel_to_world((np.asarray(SMALL[0]) - 1) / 2)
    assert np.allclose(centre, 0.0, atol=1e-6)


@pytest.mark.parametrize(
    ("labels", "lo", "hi"),
    [
        ((10, 11, 12, 13, 14), -900.0, -750.0),  # lung parenchyma with its vessels
        ((LABEL_HEART,), 0.0, 80.0),
        ((LABEL_LIVER,), 0.0, 80.0),
        ((LABEL_AORTA,), 0.0, 80.0),
        ((LABEL_BONE,), 300.0, 1000.0),
        ((LABEL_AIRWAY,), -1000.0, -800.0),
    ],
)
def test_hu_per_structure(small: tuple, labels: tuple[int, ...], lo: float, hi: float) -> None:
    hu, _, lab = small
    m = np.isin(lab, labels)
    assert m.sum() > 50
    assert lo <= float(hu[m].mean()) <= hi


def test_air_fat_muscle_and_noise(small: tuple) -> None:
    hu, _, lab = small
    assert abs(float(hu[:6, :6, :].mean()) + 1000.0) < 5.0  # corner: air outside the body
    liver = ndimage.binary_erosion(lab == LABEL_LIVER, iterations=3)
    assert 8.0 < float(hu[liver].std()) < 25.0  # ≈ 15 HU scanner noise
    # A row through the body centre crosses fat (≈ −100) and muscle (≈ +45) in the wall.
    row = hu[:, SMALL[0][1] // 2, SMALL[0][2] // 2].astype(float)
    assert np.any((row > -140) & (row < -60)) and np.any((row > 20) & (row < 70))


def test_deterministic_and_seeded() -> None:
    a, _ = make_thorax_phantom((64, 64, 40), (5.6, 5.6, 9.0), seed=3)
    b, _ = make_thorax_phantom((64, 64, 40), (5.6, 5.6, 9.0), seed=3)
    c, _ = make_thorax_phantom((64, 64, 40), (5.6, 5.6, 9.0), seed=4)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_lungs_span_the_field_of_view_right_bigger(small: tuple) -> None:
    _, aff, lab = small
    lungs = lab >= 10
    ks = np.flatnonzero(lungs.any(axis=(0, 1)))
    nz = SMALL[0][2]
    assert ks[-1] >= 0.85 * nz  # apex near the top
    assert ks[0] <= 0.25 * nz  # bases near the bottom
    right = np.isin(lab, (12, 13, 14))
    left = np.isin(lab, (10, 11))
    assert 1.05 < right.sum() / left.sum() < 1.5
    # Right lung on the patient's right: world x > 0 (array i decreases towards +R here).
    g = Geometry(aff, lab.shape)
    assert g.voxel_to_world(ndimage.center_of_mass(right))[0] > 40.0
    assert g.voxel_to_world(ndimage.center_of_mass(left))[0] < -40.0
    # Trachea at the top is air in the midline.
    top = lab == LABEL_AIRWAY
    top[:, :, : int(0.8 * nz)] = False
    assert top.any() and abs(g.voxel_to_world(ndimage.center_of_mass(top))[0]) < 15.0


def test_default_size_is_fast() -> None:
    t = time.perf_counter()
    hu, _ = make_thorax_phantom()
    elapsed = time.perf_counter() - t
    assert hu.shape == (256, 256, 180)
    # Budget 3 s on a free core (measured ≈ 1.5–1.9 s); doubled for a busy CI machine.
    assert elapsed < 6.0
