"""``longisynth dataset run | plan | export``: argument parsing and the progress display; the work is in
:mod:`longisynth.dataset.runner`.

Exit codes as the rest of the CLI: 0 done (failed cases are rows of the manifest, counted in the
summary), 2 bad design / inputs / options (one line on stderr), 1 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMATS = ("nnunet", "monai", "bids", "dicom")


def add_dataset_commands(sub: Any) -> None:
    """Register ``dataset run``, ``dataset plan`` and ``dataset export`` on the top-level sub-parsers."""
    ds = sub.add_parser("dataset", help="make a synthetic training set from a design file")
    dsub = ds.add_subparsers(dest="dataset_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "design", type=Path, help="design file (.yaml/.yml/.json); see README, 'Make a training set'"
        )
        p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress display or summary")
        p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")

    run = dsub.add_parser("run", help="generate every case (resumable: a rerun skips finished cases)")
    common(run)
    run.add_argument("--workers", type=int, default=None, help="cases at once (local default 1)")
    run.add_argument("--backend", choices=("local", "ray"), default="local")
    run.add_argument("--ray-address", default=None, help="Ray cluster (default: start a local one)")
    run.add_argument(
        "--format",
        action="append",
        default=None,
        metavar="FMT",
        help=f"export layout(s), repeatable or comma-separated: {', '.join(FORMATS)} (default: design's)",
    )
    plan = dsub.add_parser("plan", help="dry run: every case's concrete spec and seed, no images")
    common(plan)
    exp = dsub.add_parser(
        "export",
        help="write export layouts of a finished run into a new folder (e.g. without rejected cases)",
    )
    exp.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR", help="output folder of 'longisynth dataset run'"
    )
    exp.add_argument("-o", "--output", type=Path, required=True, help="new export folder")
    exp.add_argument(
        "--format",
        action="append",
        required=True,
        metavar="FMT",
        help=f"export layout(s), repeatable or comma-separated: {', '.join(FORMATS)}",
    )
    exp.add_argument(
        "--skip-rejected", action="store_true", help="leave out cases rejected in 'longisynth review'"
    )
    exp.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    exp.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def _formats(values: list[str] | None) -> list[Any] | None:
    from longisynth.dataset.design import ExportFormat
    from longisynth.errors import InvalidInputError

    if values is None:
        return None
    out = []
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if not name:
                continue
            if name not in FORMATS:
                raise InvalidInputError(f"unknown format {item!r}: use {', '.join(FORMATS)}")
            out.append(ExportFormat(name))
    return out


def _progress_display(quiet: bool) -> tuple[Callable[[Any], None], Callable[[], None]]:
    if quiet:
        return (lambda _: None), (lambda: None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]cases"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed{task.fields[skipped]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("cases", total=None, failed=0, skipped="")
    started = False

    def update(state: Any) -> None:
        nonlocal started
        if not started:
            bar.start()
            started = True
        skipped = f", {state.skipped} already done" if state.skipped else ""
        bar.update(task, total=state.total, completed=state.done, failed=state.failed, skipped=skipped)

    def stop() -> None:
        if started:
            bar.stop()

    return update, stop


def run_dataset_command(args: argparse.Namespace) -> int:
    """Entry point of ``longisynth dataset ...`` (called by :func:`longisynth.cli.main`)."""
    from longisynth.cli.errors import guarded

    if args.dataset_command == "export":
        return _export_command(args)
    update, stop = _progress_display(args.quiet or args.dataset_command == "plan")
    outcome: list[tuple[Any, str]] = []

    def run() -> int:
        from longisynth.dataset.design import load_design

        design = load_design(args.design)
        base_dir = args.design.resolve().parent
        if args.dataset_command == "plan":
            from longisynth.dataset.runner import plan_only

            report = plan_only(design, base_dir, args.output)
            bad = sum(r["status"] == "error" for r in report.rows)
            tail = f"; {bad} impossible specs (see plan.csv)" if bad else ""
            outcome.append((report, f"planned {len(report.rows)} cases in {report.out_dir}{tail}"))
        else:
            from longisynth.dataset.runner import run_dataset

            report = run_dataset(
                design,
                base_dir,
                args.output,
                workers=args.workers,
                backend=args.backend,
                ray_address=args.ray_address,
                formats=_formats(args.format),
                progress=update,
            )
            outcome.append(
                (
                    report,
                    f"{report.n_ok}/{len(report.rows)} cases in {report.out_dir} "
                    f"({report.skipped} already done, {report.n_failed} failed) in {report.seconds:.1f} s",
                )
            )
        return 0

    code = guarded(
        run, debug=args.debug, cleanup=stop, interrupted="interrupted (rerun the same command to resume)"
    )
    if code == 0 and not args.quiet:
        report, message = outcome[0]
        print(report.summary, file=sys.stderr)
        print(message, file=sys.stderr)
    return code


def _export_command(args: argparse.Namespace) -> int:
    from longisynth.cli.errors import guarded

    def run() -> int:
        from longisynth.dataset.export import export_run

        report = export_run(
            args.run_dir, args.output, _formats(args.format) or [], skip_rejected=args.skip_rejected
        )
        if not args.quiet:
            skipped = f"; skipped {len(report.skipped)} rejected" if report.skipped else ""
            print(f"exported {len(report.exported)} cases to {report.dest}{skipped}", file=sys.stderr)
        return 0

    return guarded(run, debug=args.debug)
