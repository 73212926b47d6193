"""Synthetic lesion sets for ``longisynth evaluate realism`` (the machine Visual Turing Test).

    .venv/bin/python benchmarks/realism_sets.py lung   -o out/realism/lung     # ≈ 4 min
    .venv/bin/python benchmarks/realism_sets.py glioma -o out/realism/glioma   # ≈ 1 min per brain

**Lung.** Nodules grown on every real chest CT of ``../shared/data`` that holds lung (the
TotalSegmentator chest crop, 1.5 mm; the abdomen CT with lung bases, 3 mm; the LIDC-IDRI-0002
slab, 0.68 × 0.68 × 1.25 mm), and — because three real hosts are too few for host-grouped
cross-validation — on :data:`PHANTOM_HOSTS` instances of the thorax phantom on LIDC-IDRI-like grids
(0.7 mm in-plane, 1.25 or 2.5 mm slices). Types, shapes and sizes are drawn from a seeded
generator to cover the range of the real LIDC-IDRI readings (mostly solid, mostly smooth, baselines
5–14 mm so that every timepoint lies in the real crops' size range). Compare with ``--real
../shared/data/lidc_nodules``; the report's per-host table shows each host's own AUC.

**Glioma.** One glioma per BraTS 2018 brain, grown in the hemisphere *opposite* the real tumour
(the side is read from the real segmentation's centroid in world RAS+ mm) and sized like the real
one (its whole-tumour longest diameter, capped at :data:`GLIOMA_MAX_MM`), so that the same brain
holds one real and one synthetic tumour of comparable size. Compare with
``--real ../shared/data/brats2018``.

**Library lesions** (``--library``). Lung: ``--library DIR`` is a lesion library (``longisynth
library build``), built from patients *other* than the ``--real`` comparison set (see
:func:`split_lidc`); each study copies a library nodule of the drawn type and about the drawn
baseline size. Glioma: ``--library DIR`` is a library built from the shared BraTS cases; the brain
of case *i* receives the tumour of case *i + 1* (never its own), mirrored into the free hemisphere.
Compare the first timepoints (the real lesion as copied) and the last (after growth) with
``evaluate realism --timepoints first|last``.

Every study uses the engine's defaults (``longisynth.generate`` as a user calls it); the bundles
are written without previews or displacement fields. Seeds are fixed: the sets are reproducible.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

REAL_LUNG_HOSTS = {
    # host file (in ../shared/data) -> locations its field of view holds
    "totalseg_chest_ct_crop.nii.gz": ["right lung", "left lung", "right lower lobe", "left lower lobe"],
    "totalseg_example_ct.nii.gz": ["right lower lobe", "left lower lobe"],
    "lidc_slabs/LIDC-IDRI-0002/image.nii.gz": ["right lung"],
}
PHANTOM_HOSTS = 6  # thorax phantom seeds 1…6 on LIDC-IDRI-like grids
PHANTOM_LOCATIONS = [
    "right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe",
]  # fmt: skip
# LIDC-IDRI readers' texture: 86 % solid (5), 6 % part-solid (3–4), 7 % ground-glass (1–2);
# spiculation 1 in 83 %, lobulation 1–2 in 90 % (nodules.csv of the shared crops).
NODULE_TYPES = (["solid"] * 12) + ["part-solid", "ground-glass"]
SHAPES = (["smooth"] * 6) + (["lobulated"] * 3) + ["spiculated"]
SIZE_MM = (4.0, 20.0)  # log-uniform final longest diameter: LIDC-IDRI 5th–95th percentile 4.3–19 mm
# The VTT set draws the *baseline* clinical size instead, so that every timepoint it compares lies
# in the real crops' size range: their equivalent diameters on the largest axial slice span
# 4.9–20 mm (5th–95th percentile, median 7.6), and only 6 % are under 5 mm. Drawn as the final size
# (SIZE_MM), 38 % of the compared timepoints were under 5 mm and size alone scored AUC 0.37.
# Baselines 5–14 mm, grown ×1.2–1.4 in 12 months, give 4.2–16 mm on that measure.
VTT_BASELINE_MM = (5.0, 14.0)
VTT_MIN_BASELINE_MM = 4.0  # a host that cannot hold a baseline this large gets no study
GLIOMA_MAX_MM = 80.0
LGG_CASES = ("Brats18_TCIA10_628_1",)  # the lower-grade case of the shared set (little enhancement)


def lung_hosts(n_phantoms: int) -> Iterator[tuple[str, Any, list[str]]]:
    """(name, scan, locations) of every lung host: the real CTs, then the phantom instances."""
    from longisynth.io import read_scan
    from longisynth.io.scan import Scan
    from longisynth.phantoms.thorax import make_thorax_phantom

    for host, locations in REAL_LUNG_HOSTS.items():
        if (SHARED / host).exists():
            yield host.split(".")[0].replace("/", "_"), read_scan(SHARED / host), locations
    for k in range(1, n_phantoms + 1):
        slice_mm = 1.25 if k % 2 else 2.5
        shape = (512, 512, round(200.0 / slice_mm))
        hu, affine = make_thorax_phantom(shape, (0.7, 0.7, slice_mm), seed=k)
        yield f"phantom{k}", Scan.from_array(hu, affine, f"thorax_phantom_{k}.nii.gz"), PHANTOM_LOCATIONS


def grow_nodule_study(
    scan: Any,
    kind: str,
    shape: str,
    size_mm: float,
    where: str,
    seed: int,
    at_baseline: bool = False,
    min_mm: float = 0.0,
    **options: Any,
) -> tuple[Any, str] | None:
    """A nodule study of about ``size_mm`` (the final size; the baseline's with ``at_baseline``)
    that the host can hold: smaller when it does not fit (thin slabs), but not below ``min_mm``;
    larger when the scan's pixels cannot show it (coarse grids); None if neither."""
    import longisynth
    from longisynth.errors import LesionDoesNotFitError

    for factor in (1.0, 0.6, 0.35, 1.7, 2.5):
        if size_mm * factor < min_mm:
            continue
        size = f"{size_mm * factor:.1f} mm at baseline" if at_baseline else f"{size_mm * factor:.1f} mm"
        text = f"{kind} {shape} nodule {size} in the {where}, scans at 0, 6 and 12 months"
        try:
            return longisynth.generate(scan, text, seed=seed, **options), text
        except LesionDoesNotFitError as err:
            if "pixels can show" in str(err) and factor < 1.0:
                return None  # smaller only gets worse
            continue
    return None


def split_lidc(source: Path, out: Path, seed: int) -> tuple[Path, Path]:
    """Split a ``lidc_nodules`` folder by patient, half and half (seeded): ``out/library_src`` and
    ``out/real_test``, each in the same layout (symbolic links and a filtered ``nodules.csv``)."""
    import csv

    with (source / "nodules.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    patients = sorted({r["patient_id"] for r in rows})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(patients, size=len(patients) // 2, replace=False).tolist())
    parts = {"library_src": [r for r in rows if r["patient_id"] not in held],
             "real_test": [r for r in rows if r["patient_id"] in held]}  # fmt: skip
    for name, subset in parts.items():
        folder = out / name
        for d in ("image", "mask"):
            (folder / d).mkdir(parents=True, exist_ok=True)
        with (folder / "nodules.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(subset)
        for r in subset:
            file = f"{r['patient_id']}_R_{r['nodule_id']}.nii.gz"
            for d in ("image", "mask"):
                link = folder / d / file
                if (source / d / file).exists() and not link.exists():
                    link.symlink_to((source / d / file).resolve())
    return out / "library_src", out / "real_test"


def library_nodule_study(scan: Any, library: Any, kind: str, size_mm: float, where: str, seed: int) -> Any:
    """A study of a library nodule of ``kind`` near ``size_mm`` at baseline (another draw of the
    library when one does not fit), or None."""
    import longisynth
    from longisynth.errors import InvalidInputError, LesionDoesNotFitError

    prompt = f"{kind} nodule in the {where}, scans at 0, 6 and 12 months"
    for attempt in range(4):
        try:
            study = longisynth.generate(
                scan, prompt, {"baseline_diameter_mm": size_mm}, seed=seed + attempt, library=library
            )
            return study, prompt
        except (LesionDoesNotFitError, InvalidInputError):
            continue
    return None


def lung_set(
    out: Path,
    n_per_host: int,
    n_phantoms: int,
    seed: int,
    n_per_real_host: int | None = None,
    library: Path | None = None,
) -> int:
    """Nodule studies on every lung host: ``n_per_real_host`` on each real CT (default: as many as
    on a phantom), ``n_per_host`` on each phantom; library nodules with ``library``."""
    import longisynth

    lib = None
    if library is not None:
        from longisynth.library import Library

        lib = Library.open(library)
    rng = np.random.default_rng(seed)
    written = 0
    for host, scan, locations in lung_hosts(n_phantoms):
        real_host = not host.startswith("phantom")
        n = n_per_real_host if real_host and n_per_real_host is not None else n_per_host
        for k in range(n):
            size = float(np.exp(rng.uniform(*np.log(VTT_BASELINE_MM))))
            kind, shape, where = rng.choice(NODULE_TYPES), rng.choice(SHAPES), rng.choice(locations)
            case_seed = int(rng.integers(0, 2**31 - 1))
            if lib is not None:
                grown = library_nodule_study(scan, lib, str(kind), size, str(where), case_seed)
            else:
                grown = grow_nodule_study(
                    scan, str(kind), str(shape), size, str(where), case_seed,
                    at_baseline=True, min_mm=VTT_MIN_BASELINE_MM,
                )  # fmt: skip
            if grown is None:
                continue
            study, text = grown
            name = out / f"{host}_{k:02d}.zip"
            longisynth.write_bundle(study, name, displacement=False, preview=False)
            print(f"{name.name}: {text}", flush=True)
            written += 1
    return written


def _real_tumour(case: Path) -> tuple[str, float]:
    """(side opposite the real tumour, the real whole tumour's longest diameter in mm)."""
    import nibabel as nib

    from longisynth.measure import longest_diameter_mm

    img = nib.Nifti1Image.from_filename(case / f"{case.name}_seg.nii.gz")
    seg = np.asarray(img.dataobj) > 0
    brain = np.asarray(nib.Nifti1Image.from_filename(case / f"{case.name}_flair.nii.gz").dataobj) > 0
    world = lambda m: nib.affines.apply_affine(img.affine, np.argwhere(m).mean(axis=0))  # noqa: E731
    side = "left" if world(seg)[0] > world(brain)[0] else "right"  # RAS+: x grows to the subject's right
    spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
    return side, longest_diameter_mm(seg, spacing)  # type: ignore[arg-type]


def glioma_library_set(out: Path, seed: int, library: Path) -> int:
    """One library glioma per BraTS brain: case i's brain receives case i+1's tumour (by source case
    name in the library's index), in the hemisphere opposite its own real tumour."""
    import longisynth
    from longisynth.errors import LesionDoesNotFitError
    from longisynth.io import read_scan
    from longisynth.library import Library

    lib = Library.open(library)
    by_case = {e.source_case: e for e in lib.entries}
    cases = sorted(p for p in (SHARED / "brats2018").iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    written = 0
    for i, case in enumerate(cases):
        side, _ = _real_tumour(case)
        donor = cases[(i + 1) % len(cases)].name
        scans = {
            ours: read_scan(case / f"{case.name}_{theirs}.nii.gz")
            for ours, theirs in (("t1", "t1"), ("t1c", "t1ce"), ("t2", "t2"), ("flair", "flair"))
        }
        prompt = f"glioma in the {side} hemisphere, scans at 0, 3 and 6 months"
        spec = {"library_lesion_id": by_case[donor].id}
        try:
            study = longisynth.generate(
                scans, prompt, spec, seed=int(rng.integers(0, 2**31 - 1)), library=lib
            )
        except LesionDoesNotFitError as err:
            print(f"{case.name}: the tumour of {donor} does not fit ({err})", flush=True)
            continue
        longisynth.write_bundle(study, out / f"{case.name}.zip", displacement=False, preview=False)
        print(f"{case.name}.zip: {prompt} with the tumour of {donor}", flush=True)
        written += 1
    return written


def glioma_set(out: Path, seed: int) -> int:
    import longisynth
    from longisynth.errors import LesionDoesNotFitError
    from longisynth.io import read_scan

    rng = np.random.default_rng(seed)
    written = 0
    for case in sorted(p for p in (SHARED / "brats2018").iterdir() if p.is_dir()):
        side, real_mm = _real_tumour(case)
        scans = {
            ours: read_scan(case / f"{case.name}_{theirs}.nii.gz")
            for ours, theirs in (("t1", "t1"), ("t1c", "t1ce"), ("t2", "t2"), ("flair", "flair"))
        }
        grade = "low-grade" if case.name in LGG_CASES else "high-grade"
        lobe = rng.choice(["frontal", "temporal", "parietal"])
        case_seed = int(rng.integers(0, 2**31 - 1))
        size = min(real_mm, GLIOMA_MAX_MM)
        for attempt in (size, size * 0.8, size * 0.6):  # a hemisphere may not hold the real one's size
            prompt = f"{grade} glioma {attempt:.0f} mm in the {side} {lobe} lobe, scans at 0, 3 and 6 months"
            try:
                study = longisynth.generate(scans, prompt, seed=case_seed)
            except LesionDoesNotFitError as err:
                print(f"{case.name}: {attempt:.0f} mm does not fit ({err})", flush=True)
                continue
            longisynth.write_bundle(study, out / f"{case.name}.zip", displacement=False, preview=False)
            print(f"{case.name}.zip: {prompt} (real tumour {real_mm:.0f} mm)", flush=True)
            written += 1
            break
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("family", choices=("lung", "glioma"))
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--per-host", type=int, default=10, help="lung: studies per phantom host (default 10)")
    p.add_argument(
        "--per-real-host",
        type=int,
        default=30,
        help="lung: studies per real host CT (default 30; with 10 the AUC moved ±0.05 between sets)",
    )
    p.add_argument("--phantoms", type=int, default=PHANTOM_HOSTS, help="lung: phantom hosts (default 6)")
    p.add_argument("--seed", type=int, default=20261205)
    p.add_argument("--library", type=Path, default=None, help="copy real lesions from this lesion library")
    p.add_argument(
        "--split-lidc",
        type=Path,
        default=None,
        help="write a patient-level 50/50 split of lidc_nodules here (library_src/, real_test/) and stop",
    )
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        print(f"error: the real data folder {SHARED} is absent", file=sys.stderr)
        return 2
    if args.split_lidc is not None:
        lib_src, test = split_lidc(SHARED / "lidc_nodules", args.split_lidc, args.seed)
        print(f"library source: {lib_src}; real comparison set: {test}")
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    if args.family == "lung":
        n = lung_set(args.output, args.per_host, args.phantoms, args.seed, args.per_real_host, args.library)
    elif args.library is not None:
        n = glioma_library_set(args.output, args.seed, args.library)
    else:
        n = glioma_set(args.output, args.seed)
    print(f"{n} bundles in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
