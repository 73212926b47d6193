"""``longisynth evaluate BUNDLE... [-o report.html] [--json report.json]``: re-measure bundles, report.

Exit codes: 0 every hard check passed, 1 a hard check failed in some bundle, 2 bad input (a corrupt or
non-bundle zip, a path that does not exist); errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_BAD_INPUT, EXIT_OK, guarded, say
from longisynth.errors import InvalidInputError

EXIT_FAILED = 1  # a hard check failed in some bundle


def add_evaluate_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command on an ``argparse`` sub-parsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="re-measure bundles from their images and check them against their spec "
        "('evaluate realism --help': compare their lesions with real ones)",
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE", help="bundle zip or folder of zips")
    p.add_argument(
        "-o", "--output", type=Path, default=Path("report.html"), help="HTML report (default report.html)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    p.add_argument(
        "--max-figures",
        type=int,
        default=50,
        help="bundles with figures (failing ones always get them; default 50)",
    )
    p.add_argument(
        "--progression",
        type=Path,
        default=None,
        metavar="DIR",
        help="real pairs of scans (Brain-Tumor-Progression layout: NN/{Pre,Post}_{Scan_T1,Mask}.nii.gz, "
        "dates.csv): compare the bundles' change between timepoints with real change",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def longitudinal_comparison(folder: Path, bundles: list[Path]) -> dict[str, Any]:
    """Real progression pairs in ``folder`` vs consecutive timepoints of ``bundles`` (see
    :mod:`longisynth.evaluate.longitudinal`). Raises :class:`InvalidInputError` on unreadable input."""
    from longisynth.evaluate.longitudinal import (
        bundle_progression_measures,
        compare_progression,
        real_progression_measures,
    )

    real = real_progression_measures(folder)
    synthetic = [m for path in bundles for m in bundle_progression_measures(path)]
    return compare_progression(real, synthetic)


def find_bundles(paths: list[Path]) -> list[Path]:
    """Zip files named directly, plus every ``*.zip`` under named folders (sorted, recursive).

    Raises:
        InvalidInputError: a path does not exist, or nothing was found.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.zip") if p.is_file())
        elif path.exists():
            found.append(path)
        else:
            raise InvalidInputError(f"{path}: no such file or folder")
    if not found:
        raise InvalidInputError("no bundle zips found in " + ", ".join(map(str, paths)))
    return list(dict.fromkeys(found))


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]evaluate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True
    )


def _evaluate_all(paths: list[Path], max_figures: int, bar: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    from longisynth.evaluate.core import BundleReport, evaluate_bundle
    from longisynth.evaluate.figures import growth_figure, montage_figure

    task = bar.add_task("evaluate", total=len(paths)) if bar is not None else None
    n_figures = 0
    for path in paths:
        try:
            report = evaluate_bundle(path)
        except InvalidInputError as err:
            report = BundleReport(str(path), error=str(err))
        figures: dict[str, str] = {}
        if report.error is None and (n_figures < max_figures or not report.passed):
            figures["growth"] = growth_figure(report)
            figures["montage"] = montage_figure(report) or ""
            n_figures += 1
        report.slices = None  # free the slices: memory stays per bundle
        if bar is not None:
            bar.advance(task)
        yield report, figures


def run_evaluate_command(args: argparse.Namespace) -> int:
    """Run ``evaluate`` with parsed arguments; returns the exit status (0, 1 or 2)."""
    return guarded(lambda: _run_evaluate(args))


def _run_evaluate(args: argparse.Namespace) -> int:
    from longisynth.evaluate.longitudinal import progression_html
    from longisynth.evaluate.report import bundle_section, html_report, json_report, text_summary

    try:
        paths = find_bundles(list(args.bundles))
        longitudinal = None if args.progression is None else longitudinal_comparison(args.progression, paths)
    except InvalidInputError as err:
        say(f"error: {err}")
        return EXIT_BAD_INPUT
    show = not args.quiet and sys.stderr.isatty()
    reports, sections = [], []
    with _progress(show, len(paths)) as bar:
        for report, figures in _evaluate_all(paths, args.max_figures, bar):
            if report.error:
                say(f"error: {report.error}")
            reports.append(report)
            sections.append(bundle_section(report, figures))
    try:
        extra = "" if longitudinal is None else progression_html(longitudinal)
        args.output.write_text(html_report(reports, sections, extra), encoding="utf-8")
        if args.json is not None:
            args.json.write_text(json_report(reports, longitudinal), encoding="utf-8")
    except OSError as err:
        say(f"error: cannot write the report ({err})")
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(text_summary(reports))
    if any(r.error for r in reports):
        return EXIT_BAD_INPUT
    return EXIT_FAILED if any(not r.passed for r in reports) else EXIT_OK
