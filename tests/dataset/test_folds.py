"""Validation folds never split a case (1, 2 and 6 source scans), read back by nnU-Net 2.8.1's own
trainer (``do_split``) and MONAI's Auto3DSeg fold inspection; nnU-Net's ``verify_dataset_integrity``
on an export; the SDK's ``Bundle.to_nnunet`` against the dataset tool's nnU-Net export (labels,
channel names, channel order by contrast name, splits), also adding to a folder the tool made.

nnU-Net is the ``test`` extra's ``nnunetv2==2.8.1``; tests needing it skip, saying so, without it.
"""

from __future__ import annotations

import inspect
import io
import json
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from longisynth_client import Bundle
from longisynth_client import _folds as sdk_folds
from longisynth_client._nnunet import write_splits

from longisynth.dataset import folds
from longisynth.dataset.design import load_design
from longisynth.dataset.runner import run_dataset
from tests.dataset.conftest import glioma_mri_dataset, make_inputs, write_design

pytestmark = pytest.mark.xdist_group("dataset_folds")  # one worker builds the module fixtures

DATASET = "Dataset501_TinyNodules"
# n_scans -> cases per scan: one scan needs several cases (grouped by case); two scans with two
# cases each show that a scan's cases stay together; six scans give more groups than folds
RUNS = {1: 2, 2: 2, 6: 1}


def _nnunet() -> Any:
    return pytest.importorskip(
        "nnunetv2", reason="nnunetv2 not installed (the test extra pins nnunetv2==2.8.1)"
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Lung phantom datasets (nnunet + monai) over 1, 2 and 6 source scans; n_scans -> output."""
    out = {}
    for n_scans, per_scan in RUNS.items():
        root = tmp_path_factory.mktemp(f"folds{n_scans}")
        manifest = make_inputs(root / "in", n_scans=n_scans)
        design_path = write_design(
            root / "d",
            manifest,
            cases_per_scan=per_scan,
            sample={"diameter_mm": {"uniform": [10, 12]}, "n_timepoints": {"integers": [2, 3]}},
            output={"formats": ["nnunet", "monai"]},
        )
        report = run_dataset(load_design(design_path), design_path.parent, root / "out")
        assert report.n_ok == n_scans * per_scan, report.summary
        out[n_scans] = root / "out"
    return out


@pytest.fixture(scope="module")
def glioma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One glioma case whose MRI contrasts were given as t2 then t1 (nnunet + monai)."""
    return glioma_mri_dataset(tmp_path_factory.mktemp("glioma"), ("t2", "t1"), ["nnunet", "monai"])


def _case_scan(out: Path) -> dict[str, str]:
    datalist = json.loads((out / "monai" / "datalist.json").read_text())
    return {e["case_id"]: e["scan_id"] for e in datalist["training"]}


def _identifiers(dataset: Path) -> list[str]:
    return sorted(p.name.removesuffix(".nii.gz") for p in (dataset / "labelsTr").glob("*.nii.gz"))


def nnunet_do_split(dataset: Path, tmp: Path, fold: int) -> tuple[list[str], list[str], list[str]]:
    """nnU-Net 2.8.1's own ``nnUNetTrainer.do_split`` (and dataset construction) on ``dataset``'s
    ``splits_final.json`` copied where nnU-Net reads it; returns (train, val, trainer log)."""
    _nnunet()
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    base = tmp / "nnUNet_preprocessed" / dataset.name
    data = base / "nnUNetPlans_3d_fullres"
    if not data.exists():
        data.mkdir(parents=True)
        for ident in _identifiers(dataset):  # what nnUNetv2_preprocess leaves (only names matter here)
            for suffix in (".b2nd", "_seg.b2nd", ".pkl"):
                (data / f"{ident}{suffix}").touch()
    shutil.copy(dataset / "splits_final.json", base / "splits_final.json")
    log: list[str] = []
    trainer = SimpleNamespace(
        dataset_class=None,
        fold=fold,
        preprocessed_dataset_folder_base=str(base),
        preprocessed_dataset_folder=str(data),
        folder_with_segs_from_previous_stage=None,
        print_to_log_file=lambda *a, **_: log.append(" ".join(str(x) for x in a)),
    )
    trainer.do_split = lambda: nnUNetTrainer.do_split(trainer)
    dataset_tr, dataset_val = nnUNetTrainer.get_tr_and_val_datasets(trainer)
    return list(dataset_tr.identifiers), list(dataset_val.identifiers), log


def test_fold_rule() -> None:
    for n_groups in (1, 2, 3, 6, 11):
        groups = {f"c{g}": f"scan:s{g // 2}" for g in range(2 * n_groups)}  # two cases per scan
        idents = [f"c{g}_tp{t:02d}" for g in range(2 * n_groups) for t in range(2 + g % 2)]
        splits = folds.nnunet_splits(idents, groups)
        assert len(splits) == folds.N_FOLDS
        for fold in splits:
            assert sorted(set(fold["train"]) | set(fold["val"])) == sorted(idents)
            sides = [{groups[folds.case_of(i)] for i in fold[s]} for s in ("train", "val")]
            assert not sides[0] & sides[1] or n_groups == 1
        distinct = {json.dumps(f["val"]) for f in splits}
        assert len(distinct) == min(n_groups, 5)
        if n_groups >= 2:  # every group validated somewhere, folds balanced within one group
            assert {groups[folds.case_of(i)] for f in splits for i in f["val"]} == set(groups.values())
            sizes = [len(f["val"]) for f in splits[: min(n_groups, 5)]]
            assert max(sizes) - min(sizes) <= 5
    assert folds.case_of("case00042_tp01") == "case00042" and folds.case_of("x_tp3_tp00") == "x_tp3"


def test_sdk_copy_of_the_fold_rule_is_equal() -> None:
    for name in ("case_of", "partitions", "group_of", "nnunet_splits"):
        assert inspect.getsource(getattr(sdk_folds, name)) == inspect.getsource(getattr(folds, name)), name
    assert sdk_folds.IDENTIFIER.pattern == folds.IDENTIFIER.pattern and sdk_folds.N_FOLDS == folds.N_FOLDS


@pytest.mark.parametrize("n_scans", sorted(RUNS))
def test_nnunet_trainer_uses_five_folds_that_never_split_a_case(
    runs: dict[int, Path], n_scans: int, tmp_path: Path
) -> None:
    out = runs[n_scans]
    dataset = out / "nnunet" / DATASET
    scan_of = _case_scan(out)
    splits = json.loads((dataset / "splits_final.json").read_text())
    assert len(splits) == 5 and not (out / "nnunet" / "splits_final.json").exists()
    n_groups = n_scans if n_scans >= 2 else len(scan_of)  # by scan, or by case for one scan
    assert len({json.dumps(f["val"]) for f in splits}) == min(5, n_groups)
    for fold in range(5):
        train, val, log = nnunet_do_split(dataset, tmp_path, fold)
        assert any("Using splits from existing split file" in line for line in log), log
        assert not any("random" in line or "WARNING" in line for line in log), log
        assert (train, val) == (splits[fold]["train"], splits[fold]["val"])
        assert train and val and sorted(train + val) == _identifiers(dataset)
        cases = [{folds.case_of(i) for i in side} for side in (train, val)]
        assert not cases[0] & cases[1]  # no case has timepoints on both sides
        if n_scans >= 2:  # nor does a source scan
            assert not {scan_of[c] for c in cases[0]} & {scan_of[c] for c in cases[1]}
    dataset_json = json.loads((dataset / "dataset.json").read_text())
    notes = " ".join(dataset_json["validation_notes"])
    assert ("one source scan" in notes) is (n_scans == 1)
    assert ("repeat the same split" in notes) is (n_groups < 5)
    summary = (out / "summary.md").read_text()
    assert "Folds (nnunet, monai)" in summary and ("**Warning:**" in summary) is (n_groups < 5)


@pytest.mark.parametrize("n_scans", sorted(RUNS))
def test_monai_folds_match_nnunet_and_auto3dseg_reads_them(runs: dict[int, Path], n_scans: int) -> None:
    from monai.apps.auto3dseg.auto_runner import AutoRunner

    out = runs[n_scans]
    path = out / "monai" / "datalist.json"
    datalist = json.loads(path.read_text())
    splits = json.loads((out / "nnunet" / DATASET / "splits_final.json").read_text())
    by_fold: dict[int, set[str]] = {}
    for e in datalist["training"]:
        by_fold.setdefault(e["fold"], set()).add(f"{e['case_id']}_tp{e['timepoint']:02d}")
    k = len(by_fold)
    assert sorted(by_fold) == list(range(k)) and k == len({json.dumps(f["val"]) for f in splits}) >= 2
    for f, idents in by_fold.items():  # MONAI fold f validates what nnU-Net's fold f does
        assert idents == set(splits[f]["val"])
    # Auto3DSeg's own reading: k folds, each with training and validation data
    assert AutoRunner.inspect_datalist_folds(SimpleNamespace(data_src_cfg={}), str(path)) == k


def test_one_case_trains_and_validates_on_all_and_says_so(glioma: Path, tmp_path: Path) -> None:
    dataset = glioma / "nnunet" / DATASET
    idents = _identifiers(dataset)
    splits = json.loads((dataset / "splits_final.json").read_text())
    assert splits == [{"train": idents, "val": idents}] * 5
    train, val, log = nnunet_do_split(dataset, tmp_path, 4)
    assert train == val == idents
    assert any("Some validation cases are also in the training set" in line for line in log)
    datalist = json.loads((glioma / "monai" / "datalist.json").read_text())
    assert all("fold" not in e for e in datalist["training"])  # never every item in fold 0
    assert "one case" in datalist["validation_notes"][1]
    assert "**Warning:** one case" in (glioma / "summary.md").read_text()


def _inputs_reversed(path: Path) -> Bundle:
    """The bundle at ``path`` with ``metadata.json`` → ``input.files`` in reverse order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta["input"]["files"].reverse()
                data = json.dumps(meta).encode()
            dst.writestr(info, data)
    return Bundle(buf.getvalue())


def test_sdk_and_dataset_tool_write_the_same_nnunet_files(glioma: Path, tmp_path: Path) -> None:
    """Same labels, channel names, channel order (by contrast name: the t2-then-t1 upload is
    channel 0 = T1) and bytes; only the bookkeeping of dataset.json differs."""
    tool = glioma / "nnunet" / DATASET
    bundle = _inputs_reversed(glioma / "cases" / "case00000.zip")  # as a server given t2 then t1 would
    assert [f["contrast"] for f in bundle.metadata["input"]["files"]] == ["t2", "t1"]
    sdk = bundle.to_nnunet(tmp_path / DATASET, case_prefix="case00000")
    tool_json, sdk_json = (json.loads((d / "dataset.json").read_text()) for d in (tool, sdk))
    assert sdk_json["channel_names"] == tool_json["channel_names"] == {"0": "T1", "1": "T2"}
    assert sdk_json["labels"] == tool_json["labels"] == {
        "background": 0, "necrotic_core": 1, "edema": 2, "enhancing_tumor": 3
    }  # fmt: skip
    assert sdk_json["numTraining"] == tool_json["numTraining"] == 2
    for sub in ("imagesTr", "labelsTr"):
        names = sorted(p.name for p in (tool / sub).iterdir())
        assert names == sorted(p.name for p in (sdk / sub).iterdir())
        for name in names:
            assert (tool / sub / name).read_bytes() == (sdk / sub / name).read_bytes(), name
    with zipfile.ZipFile(glioma / "cases" / "case00000.zip") as zf:
        t1 = zf.read("timepoint_01/t1.nii.gz")
    assert (sdk / "imagesTr" / "case00000_tp01_0000.nii.gz").read_bytes() == t1
    assert (sdk / "splits_final.json").read_text() == (tool / "splits_final.json").read_text()


@pytest.mark.parametrize("n_scans", sorted(RUNS))
def test_sdk_recomputes_the_dataset_tools_splits(runs: dict[int, Path], n_scans: int, tmp_path: Path) -> None:
    copy = shutil.copytree(runs[n_scans] / "nnunet" / DATASET, tmp_path / DATASET)
    tool_splits = json.loads((copy / "splits_final.json").read_text())
    (copy / "splits_final.json").unlink()
    assert write_splits(copy, json.loads((copy / "dataset.json").read_text())) == tool_splits


def test_sdk_adds_bundles_to_a_dataset_tool_folder(runs: dict[int, Path], tmp_path: Path) -> None:
    """Two bundles of another run added with the default case prefix both survive, the tool's
    source-scan groups are kept, and nnU-Net's integrity check and trainer accept the result."""
    _nnunet()
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    out = runs[2]
    dataset = shutil.copytree(out / "nnunet" / DATASET, tmp_path / DATASET)
    before = json.loads((dataset / "dataset.json").read_text())["numTraining"]
    added = [Bundle.from_path(runs[6] / "cases" / f"case0000{i}.zip") for i in (0, 1)]
    for bundle in added:
        bundle.to_nnunet(dataset)
    n_new = sum(len(b.timepoints) for b in added)
    assert json.loads((dataset / "dataset.json").read_text())["numTraining"] == before + n_new
    assert len(_identifiers(dataset)) == before + n_new
    with pytest.raises(ValueError, match="case 'case00000' already holds another bundle's images"):
        added[1].to_nnunet(dataset, case_prefix="case00000")  # a name the dataset tool used
    verify_dataset_integrity(str(dataset), num_processes=1)

    scan_of = {**_case_scan(out), **{b.case_id: b.case_id for b in added}}
    for fold in range(5):
        train, val, log = nnunet_do_split(dataset, tmp_path, fold)
        assert not any("random" in line or "WARNING" in line for line in log), log
        assert train and val and sorted(train + val) == _identifiers(dataset)
        scans = [{scan_of[folds.case_of(i)] for i in side} for side in (train, val)]
        assert not scans[0] & scans[1]
