"""One case, start to finish: read the scan, simulate, write the bundle and the exports, mark done.

:func:`run_case` is what every backend runs (in-process, in a worker process, as a Ray task).
It never raises for a problem of the case — a corrupt scan, an impossible spec, a lesion that
does not fit — but returns an error row with a one-line message, so the rest of the dataset
goes on.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longisynth.dataset.design import DatasetDesign, ExportFormat
from longisynth.dataset.exports import case_exporter
from longisynth.dataset.exports.common import CaseSource
from longisynth.dataset.inputs import parse_demo_path
from longisynth.dataset.manifest import plan_row, result_columns
from longisynth.dataset.plan import CasePlan
from longisynth.dataset.store import Layout, atomic_json, sha256_file, write_marker
from longisynth.errors import InvalidInputError, LongisynthError
from longisynth.result import Study


@dataclass(frozen=True)
class CaseTask:
    """Everything a worker needs (picklable: sent to processes and Ray tasks).

    Attributes:
        out_dir: absolute output folder (shared storage when workers run on other machines).
        export_only: the bundle is already valid; only write the missing formats.
    """

    design: DatasetDesign
    case: CasePlan
    out_dir: str
    formats: tuple[ExportFormat, ...]
    fingerprint: str
    export_only: bool = False


@dataclass
class CaseResult:
    """A manifest row plus what the run log wants (wall time, s)."""

    row: dict[str, Any]
    seconds: float
    worker: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")

    @property
    def ok(self) -> bool:
        return self.row.get("status") == "ok"


def run_case(task: CaseTask) -> CaseResult:
    """Make one case (see module docstring); returns its row with status ``ok`` or ``error``."""
    t0 = time.perf_counter()
    design, case = task.design, task.case
    layout = Layout(task.out_dir, design.name, design.dataset_id)
    row = plan_row(case)
    try:
        if task.export_only:
            (layout.root / layout.marker(case.case_id)).unlink(missing_ok=True)
        else:
            layout.clear_case(case.case_id)
            if case.error is not None:
                raise InvalidInputError(case.error)
            study = _simulate(task)
            _write_bundle(study, layout.root / layout.bundle(case.case_id), design)
            del study
        files = _export(task, layout, row)
        row["status"], row["error"] = "ok", ""
        write_marker(layout, case.case_id, task.fingerprint, task.formats, files, row)
    except Exception as exc:
        row["status"], row["error"] = "error", _message(exc)
        _record_error(layout, case.case_id, row)
    return CaseResult(row, round(time.perf_counter() - t0, 3))


def _message(exc: BaseException) -> str:
    if isinstance(exc, LongisynthError):
        text = str(exc)
    elif isinstance(exc, MemoryError):
        text = "out of memory while making this case"
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())  # one line


def _record_error(layout: Layout, case_id: str, row: dict[str, Any]) -> None:
    try:
        layout.clear_case(case_id)
        atomic_json(layout.root / layout.error(case_id), {"case_id": case_id, "row": row})
    except OSError:
        pass  # the driver still gets the row back


def _simulate(task: CaseTask) -> Study:
    from longisynth.anatomy.modality import detect_modality
    from longisynth.api import generate
    from longisynth.io import read_scan

    case, design = task.case, task.design
    brain_tissues = None
    demo = parse_demo_path(next(iter(case.scan.paths.values())))
    if demo is not None:
        from longisynth.demo import demo_input

        kind, phantom_seed, size = demo
        phantom = demo_input(kind, phantom_seed, size)
        scans, brain_tissues = phantom.scans, phantom.brain_tissues
    else:
        scans = {contrast: read_scan(Path(p)) for contrast, p in case.scan.paths.items()}
    main = next(iter(scans.values()))
    detected = detect_modality(main.values(), main.raw.dtype)
    if detected != case.scan.modality:
        raise InvalidInputError(
            f"{main.name!r} looks like {detected.value.upper()} but the design declares "
            f"{case.scan.modality.value.upper()}"
        )
    labels = read_scan(Path(case.scan.labels)).raw if case.scan.labels else None
    study = generate(
        scans,
        design.prompt,
        case.request,
        labels=labels,
        seed=case.seed,
        lenient=design.lenient,
        refine=design.refine,
        library=case.library,
        archetypes=case.archetypes,
        brain_tissues=brain_tissues,
    )
    assert case.resolved is not None
    if study.spec.model_dump(mode="json") != case.resolved.model_dump(mode="json"):
        raise RuntimeError("the engine resolved a different spec than the plan (please report)")
    return study


def _write_bundle(study: Study, dest: Path, design: DatasetDesign) -> None:
    """The engine's bundle without wall times (they vary; the bundle must not), written atomically
    by ``write_bundle`` itself. Timings go to the run log instead."""
    from longisynth.bundle import write_bundle

    dest.parent.mkdir(parents=True, exist_ok=True)
    write_bundle(
        study,
        dest,
        displacement=design.output.displacement,
        preview=design.output.preview,
        threads=1,
        record_timings=False,
        compact=design.output.compact,
    )


def _export(task: CaseTask, layout: Layout, row: dict[str, Any]) -> list[str]:
    """Write the requested formats from the bundle; fill the row's measured columns."""
    bundle = layout.bundle(task.case.case_id)
    src = CaseSource.open(task.case, task.design, layout)
    try:
        row.update(result_columns(src.meta))
        files = [bundle]
        listed = [bundle]
        for fmt in task.formats:
            written = case_exporter(fmt)(src)
            files += written
            if fmt == ExportFormat.DICOM:
                listed += sorted({"/".join(Path(p).parts[:3]) + "/" for p in written})
            else:
                listed += written
    finally:
        src.close()
    row["bundle"] = bundle
    row["bundle_sha256"] = sha256_file(layout.root / bundle)
    row["outputs"] = listed
    return files
