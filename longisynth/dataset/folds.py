"""Validation folds that never split a case: one rule for the nnU-Net and MONAI exports (and, through a
copy kept equal by a test, for the SDK's ``Bundle.to_nnunet``).

Grouping. A *case* is one synthetic longitudinal study; each of its timepoints is a separate training
image (``case00042_tp00``, ``case00042_tp01``...). Groups are the units a fold takes whole:

* by **source scan** when the cases come from two or more scans: every timepoint of every case made
  from one healthy scan is on one side, so no anatomy is shared between training and validation;
* by **case** when all cases come from one scan (grouping by scan would leave nothing to validate
  on): timepoints never split, but training and validation share that scan's anatomy.

Folds. Groups are dealt, largest first (ties in a fixed pseudo-random order, the sha256 of the group
name), to the least-loaded of ``k = min(5, groups)`` partitions. nnU-Net always gets 5 folds, fold
``f`` validating on partition ``f mod k``: with fewer than 5 groups some folds repeat a split
(nnU-Net 2.8.1's trainer falls back to its own random split, which leaks timepoints, for a fold
missing from ``splits_final.json``, and cannot train a fold with an empty validation set). With one
group nothing can be held out: every fold trains and validates on all images, like nnU-Net's fold
``all``. MONAI items get ``fold`` = partition (0..k-1, what Auto3DSeg reads as k folds), and no
``fold`` at all with one group.

Pure Python (no numpy) so the SDK can carry an exact copy.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

N_FOLDS = 5
# <case>_tp<NN>: the nnU-Net identifiers of the dataset tool and of the SDK
IDENTIFIER = re.compile(r"^(?P<case>.+?)_tp\d+$")


def case_of(identifier: str) -> str:
    """The case an nnU-Net identifier belongs to (``case00042_tp01`` → ``case00042``)."""
    match = IDENTIFIER.match(identifier)
    return match.group("case") if match else identifier


def partitions(group_sizes: Mapping[str, int], n_folds: int = N_FOLDS) -> dict[str, int]:
    """Group → partition in ``range(min(n_folds, len(groups)))``, balanced by image count."""
    k = min(n_folds, len(group_sizes))
    order = sorted(group_sizes, key=lambda g: (-group_sizes[g], hashlib.sha256(g.encode()).hexdigest(), g))
    load = [0] * k
    out: dict[str, int] = {}
    for group in order:
        p = min(range(k), key=lambda i: (load[i], i))
        out[group] = p
        load[p] += group_sizes[group]
    return out


def group_of(identifier: str, groups: Mapping[str, str]) -> str:
    """The group of an identifier: its case's entry in ``groups`` (case → group), else the case."""
    case = case_of(identifier)
    return groups.get(case, f"case:{case}")


def nnunet_splits(
    identifiers: list[str], groups: Mapping[str, str], n_folds: int = N_FOLDS
) -> list[dict[str, list[str]]]:
    """``splits_final.json``: ``n_folds`` folds of ``{"train": [...], "val": [...]}`` over
    ``identifiers``, a case's images (and a group's cases) always on one side; see module docstring."""
    of = {i: group_of(i, groups) for i in identifiers}
    sizes: dict[str, int] = {}
    for g in of.values():
        sizes[g] = sizes.get(g, 0) + 1
    part = partitions(sizes, n_folds)
    k = len(set(part.values()))
    everything = sorted(identifiers)
    if k < 2:
        return [{"train": everything, "val": everything} for _ in range(n_folds)]
    splits = []
    for f in range(n_folds):
        val = [i for i in everything if part[of[i]] == f % k]
        splits.append({"train": [i for i in everything if part[of[i]] != f % k], "val": val})
    return splits


def fold_notes(n_groups: int, level: str, n_folds: int = N_FOLDS) -> list[str]:
    """Plain-language warnings for few groups (empty when there are at least ``n_folds``)."""
    unit = "source scans" if level == "scan" else "cases"
    if n_groups == 0:
        return []
    notes = []
    if level == "case" and n_groups > 1:
        notes.append(
            "all cases come from one source scan: folds are grouped by case (timepoints never split), "
            "so training and validation share that scan's anatomy"
        )
    if n_groups == 1:
        notes.append(
            "one case: nothing can be held out without splitting its timepoints; every nnU-Net fold "
            "trains and validates on all images (like fold 'all') and MONAI items carry no fold "
            "(Auto3DSeg would then make random folds that split the case)"
        )
    elif n_groups < n_folds:
        repeats = ", ".join("/".join(str(f) for f in range(p, n_folds, n_groups)) for p in range(n_groups))
        notes.append(
            f"only {n_groups} {unit} for {n_folds} folds: nnU-Net folds {repeats} repeat the same split, "
            f"and the MONAI datalist has {n_groups} folds (0-{n_groups - 1})"
        )
    return notes


def dataset_groups(rows: list[dict[str, Any]]) -> tuple[dict[str, str], str]:
    """Case id → group of the finished cases (manifest rows), and the level (``scan`` or ``case``)."""
    scans = {str(r["scan_id"]) for r in rows}
    if len(scans) >= 2:
        return {str(r["case_id"]): f"scan:{r['scan_id']}" for r in rows}, "scan"
    return {str(r["case_id"]): f"case:{r['case_id']}" for r in rows}, "case"


def describe(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """One line on how the folds of these rows are grouped, and the warnings (:func:`fold_notes`)."""
    groups, level = dataset_groups(rows)
    n = len(set(groups.values()))
    unit = "source scan" if level == "scan" else "case"
    line = (
        f"validation folds grouped by {unit} ({n} {unit}(s), {min(N_FOLDS, n)} distinct fold(s)); "
        "a case's timepoints are never split"
    )
    return line, fold_notes(n, level)
