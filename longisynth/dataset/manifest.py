"""Manifest rows (one per case) and their CSV / Parquet files.

Columns are fixed and ordered (see :data:`COLUMNS`); per-scan attributes follow as ``attr_<name>``.
Lists and nested values (per-timepoint volumes, the concrete spec, checks) are JSON text in the
CSV and typed lists / JSON strings in Parquet. Rows hold no timings, so the same design gives the
same manifest bytes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from longisynth.dataset.plan import CasePlan
from longisynth.dataset.store import atomic_write

COLUMNS = [
    "case_id",
    "row",
    "status",  # ok | error | planned | pending (not run yet)
    "error",
    "scan_id",
    "source",
    "source_sha256",
    "contrasts",
    "seed",
    "stratum",
    "sampled",
    "family",
    "archetype",  # the progression archetype of the case (empty: none)
    "nodule_type",
    "grade",
    "shape",
    "diameter_mm",  # requested longest diameter at the last timepoint, mm
    "baseline_diameter_mm",  # requested at the first timepoint, mm (lung nodules)
    "lung_lobe",
    "brain_lobe",
    "growth_law",
    "doubling_time_days",
    "n_timepoints",
    "duration_days",
    "timepoints_days",
    "spec",  # the concrete spec as JSON (the engine's LesionSpec)
    "volumes_mm3",  # measured on the mask, per timepoint
    "simulated_volumes_mm3",  # continuous lesion incl. partial volume, per timepoint
    "diameters_mm",  # measured longest diameter per timepoint
    "hard_checks_passed",
    "soft_warnings",
    "checks",
    "refiner",
    "refiner_reason",
    "library_lesion_id",  # the library lesion copied (empty: rule-based lesion)
    "contains_real_lesion",  # the bundle holds a real patient's lesion texture (library lesion)
    "bundle",
    "bundle_sha256",
    "outputs",
    # expert review (longisynth review; see longisynth.review.apply): last verdict of the case
    "review_status",  # unreviewed | accepted | rejected | edit_archetype
    "review_reason",  # rejection reason code (e.g. visible_seam), else empty
    "review_note",  # the reviewer's free text
]
LIST_COLUMNS = {"timepoints_days", "volumes_mm3", "simulated_volumes_mm3", "diameters_mm"}
JSON_COLUMNS = {"stratum", "sampled", "spec", "checks", "soft_warnings", "outputs"}


def plan_row(case: CasePlan) -> dict[str, Any]:
    """The columns known before any image is made."""
    row: dict[str, Any] = {
        "case_id": case.case_id,
        "row": case.row,
        "status": "error" if case.error else "planned",
        "error": case.error or "",
        "scan_id": case.scan.scan_id,
        "source": case.scan.source,
        "seed": case.seed,
        "stratum": case.stratum,
        "sampled": case.sampled,
    }
    for key, value in case.scan.attributes.items():
        row[f"attr_{key}"] = value
    if case.resolved is not None:
        s = case.resolved.model_dump(mode="json")
        row.update(
            family=s["family"],
            archetype=s.get("archetype") or "",
            nodule_type=s["nodule_type"],
            grade=s["grade"],
            shape=s["shape"],
            diameter_mm=s["diameter_mm"],
            baseline_diameter_mm=s["baseline_diameter_mm"],
            lung_lobe=s["location"]["lung_lobe"],
            brain_lobe=s["location"]["brain_lobe"],
            growth_law=s["growth"]["law"],
            doubling_time_days=s["growth"]["doubling_time_days"],
            n_timepoints=s["n_timepoints"],
            duration_days=s["duration_days"],
            timepoints_days=s["timepoints_days"],
            spec=s,
            library_lesion_id=s.get("library_lesion_id") or "",
        )
    return row


def result_columns(meta: dict[str, Any]) -> dict[str, Any]:
    """Columns measured on a generated study, from its bundle's ``metadata.json``."""
    tps = meta["timepoints"]
    checks = meta["checks"]
    refiner = (meta.get("simulation") or {}).get("refiner") or {}
    return {
        "source_sha256": ",".join(f["sha256"] for f in meta["input"]["files"]),
        "contrasts": ",".join(f["contrast"] for f in meta["input"]["files"]),
        "volumes_mm3": [tp["lesion_volume_mm3"] for tp in tps],
        "simulated_volumes_mm3": [tp["simulated_volume_mm3"] for tp in tps],
        "diameters_mm": [tp["longest_diameter_mm"] for tp in tps],
        "hard_checks_passed": all(c["passed"] for c in checks if c["hard"]),
        "soft_warnings": [c["name"] for c in checks if not c["hard"] and not c["passed"]],
        "checks": checks,
        "refiner": refiner.get("status", ""),
        "refiner_reason": refiner.get("reason", ""),
        "contains_real_lesion": bool(meta.get("contains_real_lesion", False)),
    }


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    attrs = sorted({k for r in rows for k in r if k.startswith("attr_")})
    return COLUMNS[:8] + attrs + COLUMNS[8:]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def manifest_csv(rows: list[dict[str, Any]]) -> bytes:
    cols = _columns(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue().encode()


def manifest_parquet(rows: list[dict[str, Any]]) -> bytes | None:
    """Parquet bytes, or None when pyarrow is not installed (the CSV is always written)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    cols = _columns(rows)
    arrays = {}
    for c in cols:
        values = [r.get(c) for r in rows]
        if c in LIST_COLUMNS:
            arrays[c] = pa.array(values, type=pa.list_(pa.float64()))
        elif c in JSON_COLUMNS:
            arrays[c] = pa.array([None if v is None else _cell(v) for v in values], type=pa.string())
        elif c in ("row", "seed", "n_timepoints"):
            arrays[c] = pa.array(values, type=pa.int64())
        elif c in ("diameter_mm", "baseline_diameter_mm", "doubling_time_days", "duration_days"):
            arrays[c] = pa.array(values, type=pa.float64())
        elif c == "hard_checks_passed":
            arrays[c] = pa.array(values, type=pa.bool_())
        else:
            arrays[c] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays), buf, compression="zstd")
    return buf.getvalue()


def write_manifest(rows: list[dict[str, Any]], root: Path, stem: str = "manifest") -> list[Path]:
    """``<stem>.csv`` (always) and ``<stem>.parquet`` (with pyarrow), rows sorted by ``row``."""
    rows = sorted(rows, key=lambda r: int(r["row"]))
    out = [root / f"{stem}.csv"]
    atomic_write(out[0], manifest_csv(rows))
    data = manifest_parquet(rows)
    if data is not None:
        out.append(root / f"{stem}.parquet")
        atomic_write(out[1], data)
    return out
