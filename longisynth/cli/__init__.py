"""The command line: ``longisynth generate | demo | inspect | serve | evaluate | vtt | review |
dataset | library | archetypes``.

Each sub-command parses its arguments and calls plain functions of the package; every error ends
as one line on stderr and an exit code (:mod:`.errors`): 0 success, 2 bad input, 1 internal error.
No output file is left behind on failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from longisynth import __version__
from longisynth.cli.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK
from longisynth.cli.serve import add_serve_command, run_serve_command
from longisynth.cli.study import add_study_commands, run_inspect, run_study_command

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_OK", "main"]


def _parser() -> argparse.ArgumentParser:
    from longisynth.cli.archetypes import add_archetype_commands
    from longisynth.cli.library import add_library_commands
    from longisynth.dataset.cli import add_dataset_commands
    from longisynth.evaluate.cli import add_evaluate_command
    from longisynth.review.cli import add_review_command
    from longisynth.vtt.cli import add_vtt_commands

    p = argparse.ArgumentParser(prog="longisynth", description="Synthetic longitudinal lesions in 3D scans.")
    p.add_argument("--version", action="version", version=f"longisynth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    add_study_commands(sub)
    add_serve_command(sub)
    add_dataset_commands(sub)
    add_evaluate_command(sub)
    add_vtt_commands(sub)
    add_review_command(sub)
    add_library_commands(sub)
    add_archetype_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["evaluate", "realism"]:  # its own parser: `evaluate BUNDLE...` keeps its positionals
        from longisynth.evaluate.realism.cli import main as realism_main

        return realism_main(argv[2:])
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return run_serve_command(args)
    if args.command == "inspect":
        return run_inspect(args)
    if args.command == "vtt":
        from longisynth.vtt.cli import run_vtt_command

        return run_vtt_command(args)
    if args.command == "review":
        from longisynth.review.cli import run_review_command

        return run_review_command(args)
    if args.command == "evaluate":
        from longisynth.evaluate.cli import run_evaluate_command

        return run_evaluate_command(args)
    if args.command == "library":
        from longisynth.cli.library import run_library_command

        return run_library_command(args)
    if args.command == "archetypes":
        from longisynth.cli.archetypes import run_archetypes_command

        return run_archetypes_command(args)
    if args.command == "dataset":
        from longisynth.dataset.cli import run_dataset_command

        return run_dataset_command(args)
    return run_study_command(args)


if __name__ == "__main__":
    sys.exit(main())
