"""MONAI datalist: ``monai/datalist.json`` over ``monai/images`` and ``monai/labels``.

The datalist follows the Decathlon / Auto3DSeg layout read by
``monai.data.load_decathlon_datalist(path, data_list_key="training")``: paths relative to the
``monai/`` folder, ``image`` a path (one contrast) or a list (several, in the order t1, t1c, t2,
flair), ``label`` the mask, and ``fold`` grouped so that a case's timepoints are never split
(by source scan, or by case when there is one scan: :mod:`longisynth.dataset.folds`). Folds are
0-4, or 0..k-1 with k < 5 groups (Auto3DSeg then runs k folds); with a single case the items carry
no ``fold`` (no split could keep its timepoints together) and ``validation_notes`` says so. Each
entry also carries ``case_id``, ``timepoint``, ``days`` and ``scan_id`` for longitudinal models.
"""

from __future__ import annotations

from typing import Any

from longisynth.bundle.format import CHANNEL_NAMES, label_keys
from longisynth.dataset.design import DatasetDesign
from longisynth.dataset.exports.common import CaseSource, ordered_contrasts, write_json
from longisynth.dataset.folds import dataset_groups, describe, partitions
from longisynth.dataset.store import Layout


def _image(case_id: str, tp: int, contrast: str) -> str:
    return f"images/{case_id}_tp{tp:02d}_{contrast}.nii.gz"


def _label(case_id: str, tp: int) -> str:
    return f"labels/{case_id}_tp{tp:02d}.nii.gz"


def export_case(src: CaseSource) -> list[str]:
    """Images (one file per contrast) and label of every timepoint of one case."""
    out = []
    for tp in src.timepoints:
        i = tp["index"]
        for contrast in src.contrasts:
            out.append(
                src.write("monai/" + _image(src.case.case_id, i, contrast), src.image_bytes(i, contrast))
            )
        out.append(src.write("monai/" + _label(src.case.case_id, i), src.mask_bytes(i)))
    return out


def case_folds(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Case id → MONAI fold (empty with a single group: no fold can be held out)."""
    groups, _ = dataset_groups(rows)
    sizes: dict[str, int] = {}
    for r in rows:
        g = groups[str(r["case_id"])]
        sizes[g] = sizes.get(g, 0) + len(r["timepoints_days"])
    if len(sizes) < 2:
        return {}
    part = partitions(sizes)
    return {case: part[g] for case, g in groups.items()}


def finalize(layout: Layout, design: DatasetDesign, rows: list[dict[str, Any]]) -> list[str]:
    """``monai/datalist.json`` over the finished cases."""
    if not rows:
        return []
    folds = case_folds(rows)
    contrasts = ordered_contrasts(rows[0]["contrasts"])
    training = []
    for r in rows:
        case_contrasts = ordered_contrasts(r["contrasts"])
        for i, days in enumerate(r["timepoints_days"]):
            images = [_image(r["case_id"], i, c) for c in case_contrasts]
            entry: dict[str, Any] = {
                "image": images[0] if len(images) == 1 else images,
                "label": _label(r["case_id"], i),
            }
            if folds:
                entry["fold"] = folds[str(r["case_id"])]
            training.append(
                {
                    **entry,
                    "case_id": r["case_id"],
                    "timepoint": i,
                    "days": days,
                    "scan_id": r["scan_id"],
                    "contains_real_lesion": bool(r.get("contains_real_lesion")),
                }
            )
    labels = label_keys(rows[0]["family"])
    line, notes = describe(rows)
    datalist = {
        "name": design.name,
        "description": design.description or "longisynth synthetic longitudinal dataset",
        "modality": {str(i): CHANNEL_NAMES[c] for i, c in enumerate(contrasts)},
        "labels": {str(v): k for k, v in labels.items()},
        "numTraining": len(training),
        "validation_notes": [line, *notes],
        "training": training,
        "testing": [],
    }
    return [write_json(layout.root, "monai/datalist.json", datalist)]
