"""The brain's own midline and compartments (falx, tentorium) and the glioma barriers built on them."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

import longisynth
from longisynth.anatomy import midline as ml
from longisynth.anatomy.brain import brain_anatomy
from longisynth.demo import demo_input
from longisynth.geometry import Geometry
from longisynth.phantoms.brain import mni_template_affine, tissue_stack
from longisynth.spec import LesionSpec
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def mni_tissues() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSF, GM, WM of the MNI152 phantom at 2 mm and its voxel → MNI affine."""
    stack = tissue_stack(2.0)
    affine, _ = mni_template_affine(2.0)
    return stack[0], stack[1], stack[2], affine


def _bent(maps: np.ndarray, affine: np.ndarray, shift_mm: float) -> np.ndarray:
    """Move every tissue map along x by a smooth bump ``shift_mm`` · exp(−r²/2σ²) centred at
    MNI (y, z) = (10, 30) mm, σ = 15 mm: a midline bent as by a mass, away from x = 0."""
    shape = maps.shape
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    y = affine[1, 1] * j + affine[1, 3]
    z = affine[2, 2] * k + affine[2, 3]
    shift = shift_mm * np.exp(-((y - 10.0) ** 2 + (z - 30.0) ** 2) / (2 * 15.0**2))
    # Pull-back: out(x) = in(x − shift) along the array x axis (spacing 2 mm, axis sign from affine).
    src_i = i - shift / affine[0, 0]
    return np.asarray(ndimage.map_coordinates(maps, [src_i, j, k], order=1, mode="nearest"), np.float32)


def test_midline_of_the_mni_phantom_is_x_zero(mni_tissues) -> None:
    _, gm, wm, affine = mni_tissues
    tissue = gm + wm
    surface = ml.estimate_midline(tissue, tissue > 0.5, affine)
    assert surface.reliable_fraction > 0.3
    assert np.percentile(np.abs(surface.x_mm), 90) <= 2.5


def test_a_bent_midline_is_followed(mni_tissues) -> None:
    _, gm, wm, affine = mni_tissues
    tissue = _bent(gm + wm, affine, 10.0)
    surface = ml.estimate_midline(tissue, tissue > 0.5, affine)
    at_bump = float(surface.at(np.array([10.0]), np.array([30.0]))[0])
    far = float(surface.at(np.array([-80.0]), np.array([30.0]))[0])
    assert 7.0 <= at_bump <= 13.0  # the plane x = 0 would be 10 mm off here
    assert abs(far) <= 3.0


def test_compartments_of_the_phantom(mni_tissues) -> None:
    _, gm, wm, affine = mni_tissues
    tissue = gm + wm
    brain = tissue > 0.5
    surface = ml.estimate_midline(tissue, brain, affine)
    parts = ml.compartments(brain, tissue, wm, affine, surface)
    labels = parts.labels

    def at(x: float, y: float, z: float) -> int:
        ijk = np.round(np.linalg.solve(affine, [x, y, z, 1.0])[:3]).astype(int)
        return int(labels[tuple(ijk)])

    assert at(-30, 20, 30) == ml.LEFT and at(30, 20, 30) == ml.RIGHT
    assert at(25, -65, -35) == ml.INFRATENTORIAL and at(-25, -65, -35) == ml.INFRATENTORIAL
    assert at(45, -20, -20) == ml.RIGHT  # right temporal lobe: above the tentorium
    assert not np.any(labels[~brain])
    # the corpus callosum is white matter on both sides of the midline, above the ventricles
    cc = np.argwhere(parts.callosum)
    lateral = parts.lateral_mm[parts.callosum]
    assert cc.size and (lateral < -5).any() and (lateral > 5).any()


def _real_brain(case: str) -> tuple[np.ndarray, Geometry, np.ndarray]:
    folder = shared_file(f"brats2018/{case}")
    img = nib.load(folder / f"{case}_t1.nii.gz")
    seg = np.asarray(nib.load(folder / f"{case}_seg.nii.gz").dataobj)
    return np.asarray(img.dataobj, dtype=np.float32), Geometry(img.affine, img.shape), seg


@pytest.mark.parametrize("case", ["Brats18_2013_11_1", "Brats18_TCIA03_265_1"])
def test_real_tumours_lie_on_one_side_of_the_found_midline(case: str) -> None:
    """Two BraTS brains whose large tumours bend the midline: almost all of the real tumour lies in
    one hemisphere of the midline we find (measured 1.2 % and 1.3 %; the MNI plane x = 0 gives
    0.6 % and 2.6 %; over the 7 shared brains 0.5 % vs 0.9 % on average), and both hemispheres
    and the posterior fossa have plausible volumes."""
    image, geometry, seg = _real_brain(case)
    anatomy = brain_anatomy(image, geometry, "t1")
    affine = ml.vox_to_mni(geometry.affine, anatomy.mni_to_scan)
    surface = ml.estimate_midline(anatomy.gm + anatomy.wm, anatomy.brain, affine)
    parts = ml.compartments(anatomy.brain, anatomy.gm + anatomy.wm, anatomy.wm, affine, surface)
    tumour = parts.labels[seg > 0]
    supra = tumour[(tumour == ml.LEFT) | (tumour == ml.RIGHT)]
    minority = min(np.mean(supra == ml.LEFT), np.mean(supra == ml.RIGHT))
    assert minority < 0.02
    volumes = [np.count_nonzero(parts.labels == c) / 1000 for c in (ml.LEFT, ml.RIGHT, ml.INFRATENTORIAL)]
    assert 350 < volumes[0] < 900 and 350 < volumes[1] < 900  # cm³ per hemisphere (1 mm grid)
    assert 30 < volumes[2] < 300  # posterior fossa, cm³ (47 and 75 here: the field of view cuts it)


def test_glioma_stays_behind_the_falx_in_a_brain_with_a_mass() -> None:
    """The issue's case: Brats18_2013_11_1 has a large left-hemisphere tumour that bends the
    midline; a glioma asked for in the right frontal lobe stays in the right hemisphere (0 %
    across, a hard check of the engine) and never touches the real tumour."""
    folder = shared_file("brats2018/Brats18_2013_11_1")
    seg = np.asarray(nib.load(folder / "Brats18_2013_11_1_seg.nii.gz").dataobj) > 0
    study = longisynth.generate(
        {"t1": longisynth.io.read_scan(folder / "Brats18_2013_11_1_t1.nii.gz")},
        "high-grade glioma in the right frontal lobe, 60 mm, 2 timepoints over 60 days",
        seed=1,
        refine=False,
    )
    checks = {c.name: c for c in study.checks}
    assert checks["fraction_across_midline"].value == 0.0 and checks["fraction_across_midline"].hard
    assert checks["lesion_on_requested_side"].passed
    assert study.extra["midline"]["columns_found_fraction"] > 0.3
    lesion = study.mask(1) > 0
    assert not np.any(lesion & seg)
    # the real tumour's centroid and ours lie on opposite sides of the brain's centre (world x)
    brain = study.scans["t1"].raw != 0
    centre_x = study.geometry.voxel_to_world(np.argwhere(brain)[::50].mean(axis=0))[0]
    real_x = study.geometry.voxel_to_world(np.argwhere(seg).mean(axis=0))[0] - centre_x
    ours_x = study.timepoints[-1].centroid_mm[0] - centre_x
    assert ours_x * real_x < 0


def test_butterfly_crosses_only_when_asked() -> None:
    """On the MNI phantom, a large glioma seeded in the corpus callosum next to the midline spreads
    to the other hemisphere only with ``crosses_midline``."""
    demo = demo_input("glioma")
    scans = {"t1": demo.scans["t1"]}
    base = {
        "family": "glioma",
        "grade": "high",
        "diameter_mm": 50,
        "timepoints_days": [0, 60],
        "location": {"point_mm": [6.0, 5.0, 24.0]},
    }
    crossing = {}
    for crosses in (False, True):
        spec = LesionSpec.model_validate(
            {**base, "location": {**base["location"], "crosses_midline": crosses}}
        )
        study = longisynth.generate(scans, spec=spec, seed=3, brain_tissues=demo.brain_tissues)
        check = next(c for c in study.checks if c.name == "fraction_across_midline")
        assert check.passed
        crossing[crosses] = check.value
    assert crossing[False] == 0.0
    assert crossing[True] > 0.05


def test_butterfly_prompt_spreads_to_both_hemispheres() -> None:
    """A "butterfly glioblastoma" is seeded in the corpus callosum at the midline and reaches both
    hemispheres in earnest (41 % across on the phantom; seeded off-centre it was 0.8 %)."""
    demo = demo_input("glioma")
    study = longisynth.generate(
        {"t1": demo.scans["t1"]},
        "butterfly glioblastoma, 55 mm, 2 timepoints over 60 days",
        seed=1,
        brain_tissues=demo.brain_tissues,
        refine=False,
    )
    assert study.spec.location.crosses_midline
    check = next(c for c in study.checks if c.name == "fraction_across_midline")
    assert check.passed and check.value > 0.2
