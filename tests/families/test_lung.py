"""End to end on CT: the thorax phantom and the real chest CT crop (TotalSegmentator, LPS)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import longisynth
from longisynth.bundle import read_bundle_image, read_metadata
from longisynth.bundle.format import FORMAT_VERSION
from longisynth.demo import demo_input
from longisynth.errors import InvalidInputError, LesionDoesNotFitError
from longisynth.io import read_scan
from longisynth.result import Study
from tests.conftest import shared_file

PROMPT = (
    "lobulated solid nodule in the right lower lobe, 12 mm at baseline, doubling time 300 days, "
    "scans at 0, 3, 6, 9 and 12 months"
)


@pytest.fixture(scope="module")
def phantom_scan() -> longisynth.io.Scan:  # type: ignore[name-defined]
    return demo_input("lung").scans["ct"]


@pytest.fixture(scope="module")
def study(phantom_scan) -> Study:  # type: ignore[no-untyped-def]
    return longisynth.generate(phantom_scan, PROMPT, seed=3)


def test_volumes_follow_exponential_law(study: Study) -> None:
    days = np.array([tp.days for tp in study.timepoints])
    expected = 2.0 ** ((days - days[-1]) / 300.0)  # V(t)/V(end) for VDT = 300 days
    simulated = np.array([tp.simulated_volume_mm3 for tp in study.timepoints])
    assert np.all(np.abs(simulated / simulated[-1] - expected) / expected < 0.05)
    # the reader-convention masks enclose the partial-volume rim: larger than the nodule itself
    vols = np.array([tp.lesion_volume_mm3 for tp in study.timepoints])
    assert np.all(vols > simulated) and np.all(np.diff(vols) > 0)


def test_clinical_size_of_the_body_within_ten_percent(study: Study) -> None:
    """diameter_mm is the clinical size: mean of long and short axis of the body on its largest
    axial slice (Fleischner 2017); the longest 3D diameter is reported beside it."""
    final = study.spec.diameter_mm
    assert final == pytest.approx(12 * 2 ** (365.25 / 300 / 3), rel=1e-3)
    last = study.timepoints[-1]
    assert abs(last.clinical_diameter_mm - final) / final < 0.10
    assert last.longest_diameter_mm >= last.clinical_diameter_mm


def test_masks_nest_and_labels_are_solid(study: Study) -> None:
    for a, b in zip(study.timepoints, study.timepoints[1:], strict=False):
        assert not np.any((a.mask > 0) & ~(b.mask > 0))
    assert set(np.unique(study.timepoints[-1].mask)) == {0, 1}


def test_hard_checks_pass_and_lesion_in_right_lower_lung(study: Study) -> None:
    assert all(c.passed for c in study.checks if c.hard)
    g = study.geometry
    c = np.asarray(study.timepoints[-1].centroid_mm)
    lung_vox = np.argwhere(study.scans["ct"].raw < -500)
    world = g.voxel_to_world(lung_vox[:: max(1, len(lung_vox) // 20000)])
    assert c[0] > np.median(world[:, 0])  # RAS +x = patient's right
    assert c[2] < np.percentile(world[:, 2], 60)  # lower part of the lungs


def test_outside_crop_identical_and_lesion_is_soft_tissue(study: Study, phantom_scan) -> None:  # type: ignore[no-untyped-def]
    img = study.image(4)
    outside = np.ones(img.shape, dtype=bool)
    outside[study.box.slices] = False
    assert np.array_equal(img[outside], phantom_scan.raw[outside])
    core = study.timepoints[-1].mask == 1
    hu = study.timepoints[-1].crops["ct"][core]
    assert -100 < float(np.median(hu)) < 120


def test_determinism_same_seed_same_bytes(phantom_scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = longisynth.generate(phantom_scan, "solid nodule 10 mm", seed=11)
    b = longisynth.generate(phantom_scan, "solid nodule 10 mm", seed=11)
    c = longisynth.generate(phantom_scan, "solid nodule 10 mm", seed=12)
    pa, pb = longisynth.write_bundle(a, tmp_path / "a.zip"), longisynth.write_bundle(b, tmp_path / "b.zip")
    with zipfile.ZipFile(pa) as za, zipfile.ZipFile(pb) as zb:
        names = [n for n in za.namelist() if n.endswith(".nii.gz")]
        assert names and all(za.read(n) == zb.read(n) for n in names)
    assert c.box != a.box or not np.array_equal(c.timepoints[-1].mask, a.timepoints[-1].mask)


def test_bundle_preserves_grid_dtype_and_metadata(study: Study, phantom_scan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = longisynth.write_bundle(study, tmp_path / "s.zip")
    meta = read_metadata(path)
    assert meta["format_version"] == FORMAT_VERSION and meta["seed"] == 3
    assert meta["timepoints"][-1]["clinical_diameter_mm"] == study.timepoints[-1].clinical_diameter_mm
    assert [tp["days"] for tp in meta["timepoints"]] == [0.0, 91.3125, 182.625, 273.9375, 365.25]
    assert meta["input"]["files"][0]["sha256"] == phantom_scan.sha256
    assert {c["name"] for c in meta["checks"]} >= {"jacobian_determinant_min", "masks_nested_over_time"}
    img = read_bundle_image(path, "timepoint_04/ct.nii.gz")
    mask = read_bundle_image(path, "timepoint_04/mask.nii.gz")
    disp = read_bundle_image(path, "timepoint_04/displacement.nii.gz")
    assert img.get_data_dtype() == phantom_scan.raw.dtype
    assert np.allclose(img.affine, phantom_scan.geometry.affine) and np.allclose(mask.affine, img.affine)
    assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(phantom_scan.geometry.affine)
    assert np.array_equal(np.asarray(img.dataobj), study.image(4))
    assert np.array_equal(np.asarray(mask.dataobj), study.mask(4))
    assert disp.shape == (*phantom_scan.geometry.shape, 1, 3)
    with zipfile.ZipFile(path) as zf:
        assert zf.read("preview.png")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def chest_crop() -> longisynth.io.Scan:  # type: ignore[name-defined]
    return read_scan(shared_file("totalseg_chest_ct_crop.nii.gz"))


@pytest.mark.parametrize(
    "prompt",
    [
        "12 mm spiculated nodule in the left lung",
        "part-solid nodule 14 mm right lung",
        "ground-glass nodule, 10 mm, juxtapleural",
    ],
)
def test_real_chest_ct_crop(chest_crop, prompt: str) -> None:  # type: ignore[no-untyped-def]
    study = longisynth.generate(chest_crop, prompt, seed=5)
    assert all(c.passed for c in study.checks if c.hard)
    g = chest_crop.geometry
    lesion = study.mask(len(study.timepoints) - 1) > 0
    hu = chest_crop.values()
    # the lesion sits in aerated lung of the input (the reader contour also takes partial-volume
    # edges at the pleura and engulfed vessels)
    assert np.mean(hu[lesion] < -300) > 0.6
    side = np.asarray(study.timepoints[-1].centroid_mm)[0]
    if "left" in prompt:
        assert side < g.voxel_to_world(np.asarray(g.shape) / 2)[0]
    if "right" in prompt:
        assert side > g.voxel_to_world(np.asarray(g.shape) / 2)[0]
    assert study.image(0).dtype == chest_crop.raw.dtype


def test_supplied_lobe_labels_are_respected() -> None:
    scan = read_scan(shared_file("totalseg_example_ct_sm.nii.gz"))
    labels = read_scan(shared_file("totalseg_example_seg.nii.gz")).raw
    present = [v for v in (10, 11, 12, 13, 14) if np.any(labels == v)]
    lobe = {
        11: "left lower lobe",
        14: "right lower lobe",
        10: "left upper lobe",
        12: "right upper lobe",
        13: "right middle lobe",
    }
    target = max(present, key=lambda v: int(np.sum(labels == v)))
    # 3 mm pixels: at least 6 mm, and a thin lobe holds 8 mm only against the pleura
    prompt = f"juxtapleural stable solid nodule 8 mm in the {lobe[target]}, scans at 0 and 3 months"
    study = longisynth.generate(scan, prompt, labels=labels, seed=2)
    lesion = study.mask(len(study.timepoints) - 1) > 0
    assert np.mean(labels[lesion] == target) > 0.95
    assert study.extra["lobes_exact"] is True


def test_wrong_body_part_and_modality_errors(chest_crop) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="brain MRI"):
        longisynth.generate(chest_crop, "high-grade glioma in the left frontal lobe")
    head = read_scan(shared_file("niivue_chris_t1.nii.gz"))
    with pytest.raises(InvalidInputError, match="CT"):
        longisynth.generate(head, "solid nodule in the right upper lobe")
    abdomen = read_scan(shared_file("totalseg_ct_dicom"))
    with pytest.raises(LesionDoesNotFitError, match="lung"):
        longisynth.generate(abdomen, "solid nodule 8 mm")


def test_lesion_too_big_or_outside_fov(chest_crop) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LesionDoesNotFitError, match="does not fit"):
        longisynth.generate(chest_crop, "60 mm solid nodule in the right upper lobe")
    with pytest.raises(LesionDoesNotFitError, match="outside the field of view"):
        longisynth.generate(chest_crop, "solid nodule", {"location": {"point_mm": [900.0, 0.0, 0.0]}})


def test_windowed_8bit_export_is_refused(chest_crop) -> None:  # type: ignore[no-untyped-def]
    hu = chest_crop.values().astype(np.float32)
    windowed = np.clip((hu + 160) / 400 * 255, 0, 255).astype(np.uint8)
    scan = longisynth.io.Scan.from_array(windowed, chest_crop.geometry.affine)
    with pytest.raises(InvalidInputError, match=r"Hounsfield|HU"):
        longisynth.generate(scan, "solid nodule 8 mm", {"family": "lung_nodule"})


def test_abdominal_ct_with_lung_bases_ras_int32(tmp_path: Path) -> None:
    """RAS, int32, 3 mm CT whose top holds only the lung bases: the nodule lands in a lung base."""
    scan = read_scan(shared_file("totalseg_example_ct.nii.gz"))
    assert scan.raw.dtype == np.int32
    study = longisynth.generate(
        scan, "juxtapleural stable solid nodule 8 mm in the lower lobe, 3 timepoints over 6 months", seed=1
    )
    assert all(c.passed for c in study.checks if c.hard)
    path = longisynth.write_bundle(study, tmp_path / "b.zip", preview=False)
    img = read_bundle_image(path, "timepoint_02/ct.nii.gz")
    assert img.get_data_dtype() == np.int32
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    lesion = np.asarray(read_bundle_image(path, "timepoint_02/mask.nii.gz").dataobj) > 0
    assert np.mean(scan.raw[lesion] < -300) > 0.7
    # lung bases are at the top of this volume (superior slices)
    k = np.argwhere(lesion)[:, 2]
    assert k.min() > scan.geometry.shape[2] * 0.6
    # a nodule its 3 mm pixels cannot show is refused with the reason
    with pytest.raises(LesionDoesNotFitError, match=r"below what this scan's 3\.00 mm pixels can show"):
        longisynth.generate(scan, "stable solid nodule 5 mm in the lower lobe", seed=1)


def test_nodule_types_with_one_seed_have_their_own_shapes(phantom_scan) -> None:  # type: ignore[no-untyped-def]
    masks = {
        kind: longisynth.generate(phantom_scan, f"{kind} nodule 12 mm", seed=4, refine=False).mask(0)
        for kind in ("solid", "part-solid", "ground-glass")
    }
    solid, part, ggo = ((m > 0) for m in masks.values())
    assert (
        not np.array_equal(solid, part) and not np.array_equal(solid, ggo) and not np.array_equal(part, ggo)
    )


@pytest.mark.parametrize(
    ("prompt", "spec", "seed", "message"),
    [
        ("high-grade glioma", {"nodule_type": "solid"}, None, "nodule_type applies to lung nodules"),
        ("", {"diameter_mm": -3}, None, "diameter_mm"),
        ("", None, -1, "seed"),
        ("", {"colour": "red"}, None, "colour"),
    ],
)
def test_structured_overrides_are_validated(phantom_scan, prompt, spec, seed, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        longisynth.generate(phantom_scan, prompt, spec, seed=seed)


def test_calcification_only_when_asked(phantom_scan) -> None:  # type: ignore[no-untyped-def]
    """Benign calcification is never drawn by default; asked for, calcium (> 200 HU) shows inside."""
    plain = longisynth.generate(phantom_scan, "solid nodule 12 mm, stable, 2 scans over 1 year", seed=2)
    assert plain.spec.calcification.value == "none" and plain.extra["calcification"] is None
    hu_plain = plain.timepoints[-1].crops["ct"].astype(float)[plain.timepoints[-1].mask > 0]
    assert np.percentile(hu_plain, 99) < 200.0
    calcified = longisynth.generate(
        phantom_scan, "centrally calcified solid nodule 12 mm, stable, 2 scans over 1 year", seed=2
    )
    assert calcified.extra["calcification"]["pattern"] == "central"
    tp = calcified.timepoints[-1]
    assert np.percentile(tp.crops["ct"].astype(float)[tp.mask > 0], 95) > 200.0


def test_part_solid_has_drawn_solid_components(phantom_scan) -> None:  # type: ignore[no-untyped-def]
    study = longisynth.generate(phantom_scan, "part-solid nodule 16 mm, 2 scans over 6 months", seed=5)
    comps = study.extra["solid_components"]
    assert 1 <= len(comps["radii"]) <= 3 and len(comps["offsets"]) == len(comps["radii"])
    mask = study.timepoints[-1].mask
    assert (mask == 1).any() and (mask == 2).sum() > (mask == 1).sum()  # solid inside ground glass
    look = study.extra["nodule_appearance"]
    assert -750 <= look["ggo_mean_hu"] <= -450 and -20 <= look["solid_mean_hu"] <= 100
