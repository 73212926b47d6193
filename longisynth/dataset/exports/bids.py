"""BIDS-like longitudinal tree: one synthetic subject per case, one session per timepoint.

```
bids/dataset_description.json, participants.tsv
bids/sub-<case_id>/sub-<case_id>_sessions.tsv           # session_id, days_since_baseline
bids/sub-<case_id>/ses-tNN/anat/sub-<case_id>_ses-tNN_<suffix>.nii.gz (+ .json sidecar)
bids/derivatives/longisynth/sub-<case_id>/ses-tNN/anat/sub-<case_id>_ses-tNN_dseg.nii.gz
bids/derivatives/longisynth/dataset_description.json, dseg.tsv
```

Suffixes: ``ct`` (CT is not part of BIDS 1.9; this follows the CT extension proposal),
``T1w``, ``ce-gadolinium_T1w``, ``T2w``, ``FLAIR``. "BIDS-like": the validator will flag the CT
suffix; the MRI part is valid BIDS.
"""

from __future__ import annotations

import json
from typing import Any

from longisynth import __version__
from longisynth.bundle.format import label_keys
from longisynth.dataset.design import DatasetDesign
from longisynth.dataset.exports.common import CaseSource, write_json, write_text
from longisynth.dataset.store import Layout

SUFFIX = {"ct": "ct", "t1": "T1w", "t1c": "ce-gadolinium_T1w", "t2": "T2w", "flair": "FLAIR"}
BIDS_VERSION = "1.9.0"
DERIV = "bids/derivatives/longisynth"


def session(tp: int) -> str:
    return f"ses-t{tp:02d}"


def export_case(src: CaseSource) -> list[str]:
    sub = f"sub-{src.case.case_id}"
    out = []
    lines = ["session_id\tdays_since_baseline"]
    for tp in src.timepoints:
        i, ses = tp["index"], session(tp["index"])
        lines.append(f"{ses}\t{tp['days']:g}")
        for contrast in src.contrasts:
            stem = f"bids/{sub}/{ses}/anat/{sub}_{ses}_{SUFFIX[contrast]}"
            out.append(src.write(f"{stem}.nii.gz", src.image_bytes(i, contrast)))
            sidecar = {
                "Modality": "CT" if contrast == "ct" else "MR",
                "DaysSinceBaseline": tp["days"],
                "GeneratedBy": "longisynth (synthetic lesion inserted into a healthy scan)",
                "ContainsRealLesion": bool(src.meta.get("contains_real_lesion", False)),
            }
            out.append(src.write(f"{stem}.json", (json.dumps(sidecar, indent=2) + "\n").encode()))
        seg = f"{DERIV}/{sub}/{ses}/anat/{sub}_{ses}_dseg.nii.gz"
        out.append(src.write(seg, src.mask_bytes(i)))
    out.append(src.write(f"bids/{sub}/{sub}_sessions.tsv", ("\n".join(lines) + "\n").encode()))
    return out


def _tsv(value: Any) -> str:
    text = "n/a" if value in (None, "") else str(value)
    return text.replace("\t", " ").replace("\n", " ")


def finalize(layout: Layout, design: DatasetDesign, rows: list[dict[str, Any]]) -> list[str]:
    root = layout.root
    generated = [{"Name": "longisynth", "Version": __version__}]
    written = [
        write_json(
            root,
            "bids/dataset_description.json",
            {
                "Name": design.name,
                "BIDSVersion": BIDS_VERSION,
                "DatasetType": "raw",
                "GeneratedBy": generated,
            },
        )
    ]
    attrs = sorted({k for r in rows for k in r if k.startswith("attr_")})
    cols = [
        "participant_id",
        "scan_id",
        *[a.removeprefix("attr_") for a in attrs],
        "family",
        "n_sessions",
        "contains_real_lesion",
    ]
    lines = ["\t".join(cols)]
    for r in rows:
        values = [f"sub-{r['case_id']}", r["scan_id"], *[r.get(a) for a in attrs], r["family"]]
        real = str(bool(r.get("contains_real_lesion"))).lower()
        lines.append("\t".join(_tsv(v) for v in [*values, len(r["timepoints_days"]), real]))
    written.append(write_text(root, "bids/participants.tsv", "\n".join(lines) + "\n"))
    written.append(
        write_json(
            root,
            f"{DERIV}/dataset_description.json",
            {
                "Name": f"{design.name} lesion masks",
                "BIDSVersion": BIDS_VERSION,
                "DatasetType": "derivative",
                "GeneratedBy": generated,
            },
        )
    )
    if rows:
        labels = label_keys(rows[0]["family"])
        dseg = ["index\tname", *[f"{v}\t{k}" for k, v in labels.items()]]
        written.append(write_text(root, f"{DERIV}/dseg.tsv", "\n".join(dseg) + "\n"))
    return written
