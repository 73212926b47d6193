"""Dataset generation throughput: cases/hour with 1 and 2 local workers and on Ray.

Inputs: the demo thorax phantom (256×256×180 voxels of 1.4×1.4×2.0 mm, int16 HU, as
``longisynth demo`` uses) with different noise seeds, written as NIfTI with its lobe labels.
Design: solid / part-solid / ground-glass nodules of 6–20 mm in any lobe, 3–4 timepoints over
6–24 months, bundle per case (no displacement, no preview), refiner off (the learned refiner is
benchmarked in ``bench_refiner.py``). Each configuration writes a fresh output folder:

* ``local ×1``: cases one after another in the driver process (the baseline);
* ``local ×2``: a pool of 2 spawned processes;
* ``ray ×2``: a local Ray instance with 2 CPUs (127.0.0.1), timed with and without its start-up.

Prints a Markdown table with cases/hour and the ratio to the baseline, and checks that all
configurations wrote identical files. Only ratios measured in the same run are meaningful on a
shared machine.

    .venv/bin/python benchmarks/bench_dataset.py [--scans 2] [--cases-per-scan 4]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("LONGISYNTH_REFINER", "off")  # before longisynth loads the refiner config


def _inputs(folder: Path, n_scans: int) -> Path:
    from longisynth.io import write_nifti
    from longisynth.phantoms.thorax import make_thorax_phantom, thorax_phantom_labels

    labels = thorax_phantom_labels()
    lines = ["scan_id,scan,labels"]
    for k in range(n_scans):
        hu, affine = make_thorax_phantom(seed=k)
        write_nifti(folder / f"thorax{k}.nii.gz", hu, affine)
        if k == 0:
            write_nifti(folder / "labels.nii.gz", labels, affine)
        lines.append(f"thorax{k},thorax{k}.nii.gz,labels.nii.gz")
    (folder / "scans.csv").write_text("\n".join(lines) + "\n")
    return folder / "scans.csv"


def _design(folder: Path, manifest: Path, cases_per_scan: int) -> Path:
    design = {
        "name": "Bench",
        "seed": 1,
        "inputs": {"manifest": str(manifest)},
        "cases_per_scan": cases_per_scan,
        "spec": {"family": "lung_nodule"},
        "sample": {
            "nodule_type": {"choice": {"solid": 0.6, "part_solid": 0.2, "ground_glass": 0.2}},
            "diameter_mm": {"uniform": [6, 20]},
            "location.lung_lobe": "any",
            "n_timepoints": {"integers": [3, 4]},
            "duration_days": {"uniform": [182, 730], "round": 0},
        },
    }
    path = folder / "design.yaml"
    path.write_text(yaml.safe_dump(design, sort_keys=False))
    return path


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "run_log.jsonl"
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scans", type=int, default=2)
    ap.add_argument("--cases-per-scan", type=int, default=4)
    args = ap.parse_args()

    from longisynth.dataset import load_design, run_dataset

    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        manifest = _inputs(root, args.scans)
        design_path = _design(root, manifest, args.cases_per_scan)
        design = load_design(design_path)
        print(f"inputs: {args.scans} phantoms 256x256x180 written in {time.perf_counter() - t0:.1f} s")
        n = args.scans * args.cases_per_scan
        results: list[tuple[str, float, str]] = []

        def timed(label: str, note: str = "", **kwargs: object) -> Path:
            out = root / label.replace(" ", "_").replace("×", "x")
            t = time.perf_counter()
            report = run_dataset(design, root, out, **kwargs)  # type: ignore[arg-type]
            seconds = time.perf_counter() - t
            assert report.n_ok == n, report.summary
            results.append((label, seconds, note))
            print(f"{label}: {n} cases in {seconds:.1f} s")
            return out

        base = timed("local ×1", workers=1)
        two = timed("local ×2", "spawned process pool", workers=2)
        ray_out = timed("ray ×2 (incl. start)", "starts and stops a local Ray", backend="ray", workers=2)
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        start_s = time.perf_counter() - t
        try:
            warm = timed(
                "ray ×2 (running)", f"Ray already up (start-up {start_s:.1f} s)", backend="ray", workers=2
            )
        finally:
            ray.shutdown()
        reference = _hashes(base)
        identical = all(_hashes(p) == reference for p in (two, ray_out, warm))

    base_s = results[0][1]
    print()
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
        f"{n} cases ({args.scans} scans × {args.cases_per_scan}), bundles only, refiner off."
    )
    print()
    print("| configuration | wall time | cases/hour | speed vs local ×1 | note |")
    print("|---|---:|---:|---:|---|")
    for label, seconds, note in results:
        print(f"| {label} | {seconds:.1f} s | {n / seconds * 3600:.0f} | {base_s / seconds:.2f} | {note} |")
    print()
    print(f"identical files in every configuration: {identical}")


if __name__ == "__main__":
    main()
