"""Does the learned boundary refiner make inserted lesions look more realistic?

On real scans from ``../shared/data`` (see its README.md; cited below), each case × seed is
generated twice with the same seed, ``refine=False`` and ``refine=True`` — identical except in the
refinement band — and the three metrics of :mod:`longisynth.evaluate.boundary` are computed on the last
timepoint (``--timepoints all``: every timepoint):

* ``seam_ks``: KS distance of gradient magnitude on the band's outer surface vs untouched tissue
  6–12 voxels out (lower = less seam); ``seam_median_ratio``: ratio of their medians (1 = ideal);
* ``nps_l1``: L1 distance between normalised radial noise power spectra of the rewritten band
  outside the lesion and untouched tissue (lower = same texture); ``noise_std_ratio`` (1 = ideal);
* ``patch_auc``: cross-validated AUC of a real-vs-boundary patch classifier (0.5 = ideal).

A third column, "input floor", scores the *unmodified input* with the same lesion mask: what an
invisible insertion would get (the metrics' baseline on that anatomy — patch AUC, for instance,
is above 0.5 there because one contiguous region differs from another by chance and anatomy).

Data: TotalSegmentator test files (Apache-2.0; Wasserthal et al., Radiology AI 2023) for CT;
niivue demo images for MR (skull-stripped contrast-enhanced T1; see shared/data/README.md for
per-image terms). Timing is reported, never asserted.

    .venv/bin/python benchmarks/bench_realism.py [--quick] [--out results.md|results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MARGIN_VOX = 18  # context around the study's box (voxels): the metrics' reference shell reaches 12 + 5


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    prompt: str
    seeds: tuple[int, ...]
    contrast: str | None = None


CT_FILE = "totalseg_chest_ct_crop.nii.gz"
MR_FILE = "niivue_mr_gd_skullstripped.nii.gz"


def cases(quick: bool, ct_seeds: int, mr_seeds: int, mr_file: str) -> list[Case]:
    ct = tuple(range(1, 1 + (2 if quick else ct_seeds)))
    mr = tuple(range(1, 1 + (1 if quick else mr_seeds)))
    out = [
        Case(
            "CT solid nodule",
            CT_FILE,
            "solid nodule in the right lung, 12 mm, scans at 0, 6 and 12 months",
            ct,
        ),
        Case(
            "CT part-solid nodule",
            CT_FILE,
            "part-solid nodule in the left lung, 15 mm, scans at 0, 6 and 12 months",
            ct,
        ),
        Case(
            "CT ground-glass nodule",
            CT_FILE,
            "ground-glass nodule in the right lung, 14 mm, scans at 0, 6 and 12 months",
            ct,
        ),
        Case(
            "MR low-grade glioma (T1)",
            mr_file,
            "low-grade glioma in the right frontal lobe, 3 timepoints over 1 year",
            mr,
            contrast="t1",
        ),
    ]
    return [out[0], out[3]] if quick else out


# Metric → (key in the record, how "better" is judged: distance of the value to this target).
METRICS: dict[str, tuple[str, float]] = {
    "seam_ks": ("seam_ks", 0.0),
    "seam_median_ratio": ("seam_median_ratio", 1.0),
    "nps_l1": ("nps_l1", 0.0),
    "noise_std_ratio": ("noise_std_ratio", 1.0),
    "patch_auc": ("patch_auc", 0.5),
}


def _region(study: Any, margin: int) -> tuple[slice, slice, slice]:
    shape = study.geometry.shape
    return tuple(
        slice(max(0, s.start - margin), min(n, s.stop + margin))
        for s, n in zip(study.box.slices, shape, strict=True)
    )  # type: ignore[return-value]


def _values(scan: Any, raw: np.ndarray) -> np.ndarray:
    return raw.astype(np.float64) * float(scan.slope) + float(scan.inter)


def score(image: np.ndarray, lesion: np.ndarray, spacing: tuple[float, ...], seed: int) -> dict[str, float]:
    from longisynth.evaluate.boundary import realism_metrics

    m = realism_metrics(image, lesion, spacing, seed=seed)
    return {
        "seam_ks": m["seam_ks"],
        "seam_median_ratio": m["seam"]["median_ratio"],
        "nps_l1": m["nps_l1"],
        "noise_std_ratio": m["nps"]["std_ratio"],
        "patch_auc": m["patch_auc"],
    }


def run_case(case: Case, scan: Any, timepoints: str, margin: int) -> tuple[list[dict[str, Any]], list[str]]:
    import longisynth
    from longisynth.errors import LesionDoesNotFitError
    from longisynth.refine.patches import band_of

    records: list[dict[str, Any]] = []
    notes: list[str] = []
    for seed in case.seeds:
        studies = {}
        try:
            for refine in (False, True):
                t0 = time.perf_counter()
                studies[refine] = longisynth.generate(
                    scan, case.prompt, seed=seed, refine=refine, contrast=case.contrast
                )
                studies[refine].extra["_wall_s"] = time.perf_counter() - t0
        except LesionDoesNotFitError as exc:
            notes.append(f"{case.name}, seed {seed}: skipped (LesionDoesNotFitError: {exc})")
            continue
        off, on = studies[False], studies[True]
        contrast = off.contrasts[0]
        region = _region(off, margin)
        spacing = tuple(float(s) for s in off.geometry.spacing_mm)
        refiner = on.extra.get("refiner", {})
        indices = range(len(off.timepoints)) if timepoints == "all" else [len(off.timepoints) - 1]
        for i in indices:
            lesion = off.mask(i)[region] > 0
            if not np.array_equal(lesion, on.mask(i)[region] > 0):
                notes.append(f"{case.name}, seed {seed}, timepoint {i}: masks differ between runs")
            img_off = _values(scan, off.image(i, contrast)[region])
            img_on = _values(scan, on.image(i, contrast)[region])
            img_in = _values(scan, scan.raw[region])
            changed = img_off != img_on
            delta = (img_on - img_off)[band_of(lesion)]
            rec: dict[str, Any] = {
                "case": case.name,
                "seed": seed,
                "timepoint": i,
                "lesion_voxels": int(lesion.sum()),
                "band_voxels": int(band_of(lesion).sum()),
                "changed_voxels": int(changed.sum()),
                "changed_outside_band": int((changed & ~band_of(lesion)).sum()),
                "band_delta_mean": float(delta.mean()) if delta.size else 0.0,
                "band_delta_sd": float(delta.std()) if delta.size else 0.0,
                "refiner_status": refiner.get("status", "?"),
                "refiner_provider": refiner.get("provider", ""),
                "refiner_model": refiner.get("model", ""),
                "refiner_reason": refiner.get("reason", ""),
                "refine_s": float(on.timings_s.get("refine", 0.0)),
                "generate_s_off": float(off.extra["_wall_s"]),
                "generate_s_on": float(on.extra["_wall_s"]),
                "off": score(img_off, lesion, spacing, seed),
                "on": score(img_on, lesion, spacing, seed),
                "floor": score(img_in, lesion, spacing, seed),
            }
            records.append(rec)
        print(
            f"  {case.name} seed {seed}: status={refiner.get('status')} "
            f"refine={on.timings_s.get('refine', 0):.2f}s "
            f"off={json.dumps({k: round(v, 3) for k, v in records[-1]['off'].items()})} "
            f"on={json.dumps({k: round(v, 3) for k, v in records[-1]['on'].items()})}",
            file=sys.stderr,
            flush=True,
        )
    return records, notes


def _ms(values: list[float], digits: int = 3) -> str:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return "—"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in dict.fromkeys(r["case"] for r in records):
        recs = [r for r in records if r["case"] == name]
        statuses = sorted({r["refiner_status"] for r in recs})
        providers = sorted({r["refiner_provider"] for r in recs if r["refiner_provider"]})
        status = "/".join(statuses) + (f" ({', '.join(providers)})" if providers else "")
        for metric, (key, target) in METRICS.items():
            off = [r["off"][key] for r in recs]
            on = [r["on"][key] for r in recs]
            better = sum(abs(b - target) < abs(a - target) for a, b in zip(off, on, strict=True))
            same = sum(a == b for a, b in zip(off, on, strict=True))
            rows.append(
                {
                    "case": name,
                    "metric": metric,
                    "n": len(recs),
                    "seeds": sorted({r["seed"] for r in recs}),
                    "off": _ms(off),
                    "on": _ms(on),
                    "floor": _ms([r["floor"][key] for r in recs]),
                    "better": f"{better}/{len(recs)}" + (f" ({same} equal)" if same else ""),
                    "status": status,
                    "refine_s": _ms([r["refine_s"] for r in recs], 2),
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], notes: list[str], header: str) -> str:
    lines = [
        header,
        "",
        "| case (n) | metric (ideal) | without refiner | with refiner | input floor "
        "| refiner closer to ideal | refiner status (provider) | refine wall time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ideal = {k: t for k, (_, t) in METRICS.items()}
    for r in rows:
        lines.append(
            f"| {r['case']} ({r['n']}) | {r['metric']} ({ideal[r['metric']]:g}) | {r['off']} | {r['on']} "
            f"| {r['floor']} | {r['better']} | {r['status']} | {r['refine_s']} |"
        )
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the shared sample scans")
    ap.add_argument("--out", type=Path, help="write the table (.md) or all records (.json) here")
    ap.add_argument("--quick", action="store_true", help="2 CT seeds, 1 MR seed, one prompt per modality")
    ap.add_argument("--ct-seeds", type=int, default=4)
    ap.add_argument("--mr-seeds", type=int, default=2)
    ap.add_argument("--mr-file", default=MR_FILE, help=f"healthy brain MR in --data (default {MR_FILE})")
    ap.add_argument("--timepoints", choices=("last", "all"), default="last")
    ap.add_argument("--margin", type=int, default=MARGIN_VOX, help="context around the lesion box, voxels")
    args = ap.parse_args(argv)

    chosen = cases(args.quick, args.ct_seeds, args.mr_seeds, args.mr_file)
    missing = sorted({c.file for c in chosen if not (args.data / c.file).is_file()})
    skipped = [f"sample data {m} not found in {args.data}: its cases skipped" for m in missing]
    chosen = [c for c in chosen if c.file not in missing]
    if not chosen:
        print(
            f"bench_realism: skipped — sample data {', '.join(missing)} not found in {args.data} "
            "(see shared/data/README.md)"
        )
        return 0
    for line in skipped:
        print(f"bench_realism: {line}", file=sys.stderr)

    import longisynth

    records: list[dict[str, Any]] = []
    notes: list[str] = list(skipped)
    scans: dict[str, Any] = {}
    for case in chosen:
        if case.file not in scans:
            scans[case.file] = longisynth.read_scan(args.data / case.file)
        print(f"{case.name}: {case.prompt!r}, seeds {list(case.seeds)}", file=sys.stderr, flush=True)
        recs, case_notes = run_case(case, scans[case.file], args.timepoints, args.margin)
        records += recs
        notes += case_notes
    reasons = sorted({r["refiner_reason"] for r in records if r["refiner_status"] != "applied"})
    notes += [f"refiner not applied: {r}" for r in reasons if r]
    models = sorted({r["refiner_model"] for r in records if r["refiner_model"]})
    for name in dict.fromkeys(r["case"] for r in records):
        recs = [r for r in records if r["case"] == name]
        if any(r["changed_voxels"] for r in recs):
            col = {k: [r[k] for r in recs] for k in recs[0] if k.startswith(("changed", "band"))}
            notes.append(
                f"{name}: refiner rewrote {_ms(col['changed_voxels'], 0)} voxels per image "
                f"(band {_ms(col['band_voxels'], 0)}); with − without in the band: mean "
                f"{_ms(col['band_delta_mean'], 1)}, sd {_ms(col['band_delta_sd'], 1)} (HU for CT)"
            )
    leaks = sum(r["changed_outside_band"] for r in records)
    if leaks:
        notes.append(f"{leaks} voxels changed by the refiner OUTSIDE the band (expected 0)")
    which = "last timepoint" if args.timepoints == "last" else "all timepoints"
    header = (
        f"Realism with vs without the learned refiner — {which}; mean ± sd over seeds; "
        f"model: {', '.join(models) or 'none'}; {platform.machine()}, Python {platform.python_version()}"
    )
    rows = summarise(records)
    text = markdown(rows, notes, header)
    print(text)
    if args.out:
        if args.out.suffix.lower() == ".json":
            args.out.write_text(json.dumps({"rows": rows, "records": records, "notes": notes}, indent=1))
        else:
            args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
