"""End to end on MRI: the MNI152 demo brain and real healthy hosts in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest

import longisynth
from longisynth.demo import demo_input
from longisynth.errors import LesionDoesNotFitError
from longisynth.io import read_scan
from longisynth.result import Study
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def demo_study() -> Study:
    demo = demo_input("glioma")
    return longisynth.generate(demo.scans, demo.prompt, seed=4, brain_tissues=demo.brain_tissues)


def test_demo_glioma_labels_nesting_and_checks(demo_study: Study) -> None:
    assert all(c.passed for c in demo_study.checks if c.hard)
    assert set(demo_study.contrasts) == {"t1", "t1c", "t2", "flair"}
    last = demo_study.timepoints[-1].mask
    assert {1, 2, 3} <= set(np.unique(last))  # high grade: necrosis, oedema, enhancing rim
    for a, b in zip(demo_study.timepoints, demo_study.timepoints[1:], strict=False):
        assert not np.any((a.mask > 0) & ~(b.mask > 0))
        assert b.lesion_volume_mm3 >= a.lesion_volume_mm3
    final = demo_study.spec.diameter_mm
    assert abs(demo_study.timepoints[-1].longest_diameter_mm - final) / final < 0.10


def test_demo_glioma_is_in_left_frontal_lobe(demo_study: Study) -> None:
    x, y, _ = demo_study.timepoints[-1].centroid_mm  # MNI152 grid: world = MNI mm
    assert x < 0  # left hemisphere
    assert y > -25  # anterior to the central sulcus (approximate frontal boundary)


def test_demo_glioma_pushes_the_midline_away_and_leaves_the_skull(demo_study: Study) -> None:
    tp = demo_study.timepoints[-1]
    box, geometry = demo_study.box, demo_study.geometry
    x0 = int(np.round(geometry.world_to_voxel(np.zeros(3))[0])) - box.start[0]  # MNI grid: x = 0
    # pull-back, world x: < 0 where the tissue now on the midline came from the tumour's (left) side
    assert tp.displacement_mm[0][x0].min() < -0.5
    assert tp.displacement_mm[0][x0].max() <= 0.05
    tissues = demo_input("glioma").brain_tissues
    assert tissues is not None
    outside = sum(np.asarray(tissues[t])[box.slices] for t in ("csf", "gm", "wm")) < 0.01
    assert not np.any(tp.displacement_mm[:, outside])  # skull, scalp and air do not move


def test_no_mass_effect_moves_nothing() -> None:
    demo = demo_input("glioma")
    scans = {c: demo.scans[c] for c in ("t1",)}
    study = longisynth.generate(
        scans, "high-grade glioma in the left frontal lobe, 40 mm, no mass effect, 2 timepoints over 60 days",
        seed=2, brain_tissues=demo.brain_tissues,
    )  # fmt: skip
    assert all(c.passed for c in study.checks if c.hard)
    for tp in study.timepoints:
        assert not np.any(tp.displacement_mm)
    pushed = longisynth.generate(
        scans, "high-grade glioma in the left frontal lobe, 40 mm, 2 timepoints over 60 days",
        seed=2, brain_tissues=demo.brain_tissues,
    )  # fmt: skip
    assert np.any(pushed.timepoints[-1].displacement_mm)
    assert np.array_equal(pushed.timepoints[-1].mask, study.timepoints[-1].mask)  # growth unchanged


def test_demo_glioma_appearance_by_contrast(demo_study: Study) -> None:
    tp = demo_study.timepoints[-1]
    stats = {}
    for c in demo_study.contrasts:
        scan = demo_study.scans[c]
        brain = scan.values()[scan.values() > np.percentile(scan.values(), 60)]
        mean, sd = float(brain.mean()), float(brain.std())
        vals = tp.crops[c].astype(np.float32) * scan.slope + scan.inter
        stats[c] = {lab: (float(np.median(vals[tp.mask == lab])) - mean) / sd for lab in (1, 2, 3)}
    assert stats["t1c"][3] > stats["t1c"][1]  # enhancing rim brighter than necrotic core on T1c
    assert stats["flair"][2] > 0.5  # FLAIR-bright oedema
    assert stats["t2"][2] > 0.5


@pytest.mark.parametrize(
    ("name", "contrast"),
    [
        ("niivue_chris_t1.nii.gz", "t1"),
        ("niivue_mr_gd_skullstripped.nii.gz", "t1c"),
        ("niivue_t2w.nii.gz", "t2"),
    ],
)
def test_real_healthy_hosts(name: str, contrast: str) -> None:
    scan = read_scan(shared_file(name))
    prompt = (
        "low-grade glioma, 25 mm, 3 timepoints over 2 years"
        if contrast == "t2"
        else "high-grade glioma in the right hemisphere, 30 mm, 3 timepoints over 60 days"
    )
    study = longisynth.generate(scan, prompt, seed=1, contrast=contrast)
    assert all(c.passed for c in study.checks if c.hard)
    img = study.image(2)
    assert img.dtype == scan.raw.dtype and img.shape == scan.geometry.shape
    outside = np.ones(img.shape, dtype=bool)
    outside[study.box.slices] = False
    assert np.array_equal(img[outside], scan.raw[outside])
    lesion = study.mask(2) > 0
    assert lesion.sum() > 0
    if "right" in prompt:
        assert (
            study.timepoints[-1].centroid_mm[0]
            > float(
                np.median(
                    scan.geometry.voxel_to_world(np.argwhere(scan.raw > np.percentile(scan.raw, 70))[::50])[
                        :, 0
                    ]
                )
            )
            - 5
        )


def test_chest_mr_has_no_brain() -> None:
    scan = read_scan(shared_file("totalseg_example_mr_sm.nii.gz"))
    with pytest.raises(LesionDoesNotFitError, match="brain"):
        longisynth.generate(scan, "high-grade glioma", contrast="t1")


def test_brain_statistics_follow_the_calibration_convention() -> None:
    """The appearance targets are z-scores over the non-zero voxels of skull-stripped BraTS images:
    a skull-stripped brain is z-scored that way (not over the segmented brain, whose sd is 5-8 %
    lower there); a head with its skull uses the segmented brain."""
    from longisynth.anatomy.brain import brain_anatomy
    from longisynth.families.glioma import brain_statistics

    case = "Brats18_CBICA_ABM_1"
    scans = {
        c: read_scan(shared_file(f"brats2018/{case}/{case}_{n}.nii.gz"))
        for c, n in (("t1", "t1"), ("t1c", "t1ce"))
    }
    anatomy = brain_anatomy(scans["t1"].values(), scans["t1"].geometry, "t1")
    stats, _ = brain_statistics(scans, anatomy)
    for c, scan in scans.items():
        values = scan.values()
        inside = values[values != 0]
        assert stats[c] == pytest.approx((float(inside.mean()), float(inside.std())), rel=1e-6)
        assert stats[c][1] > 1.03 * float(values[anatomy.brain].std())
    demo = demo_input("glioma", size="small")
    t1 = demo.scans["t1"]
    head = brain_anatomy(t1.values(), t1.geometry, "t1", tissues=demo.brain_tissues)
    stats, _ = brain_statistics({"t1": t1}, head)
    assert stats["t1"][0] == pytest.approx(float(t1.values()[head.brain].mean()), rel=1e-6)
