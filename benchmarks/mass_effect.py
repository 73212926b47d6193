"""Mass effect of real and synthetic gliomas: midline shift and lateral-ventricle asymmetry.

    .venv/bin/python benchmarks/mass_effect.py                 # real BraTS 2018 + phantom sizes, ≈ 4 min
    .venv/bin/python benchmarks/mass_effect.py --real-only     # the 7 BraTS brains only

Both sides are measured the same way, from the image alone (no ground-truth tissue maps):
``brain_anatomy`` on the T1 (segmentation + affine MNI registration), the brain's own
midsagittal surface (:func:`longisynth.anatomy.midline.estimate_midline`), and

- **midline shift**: the 95th percentile of |m(y, z)| over the columns where the midline was
  found (MNI mm; 0 for a symmetric brain on the registered plane);
- **ventricle ratio**: CSF (probability > 0.5, tumour voxels excluded) in a box around the lateral
  ventricles (MNI |x| < 30, −45 < y < 30, 0 < z < 35 mm; not within 5 mm of the tumour, where
  infiltrated tissue is dark on T1 too) on the tumour's side of the found midline, over the same
  on the other side: below 1 when the tumour compresses its own ventricle.

**Real**: the 7 BraTS 2018 brains with their tumours (``../shared/data/brats2018``; whole tumour
= every BraTS label). **Synthetic**: one high-grade glioma per size on the MNI152 brain phantom
(T1 only, 0 and 3 months), left frontal / right parietal alternately, measured on the last
timepoint's T1 as written. The phantom without a tumour gives the baseline.

Nothing from the shared data is written; the script prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VENTRICLE_BOX_MNI = ((-30.0, 30.0), (-45.0, 30.0), (0.0, 35.0))  # x, y, z ranges, mm
SIZES_MM = (40.0, 55.0, 70.0, 85.0)
TUMOUR_MARGIN_MM = 5.0


@dataclass
class MassEffect:
    """One brain's measures (see the module docstring)."""

    name: str
    tumour_ml: float
    shift_p95_mm: float
    ventricle_ratio: float


def measure(t1: NDArray[np.floating], geometry: object, tumour: NDArray[np.bool_], name: str) -> MassEffect:
    """Midline shift and ventricle ratio of a T1 with a tumour mask on its grid."""
    from longisynth.anatomy import midline as ml
    from longisynth.anatomy.brain import brain_anatomy

    anatomy = brain_anatomy(t1, geometry, "t1")  # type: ignore[arg-type]
    v2m = ml.vox_to_mni(anatomy.geometry.affine, anatomy.mni_to_scan)
    surface = ml.estimate_midline(anatomy.gm + anatomy.wm, anatomy.brain, v2m)
    shape = anatomy.brain.shape
    grids = np.indices(shape, dtype=np.float32).reshape(3, -1)
    mni = (v2m[:3, :3].astype(np.float32) @ grids + v2m[:3, 3:4].astype(np.float32)).reshape(3, *shape)
    lateral = mni[0] - surface.at(mni[1].astype(np.float64), mni[2].astype(np.float64))
    box = np.ones(shape, dtype=bool)
    for axis, (lo, hi) in enumerate(VENTRICLE_BOX_MNI):
        box &= (mni[axis] > lo) & (mni[axis] < hi)
    # Beside a tumour, infiltrated tissue dark on T1 would read as CSF: leave out 5 mm around it.
    near = ndimage.distance_transform_edt(~tumour, sampling=anatomy.geometry.spacing_mm) <= TUMOUR_MARGIN_MM
    csf = (anatomy.csf > 0.5) & anatomy.brain & box & ~near
    tumour_side = float(np.mean(lateral[tumour])) if tumour.any() else 1.0
    ipsi = csf & (np.sign(lateral) == np.sign(tumour_side))
    contra = csf & (np.sign(lateral) == -np.sign(tumour_side))
    ratio = float(ipsi.sum()) / max(float(contra.sum()), 1.0)
    volume = float(tumour.sum()) * float(np.prod(anatomy.geometry.spacing_mm)) / 1000.0
    return MassEffect(name, volume, surface.shift_p95_mm, ratio)


def real_brains() -> list[MassEffect]:
    """The 7 BraTS 2018 brains with their own tumours."""
    from longisynth.io import read_scan

    out = []
    for case in sorted(p for p in (SHARED / "brats2018").iterdir() if p.is_dir()):
        t1 = read_scan(case / f"{case.name}_t1.nii.gz")
        seg = read_scan(case / f"{case.name}_seg.nii.gz").values() > 0
        out.append(measure(t1.values(), t1.geometry, seg, case.name))
        print(f"  {out[-1]}", file=sys.stderr, flush=True)
    return out


def synthetic_gliomas(sizes: tuple[float, ...], seed: int, host: str) -> list[MassEffect]:
    """High-grade gliomas of each size on a healthy T1 (``phantom``: the MNI152 brain phantom;
    ``chris``: the real T1 with skull of ../shared/data), measured on the last T1."""
    import longisynth
    from longisynth.geometry import Geometry
    from longisynth.io import read_scan
    from longisynth.io.scan import Scan
    from longisynth.phantoms.brain import make_brain_phantom

    if host == "phantom":
        images, affine = make_brain_phantom(("t1",), seed=seed)
        scan = Scan.from_array(images["t1"], affine)
    else:
        scan = read_scan(SHARED / "niivue_chris_t1.nii.gz")
    geometry: Geometry = scan.geometry
    out = [measure(scan.values(), geometry, np.zeros(geometry.shape, bool), f"{host}, no tumour")]
    print(f"  {out[-1]}", file=sys.stderr, flush=True)
    for i, size in enumerate(sizes):
        where = "left frontal" if i % 2 == 0 else "right parietal"
        prompt = f"high-grade glioma {size:.0f} mm in the {where} lobe, scans at 0 and 3 months"
        study = longisynth.generate(scan, prompt, seed=seed + i, contrast="t1", refine=False)
        last = len(study.timepoints) - 1
        tumour = study.mask(last) > 0
        name = f"{host}: ours {size:.0f} mm, {where}"
        out.append(measure(study.image(last, "t1"), geometry, tumour, name))
        print(f"  {out[-1]}", file=sys.stderr, flush=True)
    return out


def table(rows: list[MassEffect]) -> str:
    lines = ["| brain | whole tumour, ml | midline shift p95, mm | ventricle ratio (tumour side / other) |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r.name} | {r.tumour_ml:.0f} | {r.shift_p95_mm:.1f} | {r.ventricle_ratio:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-only", action="store_true", help="measure the BraTS brains only")
    parser.add_argument("--phantom-only", action="store_true", help="measure the phantom gliomas only")
    parser.add_argument("--sizes", type=float, nargs="+", default=list(SIZES_MM), help="glioma sizes, mm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hosts",
        nargs="+",
        default=["phantom", "chris"],
        choices=["phantom", "chris"],
        help="healthy brains to grow on: the MNI152 phantom, the real T1 niivue_chris_t1",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows: list[MassEffect] = []
    if not args.phantom_only:
        if not (SHARED / "brats2018").is_dir():
            print(f"no BraTS 2018 brains in {SHARED}; measuring the phantom only", file=sys.stderr)
        else:
            rows += real_brains()
    if not args.real_only:
        for host in args.hosts:
            rows += synthetic_gliomas(tuple(args.sizes), args.seed, host)
    print(table(rows))
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
