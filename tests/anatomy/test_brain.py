"""Brain anatomy on real healthy MR hosts (niivue demo images, see shared/data/README.md), on the
MNI152 phantom and on a body MR that must be rejected (TotalSegmentator example, Apache-2.0)."""

from __future__ import annotations

from typing import Any

import nibabel as nib
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.anatomy.brain import (
    BrainAnatomy,
    brain_anatomy,
    brain_region,
    detect_brain,
    lobe_masks,
)
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Geometry
from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom, mni_template_affine
from longisynth.spec import BrainLobe, Depth, Side
from tests.conftest import shared_file

HOSTS = {
    "chris_t1": ("niivue_chris_t1.nii.gz", "t1"),  # T1 with skull, 0.88 mm, RAS
    "gd": ("niivue_mr_gd_skullstripped.nii.gz", "t1c"),  # skull-stripped T1c, RAS
    "t2w": ("niivue_t2w.nii.gz", "t2"),  # T2, 1×1×2 mm, LAS, 60 slices (partial coverage)
}


def _load(name: str) -> tuple[NDArray[np.float32], Geometry]:
    img: Any = nib.load(shared_file(name))  # a Nifti1Image
    data = np.asarray(img.dataobj, dtype=np.float32)
    return data, Geometry(np.asarray(img.affine, dtype=np.float64), data.shape)


_CACHE: dict[str, tuple[NDArray[np.float32], Geometry, BrainAnatomy]] = {}


def _host(key: str) -> tuple[NDArray[np.float32], Geometry, BrainAnatomy]:
    """Scan, grid and anatomy of a host, computed once per test session (registration ≈ 3–8 s)."""
    if key not in _CACHE:
        file, contrast = HOSTS[key]
        data, geometry = _load(file)
        _CACHE[key] = (data, geometry, brain_anatomy(data, geometry, contrast))
    return _CACHE[key]


@pytest.fixture(scope="module", params=list(HOSTS))
def host(request: pytest.FixtureRequest) -> tuple[str, NDArray[np.float32], Geometry, BrainAnatomy]:
    return (request.param, *_host(request.param))


def _weighted_mean(data: NDArray[np.float32], p: NDArray[np.float32]) -> float:
    return float((data * p).sum() / p.sum())


def test_maps_are_valid_probabilities(host) -> None:
    _, data, geometry, anatomy = host
    total = anatomy.csf + anatomy.gm + anatomy.wm
    assert anatomy.brain.shape == data.shape == geometry.shape
    assert (
        float(total.max()) <= 1.0 + 1e-4
        and float(min(m.min() for m in (anatomy.csf, anatomy.gm, anatomy.wm))) >= 0
    )
    assert float(total[~anatomy.brain].max()) == 0.0


def test_brain_volume_is_plausible(host) -> None:
    key, _, geometry, anatomy = host
    volume_cm3 = anatomy.brain.sum() * geometry.voxel_volume_mm3 / 1000.0
    if key == "t2w":  # 120 mm slab with the skull base cut: part of a (large) brain
        assert 900 < volume_cm3 < 2100
    else:
        assert 1000 < volume_cm3 < 1800


def test_tissue_intensities_are_ordered(host) -> None:
    key, data, _, anatomy = host
    csf, gm, wm = (_weighted_mean(data, p) for p in (anatomy.csf, anatomy.gm, anatomy.wm))
    if key == "t2w":
        assert csf > gm > wm
    else:
        assert wm > gm > csf
    # GM and WM volumes are both substantial (a collapsed class would break growth and seeding).
    assert 0.5 < anatomy.gm.sum() / anatomy.wm.sum() < 2.5


def test_skull_excluded_on_t1_with_skull() -> None:
    data, _, anatomy = _host("chris_t1")
    border = anatomy.brain & ~ndimage.binary_erosion(anatomy.brain, iterations=2)
    wm_level = float(np.median(data[anatomy.wm > 0.9]))
    # Scalp fat is as bright as WM on T1; the brain's border should be CSF/GM, clearly darker.
    assert float(data[border].mean()) < 0.75 * wm_level
    assert float(np.mean(data[border] > 1.1 * wm_level)) < 0.05


def test_left_frontal_region_is_left_and_anterior(host) -> None:
    _, _, geometry, anatomy = host
    region = brain_region(anatomy, Side.LEFT, BrainLobe.FRONTAL, None)
    assert region.sum() * geometry.voxel_volume_mm3 > 50_000  # > 50 cm³ of tissue
    assert np.all((anatomy.gm + anatomy.wm)[region] > 0.5)
    centre = geometry.voxel_to_world(np.argwhere(region).mean(axis=0))
    brain_centre = geometry.voxel_to_world(np.argwhere(anatomy.brain).mean(axis=0))
    assert centre[0] < brain_centre[0] - 10  # RAS: left is smaller x
    assert centre[1] > brain_centre[1] + 10  # anterior is larger y
    occipital = brain_region(anatomy, Side.RIGHT, BrainLobe.OCCIPITAL, None)
    back = geometry.voxel_to_world(np.argwhere(occipital).mean(axis=0))
    assert back[0] > brain_centre[0] + 5 and back[1] < brain_centre[1] - 40


def test_depth_central_is_deep_white_matter(host) -> None:
    _, _, geometry, anatomy = host
    central = brain_region(anatomy, None, None, Depth.CENTRAL)
    peripheral = brain_region(anatomy, None, None, Depth.PERIPHERAL)
    assert not np.any(central & peripheral)
    assert float(anatomy.wm[central].mean()) > 0.7
    dist_c = np.linalg.norm(
        geometry.voxel_to_world(np.argwhere(central)).mean(axis=0)
        - geometry.voxel_to_world(np.argwhere(anatomy.brain).mean(axis=0))
    )
    assert dist_c < 30.0


def test_orientation_lps_copy_gives_flipped_masks() -> None:
    data, geometry, anatomy = _host("gd")
    # Same voxels, array axes i and j reversed (an LPS-ordered copy of the same world).
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:3, 3] = [data.shape[0] - 1, data.shape[1] - 1, 0]
    lps_geometry = Geometry(geometry.affine @ flip, data.shape)
    assert nib.aff2axcodes(lps_geometry.affine)[:2] == ("L", "P")
    flipped = brain_anatomy(np.ascontiguousarray(data[::-1, ::-1, :]), lps_geometry, "t1c")
    back = flipped.brain[::-1, ::-1, :]
    dice = 2 * np.sum(back & anatomy.brain) / (back.sum() + anatomy.brain.sum())
    assert dice > 0.97
    # The registration found the same MNI↔world relation (world is unchanged by the re-save).
    probe = np.array([[-40.0, 20.0, 30.0, 1.0], [30.0, -60.0, 10.0, 1.0]])
    moved = (probe @ flipped.mni_to_scan.T - probe @ anatomy.mni_to_scan.T)[:, :3]
    assert np.abs(moved).max() < 4.0
    left = brain_region(flipped, Side.LEFT, BrainLobe.FRONTAL, None)
    centre = lps_geometry.voxel_to_world(np.argwhere(left).mean(axis=0))
    assert centre[0] < -10


def test_body_mr_is_rejected() -> None:
    data, geometry = _load("totalseg_example_mr_sm.nii.gz")
    with pytest.raises(LesionDoesNotFitError, match="no brain found in this MRI"):
        detect_brain(data, geometry, "t1")


def test_phantom_registers_to_identity_and_ground_truth_is_used() -> None:
    images, affine = make_brain_phantom(("t1",), seed=5, spacing_mm=2.0)
    geometry = Geometry(affine, images["t1"].shape)
    found = detect_brain(images["t1"], geometry, "t1")
    again = detect_brain(images["t1"], geometry, "t1")
    np.testing.assert_array_equal(again.mni_to_scan, found.mni_to_scan)  # bit-for-bit
    np.testing.assert_allclose(found.mni_to_scan[:3, :3], np.eye(3), atol=0.04)
    assert np.abs(found.mni_to_scan[:3, 3]).max() < 3.0
    tissues = brain_phantom_tissues(2.0)
    anatomy = brain_anatomy(images["t1"], geometry, "t1", tissues=tissues)
    np.testing.assert_array_equal(anatomy.mni_to_scan, np.eye(4))
    np.testing.assert_allclose(anatomy.wm, tissues["wm"] * anatomy.brain, atol=1e-6)
    region = brain_region(anatomy, Side.LEFT, BrainLobe.TEMPORAL, None)
    xyz = geometry.voxel_to_world(np.argwhere(region).astype(float))
    assert xyz[:, 0].max() < -30 and xyz[:, 2].max() < 10


def test_empty_region_raises_specific_error() -> None:
    tissues = brain_phantom_tissues(4.0)
    affine, shape = mni_template_affine(4.0)
    geometry = Geometry(affine, shape)
    y = geometry.voxel_to_world(np.argwhere(np.ones(shape, dtype=bool)).astype(float))[:, 1].reshape(shape)
    cut = {k: np.where(y < -30, v, 0.0).astype(np.float32) for k, v in tissues.items()}  # no front
    anatomy = brain_anatomy(np.zeros(shape, np.float32), geometry, "t2", tissues=cut)
    with pytest.raises(LesionDoesNotFitError, match="left frontal lobe"):
        brain_region(anatomy, Side.LEFT, BrainLobe.FRONTAL, None)
    assert brain_region(anatomy, Side.LEFT, BrainLobe.OCCIPITAL, None).any()


def test_lobe_boundaries_and_bad_contrast() -> None:
    points = np.array([[-30.0, 40.0, 20.0], [40.0, -40.0, 45.0], [-50.0, -20.0, -15.0], [10.0, -90.0, 5.0]])
    lobes = lobe_masks(points)
    assert [lobe for i in range(4) for lobe, m in lobes.items() if m[i]] == [
        BrainLobe.FRONTAL,
        BrainLobe.PARIETAL,
        BrainLobe.TEMPORAL,
        BrainLobe.OCCIPITAL,
    ]
    cerebellum = lobe_masks(np.array([[10.0, -60.0, -35.0]]))  # in no lobe, only the cerebellum
    assert [lobe for lobe, m in cerebellum.items() if m[0]] == [BrainLobe.CEREBELLUM]
    geometry = Geometry(np.eye(4), (4, 4, 4))
    with pytest.raises(InvalidInputError, match="T1, T1c, T2 or FLAIR"):
        brain_anatomy(np.zeros((4, 4, 4)), geometry, "ct")


# Deep and infratentorial regions: MNI points well inside each (lobe_masks docstring) and the
# expected centre of each region's tissue on the phantom, (|x|, y, z) mm with a tolerance.
DEEP_REGIONS: dict[BrainLobe, tuple[list[tuple[float, float, float]], tuple[float, float, float], float]] = {
    BrainLobe.THALAMUS: ([(-12.0, -18.0, 8.0), (12.0, -25.0, 5.0)], (12.0, -18.0, 7.0), 4.0),
    BrainLobe.BASAL_GANGLIA: ([(22.0, 4.0, 2.0), (-13.0, 12.0, 10.0)], (19.0, 5.0, 3.0), 6.0),
    BrainLobe.INSULA: ([(38.0, 0.0, 4.0), (-38.0, -15.0, 10.0)], (38.0, -2.0, 5.0), 4.0),
    BrainLobe.CORPUS_CALLOSUM: ([(0.0, 0.0, 20.0), (-5.0, 25.0, 10.0)], (8.0, -3.0, 18.0), 8.0),
    BrainLobe.BRAINSTEM: ([(0.0, -28.0, -30.0), (0.0, -44.0, -50.0)], (6.0, -28.0, -30.0), 6.0),
    BrainLobe.CEREBELLUM: ([(30.0, -60.0, -35.0), (0.0, -65.0, -25.0)], (26.0, -62.0, -36.0), 8.0),
}


def test_deep_regions_lie_at_their_mni_coordinates_on_the_phantom() -> None:
    points = np.array([p for pts, _, _ in DEEP_REGIONS.values() for p in pts])
    masks = lobe_masks(points)
    for i, region in enumerate(r for r, (pts, _, _) in DEEP_REGIONS.items() for _ in pts):
        assert masks[region][i], (region, points[i])
    tissues = brain_phantom_tissues(2.0)
    affine, shape = mni_template_affine(2.0)
    geometry = Geometry(affine, shape)
    anatomy = brain_anatomy(np.zeros(shape, np.float32), geometry, "flair", tissues=tissues)
    for region, (_, (cx, cy, cz), tol) in DEEP_REGIONS.items():
        both = brain_region(anatomy, None, region, None)
        xyz = geometry.voxel_to_world(np.argwhere(both).astype(float))
        assert len(xyz) * 8.0 > 1000.0, region  # > 1 cm³ of tissue
        centre = (np.abs(xyz[:, 0]).mean(), xyz[:, 1].mean(), xyz[:, 2].mean())
        np.testing.assert_allclose(centre, (cx, cy, cz), atol=tol, err_msg=str(region))
        left = brain_region(anatomy, Side.LEFT, region, None)
        assert left.any() and np.all(geometry.voxel_to_world(np.argwhere(left).astype(float))[:, 0] < 0)
    callosum = brain_region(anatomy, None, BrainLobe.CORPUS_CALLOSUM, None)
    assert float(anatomy.wm[callosum].min()) > 0.5  # its white matter only
