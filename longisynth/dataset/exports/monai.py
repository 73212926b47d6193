"""MONAI datalist: ``monai/datalist.json`` over ``monai/images`` and ``monai/labels``.

The datalist follows the Decathlon / Auto3DSeg layout read by
``monai.data.load_decathlon_datalist(path, data_list_key="training")``: paths relative to the
``monai/`` folder, ``image`` a path (one contrast) or a list (several, in the order t1, t1c, t2,
flair), ``label`` the mask, and ``fold`` (0–4) grouped by source scan. Each entry also carries
``case_id``, ``timepoint``, ``days`` and ``scan_id`` for longitudinal models.
"""

from __future__ import annotations

from typing import Any

from longisynth.bundle.format import CHANNEL_NAMES, label_keys
from longisynth.dataset.design import DatasetDesign
from longisynth.dataset.exports.common import CaseSource, folds_by_scan, ordered_contrasts, write_json
from longisynth.dataset.store import Layout


def _image(case_id: str, tp: int, contrast: str) -> str:
    return f"images/{case_id}_tp{tp:02d}_{contrast}.nii.gz"


def _label(case_id: str, tp: int) -> str:
    return f"labels/{case_id}_tp{tp:02d}.nii.gz"


def export_case(src: CaseSource) -> list[str]:
    out = []
    for tp in src.timepoints:
        i = tp["index"]
        for contrast in src.contrasts:
            out.append(
                src.write("monai/" + _image(src.case.case_id, i, contrast), src.image_bytes(i, contrast))
            )
        out.append(src.write("monai/" + _label(src.case.case_id, i), src.mask_bytes(i)))
    return out


def finalize(layout: Layout, design: DatasetDesign, rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    folds = folds_by_scan([r["scan_id"] for r in rows], design.seed)
    contrasts = ordered_contrasts(rows[0]["contrasts"])
    training = []
    for r in rows:
        case_contrasts = ordered_contrasts(r["contrasts"])
        for i, days in enumerate(r["timepoints_days"]):
            images = [_image(r["case_id"], i, c) for c in case_contrasts]
            training.append(
                {
                    "image": images[0] if len(images) == 1 else images,
                    "label": _label(r["case_id"], i),
                    "fold": folds[r["scan_id"]],
                    "case_id": r["case_id"],
                    "timepoint": i,
                    "days": days,
                    "scan_id": r["scan_id"],
                    "contains_real_lesion": bool(r.get("contains_real_lesion")),
                }
            )
    labels = label_keys(rows[0]["family"])
    datalist = {
        "name": design.name,
        "description": design.description or "longisynth synthetic longitudinal dataset",
        "modality": {str(i): CHANNEL_NAMES[c] for i, c in enumerate(contrasts)},
        "labels": {str(v): k for k, v in labels.items()},
        "numTraining": len(training),
        "training": training,
        "testing": [],
    }
    return [write_json(layout.root, "monai/datalist.json", datalist)]
