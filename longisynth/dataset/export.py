"""``longisynth dataset export``: write export layouts of an existing run into a new folder,
optionally leaving out the cases an expert rejected (``longisynth review``).

The run folder is only read. The destination gets the requested layouts (``nnunet/``, ``monai/``,
``bids/``, ``dicom/``; the same files a run would write, from the same bundles), a
``manifest.csv`` (+ ``.parquet``) of the exported cases with their review columns, and
``export.json`` (formats, what was skipped and why). Exporting again into the same destination
replaces it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longisynth.bundle import BundleReader
from longisynth.dataset.design import ExportFormat
from longisynth.dataset.exports import case_exporter, check_format_mix, finalizer
from longisynth.dataset.exports.common import CaseSource
from longisynth.dataset.inputs import ScanEntry
from longisynth.dataset.manifest import write_manifest
from longisynth.dataset.plan import CasePlan
from longisynth.dataset.run_folder import RunFolder, open_run
from longisynth.dataset.store import Layout, atomic_json
from longisynth.errors import InvalidInputError
from longisynth.review.apply import merge_review

EXPORT_RECORD = "export.json"
FORMAT_DIRS = {"nnunet": "nnunet", "monai": "monai", "bids": "bids", "dicom": "dicom"}


@dataclass
class ExportReport:
    """Outcome of :func:`export_run`: exported and skipped case ids (skipped: id -> why)."""

    dest: Path
    exported: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


def _case_stub(run: RunFolder, row: dict[str, Any]) -> CasePlan:
    """The plan fields the exporters read (case id, scan id and attributes), from a manifest row."""
    attrs = {k.removeprefix("attr_"): str(v) for k, v in row.items() if k.startswith("attr_")}
    scan = ScanEntry(
        str(row["scan_id"]), {}, None, run.design.modality(), attrs, source=str(row.get("source", ""))
    )
    return CasePlan(
        str(row["case_id"]),
        int(row["row"]),
        scan,
        int(row["seed"]),
        dict(row.get("stratum") or {}),
        dict(row.get("sampled") or {}),
        None,
        None,
    )


def _prepare_dest(run: RunFolder, dest: Path) -> None:
    dest = dest.resolve()
    root = run.root.resolve()
    if dest == root or dest in root.parents:
        raise InvalidInputError("the export folder must not be the run folder or one that holds it")
    if dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"{str(dest)!r} exists and is not a folder")
    if not dest.parent.is_dir():
        raise InvalidInputError(f"folder {str(dest.parent)!r} does not exist")
    if dest.is_dir() and any(dest.iterdir()):
        if not (dest / EXPORT_RECORD).is_file():
            raise InvalidInputError(f"{str(dest)!r} is not empty and holds no export; use a new folder")
        for name in [*FORMAT_DIRS.values(), "manifest.csv", "manifest.parquet", EXPORT_RECORD]:
            p = dest / name
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    dest.mkdir(exist_ok=True)


def export_run(
    run_dir: Path | str, dest: Path | str, formats: list[ExportFormat], *, skip_rejected: bool = False
) -> ExportReport:
    """Write ``formats`` of the finished cases of ``run_dir`` into ``dest`` (see module docstring).

    Args:
        skip_rejected: leave out cases whose current review verdict is "reject".

    Raises:
        InvalidInputError: not a run folder, no finished case, no format, a destination that is
            the run or holds other files, formats that need one family / contrast set.
    """
    run = open_run(run_dir)
    dest = Path(dest)
    if not formats:
        raise InvalidInputError("give at least one --format")
    if not run.cases:
        raise InvalidInputError(f"{str(run.root)!r} has no finished cases to export")
    rows = [dict(r) for r in run.cases]
    merge_review(rows, run.root)
    report = ExportReport(dest, [])
    keep = []
    for r in rows:
        if skip_rejected and r["review_status"] == "rejected":
            report.skipped[str(r["case_id"])] = f"rejected in review ({r['review_reason']})"
        else:
            keep.append(r)
    families = {str(r["family"]) for r in keep if r.get("family")}
    contrasts = {tuple(sorted(str(r.get("contrasts", "")).split(","))) for r in keep}
    check_format_mix(formats, families, contrasts)
    _prepare_dest(run, dest)
    layout = Layout(dest, run.design.name, run.design.dataset_id)
    for r in keep:
        case = _case_stub(run, r)
        src = CaseSource(case, run.design, layout, BundleReader(run.bundle(case.case_id)))
        try:
            for fmt in formats:
                case_exporter(fmt)(src)
        finally:
            src.close()
        report.exported.append(case.case_id)
    for fmt in formats:
        fin = finalizer(fmt)
        if fin is not None:
            fin(layout, run.design, keep)
    if keep:
        write_manifest(keep, dest)
    atomic_json(
        dest / EXPORT_RECORD,
        {
            "run": run.root.resolve().name,
            "design_fingerprint": run.fingerprint,
            "formats": [f.value for f in formats],
            "skip_rejected": skip_rejected,
            "exported": report.exported,
            "skipped": report.skipped,
        },
    )
    return report
