"""Bundle parsing, arrays, save() with zip-slip refusal, nnU-Net export."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from longisynth_client import Bundle, Timepoint
from longisynth_client.bundle import unsafe_member

from tests.client.conftest import AFFINE, SHAPE, build_bundle, image_data, mask_data

GLIOMA_LABELS = {"0": "background", "1": "necrotic core", "2": "oedema", "3": "enhancing tumour"}


def test_metadata_and_timepoints() -> None:
    bundle = Bundle(build_bundle(n_timepoints=3), filename="b.zip")
    assert bundle.metadata["seed"] == 7
    assert bundle.timepoints[2] == Timepoint(
        index=2,
        days=180.0,
        files=("ct.nii.gz", "mask.nii.gz"),
        lesion_volume_mm3=200.0,
        longest_diameter_mm=8.0,
        centroid_mm=(1.5, -2.0, 32.0),
    )
    assert bundle.contrasts == ["ct"]
    assert bundle.labels == {"background": 0, "solid": 1, "ground_glass": 2}  # the exports' label keys
    assert bundle.read("preview.png").startswith(b"\x89PNG")
    assert "3 timepoints" in repr(bundle)


def test_images_masks_affine() -> None:
    bundle = Bundle(build_bundle(contrasts=("t1", "flair")))
    np.testing.assert_array_equal(bundle.image(1), image_data(1, 0))
    np.testing.assert_array_equal(bundle.image(1, "flair"), image_data(1, 1))
    mask = bundle.mask(1)
    assert mask.dtype == np.uint8 and mask.shape == SHAPE
    np.testing.assert_array_equal(mask, mask_data(1))
    np.testing.assert_allclose(bundle.affine, AFFINE, atol=1e-5)
    with pytest.raises(KeyError, match="t2"):
        bundle.image(0, "t2")


def test_save_extracts_everything(tmp_path: Path) -> None:
    bundle = Bundle(build_bundle())
    out = bundle.save(tmp_path / "out")
    assert out == tmp_path / "out"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(bundle.names)
    img = nib.Nifti1Image.from_filename(out / "timepoint_01" / "mask.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), mask_data(1))


@pytest.mark.parametrize(
    "evil", ["../escape.txt", "/abs/path.txt", "timepoint_00/../../x", "C:/win.txt", "a\\..\\b"]
)
def test_save_refuses_zip_slip(evil: str, tmp_path: Path) -> None:
    bundle = Bundle(build_bundle(extra={evil: b"pwned"}))
    target = tmp_path / "deep" / "out"
    with pytest.raises(ValueError, match="unsafe"):
        bundle.save(target)
    assert not target.exists()  # nothing written at all
    assert not (tmp_path / "escape.txt").exists()


def test_unsafe_member_accepts_normal_names() -> None:
    assert not unsafe_member("timepoint_00/ct.nii.gz")
    assert not unsafe_member("my..file.txt")
    assert unsafe_member("..")


def test_to_nnunet_layout_and_merge(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset501_Glioma"
    first = Bundle(build_bundle(contrasts=("t1", "flair"), n_timepoints=2, labels=GLIOMA_LABELS))
    assert first.to_nnunet(dataset, case_prefix="p01") == dataset
    images = sorted(p.name for p in (dataset / "imagesTr").iterdir())
    assert images == [
        "p01_tp00_0000.nii.gz",
        "p01_tp00_0001.nii.gz",
        "p01_tp01_0000.nii.gz",
        "p01_tp01_0001.nii.gz",
    ]
    assert sorted(p.name for p in (dataset / "labelsTr").iterdir()) == ["p01_tp00.nii.gz", "p01_tp01.nii.gz"]
    flair_img = nib.Nifti1Image.from_filename(dataset / "imagesTr" / "p01_tp01_0001.nii.gz")
    flair1 = np.asanyarray(flair_img.dataobj)
    np.testing.assert_array_equal(flair1, image_data(1, 1))
    label0 = gzip.decompress((dataset / "labelsTr" / "p01_tp00.nii.gz").read_bytes())
    assert label0 == gzip.decompress(first.read("timepoint_00/mask.nii.gz"))
    meta = json.loads((dataset / "dataset.json").read_text())
    notes = meta.pop("validation_notes")
    assert meta == {
        "name": "Dataset501_Glioma",
        "channel_names": {"0": "T1", "1": "FLAIR"},
        "labels": {"background": 0, "necrotic_core": 1, "edema": 2, "enhancing_tumor": 3},
        "numTraining": 2,
        "file_ending": ".nii.gz",
    }
    assert "one case" in notes[1]
    one = json.loads((dataset / "splits_final.json").read_text())
    assert one == [{"train": ["p01_tp00", "p01_tp01"], "val": ["p01_tp00", "p01_tp01"]}] * 5

    meta["description"] = "kept on merge"
    (dataset / "dataset.json").write_text(json.dumps(meta))
    second = Bundle(build_bundle(contrasts=("t1", "flair"), n_timepoints=3, labels=GLIOMA_LABELS, seed=8))
    second.to_nnunet(dataset, case_prefix="p02")
    merged = json.loads((dataset / "dataset.json").read_text())
    assert merged["numTraining"] == 5
    assert merged["description"] == "kept on merge"
    second.to_nnunet(dataset, case_prefix="p02")  # re-export: overwritten, not double-counted
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 5
    splits = json.loads((dataset / "splits_final.json").read_text())
    assert len(splits) == 5
    for fold in splits:  # two cases: one on each side, whole
        assert {i[:3] for i in fold["train"]} | {i[:3] for i in fold["val"]} == {"p01", "p02"}
        assert not {i[:3] for i in fold["train"]} & {i[:3] for i in fold["val"]}
    with pytest.raises(ValueError, match=r"already holds another bundle's images.*case_prefix"):
        first.to_nnunet(dataset, case_prefix="p02")
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 5


def test_to_nnunet_ct_channel_and_conflict(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset502_Lung"
    bundle = Bundle(build_bundle())
    bundle.to_nnunet(dataset)
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"}
    assert meta["labels"]["ground_glass"] == 2
    assert bundle.case_id.startswith("bundle_") and len(bundle.case_id) == 17
    assert (dataset / "imagesTr" / f"{bundle.case_id}_tp01_0000.nii.gz").is_file()
    with pytest.raises(ValueError, match=r"channel_names.*another DatasetNNN_Name folder"):
        Bundle(build_bundle(contrasts=("t1",), labels=GLIOMA_LABELS)).to_nnunet(dataset)
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 2


def test_two_bundles_with_the_default_case_prefix_both_survive(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset504_Lung"
    a, b = (Bundle(build_bundle(n_timepoints=3, seed=s)) for s in (1, 2))
    a.to_nnunet(dataset)
    b.to_nnunet(dataset)
    a.to_nnunet(dataset)  # the same bundle again: same names, nothing added
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == 6
    assert len(list((dataset / "imagesTr").iterdir())) == 6
    assert a.case_id != b.case_id


@pytest.mark.parametrize("prefix", ["", "../x", "a b", "_x", "x/y", "p.1"])
def test_to_nnunet_refuses_a_bad_case_prefix(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ValueError, match="case_prefix"):
        Bundle(build_bundle()).to_nnunet(tmp_path / "Dataset505_X", case_prefix=prefix)
    assert not (tmp_path / "Dataset505_X").exists()


def test_from_path_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(build_bundle())
    bundle = Bundle.from_path(path)
    assert bundle.filename == "bundle.zip"
    assert bundle.bytes == path.read_bytes()


def test_to_nnunet_orders_channels_whatever_the_upload_order(tmp_path: Path) -> None:
    dataset = tmp_path / "Dataset503_Mixed"
    bundle = Bundle(build_bundle(contrasts=("t2", "t1c", "t1"), n_timepoints=1))
    assert bundle.contrasts == ["t1", "t1c", "t2"]
    bundle.to_nnunet(dataset)
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1", "1": "T1c", "2": "T2"}
    channel0 = nib.Nifti1Image.from_filename(dataset / "imagesTr" / f"{bundle.case_id}_tp00_0000.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(channel0.dataobj), image_data(0, 2))  # t1 was uploaded third
