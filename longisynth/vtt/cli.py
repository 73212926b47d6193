"""``longisynth vtt build | serve | analyze``: argument parsing only; the work is in
:mod:`longisynth.vtt.study`, :mod:`longisynth.vtt.server` and :mod:`longisynth.vtt.analysis`.

Exit codes as the rest of the CLI: 0 done, 2 bad input (one line on stderr), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_OK
from longisynth.errors import InvalidInputError


def add_vtt_commands(sub: Any) -> None:
    """Register ``vtt build``, ``vtt serve`` and ``vtt analyze`` on the top-level sub-parsers."""
    vtt = sub.add_parser("vtt", help="visual Turing test: blinded real-vs-synthetic reading study")
    vsub = vtt.add_subparsers(dest="vtt_command", required=True)

    b = vsub.add_parser("build", help="make a blinded study folder of 48³-voxel crops")
    b.add_argument("study", type=Path, metavar="OUT_STUDY", help="new study folder")
    b.add_argument(
        "--synthetic", type=Path, nargs="+", required=True, metavar="BUNDLE", help="bundles (.zip)"
    )
    b.add_argument(
        "--real-lesions", nargs="+", default=[], metavar="IMG:MASK", help="real lesions: NIfTI image:mask"
    )
    b.add_argument(
        "--healthy", type=Path, nargs="+", default=[], metavar="SCAN", help="untouched NIfTI scans"
    )
    b.add_argument("--n", type=int, default=None, help="healthy crops in total (default: balance the study)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument(
        "--timepoint", default="random", help="bundle timepoint to crop: random (default), last or an index"
    )

    s = vsub.add_parser("serve", help="run the reading web page")
    s.add_argument("study", type=Path, metavar="OUT_STUDY")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765)

    a = vsub.add_parser("analyze", help="score the readers against the key")
    a.add_argument("study", type=Path, metavar="OUT_STUDY")
    a.add_argument(
        "--json", type=Path, default=None, metavar="OUT_JSON", help="also write the result as JSON"
    )


def _real_pairs(values: list[str]) -> list[tuple[Path, Path]]:
    pairs = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 2 or not all(parts):
            raise InvalidInputError(f"--real-lesions {value!r}: expected IMAGE:MASK")
        pairs.append((Path(parts[0]), Path(parts[1])))
    return pairs


def _check_files(paths: list[Path]) -> None:
    for p in paths:
        if not p.is_file():
            raise InvalidInputError(f"file {str(p)!r} does not exist")


def _build(args: argparse.Namespace) -> int:
    from longisynth.vtt.study import build_study

    if args.timepoint not in ("random", "last") and not args.timepoint.isdigit():
        raise InvalidInputError(f"--timepoint {args.timepoint!r}: use random, last or an index")
    if args.n is not None and args.n < 0:
        raise InvalidInputError("--n must be >= 0")
    pairs = _real_pairs(args.real_lesions)
    _check_files([*args.synthetic, *args.healthy, *[p for pair in pairs for p in pair]])
    public = build_study(args.study, args.synthetic, pairs, args.healthy, args.n, args.seed, args.timepoint)
    print(
        f"wrote {args.study}: {len(public['items'])} items (key in key.json; never share it)", file=sys.stderr
    )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from longisynth.vtt.server import create_app

    app = create_app(args.study)  # validates the folder before uvicorn starts
    import uvicorn

    print(f"reading page: http://{args.host}:{args.port}/  (Ctrl-C to stop)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    from longisynth.vtt.analysis import analyze, format_report
    from longisynth.vtt.store import DB_NAME, AnswerStore
    from longisynth.vtt.study import read_key

    key = read_key(args.study)
    if not (args.study / DB_NAME).exists():
        raise InvalidInputError(f"{str(args.study)!r} has no answers yet ({DB_NAME} missing)")
    result = analyze(AnswerStore(args.study).all_answers(), key)
    print(format_report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return EXIT_OK


def run_vtt_command(args: argparse.Namespace) -> int:
    """Run the parsed ``vtt`` sub-command; errors become one line on stderr and exit code 2."""
    from longisynth.cli.errors import guarded

    runners = {"build": _build, "serve": _serve, "analyze": _analyze}
    return guarded(lambda: runners[args.vtt_command](args))
