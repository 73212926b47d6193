"""The lesion-texture model (issue 18): the training script trains on a lesion library (here a
CC0 fixture of synthetic ovoid nodules), exports to ONNX with a dynamic batch, checks parity and
writes its memorisation report; the engine runs it over the lesion and its band, on the model's
grid, leaving every other voxel bit-identical, deterministically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import longisynth
from longisynth.io.scan import Scan
from longisynth.library import build_library
from longisynth.phantoms.thorax import make_thorax_phantom
from longisynth.refine.model import MODEL_ENV, load_refiner
from longisynth.refine.patches import TILE, region_of
from tests.library.test_library import _write_pair

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "solid nodule 14 mm in the right lung, scans at 0 and 6 months"


@pytest.fixture(scope="module")
def texture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("tex_src")
    for i, radius in enumerate((3.0, 4.0, 5.0, 4.5, 3.5, 5.5, 6.0, 4.2, 3.8, 5.2, 4.8, 6.5)):
        _write_pair(src, f"case{i}", radius, i)
    lib = tmp_path_factory.mktemp("tex_lib") / "library"
    build_library(src, lib, licence="CC0 (test fixture)")
    return _train_tiny(lib, tmp_path_factory.mktemp("tex_out"))


def _train_tiny(library: Path, out: Path) -> Path:
    """``models/train_texture.py --tiny`` on ``library``: the exported model's path."""
    done = subprocess.run(
        [sys.executable, "models/train_texture.py", "--tiny", "--library", str(library), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "texture.onnx"


@pytest.mark.xdist_group("train")
def test_texture_model_exports_with_its_card(texture_model: Path) -> None:
    card = json.loads(texture_model.with_suffix(".json").read_text())
    assert card["kind"] == "lesion-texture" and card["sampler"]["region"] == "lesion"
    assert card["sampler"]["grid_mm"] == 1.0 and max(card["parity_max_abs_diff"].values()) < 1e-3
    memo = card["memorisation"]
    assert memo["held_apart_lesions"] >= 1 and 0.0 <= memo["flag_rate"] <= 1.0
    assert memo["real_to_real_p1"] > 0 and "case" not in json.dumps(card)  # no source case names
    model, reason = load_refiner(texture_model)
    assert model is not None, reason
    x = np.random.default_rng(0).standard_normal((3, 4, TILE, TILE, TILE)).astype(np.float32)
    assert model(x, np.array([5, 300, 600], dtype=np.int64)).shape == (3, 1, TILE, TILE, TILE)


@pytest.mark.xdist_group("train")
def test_texture_model_rewrites_only_the_lesion_region_deterministically(
    texture_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hu, affine = make_thorax_phantom(shape=(96, 96, 64), spacing_mm=(3.5, 3.5, 5.0), seed=0)
    scan = Scan.from_array(hu, affine, "ct.nii.gz")
    plain = longisynth.generate(scan, PROMPT, seed=4, refine=False)
    monkeypatch.setenv(MODEL_ENV, str(texture_model))
    a = longisynth.generate(scan, PROMPT, seed=4)
    b = longisynth.generate(scan, PROMPT, seed=4)
    status = a.extra["refiner"]
    assert status["status"] == "applied" and status["model"].startswith("longisynth-texture")
    flag = status["memorisation_flag"]  # the per-study check against the training lesions
    assert flag["checked"] is True and isinstance(flag["flagged"], bool)
    assert flag["nearest_training_distance"] > 0 and flag["real_to_real_p1"] > 0
    for tp_plain, tp_a, tp_b in zip(plain.timepoints, a.timepoints, b.timepoints, strict=True):
        region = region_of(tp_plain.mask > 0, "lesion")
        changed = tp_plain.crops["ct"] != tp_a.crops["ct"]
        assert not np.any(changed & ~region)  # outside the lesion and its band: bit-identical
        assert np.any(changed & region)
        assert np.array_equal(tp_a.crops["ct"], tp_b.crops["ct"])  # same seed, same bytes
        assert np.array_equal(tp_plain.mask, tp_a.mask)


@pytest.mark.xdist_group("train")
def test_a_ct_texture_model_leaves_an_mr_study_alone(
    texture_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server may name one texture model for every request: trained on CT lesions, it must not
    re-texture a glioma; the study keeps its rule-based lesion and says why."""
    from longisynth.demo import demo_input

    assert json.loads(texture_model.with_suffix(".json").read_text())["modality"] == "ct"
    d = demo_input("glioma", size="small")
    prompt = "high-grade glioma in the left frontal lobe, scans at 0 and 3 months"
    plain = longisynth.generate(d.scans, prompt, seed=2, brain_tissues=d.brain_tissues, refine=False)
    monkeypatch.setenv(MODEL_ENV, str(texture_model))
    study = longisynth.generate(d.scans, prompt, seed=2, brain_tissues=d.brain_tissues)
    status = study.extra["refiner"]
    assert status["status"] == "skipped" and "trained on CT lesions" in status["reason"]
    for tp_plain, tp in zip(plain.timepoints, study.timepoints, strict=True):
        for name in tp.crops:
            assert np.array_equal(tp_plain.crops[name], tp.crops[name])


@pytest.fixture(scope="module")
def mr_texture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = ROOT.parent / "shared" / "data" / "brats2018"
    if not shared.is_dir():
        pytest.skip("../shared/data/brats2018 absent: an MRI lesion library needs real gliomas")
    src = tmp_path_factory.mktemp("brats_src")
    for case in ("Brats18_CBICA_ABM_1", "Brats18_TCIA02_135_1"):
        (src / case).symlink_to(shared / case)
    lib = tmp_path_factory.mktemp("mr_lib") / "library"
    build_library(src, lib)
    return _train_tiny(lib, tmp_path_factory.mktemp("mr_tex"))


@pytest.mark.xdist_group("train")
def test_an_mri_texture_model_trains_on_gliomas_and_textures_only_the_tumour(
    mr_texture_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MRI library (BraTS gliomas, four contrasts in brain z-scores) trains a texture model on a
    2 mm grid; it re-textures a glioma's region only, deterministically, and leaves a CT alone."""
    card = json.loads(mr_texture_model.with_suffix(".json").read_text())
    assert card["modality"] == "mr" and card["sampler"]["grid_mm"] == 2.0
    assert card["training"]["contrasts"] == ["flair", "t1", "t1c", "t2"]
    assert card["memorisation"]["held_apart_lesions"] == 1 and "Brats" not in json.dumps(card)
    from longisynth.demo import demo_input

    d = demo_input("glioma", size="small")
    prompt = "high-grade glioma 30 mm in the left frontal lobe, scans at 0 and 3 months"
    plain = longisynth.generate(d.scans, prompt, seed=2, brain_tissues=d.brain_tissues, refine=False)
    monkeypatch.setenv(MODEL_ENV, str(mr_texture_model))
    a = longisynth.generate(d.scans, prompt, seed=2, brain_tissues=d.brain_tissues)
    b = longisynth.generate(d.scans, prompt, seed=2, brain_tissues=d.brain_tissues)
    assert a.extra["refiner"]["status"] == "applied"
    for tp_plain, tp_a, tp_b in zip(plain.timepoints, a.timepoints, b.timepoints, strict=True):
        region = region_of(tp_plain.mask > 0, "lesion")
        for name in tp_a.crops:
            changed = tp_plain.crops[name] != tp_a.crops[name]
            assert not np.any(changed & ~region) and np.any(changed & region)
            assert np.array_equal(tp_a.crops[name], tp_b.crops[name])
    hu, affine = make_thorax_phantom(shape=(96, 96, 64), spacing_mm=(3.5, 3.5, 5.0), seed=0)
    ct = longisynth.generate(Scan.from_array(hu, affine, "ct.nii.gz"), PROMPT, seed=4)
    assert ct.extra["refiner"]["status"] == "skipped"


@pytest.mark.xdist_group("train")
def test_interior_mode_keeps_the_rule_margin_and_density(
    texture_model: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A card with region "interior": the model's texture goes into the lesion less its outermost
    voxel, at the rule-based render's mean; the margin and everything outside stay the rules'."""
    import shutil

    from scipy import ndimage

    model = tmp_path / "texture.onnx"
    shutil.copy(texture_model, model)
    card = json.loads(texture_model.with_suffix(".json").read_text())
    card["sampler"]["region"] = "interior"
    model.with_suffix(".json").write_text(json.dumps(card))
    hu, affine = make_thorax_phantom(shape=(160, 160, 100), spacing_mm=(1.5, 1.5, 2.0), seed=0)
    scan = Scan.from_array(hu, affine, "ct.nii.gz")
    plain = longisynth.generate(scan, PROMPT, seed=4, refine=False)
    monkeypatch.setenv(MODEL_ENV, str(model))
    study = longisynth.generate(scan, PROMPT, seed=4)
    assert study.extra["refiner"]["status"] == "applied"
    textured = 0
    for tp_plain, tp in zip(plain.timepoints, study.timepoints, strict=True):
        lesion = tp_plain.mask > 0
        interior = region_of(lesion, "interior")
        assert np.array_equal(
            interior, ndimage.binary_erosion(lesion, ndimage.generate_binary_structure(3, 1))
        )
        changed = tp_plain.crops["ct"] != tp.crops["ct"]
        assert not np.any(changed & ~interior)  # the margin and the host: the rules' bytes
        if interior.any():
            textured += int(np.any(changed & interior))
            a, b = tp_plain.crops["ct"][interior].astype(float), tp.crops["ct"][interior].astype(float)
            assert abs(a.mean() - b.mean()) < 1.0  # the rules' density (rounding to int16 aside)
    assert textured >= 1
