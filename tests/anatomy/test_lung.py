"""Lung segmentation and approximate lobes on the phantom and on real TotalSegmentator CTs.

Real data: TotalSegmentator test reference files (Apache-2.0), see ../shared/data/README.md.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from longisynth.anatomy.lung import LungAnatomy, lung_region, require_lungs, segment_lungs
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.geometry import Box, Geometry
from longisynth.phantoms.thorax import LABEL_AIRWAY, make_thorax_phantom, thorax_phantom_labels
from longisynth.spec import Depth, Level, LungLobe, Side
from tests.conftest import shared_file

# 1.6 mm in-plane: segmented on a 2×2×1 coarser grid, as a real scan would be.
PHANTOM = ((192, 192, 110), (1.6, 1.6, 3.0))


def _load(name: str) -> tuple[np.ndarray, Geometry]:
    img = nib.load(shared_file(name))
    data = np.asanyarray(img.dataobj)
    return data, Geometry(img.affine, data.shape)


def _full(anatomy: LungAnatomy, geometry: Geometry) -> np.ndarray:
    return anatomy.lobes_in_box(geometry, Box((0, 0, 0), geometry.shape))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _outside_air(hu: np.ndarray, s_axis: int) -> np.ndarray:
    """Air outside the body: in each axial slice, locally averaged HU < −950 connected to the
    slice's border (averaging keeps noisy lung voxels at the border from counting as air)."""
    smooth = ndimage.uniform_filter(hu.astype(np.float32), size=[1 if a == s_axis else 5 for a in range(3)])
    air = np.moveaxis(smooth < -950, s_axis, 0)
    out = np.zeros_like(air)
    for k, sl in enumerate(air):
        lab, _ = ndimage.label(sl)
        edge = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
        out[k] = np.isin(lab, edge[edge > 0])
    return np.moveaxis(out, 0, s_axis)


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, Geometry, np.ndarray, LungAnatomy]:
    hu, aff = make_thorax_phantom(*PHANTOM, seed=1)
    geometry = Geometry(aff, hu.shape)
    return hu, geometry, thorax_phantom_labels(*PHANTOM), segment_lungs(hu, geometry)


def test_phantom_lungs_match_ground_truth(phantom: tuple) -> None:
    _, geometry, truth, anatomy = phantom
    assert anatomy.geometry.spacing_mm[0] == pytest.approx(3.2)  # coarse grid: factor 2 in-plane
    assert not anatomy.lobes_exact
    pred = _full(anatomy, geometry)
    for lobes in ((12, 13, 14), (10, 11)):
        t, p = np.isin(truth, lobes), np.isin(pred, lobes)
        assert 0.7 < p.sum() / t.sum() < 1.4
        assert _dice(t, p) > 0.9


def test_phantom_trachea_and_outside_air_excluded(phantom: tuple) -> None:
    hu, geometry, truth, anatomy = phantom
    lungs = _full(anatomy, geometry) > 0
    assert not (lungs & (truth == LABEL_AIRWAY)).any()
    assert not (lungs & _outside_air(hu, 2)).any()
    assert not (lungs & (hu > 200)).any()  # no bone, no table shell


def test_phantom_approximate_lobes_are_sane(phantom: tuple) -> None:
    _, _, _, anatomy = phantom
    g = anatomy.geometry
    com = {lab: g.voxel_to_world(ndimage.center_of_mass(anatomy.lobes == lab)) for lab in range(10, 15)}
    assert all((anatomy.lobes == lab).sum() > 100 for lab in range(10, 15))
    assert com[12][2] > com[14][2] + 30.0  # RUL above RLL (world z, mm)
    assert com[10][2] > com[11][2] + 30.0  # LUL above LLL
    assert com[13][1] > com[14][1]  # RML anterior to RLL
    assert min(com[12][0], com[13][0], com[14][0]) > 0 > max(com[10][0], com[11][0])  # sides (RAS x)
    assert np.array_equal(anatomy.lobes > 0, anatomy.lungs)


def test_mask_in_box_maps_full_resolution_voxels(phantom: tuple) -> None:
    _, geometry, _, anatomy = phantom
    box = Box((37, 50, 20), (101, 90, 61))
    got = anatomy.mask_in_box(geometry, box)
    assert got.shape == box.shape and got.any()
    f = (2, 2, 1)  # full-res voxel i lies in coarse voxel i // f
    idx = [np.arange(a, b) // k for a, b, k in zip(box.start, box.stop, f, strict=True)]
    assert np.array_equal(got, anatomy.lungs[np.ix_(*idx)])


def test_lung_region_words(phantom: tuple) -> None:
    _, _, _, anatomy = phantom
    right = lung_region(anatomy, Side.RIGHT)
    assert right.any() and np.isin(anatomy.lobes[right], (12, 13, 14)).all()
    rml = lung_region(anatomy, lung_lobe=LungLobe.RIGHT_MIDDLE)
    assert (anatomy.lobes[rml] == 13).all()
    upper = lung_region(anatomy, Side.LEFT, Level.UPPER)
    lower = lung_region(anatomy, Side.LEFT, Level.LOWER)
    zs = np.argwhere(upper)[:, 2].mean(), np.argwhere(lower)[:, 2].mean()
    assert zs[0] > zs[1]  # k → superior
    dist = ndimage.distance_transform_edt(anatomy.lungs, sampling=anatomy.geometry.spacing_mm)
    peripheral = lung_region(anatomy, depth=Depth.PERIPHERAL)
    central = lung_region(anatomy, depth=Depth.CENTRAL)
    assert dist[peripheral].max() <= 15.0
    for lobes in ((12, 13, 14), (10, 11)):
        side = np.isin(anatomy.lobes, lobes)
        assert (central & side).any()
        assert dist[central & side].min() >= 0.6 * dist[side].max() > 15.0
    assert not (peripheral & central).any()


def test_chest_crop_both_lungs_cut_by_the_border() -> None:
    hu, geometry = _load("totalseg_chest_ct_crop.nii.gz")
    anatomy = segment_lungs(hu, geometry)
    lr_axis, _ = geometry.world_axis_index(0)
    ml = anatomy.geometry.voxel_volume_mm3 / 1000.0
    for lobes in ((12, 13, 14), (10, 11)):
        m = np.isin(anatomy.lobes, lobes)
        assert m.sum() * ml > 500.0
        first, last = np.take(m, 0, axis=lr_axis).any(), np.take(m, -1, axis=lr_axis).any()
        assert first or last  # each lung touches its left/right border
    lungs = _full(anatomy, geometry) > 0
    assert not (lungs & _outside_air(hu, geometry.world_axis_index(2)[0])).any()
    # The trachea: the largest pocket of air inside the body in the top slices; it is not lung.
    lab, n = ndimage.label(hu[:, :, -10:] < -950)
    border = np.unique(
        np.concatenate([lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(), lab[:, -1].ravel()])
    )
    sizes = ndimage.sum_labels(lab > 0, lab, np.arange(n + 1))
    sizes[border] = 0
    trachea = lab == int(np.argmax(sizes))
    assert trachea.sum() > 50 and not (lungs[:, :, -10:] & trachea).any()


def test_lung_bases_dice_against_totalsegmentator() -> None:
    hu, geometry = _load("totalseg_example_ct_sm.nii.gz")
    seg, _ = _load("totalseg_example_seg.nii.gz")
    truth = (seg >= 10) & (seg <= 14)
    anatomy = segment_lungs(hu, geometry)
    assert _dice(_full(anatomy, geometry) > 0, truth) > 0.85
    # The same slices inside the whole abdomen CT (slices 82–111 of it).
    hu_big, g_big = _load("totalseg_example_ct.nii.gz")
    big = _full(segment_lungs(hu_big, g_big), g_big) > 0
    assert _dice(big[:, :, 82:], truth) > 0.85 and not big[:, :, :82].any()


def test_abdomen_without_lungs_is_empty() -> None:
    hu, geometry = _load("totalseg_example_ct.nii.gz")
    sub = Box((0, 0, 0), (hu.shape[0], hu.shape[1], 70))
    anatomy = segment_lungs(hu[sub.slices], geometry.crop(sub))
    assert not anatomy.lungs.any()
    with pytest.raises(LesionDoesNotFitError, match="no lung parenchyma"):
        require_lungs(anatomy)


def test_supplied_labels_give_exact_lobes() -> None:
    hu, geometry = _load("totalseg_example_ct_sm.nii.gz")
    seg, _ = _load("totalseg_example_seg.nii.gz")
    anatomy = segment_lungs(hu, geometry, seg)
    assert anatomy.lobes_exact
    assert np.array_equal(anatomy.lungs, (seg >= 10) & (seg <= 14))  # 3 mm: no coarsening
    with pytest.raises(LesionDoesNotFitError, match="right upper lobe"):
        lung_region(anatomy, lung_lobe=LungLobe.RIGHT_UPPER)  # label 12 absent in these bases
    with pytest.raises(InvalidInputError, match="no lung lobe labels"):
        segment_lungs(hu, geometry, np.where(seg >= 10, 0, seg))
    with pytest.raises(InvalidInputError, match="shape"):
        segment_lungs(hu, geometry, seg[:, :, :10])


def test_orientation_does_not_matter(phantom: tuple) -> None:
    hu, geometry, _, anatomy = phantom
    ras = nib.as_closest_canonical(nib.Nifti1Image(hu, geometry.affine))
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    flipped = segment_lungs(np.asanyarray(ras.dataobj), Geometry(ras.affine, ras.shape))
    for lab in range(10, 15):
        a, b = (anatomy.lobes == lab).sum(), (flipped.lobes == lab).sum()
        assert abs(int(a) - int(b)) <= 0.02 * a


def test_central_part_of_a_thin_lobe_exists(phantom: tuple) -> None:
    _, _, _, anatomy = phantom
    region = lung_region(anatomy, Side.RIGHT, Level.MIDDLE, LungLobe.RIGHT_MIDDLE, Depth.CENTRAL)
    lobe = lung_region(anatomy, lung_lobe=LungLobe.RIGHT_MIDDLE)
    assert region.any() and (anatomy.lobes[region] == 13).all()
    assert region.sum() < 0.5 * lobe.sum()


@pytest.mark.parametrize(
    ("shape", "factors", "order"),
    [
        ((512 // 8, 512 // 8, 300 // 8), (4, 4, 3), "F"),
        ((13, 17, 10), (3, 4, 3), "F"),
        ((9, 7, 33), (4, 1, 5), "C"),
    ],
)
def test_block_means_equal_a_float64_reference(
    shape: tuple[int, int, int], factors: tuple[int, int, int], order: str
) -> None:
    """Block means (the coarse grid of the lung segmentation) over whole and ragged last blocks,
    in either memory order, equal the plain float64 means to float32 rounding."""
    from longisynth.geometry import block_mean

    rng = np.random.default_rng(0)
    hu = np.asarray(rng.integers(-1024, 1500, size=shape), dtype=np.int16, order=order)
    got = block_mean(hu, factors)
    ref = hu.astype(np.float64)
    for ax, f in enumerate(factors):
        starts = np.arange(0, ref.shape[ax], f)
        counts = np.diff(np.append(starts, ref.shape[ax])).reshape([-1 if a == ax else 1 for a in range(3)])
        ref = np.add.reduceat(ref, starts, axis=ax) / counts
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-3)
