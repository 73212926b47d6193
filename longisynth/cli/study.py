"""``longisynth generate | demo | inspect``: a study from the command line, through the public API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from longisynth.cli.errors import EXIT_OK, guarded
from longisynth.errors import InvalidInputError


def add_study_commands(sub: Any) -> None:
    """Register ``generate``, ``demo`` and ``inspect`` on an ``argparse`` sub-parsers object."""

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--prompt", default=None, help="free-text description of the lesion and its growth")
        sp.add_argument("--spec", type=Path, help="JSON file of LesionSpec fields (override the prompt)")
        sp.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
        sp.add_argument("--lenient", action="store_true", help="accept prompt words we cannot place")
        sp.add_argument("-o", "--output", type=Path, required=True, help="output bundle (.zip)")
        sp.add_argument("--no-displacement", action="store_true", help="omit displacement fields")
        sp.add_argument("--no-preview", action="store_true", help="omit preview.png")
        sp.add_argument(
            "--compact",
            action="store_true",
            help="displacement fields as int16 in 1 µm steps instead of float32 (smaller, for sharing)",
        )
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress display")
        sp.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
        sp.add_argument(
            "--library",
            type=Path,
            default=None,
            help="lesion library (longisynth library build): copy and grow a real lesion from it",
        )
        sp.add_argument(
            "--archetypes",
            type=Path,
            default=None,
            help="folder of your own archetype YAML files, added to the shipped ones (archetypes list)",
        )

    g = sub.add_parser("generate", help="simulate a study on your scan")
    g.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=(
            "NIfTI file or DICOM folder; for several MRI contrasts use NAME=PATH (t1, t1c, t2, flair; "
            "BraTS names such as t1ce are understood). MRI may be raw, min-max normalised or z-scored"
        ),
    )
    g.add_argument("--contrast", default=None, help="MRI contrast of a single input (default t1; t1ce = t1c)")
    g.add_argument(
        "--labels", type=Path, help="region label map (TotalSegmentator lobes 10-14) on the same grid"
    )
    g.add_argument(
        "--lesion-mask",
        type=Path,
        default=None,
        help="baseline lesion mask on the same grid (e.g. from ITK-SNAP); its texture is a --library "
        "lesion's, or rule-based without a library",
    )
    common(g)

    d = sub.add_parser("demo", help="simulate on the embedded default scan (no input needed)")
    d.add_argument("--kind", choices=("lung", "glioma"), default="lung")
    common(d)

    i = sub.add_parser("inspect", help="summarise a bundle")
    i.add_argument("bundle", type=Path)
    i.add_argument("--json", action="store_true", help="print metadata.json")


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
    from longisynth.api import generate, read_scan

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
    lesion_mask = None
    if args.lesion_mask is not None:
        lesion_mask = read_scan(args.lesion_mask).raw
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
        library=args.library,
        lesion_mask=lesion_mask,
        archetypes=args.archetypes,
    )
    return study, {"read_input": round(read_s, 4)}


def _run_demo(args: argparse.Namespace, update: Callable[[str, float], None]) -> Any:
    from longisynth.api import demo_input, generate

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
        library=args.library,
        archetypes=args.archetypes,
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


def run_inspect(args: argparse.Namespace) -> int:
    """``inspect``: a bundle's timepoints and checks (or its metadata.json)."""
    return guarded(lambda: _inspect(args.bundle, args.json))


def _inspect(path: Path, as_json: bool) -> int:
    from longisynth.api import read_metadata
    from longisynth.bundle.summary import format_summary

    meta = read_metadata(path)
    print(json.dumps(meta, indent=2) if as_json else format_summary(meta))
    return EXIT_OK


def run_study_command(args: argparse.Namespace) -> int:
    """``generate`` / ``demo``: simulate, write the bundle, print a one-line summary."""
    update, stop = _progress(args.quiet)
    done: list[Any] = []

    def run() -> int:
        from longisynth.api import write_bundle

        if not args.output.parent.exists():
            raise InvalidInputError(f"output folder {str(args.output.parent)!r} does not exist")
        runner = _run_generate if args.command == "generate" else _run_demo
        study, extra_timings = runner(args, update)
        update("write", 0.97)
        write_bundle(
            study,
            args.output,
            displacement=not args.no_displacement,
            preview=not args.no_preview,
            timings_s=extra_timings,
            compact=args.compact,
        )
        done.append(study)
        return EXIT_OK

    code = guarded(run, debug=args.debug, cleanup=stop)
    if done and not args.quiet:
        print(_summary(done[0], args.output), file=sys.stderr)
    return code
