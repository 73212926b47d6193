"""The bundle format has one owner: exports, evaluate, the VTT and the SDK take its tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longisynth.bundle import format as fmt


def test_sdk_copy_of_the_format_tables_is_equal() -> None:
    from longisynth_client import _format as sdk

    assert sdk.CONTRASTS == fmt.CONTRASTS
    assert sdk.CHANNEL_NAMES == fmt.CHANNEL_NAMES
    assert {family: fmt.label_keys(family) for family in fmt.LABELS} == sdk.LABEL_KEYS


def test_labels_and_members() -> None:
    assert fmt.label_descriptions("lung_nodule") == {
        "0": "background", "1": "solid component", "2": "ground-glass component",
    }  # fmt: skip
    assert fmt.label_keys("glioma") == {"background": 0, "necrotic_core": 1, "edema": 2, "enhancing_tumor": 3}
    assert fmt.member_name(3, "t1c") == "timepoint_03/t1c.nii.gz"
    match = fmt.MEMBER.match(fmt.member_name(12, fmt.MASK))
    assert match is not None and match.groups()[:2] == ("12", "mask")
    assert fmt.ordered_contrasts("flair,t1c,t1") == ["t1", "t1c", "flair"]
    with pytest.raises(ValueError, match="unknown contrast"):
        fmt.ordered_contrasts(["t1", "dwi"])


def test_written_metadata_validates_against_the_model(tmp_path: Path) -> None:
    import longisynth
    from longisynth.bundle import read_metadata
    from longisynth.demo import demo_input

    demo = demo_input("lung")
    study = longisynth.generate(demo.scans, demo.prompt, seed=2, refine=False)
    meta = read_metadata(
        longisynth.write_bundle(study, tmp_path / "s.zip", preview=False, displacement=False)
    )
    model = fmt.BundleMetadata.model_validate(meta)
    assert model.labels == fmt.label_descriptions("lung_nodule")
    assert model.timepoints[0].files == ["ct.nii.gz", "mask.nii.gz"]


def test_sdk_and_dataset_tool_write_the_same_nnunet_dataset_json(tmp_path: Path) -> None:
    """One bundle with MRI contrasts listed flair-first: both writers order channels t1c, flair and
    name labels and channels from the one table."""
    from longisynth_client import Bundle

    from tests.dataset.conftest import glioma_mri_dataset

    out = glioma_mri_dataset(tmp_path, ("flair", "t1c"), ["nnunet"])
    tool = json.loads((out / "nnunet" / "Dataset501_TinyNodules" / "dataset.json").read_text())
    sdk_dir = Bundle.from_path(out / "cases" / "case00000.zip").to_nnunet(tmp_path / "Dataset501_X")
    sdk = json.loads((sdk_dir / "dataset.json").read_text())
    for key in ("channel_names", "labels", "file_ending", "numTraining"):
        assert sdk[key] == tool[key], key
    assert tool["channel_names"] == {"0": "T1c", "1": "FLAIR"}
