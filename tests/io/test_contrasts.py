"""Contrast names as users and datasets spell them (BraTS' ``t1ce`` is our ``t1c``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longisynth.anatomy.brain_registration import check_contrast
from longisynth.api import _as_scans
from longisynth.dataset.design import DatasetDesign, InputsConfig
from longisynth.dataset.inputs import resolve_inputs
from longisynth.errors import InvalidInputError
from longisynth.io.contrasts import contrast_key
from longisynth.io.scan import Scan


def test_aliases_map_to_our_names() -> None:
    assert contrast_key("t1ce") == "t1c"
    assert contrast_key(" T1CE ") == "t1c"
    assert contrast_key("t1n") == "t1" and contrast_key("t2w") == "t2" and contrast_key("t2f") == "flair"
    assert contrast_key("flair") == "flair" and contrast_key("pd") == "pd"
    assert check_contrast("t1ce") == "t1c"  # brain anatomy takes the BraTS name too


def test_api_accepts_brats_names_and_refuses_duplicates() -> None:
    scan = Scan.from_array(np.arange(27, dtype=np.float32).reshape(3, 3, 3), np.eye(4))
    assert list(_as_scans({"t1": scan, "T1CE": scan}, None)) == ["t1", "t1c"]
    assert list(_as_scans(scan, "t1ce")) == ["t1c"]
    with pytest.raises(InvalidInputError, match="given twice"):
        _as_scans({"t1c": scan, "t1ce": scan}, None)


def test_design_and_manifest_accept_t1ce(tmp_path: Path) -> None:
    assert InputsConfig(glob="*.nii.gz", contrast="t1ce").contrast == "t1c"  # type: ignore[arg-type]
    (tmp_path / "scans.csv").write_text("scan_id,t1,t1ce,site\ncase1,a_t1.nii.gz,a_t1ce.nii.gz,x\n")
    design = DatasetDesign(name="brats", inputs=InputsConfig(manifest="scans.csv", modality="mr"))  # type: ignore[arg-type]
    (entry,) = resolve_inputs(design, tmp_path)
    assert set(entry.paths) == {"t1", "t1c"}
    assert entry.paths["t1c"].endswith("a_t1ce.nii.gz")
    assert entry.attributes == {"site": "x"}
