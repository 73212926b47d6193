"""``longisynth evaluate realism``: how real are the lesions? A machine Visual Turing Test.

Synthetic lesions (every timepoint of a set of bundles) are compared with real lesions with
expert masks: lung nodules with LIDC-IDRI-style crops, gliomas with the real tumour in the *same*
BraTS brains. Radiomics-style features (:mod:`.features`) feed a grouped cross-validated
classifier (:mod:`.classifier`); the report gives its AUC with a bootstrap interval and, for each
feature, how well it alone separates the two classes, with both distributions — so a user sees
*why* the lesions are recognisable. Size is left out of the features and reported on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longisynth.bundle.reader import BundleReader
from longisynth.errors import InvalidInputError
from longisynth.evaluate.realism.classifier import VttResult, auc_score, machine_vtt
from longisynth.evaluate.realism.lesions import (
    Lesion,
    brats_cases,
    glioma_host_matcher,
    lung_host_group,
    real_glioma_lesions,
    real_lung_lesions,
    synthetic_lesions,
)

__all__ = ["RealismReport", "collect_lesions", "feature_table", "run_realism"]

FAMILY_ALIASES = {"lung": "lung_nodule", "lung_nodule": "lung_nodule", "glioma": "glioma"}
GLIOMA_CONTRAST_ORDER = ("flair", "t1", "t1c", "t2")

ProgressFn = Callable[[str, int, int], None]


def _silent(stage: str, done: int, total: int) -> None:
    return None


@dataclass
class RealismReport:
    family: str
    real_source: str
    lesions: list[Lesion]
    feature_names: list[str]
    result: VttResult  # primary: groups are patients (real) and host scans (synthetic)
    study_grouped: VttResult  # secondary: synthetic grouped by study, so a host may sit on both sides
    features: list[dict[str, Any]]  # per feature: name, auc, real/synthetic median & quartiles
    size_auc: float
    per_host: list[dict[str, Any]]  # per synthetic group: lesions, AUC of its lesions vs every real one
    seed: int
    contrasts: list[str] = field(default_factory=list)
    timepoints: str = "all"  # which timepoints of each bundle were compared: all, first or last
    per_kind: list[dict[str, Any]] = field(default_factory=list)  # per nodule type: real vs synthetic AUC

    @property
    def n_real(self) -> int:
        return sum(1 for lesion in self.lesions if lesion.real)

    @property
    def n_synthetic(self) -> int:
        return sum(1 for lesion in self.lesions if not lesion.real)

    def line(self) -> str:
        """``AUC x.xx [lo–hi]``: the one line the command prints."""
        lo, hi = self.result.ci
        return f"AUC {self.result.auc:.2f} [{lo:.2f}–{hi:.2f}]"


def _quartiles(values: np.ndarray) -> dict[str, float | int | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"n": int(v.size), "median": float(med), "q1": float(q1), "q3": float(q3)}


def feature_table(X: np.ndarray, y: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Each feature alone: its AUC (synthetic vs real, NaNs left out) and both distributions.

    Sorted by separation |AUC − 0.5|, largest first. An AUC above 0.5 means synthetic lesions
    have the larger values.
    """
    rows = []
    for j, name in enumerate(names):
        col = X[:, j]
        ok = np.isfinite(col)
        auc = auc_score(y[ok], col[ok]) if ok.any() else math.nan
        rows.append(
            {
                "name": name,
                "auc": auc,
                "real": _quartiles(col[y == 0]),
                "synthetic": _quartiles(col[y == 1]),
            }
        )
    return sorted(rows, key=lambda r: -abs(r["auc"] - 0.5) if np.isfinite(r["auc"]) else 0.0)


def per_host_table(lesions: Sequence[Lesion], scores: np.ndarray) -> list[dict[str, Any]]:
    """For each synthetic group: its lesions' out-of-fold scores against every real lesion's, as an AUC.

    Shows which hosts give their lesions away (e.g. a coarse-grid host whose nodules are all blur).
    """
    real = np.array([s for s, lesion in zip(scores, lesions, strict=True) if lesion.real])
    rows = []
    for group in sorted({lesion.group for lesion in lesions if not lesion.real}):
        mine = np.array([s for s, x in zip(scores, lesions, strict=True) if not x.real and x.group == group])
        y = np.r_[np.zeros(len(real), dtype=np.int64), np.ones(len(mine), dtype=np.int64)]
        rows.append({"group": group, "n": len(mine), "auc": auc_score(y, np.r_[real, mine])})
    return rows


def per_kind_table(lesions: Sequence[Lesion], scores: np.ndarray) -> list[dict[str, Any]]:
    """For each lesion kind (lung: solid / part_solid / ground_glass) held by both classes: the
    out-of-fold scores of its synthetic lesions against those of its real ones, as an AUC — are
    the nodules of every type hard to tell, or only the common ones? (A slice of the one
    classifier's scores, not a classifier per type.)"""
    rows = []
    kinds = {lesion.kind for lesion in lesions if lesion.kind is not None}
    for kind in sorted(kinds):
        real = [s for s, x in zip(scores, lesions, strict=True) if x.real and x.kind == kind]
        mine = [s for s, x in zip(scores, lesions, strict=True) if not x.real and x.kind == kind]
        if not real or not mine:
            continue
        y = np.r_[np.zeros(len(real), dtype=np.int64), np.ones(len(mine), dtype=np.int64)]
        rows.append(
            {
                "kind": kind,
                "n_real": len(real),
                "n_synthetic": len(mine),
                "auc": auc_score(y, np.r_[real, mine]),
            }
        )
    return rows


def _glioma_contrasts(cases: Any, bundles: Sequence[Path]) -> list[str]:
    from longisynth.bundle.reader import BundleReader

    common = set.intersection(*(set(c.contrasts) for c in cases))
    with BundleReader(bundles[0]) as reader:
        common &= set(reader.contrasts_of(reader.indices[0]))
    if not common:
        raise InvalidInputError("the bundles and the real cases share no MRI contrast")
    return [c for c in GLIOMA_CONTRAST_ORDER if c in common]


def collect_lesions(
    family: str,
    real: Path,
    bundles: Sequence[Path],
    progress: ProgressFn = _silent,
    timepoints: str = "all",
) -> tuple[list[Lesion], list[str]]:
    """Real lesions of ``real`` and every qualifying timepoint of ``bundles`` (``family``: lung_nodule
    or glioma; ``timepoints``: all, or only each bundle's first or last), with the MRI contrasts
    compared (empty for lung). Raises :class:`InvalidInputError`."""
    lesions: list[Lesion] = []
    contrasts: list[str] = []
    if not real.exists():
        raise InvalidInputError(f"{real}: no such folder of real lesions")
    host_group: Callable[[BundleReader], str]
    if family == "lung_nodule":
        host_group = lung_host_group
        for k, lesion in enumerate(real_lung_lesions(real)):
            lesions.append(lesion)
            progress("real lesions", k + 1, 0)
    else:
        cases = brats_cases(real)
        contrasts = _glioma_contrasts(cases, bundles)
        host_group = glioma_host_matcher(cases)
        for k, lesion in enumerate(real_glioma_lesions(cases, contrasts)):
            lesions.append(lesion)
            progress("real lesions", k + 1, len(cases))
    for k, path in enumerate(bundles):
        lesions.extend(synthetic_lesions(path, family, host_group, contrasts, timepoints))
        progress("bundles", k + 1, len(bundles))
    return lesions, contrasts


def run_realism(
    family: str,
    real: Path,
    bundles: Sequence[Path],
    seed: int = 0,
    progress: ProgressFn = _silent,
    timepoints: str = "all",
) -> RealismReport:
    """Machine VTT of the bundles' lesions against the real lesions in ``real`` (``timepoints``: the
    bundles' timepoints compared: all, first or last — e.g. a library lesion at baseline, and what
    growth does to it).

    Raises:
        InvalidInputError: unknown family, unreadable or mismatched input (a real image without its
            mask, a bundle of the other family, a glioma bundle grown outside the real brains), or
            too few lesions or groups for grouped cross-validation.
    """
    fam = FAMILY_ALIASES.get(family)
    if fam is None:
        raise InvalidInputError(f"unknown family {family!r}: use lung or glioma")
    if not bundles:
        raise InvalidInputError("no bundles given")
    lesions, contrasts = collect_lesions(fam, Path(real), bundles, progress, timepoints)
    names = sorted({k for lesion in lesions for k in lesion.features})
    X = np.array([[lesion.features.get(n, math.nan) for n in names] for lesion in lesions], dtype=np.float64)
    keep = [bool(np.isfinite(X[:, j]).any()) for j in range(X.shape[1])]
    X, names = X[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    y = np.array([0 if lesion.real else 1 for lesion in lesions])
    groups = [lesion.group for lesion in lesions]
    progress("classifier", 0, 1)
    result = machine_vtt(X, y, groups, seed)
    # The same test with synthetic lesions grouped by study (timepoints never split) rather than by
    # host: the classifier may then also learn a host's own background — an upper bound on how
    # recognisable the lesions are when few host scans are available.
    studies = [lesion.group if lesion.real else lesion.name.split(":")[0] for lesion in lesions]
    study_grouped = machine_vtt(X, y, studies, seed)
    sizes = np.array([lesion.diameter_mm for lesion in lesions])
    return RealismReport(
        family=fam,
        real_source=str(real),
        lesions=lesions,
        feature_names=names,
        result=result,
        study_grouped=study_grouped,
        features=feature_table(X, y, names),
        size_auc=auc_score(y, sizes),
        per_host=per_host_table(lesions, result.scores),
        per_kind=per_kind_table(lesions, result.scores),
        seed=seed,
        contrasts=contrasts,
        timepoints=timepoints,
    )
