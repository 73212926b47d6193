"""Voxel↔world conversions with any affine (oblique included) and crop geometry."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from longisynth.geometry import Box, Geometry


@settings(max_examples=50, deadline=None)
@given(
    angles=st.tuples(st.floats(-np.pi, np.pi), st.floats(-np.pi, np.pi), st.floats(-np.pi, np.pi)),
    spacing=st.tuples(st.floats(0.3, 5.0), st.floats(0.3, 5.0), st.floats(0.3, 5.0)),
    flips=st.tuples(st.sampled_from([-1, 1]), st.sampled_from([-1, 1]), st.sampled_from([-1, 1])),
    point=st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(0, 50)),
)
def test_round_trip_and_spacing_with_oblique_affines(angles, spacing, flips, point) -> None:  # type: ignore[no-untyped-def]
    aff = np.eye(4)
    aff[:3, :3] = Rotation.from_euler("xyz", angles).as_matrix() @ np.diag(np.multiply(spacing, flips))
    aff[:3, 3] = [12.0, -40.0, 7.5]
    g = Geometry(aff, (101, 101, 51))
    assert np.allclose(g.spacing_mm, spacing)
    world = g.voxel_to_world(point)
    assert np.allclose(g.world_to_voxel(world), point, atol=1e-6)
    box = Box((10, 20, 5), (40, 60, 30))
    crop = g.crop(box)
    local = np.asarray(point) - np.asarray(box.start)
    assert np.allclose(crop.voxel_to_world(local), world)
    assert crop.shape == (30, 40, 25)


def test_world_axis_index_on_lps_and_ras() -> None:
    lps = Geometry(np.diag([-0.7, -0.7, 1.0, 1.0]), (10, 10, 10))
    axis, sign = lps.world_axis_index(0)
    assert (axis, sign) == (0, -1.0)
    ras = Geometry(np.diag([0.7, 0.7, 1.0, 1.0]), (10, 10, 10))
    assert ras.world_axis_index(2) == (2, 1.0)


def test_box_around_is_clipped() -> None:
    g = Geometry(np.diag([2.0, 2.0, 2.0, 1.0]), (20, 20, 20))
    box = g.box_around(np.array([1.0, 10.0, 19.0]), 6.0)
    assert box.start[0] == 0 and box.stop[2] == 20
    assert box.shape[1] == 9  # ceil(6/2)+1 on each side of the centre voxel
