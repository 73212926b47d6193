"""BIDS longitudinal tree: one synthetic subject per case, one session per timepoint.

```
bids/dataset_description.json, README.md, participants.tsv (+ .json), sessions.json
bids/sub-<case_id>/sub-<case_id>_sessions.tsv           # session_id, days_since_baseline
bids/sub-<case_id>/ses-tNN/anat/sub-<case_id>_ses-tNN_<suffix>.nii.gz (+ .json sidecar)
bids/derivatives/longisynth/dataset_description.json, README.md, dseg.tsv, dseg.json
bids/derivatives/longisynth/sub-<case_id>/ses-tNN/anat/sub-<case_id>_ses-tNN_dseg.nii.gz (+ .json)
```

Suffixes: ``ct`` (CT is not part of BIDS 1.9/1.10; this follows the CT extension proposal),
``T1w``, ``ce-gadolinium_T1w``, ``T2w``, ``FLAIR``. The MRI part is valid BIDS: the official
validator (bids-validator 3.0.2, ``-r``, tests/dataset/test_validators.py) reports 0 errors for an
MRI dataset; for CT it reports one ``NOT_INCLUDED`` error per CT image and sidecar, expected and
kept. Warnings left: the MRI acquisition parameters it recommends in sidecars (``FlipAngle``,
``EchoTime``, ``Manufacturer``... — not known for a synthetic image, so not invented),
``HEDVersion`` (no HED tags), ``SourceDatasets`` of the raw dataset (the healthy source scans are
named by ``scan_id`` in participants.tsv; their location is not recorded), ``SpatialReference``
of the top-level ``dseg.tsv`` (a lookup table has no space; each mask's sidecar names its image),
and ``Authors`` / ``License`` when the design leaves ``output.authors`` / ``output.license``
unset (``TOO_FEW_AUTHORS`` with a single author).
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
RAW_LINK = "raw"  # DatasetLinks name of the raw dataset in the derivative (bids:raw:<path>)
FAMILY_NAME = {"lung_nodule": "lung nodule", "glioma": "glioma"}
SEX_LEVELS = {"M": "male", "F": "female", "O": "other"}


def session(tp: int) -> str:
    return f"ses-t{tp:02d}"


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


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
            out.append(src.write(f"{stem}.json", _json_bytes(sidecar)))
        seg = f"{DERIV}/{sub}/{ses}/anat/{sub}_{ses}_dseg"
        out.append(src.write(f"{seg}.nii.gz", src.mask_bytes(i)))
        image = f"{sub}/{ses}/anat/{sub}_{ses}_{SUFFIX[src.contrasts[0]]}.nii.gz"
        out.append(src.write(f"{seg}.json", _json_bytes({"SpatialReference": f"bids:{RAW_LINK}:{image}"})))
    out.append(src.write(f"bids/{sub}/{sub}_sessions.tsv", ("\n".join(lines) + "\n").encode()))
    return out


def _tsv(value: Any) -> str:
    text = "n/a" if value in (None, "") else str(value)
    return text.replace("\t", " ").replace("\n", " ")


def _description(design: DatasetDesign, name: str, dataset_type: str) -> dict[str, Any]:
    """dataset_description.json; Authors and License only where the design states them."""
    data: dict[str, Any] = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": dataset_type,
        "GeneratedBy": [{"Name": "longisynth", "Version": __version__}],
    }
    if design.output.authors:
        data["Authors"] = list(design.output.authors)
    if design.output.license:
        data["License"] = design.output.license
    return data


def _readme(design: DatasetDesign, families: list[str]) -> str:
    lesions = " and ".join(FAMILY_NAME.get(f, f) for f in families) or "lesion"
    about = f"\n{design.description.strip()}\n" if design.description.strip() else ""
    return f"""# {design.name}
{about}
Synthetic longitudinal {lesions} dataset made by longisynth {__version__}: a
synthetic lesion was inserted into a healthy source scan and grown over time. The subjects are
not people: each subject `sub-<case>` is one simulated case, each session `ses-tNN` one
timepoint (days since the first in `sub-<case>_sessions.tsv`). `participants.tsv` names each
case's source scan (`scan_id`) and the attributes the design's input manifest gives it; several
cases can share one source scan, and so its anatomy (keep them in one fold).

Images are in `anat/`: `T1w`, `ce-gadolinium_T1w`, `T2w`, `FLAIR` (MRI) and `ct`. CT is not
part of BIDS 1.9/1.10 (it follows the CT extension proposal), so the BIDS validator reports the
CT files as NOT_INCLUDED; that is expected. The lesion masks (`dseg`) and their labels
(`dseg.tsv`) are in `derivatives/longisynth/`. No patient identifier, date or free text of the
source scans is copied; dates are not given, only days since baseline.
"""


def finalize(layout: Layout, design: DatasetDesign, rows: list[dict[str, Any]]) -> list[str]:
    root = layout.root
    families = sorted({str(r["family"]) for r in rows})
    written = [
        write_json(root, "bids/dataset_description.json", _description(design, design.name, "raw")),
        write_text(root, "bids/README.md", _readme(design, families)),
    ]
    attrs = sorted({k for r in rows for k in r if k.startswith("attr_")})
    names = [a.removeprefix("attr_") for a in attrs]
    cols = ["participant_id", "scan_id", *names, "family", "n_sessions", "contains_real_lesion"]
    lines = ["\t".join(cols)]
    for r in rows:
        values = [f"sub-{r['case_id']}", r["scan_id"], *[r.get(a) for a in attrs], r["family"]]
        real = str(bool(r.get("contains_real_lesion"))).lower()
        lines.append("\t".join(_tsv(v) for v in [*values, len(r["timepoints_days"]), real]))
    written.append(write_text(root, "bids/participants.tsv", "\n".join(lines) + "\n"))
    columns: dict[str, Any] = {
        "participant_id": {"Description": "Simulated case (not a person): sub-<case_id>."},
        "scan_id": {
            "Description": "Healthy source scan the case was made from (the design's input manifest)."
        },
    }
    for name in names:
        columns[name] = {
            "Description": f"'{name}' of the source scan, as given in the design's input manifest."
        }
    if "sex" in columns:
        columns["sex"]["Levels"] = SEX_LEVELS
    columns["family"] = {
        "Description": "Simulated lesion family.",
        "Levels": {f: FAMILY_NAME.get(f, f) for f in families},
    }
    columns["n_sessions"] = {"Description": "Number of sessions (timepoints) of the case."}
    columns["contains_real_lesion"] = {
        "Description": "Whether the images hold a real patient's lesion texture (from a lesion library).",
        "Levels": {"true": "yes", "false": "no (fully synthetic lesion)"},
    }
    written.append(write_json(root, "bids/participants.json", columns))
    sessions = {"days_since_baseline": {"Description": "Days since the case's first session.", "Units": "d"}}
    written.append(write_json(root, "bids/sessions.json", sessions))

    deriv = _description(design, f"{design.name} lesion masks", "derivative")
    deriv["DatasetLinks"] = {RAW_LINK: "../../"}
    deriv["SourceDatasets"] = [{"URL": f"bids:{RAW_LINK}:"}]
    written.append(write_json(root, f"{DERIV}/dataset_description.json", deriv))
    written.append(write_text(root, f"{DERIV}/README.md", _deriv_readme(design)))
    if rows:
        labels = label_keys(str(rows[0]["family"]))
        dseg = ["index\tname", *[f"{v}\t{k}" for k, v in labels.items()]]
        written.append(write_text(root, f"{DERIV}/dseg.tsv", "\n".join(dseg) + "\n"))
        description = "Lesion mask made with the images (labels in dseg.tsv); on the session's image grid."
        written.append(write_json(root, f"{DERIV}/dseg.json", {"Description": description}))
    return written


def _deriv_readme(design: DatasetDesign) -> str:
    return f"""# {design.name} lesion masks

Ground-truth masks of the synthetic lesions of the raw dataset two folders up (`../../`), made by
longisynth {__version__} together with the images (not segmented from them). One
`sub-<case>_ses-tNN_dseg.nii.gz` per session, on the grid of that session's images (its sidecar's
`SpatialReference` names the image); the label values are listed in `dseg.tsv`, 0 is background.
"""
