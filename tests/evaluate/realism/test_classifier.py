"""The machine VTT's classifier: it separates what differs, not what doesn't, and groups never leak."""

from __future__ import annotations

import numpy as np
import pytest

from longisynth.errors import InvalidInputError
from longisynth.evaluate.realism.classifier import (
    auc_score,
    bootstrap_ci,
    grouped_folds,
    machine_vtt,
)
from longisynth.evaluate.realism.features import lung_features
from longisynth.evaluate.realism.lesions import largest_axial_slice

from .fixtures import AFFINE, nodule


def _features(rng: np.random.Generator, n: int, texture: float, blur: float) -> np.ndarray:
    rows = []
    for _ in range(n):
        hu, mask = nodule(rng, texture, blur)
        hu2d, mask2d = largest_axial_slice(hu.astype(float), mask > 0, AFFINE)
        f = lung_features(hu2d, mask2d)
        rows.append([f[k] for k in sorted(f)])
    return np.array(rows)


def _groups(n: int, per_group: int, prefix: str) -> list[str]:
    return [f"{prefix}{i // per_group}" for i in range(n)]


def test_auc_score_matches_definition() -> None:
    y = np.array([0, 0, 0, 1, 1, 1])
    assert auc_score(y, np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])) == 1.0
    assert auc_score(y, np.array([0.6, 0.5, 0.4, 0.3, 0.2, 0.1])) == 0.0
    assert auc_score(y, np.array([0.5] * 6)) == 0.5
    # one inversion among 9 pairs
    assert auc_score(y, np.array([0.1, 0.2, 0.45, 0.4, 0.5, 0.6])) == pytest.approx(8 / 9)


def test_separates_obviously_different_groups() -> None:
    rng = np.random.default_rng(1)
    real = _features(rng, 30, texture=60.0, blur=0.4)  # heterogeneous, sharp
    syn = _features(rng, 30, texture=0.0, blur=1.5)  # uniform, blurred
    X = np.vstack([real, syn])
    y = np.array([0] * 30 + [1] * 30)
    groups = _groups(30, 2, "patient") + _groups(30, 5, "host")
    result = machine_vtt(X, y, groups, seed=0)
    assert result.auc > 0.9
    assert result.ci[0] > 0.8


def test_does_not_separate_a_group_from_another_draw_of_itself() -> None:
    rng = np.random.default_rng(2)
    a = _features(rng, 60, texture=30.0, blur=0.8)
    b = _features(rng, 60, texture=30.0, blur=0.8)
    y = np.array([0] * 60 + [1] * 60)
    groups = _groups(60, 2, "patient") + _groups(60, 5, "host")
    assert machine_vtt(np.vstack([a, b]), y, groups, seed=0).auc < 0.65


def test_does_not_separate_a_group_from_its_bootstrap_resample() -> None:
    rng = np.random.default_rng(3)
    a = _features(rng, 40, texture=30.0, blur=0.8)
    copy = a[rng.integers(0, len(a), len(a))]  # resampled with replacement
    y = np.array([0] * 40 + [1] * 40)
    groups = _groups(40, 2, "patient") + _groups(40, 5, "host")
    assert machine_vtt(np.vstack([a, copy]), y, groups, seed=0).auc < 0.65


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_folds_never_split_a_group(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 120
    y = (rng.random(n) < 0.3).astype(int)
    groups = [f"g{k}" for k in rng.integers(0, 17, n)]
    folds = grouped_folds(y, groups, 5, seed)
    seen_test: set[int] = set()
    for train, test in folds:
        assert not set(np.asarray(groups)[train]) & set(np.asarray(groups)[test])
        assert not seen_test & set(test.tolist())  # every lesion is tested once per repeat
        seen_test |= set(test.tolist())
    assert seen_test == set(range(n))


def test_shared_groups_keep_real_and_synthetic_of_one_brain_together() -> None:
    # glioma design: each brain holds one real and several synthetic tumours, all in one group
    groups = [f"brain{b}" for b in range(7) for _ in range(4)]
    y = np.array([0, 1, 1, 1] * 7)
    for train, test in grouped_folds(y, groups, 5, 0):
        assert not set(np.asarray(groups)[train]) & set(np.asarray(groups)[test])


def test_bootstrap_interval_contains_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(4)
    y = np.array([0] * 30 + [1] * 30)
    s = np.concatenate([rng.normal(0, 1, 30), rng.normal(1, 1, 30)])
    groups = _groups(60, 3, "g")
    lo, hi = bootstrap_ci(y, s, groups, seed=5)
    assert lo < auc_score(y, s) < hi
    assert (lo, hi) == bootstrap_ci(y, s, groups, seed=5)


def test_too_few_groups_is_a_clear_error() -> None:
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.array([0] * 10 + [1] * 10)
    groups = [f"p{i}" for i in range(10)] + ["host0"] * 10
    with pytest.raises(InvalidInputError, match="at least 2 host scans"):
        machine_vtt(X, y, groups, seed=0)
