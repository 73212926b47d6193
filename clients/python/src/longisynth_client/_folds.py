"""Validation folds that never split a case, copied from ``longisynth.dataset.folds`` (the one owner:
the rule, its reasons and what happens with fewer than 5 groups are documented there; a test in the
longisynth repository keeps this copy's source equal and checks the SDK's ``splits_final.json``
against the dataset tool's). Pure Python: the SDK does not import the engine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

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
