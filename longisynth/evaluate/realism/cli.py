"""``longisynth evaluate realism --family lung|glioma --real DIR BUNDLE...``: the machine VTT.

Prints one line ``AUC x.xx [lo–hi]`` and writes the HTML (``-o``) and JSON (``--json``) reports.
Exit codes: 0 done, 2 bad input (a real image without its mask, a bundle of the other family, a
glioma bundle not grown in one of the real brains, too few lesions); errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_BAD_INPUT, EXIT_OK, guarded, say
from longisynth.errors import InvalidInputError
from longisynth.evaluate.cli import find_bundles


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="longisynth evaluate realism",
        description="Machine Visual Turing Test: can a classifier tell the bundles' lesions from real ones?",
    )
    p.add_argument("bundles", nargs="+", type=Path, metavar="BUNDLE", help="bundle zip or folder of zips")
    p.add_argument("--family", required=True, choices=("lung", "glioma"), help="lesion family compared")
    p.add_argument(
        "--real",
        required=True,
        type=Path,
        help="real lesions: lidc_nodules layout (image/, mask/, nodules.csv) "
        "or BraTS layout (CASE/CASE_*.nii.gz)",
    )
    p.add_argument(
        "--timepoints",
        choices=("all", "first", "last"),
        default="all",
        help="which timepoints of each bundle are compared (default all)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("realism.html"), help="HTML report")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the bootstrap (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return p


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    return bar


def main(argv: Sequence[str]) -> int:
    """Run the sub-command on its own arguments (after ``evaluate realism``); returns the exit code."""
    args = _parser().parse_args(list(argv))
    return guarded(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from longisynth.evaluate.realism import run_realism
    from longisynth.evaluate.realism.report import realism_html, realism_json

    bar = _progress(not args.quiet and sys.stderr.isatty())
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if bar is None:
            return
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total or None)
        bar.update(tasks[stage], completed=done)

    try:
        bundles = find_bundles(list(args.bundles))
        if bar is not None:
            bar.start()
        try:
            report = run_realism(
                args.family, args.real, bundles, seed=args.seed, progress=progress, timepoints=args.timepoints
            )
        finally:
            if bar is not None:
                bar.stop()
        args.output.write_text(realism_html(report), encoding="utf-8")
        if args.json is not None:
            args.json.write_text(realism_json(report), encoding="utf-8")
    except InvalidInputError as err:
        say(f"error: {err}")
        return EXIT_BAD_INPUT
    except OSError as err:
        say(f"error: cannot write the report ({err})")
        return EXIT_BAD_INPUT
    print(report.line())
    return EXIT_OK
