"""``longisynth library build | list | show``: a library of real lesions (:mod:`longisynth.library`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_OK, guarded, say


def add_library_commands(sub: Any) -> None:
    """Register ``library build | list | show`` on an ``argparse`` sub-parsers object."""
    lib = sub.add_parser("library", help="build and inspect a library of real lesions")
    cmds = lib.add_subparsers(dest="library_command", required=True)
    b = cmds.add_parser("build", help="build a lesion library from a folder of real lesions")
    b.add_argument("source", type=Path, help="LIDC crops, BraTS cases, or images/ + masks/ pairs")
    b.add_argument("-o", "--output", type=Path, required=True, help="new library folder")
    b.add_argument("--layout", choices=("lidc", "brats", "pairs"), default=None, help="default: detected")
    b.add_argument("--licence", default=None, help="the source's licence string (recorded per lesion)")
    b.add_argument("--contrast", default="t1", help="MRI contrast of single-image pairs (default t1)")
    b.add_argument(
        "--exclude-cases",
        type=Path,
        default=None,
        help="text file of source case names to leave out (one per line), e.g. an evaluation's test cases",
    )
    b.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    ls = cmds.add_parser("list", help="one line per lesion of a library")
    ls.add_argument("library", type=Path)
    ls.add_argument("--kind", default=None, help="only lesions of this kind (solid, ground_glass, high...)")
    sh = cmds.add_parser("show", help="a lesion's index entry as JSON")
    sh.add_argument("library", type=Path)
    sh.add_argument("id", help="lesion id (or a unique prefix)")


def run_library_command(args: argparse.Namespace) -> int:
    """Run ``library build | list | show``; errors are one line and exit 2."""
    if args.library_command == "build":
        return guarded(lambda: _build(args))
    if args.library_command == "list":
        return guarded(lambda: _list(args.library, args.kind))
    return guarded(lambda: _show(args.library, args.id))


def _build(args: argparse.Namespace) -> int:
    from longisynth.errors import InvalidInputError
    from longisynth.library import build_library

    exclude: frozenset[str] = frozenset()
    if args.exclude_cases is not None:
        try:
            exclude = frozenset(x.strip() for x in args.exclude_cases.read_text().splitlines() if x.strip())
        except OSError as exc:
            raise InvalidInputError(f"cannot read {args.exclude_cases.name!r}: {exc.strerror}") from None
    existed = args.output.exists()

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\rlongisynth: lesion {done}/{total}", end="", file=sys.stderr, flush=True)

    try:
        manifest = build_library(
            args.source,
            args.output,
            layout=args.layout,
            licence=args.licence,
            contrast=args.contrast,
            exclude_cases=exclude,
            progress=progress,
        )
    except BaseException:
        if not existed:  # no half-built library left behind
            shutil.rmtree(args.output, ignore_errors=True)
        raise
    finally:
        if not args.quiet:
            print(file=sys.stderr)
    say(f"wrote {args.output}: {manifest.n_lesions} {manifest.family} lesions ({manifest.modality.upper()})")
    return EXIT_OK


def _list(root: Path, kind: str | None) -> int:
    from longisynth.library import Library

    lib = Library.open(root)
    print(f"{'id':<18}{'kind':<14}{'shape':<12}{'size_mm':>8}  {'volume_mm3':>11}  licence")
    for e in lib.entries:
        if kind is None or e.kind == kind:
            print(f"{e.id:<18}{e.kind:<14}{e.shape:<12}{e.size_mm:>8.1f}  {e.volume_mm3:>11.0f}  {e.licence}")
    return EXIT_OK


def _show(root: Path, lesion_id: str) -> int:
    from longisynth.library import Library

    entry = Library.open(root).get(lesion_id)
    print(json.dumps(entry.model_dump(mode="json"), indent=2, sort_keys=True))
    return EXIT_OK
