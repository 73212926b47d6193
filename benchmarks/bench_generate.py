"""End-to-end speed and memory of `generate` + `write_bundle` on a CT-sized volume.

Builds a 512×512×300 thorax phantom (0.7×0.7×1.0 mm), writes it as the input, then runs in
fresh subprocesses (so peak RSS is per run):

* ``floor``: read the input and write the same bundle files (per timepoint the image, a mask and
  a displacement field) with the same writer and compression, with no lesion — the I/O floor;
* ``full``: read the input, simulate a 5-timepoint nodule study, write the bundle.

Prints total times, their ratio (target ≤ 1.5), and peak memory above the interpreter's
baseline relative to the input's float32 size (target ≤ 4). No wall-clock assertion: these
machines are noisy, so only ratios measured in the same run are reported.

    .venv/bin/python benchmarks/bench_generate.py [--shape 512 512 300] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT = (
    "solid nodule, 8 mm at baseline, doubling time 150 days, 5 timepoints over 12 months, right lower lobe"
)


def _hwm_kib() -> int:
    """Peak resident memory of this process (KiB). /proc's VmHWM starts afresh at exec, unlike
    getrusage's ru_maxrss, which a child inherits from the parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child(mode: str, input_path: str, out_path: str) -> None:
    base_rss = _hwm_kib()
    import longisynth
    import longisynth.families.lung
    from longisynth.bundle import write_bundle
    from longisynth.checks import Check
    from longisynth.geometry import Box
    from longisynth.result import Study, Timepoint
    from longisynth.spec import LesionSpec, Modality, resolve_spec

    import_rss = _hwm_kib()
    t0 = time.perf_counter()
    scan = longisynth.read_scan(input_path)
    t_read = time.perf_counter() - t0
    if mode == "full":
        study = longisynth.generate(scan, PROMPT, seed=1)
    else:
        spec = resolve_spec(
            LesionSpec.model_validate({"n_timepoints": 5, "duration_days": 365}),
            Modality.CT,
            np.random.default_rng(0),
        )
        box = Box((0, 0, 0), (2, 2, 2))
        tps = [
            Timepoint(
                i,
                float(d),
                {"ct": scan.raw[box.slices].copy()},
                np.zeros(box.shape, np.uint8),
                np.zeros((3, *box.shape), np.float32),
                0.0,
                0.0,
                (0.0, 0.0, 0.0),
                0.0,
            )
            for i, d in enumerate(spec.timepoints_days or [])
        ]
        study = Study({"ct": scan}, box, spec, "", tps, [Check("none", True, "true", True, False)])
    t_sim = time.perf_counter() - t0 - t_read
    write_bundle(study, out_path, preview=False)
    total = time.perf_counter() - t0
    t_write = total - t_read - t_sim
    peak = _hwm_kib()
    print(
        json.dumps(
            {
                "mode": mode,
                "read_s": t_read,
                "simulate_s": t_sim,
                "total_s": total,
                "write_s": t_write,
                "peak_rss_kib": peak,
                "import_rss_kib": import_rss,
                "start_rss_kib": base_rss,
                "timings": getattr(study, "timings_s", {}),
            }
        )
    )


def _run(mode: str, input_path: Path, out_dir: Path) -> dict:  # type: ignore[type-arg]
    out = out_dir / f"{mode}.zip"
    res = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(input_path), str(out)], capture_output=True, text=True
    )
    if res.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{res.stderr}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["bundle_mb"] = out.stat().st_size / 1e6
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    from longisynth.io import write_nifti
    from longisynth.phantoms.thorax import make_thorax_phantom

    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        t0 = time.perf_counter()
        hu, affine = make_thorax_phantom(shape=shape, spacing_mm=(0.7, 0.7, 1.0), seed=0)
        t_phantom = time.perf_counter() - t0
        input_path = tmpdir / "input.nii.gz"
        write_nifti(input_path, hu, affine)
        float32_mib = np.prod(shape) * 4 / 2**20
        del hu
        rows = []
        for _ in range(args.repeat):
            floor = _run("floor", input_path, tmpdir)
            full = _run("full", input_path, tmpdir)
            rows.append((floor, full))
        floor_t = float(np.median([f["total_s"] for f, _ in rows]))
        full_t = float(np.median([g["total_s"] for _, g in rows]))
        full = rows[-1][1]
        extra_mib = (full["peak_rss_kib"] - full["import_rss_kib"]) / 1024
        floor_extra_mib = (rows[-1][0]["peak_rss_kib"] - rows[-1][0]["import_rss_kib"]) / 1024
        print(
            f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
            f"{__import__('os').cpu_count()} CPUs"
        )
        print(f"volume {shape} int16 ({float32_mib:.0f} MiB as float32); phantom built in {t_phantom:.1f} s")
        print(f"I/O floor (read + write 5x image/mask/displacement): {floor_t:.2f} s")
        print(f"full generate + write:                               {full_t:.2f} s")
        print(f"ratio full / floor: {full_t / floor_t:.2f}  (target <= 1.5)")
        for name, run in (("floor", rows[-1][0]), ("full", full)):
            print(
                f"  {name:5s}: read {run['read_s']:.2f} s, simulate {run['simulate_s']:.2f} s, "
                f"write {run['write_s']:.2f} s"
            )
        print(f"stage timings (s): {json.dumps(full['timings'])}")
        print(
            f"peak memory above imports: full {extra_mib:.0f} MiB = "
            f"{extra_mib / float32_mib:.2f} x input float32 "
            f"(target <= 4); floor {floor_extra_mib:.0f} MiB = {floor_extra_mib / float32_mib:.2f} x"
        )
        print(f"bundle size: {full['bundle_mb']:.1f} MB")


if __name__ == "__main__":
    main()
