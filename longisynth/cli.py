"""Command line: ``longisynth generate | demo | inspect``. Parses arguments, calls the engine.

Exit codes: 0 success, 2 bad input / prompt / request that does not fit the anatomy, 1 internal
error. Errors are one readable line on stderr; no output file is left behind on failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from longisynth import __version__
from longisynth.errors import InvalidInputError, LongisynthError, ModelUnavailableError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="longisynth", description="Synthetic longitudinal lesions in 3D scans.")
    p.add_argument("--version", action="version", version=f"longisynth {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--prompt", default=None, help="free-text description of the lesion and its growth")
        sp.add_argument("--spec", type=Path, help="JSON file of LesionSpec fields (override the prompt)")
        sp.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
        sp.add_argument("--lenient", action="store_true", help="accept prompt words we cannot place")
        sp.add_argument("-o", "--output", type=Path, required=True, help="output bundle (.zip)")
        sp.add_argument("--no-displacement", action="store_true", help="omit displacement fields")
        sp.add_argument("--no-preview", action="store_true", help="omit preview.png")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress display")
        sp.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")

    g = sub.add_parser("generate", help="simulate a study on your scan")
    g.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="NIfTI file or DICOM folder; for several MRI contrasts use NAME=PATH (t1, t1c, t2, flair)",
    )
    g.add_argument("--contrast", default=None, help="MRI contrast of a single input (default t1)")
    g.add_argument(
        "--labels", type=Path, help="region label map (TotalSegmentator lobes 10-14) on the same grid"
    )
    common(g)

    d = sub.add_parser("demo", help="simulate on the embedded default scan (no input needed)")
    d.add_argument("--kind", choices=("lung", "glioma"), default="lung")
    common(d)

    s = sub.add_parser("serve", help="start the HTTP service (BentoML) on this machine")
    s.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=3000)

    i = sub.add_parser("inspect", help="summarise a bundle")
    i.add_argument("bundle", type=Path)
    i.add_argument("--json", action="store_true", help="print metadata.json")

    from longisynth.dataset.cli import add_dataset_commands
    from longisynth.evaluate.cli import add_evaluate_command
    from longisynth.vtt.cli import add_vtt_commands

    add_dataset_commands(sub)
    add_evaluate_command(sub)
    add_vtt_commands(sub)
    return p


def _progress(quiet: bool) -> tuple[Callable[[str, float], None], Callable[[], None]]:
    if quiet:
        return (lambda s, f: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        TimeElapsedColumn(),
        transient=True,
        redirect_stdout=False,
        console=Console(stderr=True),
    )
    bar.start()
    task = bar.add_task("start", total=1.0)

    def update(stage: str, fraction: float) -> None:
        bar.update(task, description=stage or "done", completed=fraction)

    return update, bar.stop


def _load_spec(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read spec {path.name!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"spec {path.name!r} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"spec {path.name!r} must be a JSON object of LesionSpec fields")
    return data


def _run_generate(args: argparse.Namespace, update: Callable[[str, float], None]) -> Any:
    from longisynth.api import generate
    from longisynth.io import read_scan

    t0 = time.perf_counter()
    update("read", 0.0)
    scans = {}
    for item in args.inputs:
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        scans[name.lower()] = read_scan(Path(path))
    labels = None
    if args.labels is not None:
        lab = read_scan(args.labels)
        labels = lab.raw
    read_s = time.perf_counter() - t0
    if len(scans) == 1 and "" in scans:
        scan_arg: Any = scans[""]
    else:
        scan_arg = scans
    study = generate(
        scan_arg,
        args.prompt or "",
        _load_spec(args.spec),
        labels=labels,
        seed=args.seed,
        contrast=args.contrast,
        lenient=args.lenient,
        progress=update,
    )
    return study, {"read_input": round(read_s, 4)}


def _run_demo(args: argparse.Namespace, update: Callable[[str, float], None]) -> Any:
    from longisynth.api import generate
    from longisynth.demo import demo_input

    t0 = time.perf_counter()
    update("phantom", 0.0)
    demo = demo_input(args.kind)
    prompt = demo.prompt if args.prompt is None else args.prompt
    study = generate(
        demo.scans,
        prompt,
        _load_spec(args.spec),
        seed=args.seed,
        lenient=args.lenient,
        brain_tissues=demo.brain_tissues,
        progress=update,
    )
    return study, {"build_phantom": round(time.perf_counter() - t0 - sum(study.timings_s.values()), 4)}


def _summary(study: Any, path: Path) -> str:
    final = study.timepoints[-1]
    hard = [c for c in study.checks if c.hard]
    soft_failed = [c.name for c in study.checks if not c.hard and not c.passed]
    line = (
        f"wrote {path}: {len(study.timepoints)} timepoints over {final.days:g} days, final longest "
        f"diameter {final.longest_diameter_mm:.1f} mm, volume {final.lesion_volume_mm3:.0f} mm³; "
        f"{sum(c.passed for c in hard)}/{len(hard)} hard checks passed"
    )
    if soft_failed:
        line += f"; soft warnings: {', '.join(soft_failed)}"
    return line


def _inspect(path: Path, as_json: bool) -> int:
    from longisynth.bundle import read_metadata
    from longisynth.inspect import format_summary

    try:
        meta = read_metadata(path)
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"{path.name!r} is not a longisynth bundle: {exc}") from None
    print(json.dumps(meta, indent=2) if as_json else format_summary(meta))
    return EXIT_OK


def _serve(host: str, port: int) -> int:
    """Run ``bentoml serve service.service:Longisynth`` from the project folder (the service
    package sits next to the engine package); limits and keys come from LONGISYNTH_* variables."""
    import shutil
    import subprocess

    # The service package sits next to the engine in a checkout; in the container it is in the
    # working directory (/app) while the engine is an installed wheel.
    here = Path.cwd()
    root = here if (here / "service" / "service.py").exists() else Path(__file__).resolve().parents[1]
    bentoml = shutil.which("bentoml") or str(Path(sys.executable).with_name("bentoml"))
    if not (root / "service" / "service.py").exists() or not Path(bentoml).exists():
        print(
            "longisynth: error: the service needs the project checkout and BentoML "
            "(pip install -e '.[serve]')",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    cmd = [
        bentoml,
        "serve",
        "service.service:Longisynth",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(root),
    ]
    try:
        return subprocess.call(cmd, cwd=root)
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["evaluate", "realism"]:  # its own parser: `evaluate BUNDLE...` keeps its positionals
        from longisynth.evaluate.realism.cli import main as realism_main

        return realism_main(argv[2:])
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "vtt":
        from longisynth.vtt.cli import run_vtt_command

        return run_vtt_command(args)
    if args.command == "evaluate":
        from longisynth.evaluate.cli import run_evaluate_command

        return run_evaluate_command(args)
    if args.command == "dataset":
        from longisynth.dataset.cli import run_dataset_command

        return run_dataset_command(args)
    if args.command == "inspect":
        try:
            return _inspect(args.bundle, args.json)
        except LongisynthError as exc:
            print(f"longisynth: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    update, stop = _progress(args.quiet)
    try:
        if not args.output.parent.exists():
            raise InvalidInputError(f"output folder {str(args.output.parent)!r} does not exist")
        runner = _run_generate if args.command == "generate" else _run_demo
        study, extra_timings = runner(args, update)
        from longisynth.bundle import write_bundle

        update("write", 0.97)
        write_bundle(
            study,
            args.output,
            displacement=not args.no_displacement,
            preview=not args.no_preview,
            timings_s=extra_timings,
        )
    except ModelUnavailableError as exc:
        stop()
        print(f"longisynth: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except LongisynthError as exc:
        stop()
        print(f"longisynth: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        stop()
        print("longisynth: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one readable line, not a traceback (unless --debug)
        stop()
        if args.debug:
            raise
        print(
            f"longisynth: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr
        )
        return EXIT_INTERNAL
    stop()
    if not args.quiet:
        print(_summary(study, args.output), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
