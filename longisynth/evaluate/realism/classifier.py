"""The machine Visual Turing Test: can a classifier tell real lesions from synthetic ones?

A regularised logistic regression on standardised features (missing values imputed by the
training fold's median, with an indicator) is cross-validated with **groups**: every lesion of
one patient (real) or one host scan (synthetic; for gliomas, one brain holding both) lies in the
same fold, so the classifier never sees the test lesions' patient or host. Out-of-fold scores are
averaged over a few repetitions with different fold assignments, and the AUC of those scores is
reported with a **cluster bootstrap** confidence interval (groups resampled with replacement).
AUC 0.5 = indistinguishable; published reader studies of good synthetic lesions land at ≈ 51–61 %
accuracy (FreeTumor, Nat Commun 2025).

Everything is seeded: same features + seed ⇒ the same AUC and interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from longisynth.errors import InvalidInputError

N_SPLITS = 5
REPEATS = 5
BOOTSTRAP = 1000
RIDGE_C = 0.5  # inverse L2 strength: features are many and correlated, lesions often few
MIN_PER_CLASS = 3
MIN_GROUPS_PER_CLASS = 2


@dataclass
class VttResult:
    auc: float
    ci: tuple[float, float]
    scores: NDArray[np.float64]  # out-of-fold P(synthetic) per lesion, averaged over repeats
    n_splits: int


def auc_score(y: NDArray[np.integer], scores: NDArray[np.floating]) -> float:
    """Area under the ROC curve (Mann–Whitney U with ties counted half); y 1 = synthetic."""
    y = np.asarray(y).astype(bool)
    pos, neg = np.asarray(scores)[y], np.asarray(scores)[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([neg, pos]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([neg, pos])[order]
    # average ranks over ties
    _, start, counts = np.unique(values, return_index=True, return_counts=True)
    for s, c in zip(start, counts, strict=True):
        ranks[order[s : s + c]] = s + (c - 1) / 2.0 + 1.0
    rank_pos = ranks[len(neg) :].sum()
    return float((rank_pos - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg)))


def grouped_folds(
    y: NDArray[np.integer], groups: Sequence[str], n_splits: int, seed: int
) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """Stratified folds in which no group is on both sides (``StratifiedGroupKFold``, shuffled)."""
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(np.zeros(len(y)), y, codes)]


def _check(y: NDArray[np.integer], groups: Sequence[str]) -> int:
    g = np.asarray(groups)
    for label, what in ((0, "real"), (1, "synthetic")):
        if (y == label).sum() < MIN_PER_CLASS:
            raise InvalidInputError(f"need at least {MIN_PER_CLASS} {what} lesions, got {(y == label).sum()}")
        n_groups = len(set(g[y == label]))
        if n_groups < MIN_GROUPS_PER_CLASS:
            owner = "patients" if label == 0 else "host scans"
            raise InvalidInputError(
                f"need {what} lesions from at least {MIN_GROUPS_PER_CLASS} {owner} for grouped "
                f"cross-validation, got {n_groups}"
            )
    return min(N_SPLITS, len(set(g)))


def _model() -> object:
    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=RIDGE_C, class_weight="balanced", max_iter=5000),
    )


def cross_validated_scores(
    X: NDArray[np.floating], y: NDArray[np.integer], groups: Sequence[str], seed: int
) -> tuple[NDArray[np.float64], int]:
    """Out-of-fold P(synthetic), averaged over :data:`REPEATS` grouped fold assignments."""
    n_splits = _check(y, groups)
    total = np.zeros(len(y))
    for r in range(REPEATS):
        for train, test in grouped_folds(y, groups, n_splits, seed + r):
            if len(set(y[train])) < 2:  # a fold whose training side lost a class: score it neutral
                total[test] += 0.5
                continue
            model = _model()
            model.fit(X[train], y[train])  # type: ignore[attr-defined]
            total[test] += model.predict_proba(X[test])[:, 1]  # type: ignore[attr-defined]
    return total / REPEATS, n_splits


def bootstrap_ci(
    y: NDArray[np.integer],
    scores: NDArray[np.floating],
    groups: Sequence[str],
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the AUC over :data:`BOOTSTRAP` resamplings of whole groups."""
    rng = np.random.default_rng(seed)
    g = np.asarray(groups)
    names = np.unique(g)
    members = [np.flatnonzero(g == n) for n in names]
    values = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(names), len(names))
        idx = np.concatenate([members[i] for i in pick])
        a = auc_score(y[idx], scores[idx])
        if np.isfinite(a):
            values.append(a)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def machine_vtt(
    X: NDArray[np.floating], y: NDArray[np.integer], groups: Sequence[str], seed: int
) -> VttResult:
    """Grouped cross-validated AUC of real (y 0) vs synthetic (y 1) with its bootstrap interval."""
    y = np.asarray(y).astype(np.int64)
    scores, n_splits = cross_validated_scores(np.asarray(X, dtype=np.float64), y, groups, seed)
    return VttResult(auc_score(y, scores), bootstrap_ci(y, scores, groups, seed), scores, n_splits)
