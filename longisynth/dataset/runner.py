"""Run a design: plan, skip finished cases, make the others, write manifest, exports and summary.

Output folder::

    design.json                 # the validated design, its fingerprint and the formats
    cases/<case_id>.zip         # the engine's bundle per case (timings removed: deterministic)
    cases/<case_id>.done.json   # done marker: sha256 of every file of the case + manifest row
    cases/<case_id>.error.json  # error row of a failed case (retried by the next run)
    nnunet/ monai/ bids/ dicom/ # the requested export layouts
    manifest.csv, manifest.parquet, summary.md
    review/verdicts.jsonl       # expert verdicts (longisynth review), read into the manifest
    run_log.jsonl               # per case: seconds, worker, backend (the only non-deterministic file)

Everything except ``run_log.jsonl`` is a function of the design and the input files, whatever
the backend or the number of workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longisynth.dataset.backends import Scheduling, check_ray_resources, connect_ray, run_local, run_ray
from longisynth.dataset.design import DatasetDesign, ExportFormat
from longisynth.dataset.exports import check_formats, finalizer
from longisynth.dataset.manifest import plan_row, write_manifest
from longisynth.dataset.plan import Plan, plan_dataset
from longisynth.dataset.store import Layout, atomic_json, atomic_write, marker_is_valid, read_marker
from longisynth.dataset.summary import summary_markdown
from longisynth.dataset.worker import CaseResult, CaseTask
from longisynth.errors import InvalidInputError
from longisynth.review.apply import merge_review


@dataclass
class Progress:
    """What a progress display shows: cases to run this time, finished, failed."""

    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    last: str = ""


ProgressFn = Callable[[Progress], None]


@dataclass
class RunReport:
    """Outcome of :func:`run_dataset`."""

    out_dir: Path
    rows: list[dict[str, Any]]
    skipped: int
    ran: int
    summary: str
    seconds: float
    files: list[Path] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(r["status"] == "ok" for r in self.rows)

    @property
    def n_failed(self) -> int:
        return sum(r["status"] == "error" for r in self.rows)


def _noop(_: Progress) -> None:
    return None


def _prepare_out(out_dir: Path, design: DatasetDesign, formats: list[ExportFormat]) -> str:
    """Create the folder, refuse one that holds another design; returns the fingerprint."""
    fingerprint = design.fingerprint()
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"output {str(out_dir)!r} exists and is not a folder")
    if not out_dir.parent.exists():
        raise InvalidInputError(f"output folder {str(out_dir.parent)!r} does not exist")
    existing = out_dir / "design.json"
    if out_dir.is_dir() and not existing.exists() and any(out_dir.iterdir()):
        raise InvalidInputError(f"{out_dir.name!r} is not empty and holds no dataset run; use a new folder")
    out_dir.mkdir(exist_ok=True)
    if existing.exists():
        try:
            previous = json.loads(existing.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous != fingerprint:
            raise InvalidInputError(
                f"{out_dir.name!r} holds a run of a different design; use a new output folder"
            )
    record = {
        "fingerprint": fingerprint,
        "formats": [f.value for f in formats],
        "design": design.model_dump(mode="json", exclude={"resources": True}),
        "sample_order": list(design.sample),  # the file's keys are sorted; the order matters
    }
    atomic_json(existing, record)
    return fingerprint


def estimate_memory_bytes(plan: Plan) -> int:
    """Rough peak memory of one case (bytes) from the largest input's header: the input, a few
    full-volume copies while writing, float32 work arrays on the lesion crop, and the interpreter."""
    import nibabel as nib

    voxels, itemsize = 0, 2
    for scan in plan.scans:
        for p in scan.paths.values():
            try:
                img: Any = nib.load(p)
            except Exception:
                continue
            n = int(_prod(img.shape[:3])) * len(scan.paths)
            if n > voxels:
                voxels, itemsize = n, img.get_data_dtype().itemsize
    if voxels == 0:
        return 2 << 30
    return int(512 * 2**20 + voxels * (3 * itemsize + 8))


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def run_dataset(
    design: DatasetDesign,
    base_dir: Path | str,
    out_dir: Path | str,
    *,
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    formats: list[ExportFormat] | None = None,
    progress: ProgressFn | None = None,
) -> RunReport:
    """Make every case of ``design`` under ``out_dir`` (resumable; see module docstring).

    Args:
        base_dir: folder that relative input paths of the design are relative to.
        workers: cases at once (local default 1; Ray default: the cluster's CPUs).
        backend: "local" (this process / a process pool) or "ray".
        ray_address: Ray cluster to connect to (default: the connected one, else a new local one).
        formats: export layouts (default: the design's ``output.formats``).
        progress: called after every finished case.

    Raises:
        InvalidInputError: bad inputs, incompatible formats, an output folder of another design,
            an unreachable Ray cluster or one too small for a case.
    """
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    formats = list(dict.fromkeys(formats if formats is not None else design.output.formats))
    if backend not in ("local", "ray"):
        raise InvalidInputError(f"unknown backend {backend!r}: use local or ray")
    plan = plan_dataset(design, base_dir)
    check_formats(plan, formats)
    sched = _scheduling(design, plan, workers, backend)
    started_ray = connect_ray(ray_address, sched.workers) if backend == "ray" else False
    try:
        if backend == "ray":
            check_ray_resources(sched)
        result = _execute(plan, out, formats, sched, backend, progress or _noop)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _execute(
    plan: Plan,
    out: Path,
    formats: list[ExportFormat],
    sched: Scheduling,
    backend: str,
    report: ProgressFn,
) -> RunReport:
    """Skip finished cases, run the others, then write manifest, format indexes and summary
    (also when interrupted: unfinished cases are "pending")."""
    design = plan.design
    fingerprint = _prepare_out(out, design, formats)
    layout = Layout(out, design.name, design.dataset_id)
    layout.remove_temporaries()
    rows: dict[int, dict[str, Any]] = {}
    tasks: list[CaseTask] = []
    for case in plan.cases:
        marker = read_marker(layout, case.case_id)
        if marker is not None and marker_is_valid(layout, marker, fingerprint):
            if {f.value for f in formats} <= set(marker.get("formats", [])):
                rows[case.row] = marker["row"]
                continue
            tasks.append(CaseTask(design, case, str(out), tuple(formats), fingerprint, export_only=True))
        else:
            tasks.append(CaseTask(design, case, str(out), tuple(formats), fingerprint))
    skipped = len(rows)
    state = Progress(total=len(tasks), skipped=skipped)
    report(state)
    log_lines: list[str] = []

    def on_result(result: CaseResult) -> None:
        rows[int(result.row["row"])] = result.row
        state.done += 1
        state.failed += not result.ok
        state.last = str(result.row["case_id"])
        entry = {"case_id": result.row["case_id"], "status": result.row["status"], "seconds": result.seconds}
        log_lines.append(json.dumps({**entry, "worker": result.worker, "backend": backend}))
        report(state)

    try:
        if backend == "ray":
            run_ray(tasks, sched, on_result)
        else:
            run_local(tasks, sched, on_result)
    finally:
        _append_log(out / "run_log.jsonl", log_lines, backend, sched)
        all_rows = [rows.get(c.row) or {**plan_row(c), "status": "pending"} for c in plan.cases]
        all_rows = [dict(r) for r in all_rows]
        merge_review(all_rows, out)  # expert verdicts (review/verdicts.jsonl), kept across reruns
        files = write_manifest(all_rows, out)
        files += _finalize_formats(layout, design, formats, all_rows)
        summary = summary_markdown(design, all_rows, archetypes=plan.archetypes, formats=formats)
        atomic_write(out / "summary.md", summary.encode())
        files.append(out / "summary.md")
    return RunReport(out, all_rows, skipped, len(tasks), summary, 0.0, files)


def _scheduling(design: DatasetDesign, plan: Plan, workers: int | None, backend: str) -> Scheduling:
    res = design.resources
    if workers is not None and workers < 1:
        raise InvalidInputError(f"workers must be >= 1, got {workers}")
    if backend == "ray":
        memory = res.memory_mb * 2**20 if res.memory_mb else estimate_memory_bytes(plan)
        return Scheduling(workers, res.max_in_flight, memory, res.cpus_per_case, res.memory_mb is not None)
    return Scheduling(workers or 1, res.max_in_flight, None, res.cpus_per_case)


def _finalize_formats(
    layout: Layout, design: DatasetDesign, formats: list[ExportFormat], rows: list[dict[str, Any]]
) -> list[Path]:
    ok = [r for r in rows if r["status"] == "ok"]
    written: list[Path] = []
    for fmt in formats:
        fin = finalizer(fmt)
        if fin is not None:
            written += [layout.root / rel for rel in fin(layout, design, ok)]
    return written


def _append_log(path: Path, lines: list[str], backend: str, sched: Scheduling) -> None:
    header = json.dumps(
        {
            "event": "run",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "backend": backend,
            "workers": sched.workers,
        }
    )
    with path.open("a") as fh:
        fh.write("\n".join([header, *lines]) + "\n")


def plan_only(design: DatasetDesign, base_dir: Path | str, out_dir: Path | str | None = None) -> RunReport:
    """The dry run: every case's concrete spec and seed, no images. Writes ``plan.csv``
    (+ ``plan.parquet``) and ``plan_summary.md`` to ``out_dir`` when given."""
    t0 = time.perf_counter()
    plan = plan_dataset(design, base_dir)
    rows = [plan_row(c) for c in plan.cases]
    summary = summary_markdown(
        design, rows, dry_run=True, archetypes=plan.archetypes, formats=design.output.formats
    )
    files: list[Path] = []
    out = Path(out_dir).resolve() if out_dir is not None else Path.cwd()
    if out_dir is not None:
        if not out.parent.exists():
            raise InvalidInputError(f"output folder {str(out.parent)!r} does not exist")
        out.mkdir(exist_ok=True)
        files = write_manifest(rows, out, stem="plan")
        atomic_write(out / "plan_summary.md", summary.encode())
        files.append(out / "plan_summary.md")
    return RunReport(out, rows, 0, 0, summary, round(time.perf_counter() - t0, 3), files)
