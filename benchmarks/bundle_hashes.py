"""Hash table of the images a fixed set of studies writes: proof that a refactor changed no output.

    .venv/bin/python benchmarks/bundle_hashes.py -o out/hashes_before.json     # before the change
    .venv/bin/python benchmarks/bundle_hashes.py -o out/hashes_after.json      # after it
    .venv/bin/python benchmarks/bundle_hashes.py --compare out/hashes_before.json out/hashes_after.json

Every case is a (scan, prompt, seed, refiner on/off) on the embedded phantoms and on the real
scans of ``../shared/data`` (skipped, and listed as skipped, where absent): both families, several
orientations and grids, every nodule type, growth laws, juxtapleural placement, gliomas of both
grades with and without a skull. Each bundle is written without preview (the preview is a PNG
whose bytes depend on matplotlib); every member of ``timepoint_NN/`` is hashed **after gunzip**
(the NIfTI header and voxels, so the hash does not depend on the compressor) and the zip's
``metadata.json`` is hashed with ``timings_s`` and ``software`` removed. ``--compare`` prints the
members that differ and exits 1 when any does.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


BRATS_CASE = "brats2018/Brats18_CBICA_AME_1"

# name -> (source: "demo:lung" | "demo:glioma" | a path under ../shared/data, prompt, seed, refine)
CASES: dict[str, tuple[str, str, int, bool]] = {
    "demo_lung_refined": ("demo:lung", "", 0, True),
    "demo_lung": ("demo:lung", "", 3, False),
    "demo_glioma_refined": ("demo:glioma", "", 0, True),
    "demo_glioma_lgg": ("demo:glioma", "low-grade glioma in the right temporal lobe over 2 years", 5, False),
    "phantom_ggo_regressing": (
        "demo:lung",
        "ground-glass nodule 14 mm halving time 200 days, scans at 0, 3 and 6 months",
        7,
        False,
    ),
    "phantom_juxtapleural": (
        "demo:lung",
        "juxtapleural spiculated solid nodule 10 mm in the left lower lobe",
        11,
        False,
    ),
    "chest_crop_part_solid": (
        "totalseg_chest_ct_crop.nii.gz",
        "part-solid lobulated nodule 12 mm in the left lung",
        1,
        False,
    ),
    "abdomen_ct_lung_base": (
        "totalseg_example_ct.nii.gz",
        "solid nodule 8 mm in the right lower lobe",
        2,
        False,
    ),
    "lidc_slab_gompertz": (
        "lidc_slabs/LIDC-IDRI-0002/image.nii.gz",
        "solid nodule 6 mm saturating growth, 4 timepoints",
        4,
        False,
    ),
    "t1_with_skull": ("niivue_chris_t1.nii.gz", "high-grade glioma in the left frontal lobe", 6, False),
    "t1c_skull_stripped": (
        "niivue_mr_gd_skullstripped.nii.gz",
        "high-grade glioma 30 mm in the right parietal lobe",
        8,
        False,
    ),
    "brats_four_contrasts": (BRATS_CASE, "high-grade glioma 40 mm in the right frontal lobe", 9, False),
}


def _inputs(source: str) -> tuple[Any, str, Any]:
    """(scans, default prompt, known brain tissues) of a case's source."""
    from longisynth.demo import demo_input
    from longisynth.io import read_scan

    if source.startswith("demo:"):
        demo = demo_input(source.split(":")[1])
        return demo.scans, demo.prompt, demo.brain_tissues
    if source == BRATS_CASE:
        stem = SHARED / source / Path(source).name
        files = {"t1": "t1", "t1c": "t1ce", "t2": "t2", "flair": "flair"}
        return {ours: read_scan(Path(f"{stem}_{theirs}.nii.gz")) for ours, theirs in files.items()}, "", None
    return read_scan(SHARED / source), "", None


def _member_hashes(data: bytes) -> dict[str, str]:
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in sorted(zf.namelist()):
            raw = zf.read(name)
            if name == "metadata.json":
                meta = json.loads(raw)
                meta.pop("timings_s", None)
                meta.pop("software", None)
                raw = json.dumps(meta, sort_keys=True).encode()
            elif name.endswith(".gz"):
                raw = gzip.decompress(raw)
            elif name.endswith(".png"):
                continue
            out[name] = hashlib.sha256(raw).hexdigest()
    return out


def run_case(name: str) -> dict[str, str]:
    import longisynth

    source, prompt, seed, refine = CASES[name]
    scans, default_prompt, tissues = _inputs(source)
    study = longisynth.generate(
        scans, prompt or default_prompt, seed=seed, refine=refine, brain_tissues=tissues
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = longisynth.write_bundle(study, Path(tmp) / "bundle.zip", preview=False)
        return _member_hashes(path.read_bytes())


def compare(before: dict[str, Any], after: dict[str, Any]) -> int:
    bad = 0
    for case in sorted(set(before) | set(after)):
        b, a = before.get(case), after.get(case)
        if not isinstance(b, dict) or not isinstance(a, dict):
            print(f"{case}: {b!r} vs {a!r}")
            bad += b != a
            continue
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        print(f"{case}: {len(b)} members, " + ("identical" if not diff else f"DIFFER: {', '.join(diff)}"))
        bad += bool(diff)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    p.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    args = p.parse_args(argv)
    if args.compare:
        before, after = (json.loads(f.read_text()) for f in args.compare)
        return compare(before, after)
    table: dict[str, Any] = {}
    for name in args.only or CASES:
        source = CASES[name][0]
        if not source.startswith("demo:") and not (SHARED / source).exists():
            table[name] = "skipped: input absent"
        else:
            table[name] = run_case(name)
        print(f"{name}: {len(table[name]) if isinstance(table[name], dict) else table[name]}", flush=True)
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
