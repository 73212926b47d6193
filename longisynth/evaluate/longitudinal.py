"""Longitudinal realism: does the simulated change between two scans look like real change?

Real pairs come in the layout of TCIA Brain-Tumor-Progression as shared with the project
(``NN/{Pre,Post}_{Scan_T1,Mask}.nii.gz`` and ``dates.csv`` with ``id, …, initialDate, endDate``;
Schmainda & Prah 2018): post-contrast T1 and tumour mask of a glioblastoma ≈ 90 days after
chemoradiation ("Pre") and at progression ("Post"). The two exams are not co-registered, so the
"Post" exam is rigidly registered onto "Pre" (mutual information) and its mask carried along.
Their geometry was lost upstream (the header says 1 mm); the spacing used for distances is
:data:`PROGRESSION_SPACING_MM`, the collection's typical acquisition, and only distances depend on it.

For every pair (old → new) of masks on one grid the measures are:

* ``volume_ratio_per_month``: (V_new / V_old)^(30.4375 d / Δdays), the monthly growth factor;
* ``kept_fraction``: |old ∩ new| / |old|, how much of the old lesion is still lesion;
* ``new_distance_median_mm`` / ``new_distance_p95_mm``: distance (mm) of the voxels that are new
  (new \\ old) from the old mask — how far the new tumour extends beyond the old boundary;
* ``dice``: overlap of the two masks.

Synthetic pairs are consecutive timepoints of the bundles. Gliomas are compared on the tumour
core (labels 1 necrotic + 3 enhancing: what a post-contrast T1 mask outlines); lung nodules on the
whole nodule.
"""

from __future__ import annotations

import csv
import html
import math
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.bundle.reader import BundleReader
from longisynth.errors import InvalidInputError

DAYS_PER_MONTH = 365.25 / 12
# Brain-Tumor-Progression: 256×256 in-plane over a ≈ 240 mm field of view, 5–6.5 mm slices.
PROGRESSION_SPACING_MM = (0.9375, 0.9375, 6.0)
GLIOMA_CORE_LABELS = (1, 3)  # necrotic + enhancing: the tumour a post-contrast T1 mask outlines
MEASURES = (
    ("days", "interval, days"),
    ("volume_ratio_per_month", "volume ratio per month"),
    ("kept_fraction", "fraction of the old mask kept"),
    ("new_distance_median_mm", "new voxels: median distance beyond the old mask, mm"),
    ("new_distance_p95_mm", "new voxels: 95th percentile distance, mm"),
    ("dice", "Dice old vs new"),
)


@dataclass
class PairMeasure:
    """Change between two masks of one lesion (see the module docstring for the definitions)."""

    name: str
    real: bool
    days: float
    volume_old_mm3: float
    volume_new_mm3: float
    volume_ratio_per_month: float
    kept_fraction: float
    new_distance_median_mm: float
    new_distance_p95_mm: float
    dice: float


def pair_measure(
    name: str, real: bool, old: NDArray[np.bool_], new: NDArray[np.bool_], spacing_mm: Any, days: float
) -> PairMeasure:
    """Measures of the change ``old`` → ``new`` (boolean masks on one grid, ``spacing_mm`` per axis)."""
    if days <= 0:
        raise InvalidInputError(f"{name}: the second scan is not after the first ({days:g} days)")
    voxel = float(np.prod(spacing_mm))
    v_old, v_new = float(old.sum()) * voxel, float(new.sum()) * voxel
    if v_old == 0 or v_new == 0:
        raise InvalidInputError(f"{name}: an empty lesion mask")
    fresh = new & ~old
    if fresh.any():
        dist = np.asarray(ndimage.distance_transform_edt(~old, sampling=spacing_mm))[fresh]
        median, p95 = float(np.median(dist)), float(np.percentile(dist, 95))
    else:
        median = p95 = 0.0
    overlap = float((old & new).sum())
    return PairMeasure(
        name=name,
        real=real,
        days=float(days),
        volume_old_mm3=v_old,
        volume_new_mm3=v_new,
        volume_ratio_per_month=(v_new / v_old) ** (DAYS_PER_MONTH / days),
        kept_fraction=overlap / float(old.sum()),
        new_distance_median_mm=median,
        new_distance_p95_mm=p95,
        dice=2 * overlap / float(old.sum() + new.sum()),
    )


def _dates(folder: Path) -> dict[str, float]:
    """Patient folder name -> days between the two exams, from ``dates.csv``."""
    sheet = folder / "dates.csv"
    if not sheet.is_file():
        raise InvalidInputError(f"{folder}: no dates.csv (id, initialDate, endDate)")
    out: dict[str, float] = {}
    with open(sheet, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, skipinitialspace=True):
            try:
                start, end = date.fromisoformat(row["initialDate"]), date.fromisoformat(row["endDate"])
                out[row["id"].strip()] = float((end - start).days)
            except (KeyError, ValueError) as err:
                raise InvalidInputError(f"{sheet}: a row without valid initialDate/endDate ({err})") from None
    return out


def _array(path: Path) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    try:
        img = nib.load(path)
        return np.asarray(img.get_fdata(dtype=np.float32)), np.asarray(img.affine)  # type: ignore[attr-defined]
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: missing") from None
    except Exception as err:  # nibabel raises many types for a bad file
        raise InvalidInputError(f"{path}: cannot read ({type(err).__name__}: {err})") from None


def real_progression_measures(
    folder: Path, spacing_mm: tuple[float, float, float] = PROGRESSION_SPACING_MM
) -> list[PairMeasure]:
    """One :class:`PairMeasure` per patient of a Brain-Tumor-Progression-layout folder.

    Raises:
        InvalidInputError: no patients, a missing or unreadable file, masks off the image grid, bad dates.
    """
    from longisynth.anatomy.brain_registration import rigid_align

    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: no such folder of real progression pairs")
    days = _dates(folder)
    patients = sorted(p for p in folder.iterdir() if p.is_dir())
    if not patients:
        raise InvalidInputError(f"{folder}: no patient folders (NN/{{Pre,Post}}_{{Scan_T1,Mask}}.nii.gz)")
    affine = np.diag([*spacing_mm, 1.0])
    out = []
    for patient in patients:
        if patient.name not in days:
            raise InvalidInputError(f"{folder}: patient {patient.name} has no row in dates.csv")
        pre, _ = _array(patient / "Pre_Scan_T1.nii.gz")
        post, _ = _array(patient / "Post_Scan_T1.nii.gz")
        pre_mask = _array(patient / "Pre_Mask.nii.gz")[0] > 0
        post_mask = _array(patient / "Post_Mask.nii.gz")[0] > 0
        if pre.shape != pre_mask.shape or post.shape != post_mask.shape or pre.shape != post.shape:
            raise InvalidInputError(f"{patient}: images and masks are not on one grid")
        _, post_on_pre = rigid_align(pre, post, post_mask.astype(np.uint8), affine)
        out.append(
            pair_measure(patient.name, True, pre_mask, post_on_pre > 0, spacing_mm, days[patient.name])
        )
    return out


def bundle_progression_measures(path: Path) -> list[PairMeasure]:
    """One :class:`PairMeasure` per consecutive pair of timepoints of a bundle whose lesion exists at both."""
    out = []
    with BundleReader(path) as reader:
        family = str((reader.metadata.get("spec") or {}).get("family") or "")
        days = {int(t["index"]): float(t["days"]) for t in reader.metadata.get("timepoints", [])}
        previous: tuple[int, NDArray[np.bool_]] | None = None
        for index in reader.indices:
            labels, geometry = reader.mask(index)
            lesion = np.isin(labels, GLIOMA_CORE_LABELS) if family == "glioma" else labels > 0
            if previous is not None and previous[1].any() and lesion.any() and index in days:
                i0, old = previous
                out.append(
                    pair_measure(
                        f"{path.name}:tp{i0:02d}-tp{index:02d}",
                        False,
                        old,
                        lesion,
                        geometry.spacing_mm,
                        days[index] - days.get(i0, 0.0),
                    )
                )
            previous = (index, lesion)
    return out


def _summary(values: list[float]) -> dict[str, float | int | None]:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "median": None, "q1": None, "q3": None}
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"n": int(v.size), "median": float(med), "q1": float(q1), "q3": float(q3)}


def compare_progression(real: list[PairMeasure], synthetic: list[PairMeasure]) -> dict[str, Any]:
    """Median and quartiles of each measure for the real and the synthetic pairs, plus every pair."""
    return {
        "spacing_mm_real": list(PROGRESSION_SPACING_MM),
        "measures": [
            {
                "name": key,
                "label": label,
                "real": _summary([getattr(p, key) for p in real]),
                "synthetic": _summary([getattr(p, key) for p in synthetic]),
            }
            for key, label in MEASURES
        ],
        "pairs": [asdict(p) for p in [*real, *synthetic]],
    }


def progression_html(summary: dict[str, Any]) -> str:
    """An HTML section: the comparison table and the real pairs one by one."""

    def q(d: dict[str, Any]) -> str:
        if d["median"] is None:
            return "—"
        return f"{d['median']:.3g} [{d['q1']:.3g}, {d['q3']:.3g}] (n = {d['n']})"

    rows = "".join(
        f"<tr><td class=l>{html.escape(m['label'])}</td>"
        f"<td>{q(m['real'])}</td><td>{q(m['synthetic'])}</td></tr>"
        for m in summary["measures"]
    )
    real_rows = "".join(
        f"<tr><td class=l>{html.escape(p['name'])}</td><td>{p['days']:.0f}</td>"
        f"<td>{p['volume_ratio_per_month']:.3f}</td><td>{p['kept_fraction']:.2f}</td>"
        f"<td>{p['new_distance_median_mm']:.1f}</td><td>{p['new_distance_p95_mm']:.1f}</td><td>{p['dice']:.2f}</td></tr>"
        for p in summary["pairs"]
        if p["real"]
    )
    sx, sy, sz = summary["spacing_mm_real"]
    return (
        "<h2>Longitudinal realism: change between scans, real pairs vs the bundles</h2>"
        "<p>Medians [quartiles]. Real pairs: the second exam rigidly registered onto the first; distances "
        f"with an assumed {sx:g} × {sy:g} × {sz:g} mm grid (geometry lost upstream). Synthetic gliomas: "
        "tumour core (necrotic + enhancing), consecutive timepoints.</p>"
        f"<table><tr><th class=l>measure</th><th>real</th><th>synthetic</th></tr>{rows}</table>"
        "<h3>Real pairs</h3><table><tr><th class=l>patient</th><th>days</th><th>volume ratio / month</th>"
        "<th>kept</th><th>new median mm</th><th>new p95 mm</th><th>Dice</th></tr>"
        f"{real_rows}</table>"
    )
