"""``longisynth evaluate realism`` end to end on small hand-built folders and bundles."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from longisynth.cli import main

from .fixtures import (
    BRAIN_SHAPE,
    _nii_bytes,
    brain_images,
    glioma,
    write_bundle,
    write_lung_bundles,
    write_real_lung_folder,
)

LINE = re.compile(r"^AUC (\d\.\d\d) \[(\d\.\d\d)–(\d\.\d\d)\]$")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def _realism(capsys: pytest.CaptureFixture[str], family: str, real: str, *args: str) -> tuple[int, str, str]:
    """``longisynth evaluate realism --family FAMILY --real REAL ARGS...``: (exit code, stdout, stderr)."""
    return _run(["evaluate", "realism", "--family", family, "--real", real, *args], capsys)


@pytest.fixture
def lung_sets(tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    rng = np.random.default_rng(0)
    real = write_real_lung_folder(tmp_path / "real", 12, rng, texture=60.0, blur=0.4)
    different = write_lung_bundles(tmp_path / "different", 4, 3, rng, texture=0.0, blur=1.6)
    alike = write_lung_bundles(tmp_path / "alike", 4, 3, rng, texture=60.0, blur=0.4)
    return real, different, alike


def test_lung_prints_one_auc_line_and_writes_reports(
    lung_sets: tuple[Path, list[Path], list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, different, alike = lung_sets
    html_path, json_path = tmp_path / "r.html", tmp_path / "r.json"
    code, out, _ = _realism(
        capsys, "lung", str(real), *map(str, different), "-o", str(html_path), "--json", str(json_path), "-q"
    )
    assert code == 0
    m = LINE.match(out)
    assert m, out
    auc, lo, hi = map(float, m.groups())
    assert auc > 0.9 and lo <= auc <= hi
    data = json.loads(json_path.read_text())
    assert data["n_real"] == 24 and data["n_synthetic"] == 24
    assert data["groups"] == {"real": 12, "synthetic": 4, "shared": 0}
    assert not any("size" in f["name"] or "diameter" in f["name"] for f in data["features"])
    assert "What gives the lesions away" in html_path.read_text()
    code, out, _ = _realism(capsys, "lung", str(real), *map(str, alike), "-o", str(html_path), "-q")
    assert code == 0 and float(LINE.match(out).group(1)) < 0.7  # type: ignore[union-attr]


def test_missing_mask_is_one_line_exit_2(
    lung_sets: tuple[Path, list[Path], list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, different, _ = lung_sets
    victim = sorted((real / "mask").iterdir())[3]
    victim.unlink()
    code, out, err = _realism(capsys, "lung", str(real), *map(str, different), "-o", str(tmp_path / "r.html"))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and victim.name in err and "no mask" in err


def test_wrong_family_bundle_is_one_line_exit_2(
    lung_sets: tuple[Path, list[Path], list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, different, _ = lung_sets
    code, _out, err = _realism(capsys, "glioma", str(real), str(different[0]), "-o", str(tmp_path / "r.html"))
    assert code == 2 and len(err.splitlines()) == 1
    bundle = tmp_path / "glioma.zip"
    write_bundle(
        bundle,
        "glioma",
        ["0" * 64],
        [{"flair": np.zeros((4, 4, 4), np.int16), "mask": np.zeros((4, 4, 4), np.uint8)}],
    )
    code, _out, err = _realism(
        capsys, "lung", str(real), str(bundle), *map(str, different), "-o", str(tmp_path / "r.html")
    )
    assert code == 2 and len(err.splitlines()) == 1 and "glioma bundle" in err and "lung_nodule" in err


def _brats_folder(root: Path, n: int, rng: np.random.Generator) -> dict[str, dict[str, str]]:
    """BraTS-layout cases with a real tumour on one side; returns case -> contrast -> sha256."""
    digests: dict[str, dict[str, str]] = {}
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for c in range(n):
        name = f"Case_{c:02d}"
        (root / name).mkdir(parents=True)
        labels = glioma(rng, (12, 20, 16))
        seg = labels.copy()
        seg[labels == 3] = 4  # BraTS 2018 numbering
        (root / name / f"{name}_seg.nii.gz").write_bytes(_nii_bytes(seg, affine))
        digests[name] = {}
        for contrast, img in brain_images(rng, labels, bright=1.0).items():
            path = root / name / f"{name}_{contrast}.nii.gz"
            path.write_bytes(_nii_bytes(img, affine))
            digests[name][contrast] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_glioma_same_brain_groups_and_unmatched_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    real = tmp_path / "brats"
    digests = _brats_folder(real, 6, rng)
    bundles = []
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    for name, files in digests.items():
        tps = []
        for _ in range(2):
            labels = glioma(rng, (28, 20, 16))  # other hemisphere, same kind of tumour
            imgs = brain_images(rng, labels, bright=1.0)
            tps.append(
                {
                    "t1": imgs["t1"],
                    "t1c": imgs["t1ce"],
                    "t2": imgs["t2"],
                    "flair": imgs["flair"],
                    "mask": labels,
                }
            )
        bundles.append(write_bundle(tmp_path / f"{name}.zip", "glioma", list(files.values()), tps, affine))
    json_path = tmp_path / "g.json"
    code, out, err = _realism(
        capsys,
        "glioma",
        str(real),
        *map(str, bundles),
        "-o",
        str(tmp_path / "g.html"),
        "--json",
        str(json_path),
        "-q",
    )
    assert code == 0, err
    assert LINE.match(out)
    data = json.loads(json_path.read_text())
    assert data["groups"] == {"real": 6, "synthetic": 6, "shared": 6}  # one brain = one group
    assert data["contrasts"] == ["flair", "t1", "t1c", "t2"]
    stranger = tmp_path / "stranger.zip"
    labels = glioma(rng, (28, 20, 16))
    imgs = brain_images(rng, labels, bright=1.0)
    write_bundle(
        stranger,
        "glioma",
        ["f" * 64],
        [{"t1": imgs["t1"], "t1c": imgs["t1ce"], "t2": imgs["t2"], "flair": imgs["flair"], "mask": labels}],
        affine,
    )
    code, out, err = _realism(capsys, "glioma", str(real), str(stranger), "-o", str(tmp_path / "g.html"))
    assert code == 2 and "host brain is none of the real cases" in err and len(err.splitlines()) == 1
    assert nib.load(real / "Case_00" / "Case_00_seg.nii.gz").shape == BRAIN_SHAPE


@pytest.mark.slow
def test_real_lidc_folder_reads(shared_data: Path) -> None:
    from longisynth.evaluate.realism.lesions import real_lung_lesions

    folder = shared_data / "lidc_nodules"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    lesions = [lesion for _, lesion in zip(range(20), real_lung_lesions(folder), strict=False)]
    assert len(lesions) == 20
    assert all(lesion.group.startswith("LIDC-IDRI-") for lesion in lesions)
    # LIDC-IDRI nodules are ≥ 3 mm; inside they range from ground-glass to calcified
    assert all(2.0 < lesion.diameter_mm < 40 for lesion in lesions)
    assert all(-900 < lesion.features["hu_inside_mean"] < 1500 for lesion in lesions)
    assert 0.5 < float(np.median([lesion.features["shape_solidity"] for lesion in lesions])) <= 1.0
    # the readers' texture score gives each real nodule its type (for the per-type AUC)
    assert {lesion.kind for lesion in lesions} <= {"solid", "part_solid", "ground_glass"}
    assert sum(lesion.kind == "solid" for lesion in lesions) >= 10


def test_per_kind_auc_slices_the_one_classifier_by_nodule_type() -> None:
    """Per type, the synthetic lesions' out-of-fold scores against the real ones of that type; a
    type held by one class only has no row."""
    from longisynth.evaluate.realism import per_kind_table
    from longisynth.evaluate.realism.lesions import Lesion

    def lesion(real: bool, kind: str | None) -> Lesion:
        return Lesion("x", real, "g", 8.0, {}, np.zeros((2, 2), np.float32), kind)

    lesions = [
        *(lesion(True, "solid") for _ in range(4)),
        *(lesion(False, "solid") for _ in range(4)),
        lesion(True, "ground_glass"),
        lesion(False, "ground_glass"),
        lesion(False, "part_solid"),
        lesion(True, None),
    ]
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.9, 0.1, 0.5, 0.5])
    rows = {r["kind"]: r for r in per_kind_table(lesions, scores)}
    assert set(rows) == {"solid", "ground_glass"}  # part-solid: no real one; None: no type
    assert rows["solid"]["auc"] == 1.0 and rows["solid"]["n_real"] == 4 and rows["solid"]["n_synthetic"] == 4
    assert rows["ground_glass"]["auc"] == 0.0


def test_same_inputs_and_seed_give_the_same_report(
    lung_sets: tuple[Path, list[Path], list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, different, _ = lung_sets
    outputs = []
    for k in range(2):
        json_path = tmp_path / f"r{k}.json"
        argv = ["evaluate", "realism", "--family", "lung", "--real", str(real), *map(str, different)]
        assert (
            _run([*argv, "-o", str(tmp_path / f"r{k}.html"), "--json", str(json_path), "-q"], capsys)[0] == 0
        )
        outputs.append(json_path.read_bytes())
    assert outputs[0] == outputs[1]


def test_real_brats_case_reads_with_our_labels(shared_data: Path) -> None:
    from longisynth.evaluate.realism.lesions import brats_cases, real_glioma_lesions

    folder = shared_data / "brats2018"
    if not folder.is_dir():
        pytest.skip(f"{folder} absent")
    cases = brats_cases(folder)
    assert len(cases) == 7 and all(set(c.contrasts) == {"flair", "t1", "t1c", "t2"} for c in cases)
    lesion = next(real_glioma_lesions(cases[:1], ["flair", "t1c"]))
    f = lesion.features
    # BraTS 2018: 1 necrotic/non-enhancing, 2 oedema, 4 enhancing -> ours 1, 2, 3
    assert f["fraction_enhancing"] > 0.05 and f["fraction_oedema"] > 0.2
    assert abs(f["fraction_necrotic"] + f["fraction_oedema"] + f["fraction_enhancing"] - 1.0) < 1e-9
    assert f["flair_oedema_mean"] > 0.5  # FLAIR-bright oedema (brain z-scores; brain mean is 0)
    assert f["t1c_enhancing_mean"] > f["t1c_necrotic_mean"]  # enhancing rim brighter than the core
    assert 20.0 < lesion.diameter_mm < 90.0
