"""The train-on-synthetic / test-on-real harness: real and synthetic lesions are cut the same way,
splits never share a patient, the loss ignores what it must, and the network can learn."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from downstream import glioma as gl
from downstream import lung as lu
from downstream.common import (
    NetConfig,
    Sample,
    dice,
    masked_dice_ce,
    predict,
    split_groups,
    train,
)
from downstream.synthetic_vs_real import _folds


def _nodule_volume(
    shape: tuple[int, int, int], centre: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.indices(shape).astype(float)
    r = np.sqrt(
        ((idx[0] - centre[0]) / 6) ** 2 + ((idx[1] - centre[1]) / 4) ** 2 + ((idx[2] - centre[2]) / 2) ** 2
    )
    mask = r <= 1.0
    hu = np.where(mask, 30.0, -850.0) + 0.0 * idx[0]
    hu[:, :, 0] = 500.0  # a bright slice far from the nodule: must be cut away like in LIDC crops
    return hu, mask


def test_nodule_patch_is_the_same_in_any_orientation() -> None:
    hu, mask = _nodule_volume((40, 40, 20), (20, 18, 10))
    ras = np.diag([0.7, 0.7, 1.25, 1.0])
    lps = np.diag([-0.7, -0.7, 1.25, 1.0])
    a = lu.nodule_sample(hu, mask, ras, "a", "p", {})
    b = lu.nodule_sample(hu[::-1, ::-1], mask[::-1, ::-1], lps, "b", "p", {})
    # slices first (sagittal-like storage): the affine says which axis is S–I
    perm = np.array([[0, 0.7, 0, 0], [0, 0, 0.7, 0], [1.25, 0, 0, 0], [0, 0, 0, 1]])  # voxel axis 0 → S
    c = lu.nodule_sample(hu.transpose(2, 0, 1), mask.transpose(2, 0, 1), perm, "c", "p", {})
    assert a.image.shape == (1, *lu.PATCH) and a.labels.shape == lu.PATCH
    for other in (b, c):
        assert np.array_equal(other.labels, a.labels)
        np.testing.assert_allclose(other.image, a.image, atol=1e-5)


def test_nodule_patch_keeps_only_the_nodule_slices_like_the_lidc_crops() -> None:
    hu, mask = _nodule_volume((40, 40, 20), (20, 20, 10))
    s = lu.nodule_sample(hu, mask, np.diag([0.7, 0.7, 1.25, 1.0]), "a", "p", {})
    assert s.image.max() < (500 + 1000) / 1400  # the bright slice 10 slices away was cut
    lit = np.flatnonzero(s.image[0].max(axis=(0, 1)) > 0)
    # nodule slices 9…11 (±2 voxels of 1.25 mm) ± 1 slice ⇒ ≈ 7.5 mm ⇒ about 4 slices of 2 mm
    assert 2 <= len(lit) <= 6
    assert s.labels.sum() > 0


def test_splits_never_share_a_patient() -> None:
    groups = [f"p{k % 37}" for k in range(120)]
    train_g, test_g = split_groups(groups, 0.4, seed=3)
    assert not train_g & test_g and train_g | test_g == set(groups)
    assert 13 <= len(test_g) <= 16
    cases = [Path(f"case{k}") for k in range(7)]
    folds = _folds(cases, seed=0)
    tested = [c for _, te in folds for c in te]
    assert sorted(tested) == sorted(cases)  # each case tested exactly once
    for tr, te in folds:
        assert not set(tr) & set(te)


def test_loss_ignores_voxels_of_weight_zero() -> None:
    import torch

    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, 6, 6)
    target = torch.randint(0, 4, (2, 6, 6, 6))
    weight = torch.ones(2, 6, 6, 6)
    weight[:, :3] = 0
    changed = target.clone()
    changed[:, :3] = (changed[:, :3] + 1) % 4  # different labels where nothing counts
    assert float(masked_dice_ce(logits, target, weight)) == pytest.approx(
        float(masked_dice_ce(logits, changed, weight))
    )
    assert float(masked_dice_ce(logits, target, torch.ones_like(weight))) != pytest.approx(
        float(masked_dice_ce(logits, changed, torch.ones_like(weight)))
    )


def test_label_downsampling_takes_the_majority() -> None:
    labels = np.zeros((4, 4, 4), np.int64)
    labels[:2, :2, :2] = 2
    labels[0, 0, 0] = 3
    labels[2:, 2:, 2:] = 1
    labels[2, 2, 2] = 0
    out = gl.downsample_labels(labels)
    assert out.shape == (2, 2, 2)
    assert out[0, 0, 0] == 2 and out[1, 1, 1] == 1 and out[0, 1, 0] == 0
    tie = np.zeros((2, 2, 2), np.int64)
    tie[0] = 3
    assert gl.downsample_labels(tie)[0, 0, 0] == 3  # 4 vs 4: tumour wins


def test_the_network_learns_a_trivial_lesion() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for k in range(6):
        image = rng.normal(0, 0.1, (1, 16, 16, 8)).astype(np.float32)
        labels = np.zeros((16, 16, 8), np.int64)
        x, y = rng.integers(3, 9, 2)
        labels[x : x + 5, y : y + 5, 2:6] = 1
        image[0][labels > 0] += 1.0
        samples.append(Sample(image, labels, f"g{k}", f"s{k}"))
    cfg = NetConfig(in_channels=1, classes=2, patch=(16, 16, 8), channels=(8, 16, 32, 64), batch=4, steps=80)
    net = train(samples, cfg, seed=0)
    scores = [dice(predict(net, s.image, cfg.patch) > 0, s.labels > 0) for s in samples]
    assert float(np.mean(scores)) > 0.8


def test_refiner_option_is_checked_and_names_the_model_in_the_cache_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--refiner`` runs the synthetic arm with a learned model: a path without its card is one
    line and exit 2; a model's samples are cached under their own key (never the rules' ones)."""
    from downstream.synthetic_vs_real import _refiner_label, _refiner_tag, main

    from longisynth.refine.model import MODEL_ENV

    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert _refiner_tag() == "" and _refiner_label().startswith("none")
    code = main(["--family", "lung", "--real", str(tmp_path), "--refiner", str(tmp_path / "x.onnx")])
    assert code == 2 and "no model with its .json card" in capsys.readouterr().err
    (tmp_path / "m.onnx").write_bytes(b"weights")
    (tmp_path / "m.json").write_text('{"name": "tex", "sampler": {"strength": 0.3}}')
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "m.onnx"))
    tag = _refiner_tag()
    assert tag.startswith("_refiner") and "tex" in _refiner_label() and "0.3" in _refiner_label()
    (tmp_path / "m.json").write_text('{"name": "tex", "sampler": {"strength": 0.45}}')
    assert _refiner_tag() != tag  # another sampler on the same weights: other samples
