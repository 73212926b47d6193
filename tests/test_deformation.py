"""Mass effect: smooth, invertible (Jacobian > 0), compactly supported, exact outside its zone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from longisynth.deformation import (
    MAX_AMPLITUDE,
    RadialPush,
    Warper,
    backward_displacement,
    forward_radius,
    jacobian_determinant,
    push_for_lesion,
)


@settings(max_examples=25, deadline=None)
@given(
    amplitude=st.floats(0.0, MAX_AMPLITUDE),
    influence=st.floats(6.0, 25.0),
    spacing=st.tuples(st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.floats(0.5, 3.0)),
)
def test_jacobian_positive_and_support_compact(amplitude: float, influence: float, spacing: tuple) -> None:  # type: ignore[type-arg]
    shape = (32, 30, 20)
    center = (15.3, 14.0, 9.6)
    push = RadialPush(center, amplitude, influence)
    disp = backward_displacement(shape, spacing, push)
    jac = jacobian_determinant(disp, spacing)
    assert jac.min() > 0
    grids = np.meshgrid(
        *[(np.arange(n) - c) * s for n, c, s in zip(shape, center, spacing, strict=True)], indexing="ij"
    )
    r = np.sqrt(sum(g**2 for g in grids))
    assert np.all(disp[:, r >= influence] == 0)


def test_backward_field_inverts_forward_map() -> None:
    spacing = (0.8, 0.8, 1.5)
    push = RadialPush((20.0, 20.0, 10.0), 0.5, 15.0)
    disp = backward_displacement((40, 40, 20), spacing, push)
    idx = np.array([25, 22, 12])
    x = (idx - np.array(push.center_vox)) * np.array(spacing)
    src = x + disp[:, 25, 22, 12]
    # The tissue found at src moves forward to x.
    assert np.isclose(forward_radius(np.linalg.norm(src), push), np.linalg.norm(x), atol=1e-3)
    assert np.allclose(src / np.linalg.norm(src), x / np.linalg.norm(x), atol=1e-4)


def test_push_grows_with_lesion_and_tissue_moves_outwards() -> None:
    small = push_for_lesion((0, 0, 0), 3.0, 0.25, 20.0)
    big = push_for_lesion((0, 0, 0), 8.0, 0.25, 20.0)
    assert 0 < small.amplitude < big.amplitude <= MAX_AMPLITUDE
    # at the lesion boundary, the tissue now there came from closer to the centre
    r = 8.0
    assert forward_radius(np.array(r), big) > r


def test_warp_is_exact_where_nothing_moves() -> None:
    rng = np.random.default_rng(0)
    img = rng.normal(size=(30, 30, 30)).astype(np.float32) * 100
    spacing = (1.0, 1.0, 1.0)
    disp = backward_displacement(img.shape, spacing, RadialPush((15.0, 15.0, 15.0), 0.4, 8.0))
    out = Warper(img)(disp, spacing)
    still = ~np.any(disp != 0, axis=0)
    assert still.sum() > 20000
    assert np.array_equal(out[still], img[still])
    assert not np.array_equal(out[~still], img[~still])


def test_warp_does_not_overshoot_at_steps() -> None:
    """A skull-stripped brain's edge against its 0 background: no ringing into the background, no
    negative values, and every output within the range of the 2×2×2 input voxels it came from."""
    rng = np.random.default_rng(1)
    grid = np.mgrid[:40, :40, :40].astype(np.float32)
    r = np.sqrt((grid[0] - 14) ** 2 + (grid[1] - 20) ** 2 + (grid[2] - 20) ** 2)
    img = np.where(r < 12, 400.0 + 60.0 * rng.standard_normal(r.shape), 0.0).astype(np.float32)
    img = np.maximum(img, 0.0)
    spacing = (1.0, 1.0, 1.0)
    disp = backward_displacement(img.shape, spacing, RadialPush((14.0, 20.0, 20.0), 0.6, 20.0))
    out = Warper(img)(disp, spacing)
    assert out.min() >= 0.0
    assert out.max() <= img.max()
    # Far from the brain's edge (beyond where its tissue can be pushed) the background stays exactly 0.
    far = r > 12 + 20 * 0.6 + 2
    assert np.all(out[far] == 0)
    assert np.any(out[(r > 12) & ~far] > 0)  # the push does move tissue outwards (clipped later)


def test_one_warper_for_many_fields_equals_scipy_per_field() -> None:
    """The spline coefficients and local ranges are computed once per crop and reused for every
    timepoint's field; each result equals SciPy's own cubic interpolation (clamped to the local
    2×2×2 range) bit for bit."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    img = (rng.normal(size=(24, 26, 18)) * 100).astype(np.float32)
    img[:, :, :4] = 0.0  # a step, where the clamp acts
    spacing = (0.7, 0.8, 1.5)
    lo = ndimage.minimum_filter(img, size=2, origin=-1, mode="nearest")
    hi = ndimage.maximum_filter(img, size=2, origin=-1, mode="nearest")
    warper = Warper(img)
    for amplitude in (0.2, 0.45, 0.7):
        disp = backward_displacement(img.shape, spacing, RadialPush((12.0, 13.0, 9.0), amplitude, 9.0))
        idx = np.nonzero(np.any(disp != 0, axis=0))
        coords = np.stack(
            [idx[ax].astype(np.float32) + disp[ax][idx] / np.float32(spacing[ax]) for ax in range(3)]
        )
        values = ndimage.map_coordinates(img, coords, order=3, mode="nearest")
        corner = tuple(np.clip(np.floor(coords[ax]).astype(np.intp), 0, img.shape[ax] - 1) for ax in range(3))
        expected = img.copy()
        expected[idx] = np.clip(values, lo[corner], hi[corner])
        out = warper(disp, spacing)
        assert np.array_equal(out, expected)
        assert np.array_equal(out, Warper(img)(disp, spacing))  # a fresh one: nothing carried over
