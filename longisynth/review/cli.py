"""``longisynth review RUN_DIR``: argument parsing only; the work is in :mod:`.server` and :mod:`.apply`.

Exit codes as the rest of the CLI: 0 done, 2 bad input (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_OK
from longisynth.errors import InvalidInputError


def add_review_command(sub: Any) -> None:
    """Register ``review`` on the top-level sub-parsers."""
    r = sub.add_parser(
        "review",
        help="expert review of a dataset run's cases (accept / reject with a reason / edit the archetype)",
    )
    r.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="output folder of 'longisynth dataset run'")
    r.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    r.add_argument("--reviewer", default="", help="reviewer id recorded with the verdicts (no patient data)")
    r.add_argument(
        "--apply",
        action="store_true",
        help="only write the verdicts into manifest.csv/.parquet and summary.md, then exit",
    )


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidInputError(f"--port {port}: use 1-65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInputError(
                    f"port {port} on {host} is in use; choose another with --port"
                ) from None
            raise InvalidInputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _review(args: argparse.Namespace) -> int:
    if args.apply:
        from longisynth.dataset.run_folder import open_run
        from longisynth.review.apply import apply_review
        from longisynth.review.store import VerdictStore

        run = open_run(args.run_dir)
        apply_review(run.root)
        n = len(VerdictStore(run.root).latest())
        print(
            f"wrote the verdicts of {n} cases into {run.root / 'manifest.csv'} and summary.md",
            file=sys.stderr,
        )
        return EXIT_OK

    from longisynth.review.server import create_app

    app = create_app(args.run_dir, args.reviewer)  # validates the folder before uvicorn starts
    _check_port(args.host, args.port)
    import uvicorn

    print(f"review page: http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def run_review_command(args: argparse.Namespace) -> int:
    """Run ``review``; errors become one line on stderr and exit code 2."""
    from longisynth.cli.errors import guarded

    return guarded(lambda: _review(args))
