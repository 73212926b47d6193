"""Measure glioma appearance and shape on real BraTS cases; write the engine's calibration JSON.

Source: two BraTS 2015 training cases as shipped with the DeepMedic examples (``brats2015_pat0005``,
``brats2015_pat0006`` in ``../shared/data``; CC BY-NC-SA 3.0). Cite: Menze B. H. et al., "The
Multimodal Brain Tumor Image Segmentation Benchmark (BRATS)", IEEE Trans. Med. Imaging 34(10):
1993-2024, 2015. The images never ship with longisynth; only the summary numbers below do.

The FLAIR and T1c files are z-scored inside the brain (values in standard deviations of the brain).
BraTS 2015 labels: 1 necrosis, 2 oedema, 3 non-enhancing tumour, 4 enhancing tumour.

Run: ``.venv/bin/python benchmarks/calibrate_glioma.py [DATA_DIR]``; it rewrites
``longisynth/appearance/brats_calibration.json`` (deterministic: no randomness).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "longisynth" / "appearance" / "brats_calibration.json"
CASES = ("brats2015_pat0005", "brats2015_pat0006")
# BraTS 2015 label -> region name used by the engine.
REGIONS_2015 = {1: "necrosis", 2: "oedema", 3: "non_enhancing", 4: "enhancing"}
FILES = {"flair": "Flair_subtrMeanDivStd.nii.gz", "t1c": "T1c_subtrMeanDivStd.nii.gz"}
REFERENCE = (
    "Menze B. H. et al., The Multimodal Brain Tumor Image Segmentation Benchmark (BRATS), "
    "IEEE Trans. Med. Imaging 34(10):1993-2024, 2015; cases pat0005 and pat0006 of BraTS 2015 "
    "training as shipped with the DeepMedic examples (CC BY-NC-SA 3.0)"
)

REFERENCE_2018 = (
    "BraTS 2018 training cases in ../shared/data/brats2018 (Menze et al., IEEE TMI 2015; Bakas et al., "
    "Sci Data 2017 and arXiv 1811.02629), research use under the BraTS data terms; medians over the "
    "high-grade cases, brain z-scored (non-zero voxels of the skull-stripped images)"
)
LGG_2018 = ("Brats18_TCIA10_628_1",)


def _stats(values: NDArray[np.float32]) -> dict[str, float]:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {"p10": round(float(p10), 3), "median": round(float(p50), 3), "p90": round(float(p90), 3)}


def _shape_stats(labels: NDArray[np.uint8], spacing: tuple[float, ...]) -> dict[str, float]:
    """Enhancing rim thickness and oedema margin (mm), medians over surface voxels."""
    core = np.isin(labels, (1, 3, 4))
    whole = labels > 0
    necrosis = labels == 1
    enhancing = labels == 4
    # Rim thickness: from the inner surface of the enhancing rim (enhancing voxels touching necrosis)
    # to the outside of the tumour core.
    dist_out_core = ndimage.distance_transform_edt(core, sampling=spacing)
    inner = enhancing & ndimage.binary_dilation(necrosis)
    # Oedema margin: from the outer surface of the whole tumour to the nearest core voxel.
    dist_to_core = ndimage.distance_transform_edt(~core, sampling=spacing)
    outer = whole & ~ndimage.binary_erosion(whole)
    return {
        "rim_thickness_mm": round(float(np.median(dist_out_core[inner])), 3),
        "oedema_margin_mm": round(float(np.median(dist_to_core[outer])), 3),
    }


def measure_case(folder: Path) -> dict[str, Any]:
    """Per-region intensity statistics (brain z) and shape statistics of one BraTS case."""
    lab_img = nib.Nifti1Image.from_filename(folder / "OTMultiClass.nii.gz")
    labels = np.asarray(lab_img.dataobj).astype(np.uint8)
    brain = np.asarray(nib.Nifti1Image.from_filename(folder / "brainmask.nii.gz").dataobj) > 0
    spacing = tuple(float(s) for s in lab_img.header.get_zooms()[:3])
    out: dict[str, Any] = {"n_voxels": {}, "shape": _shape_stats(labels, spacing)}
    for lab, name in REGIONS_2015.items():
        out["n_voxels"][name] = int(np.sum(labels == lab))
    for contrast, fname in FILES.items():
        z = np.asarray(nib.Nifti1Image.from_filename(folder / fname).dataobj, dtype=np.float32)
        per: dict[str, Any] = {"healthy_brain": _stats(z[brain & (labels == 0)])}
        for lab, name in REGIONS_2015.items():
            if np.any(labels == lab):
                per[name] = _stats(z[labels == lab])
        out[contrast] = per
    return out


def summarise(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Targets: mean of the per-case medians; the range is [min p10, max p90] over cases."""
    targets: dict[str, Any] = {}
    for contrast in FILES:
        targets[contrast] = {}
        for region in ("healthy_brain", *REGIONS_2015.values()):
            rows = [c[contrast][region] for c in cases.values() if region in c[contrast]]
            medians = [r["median"] for r in rows]
            targets[contrast][region] = {
                "median": round(float(np.mean(medians)), 3),
                "median_min": min(medians),
                "median_max": max(medians),
                "p10": min(r["p10"] for r in rows),
                "p90": max(r["p90"] for r in rows),
            }
    shape: dict[str, float] = {}
    for key in ("rim_thickness_mm", "oedema_margin_mm"):
        vals = [c["shape"][key] for c in cases.values()]
        shape[key] = round(float(np.mean(vals)), 3)
        shape[key.replace("_mm", "_min_mm")] = min(vals)
        shape[key.replace("_mm", "_max_mm")] = max(vals)
    return {"targets": targets, "shape": shape}


def measure_brats2018(folder: Path) -> dict[str, Any]:
    """Per-label appearance of the high-grade BraTS 2018 cases, all four contrasts (brain z-scores).

    For each contrast and label (1 necrotic / non-enhancing core, 2 oedema, 4 enhancing): the median
    over cases of the label's median, 10th and 90th percentiles and standard deviation, and of the
    *fine* standard deviation (the image minus its 2 mm Gaussian blur, inside the label eroded by
    2 voxels: texture at the scale of a few voxels, noise included). Only these medians over cases
    are written; the lower-grade case (little enhancement) is left out.
    """
    regions = {1: "core", 2: "oedema", 4: "enhancing"}
    rows: dict[str, dict[str, list[list[float]]]] = {}
    cases = sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in LGG_2018)
    for case in cases:
        seg = np.asarray(nib.Nifti1Image.from_filename(next(case.glob("*_seg.nii.gz"))).dataobj)
        for contrast, theirs in (("t1", "t1"), ("t1c", "t1ce"), ("t2", "t2"), ("flair", "flair")):
            image = nib.Nifti1Image.from_filename(next(case.glob(f"*_{theirs}.nii.gz")))
            x = np.asarray(image.dataobj, dtype=np.float64)
            brain = x != 0
            z = np.where(brain, (x - x[brain].mean()) / x[brain].std(), 0.0)
            fine = z - ndimage.gaussian_filter(z, 2.0)
            for lab, name in regions.items():
                sel = seg == lab
                inner = ndimage.binary_erosion(sel, iterations=2)
                if sel.sum() < 50 or inner.sum() < 20:
                    continue
                v = z[sel]
                p10, p50, p90 = np.percentile(v, [10, 50, 90])
                rows.setdefault(contrast, {}).setdefault(name, []).append(
                    [float(p50), float(p10), float(p90), float(v.std()), float(fine[inner].std())]
                )
    keys = ("median", "p10", "p90", "sd", "fine_sd")
    targets: dict[str, dict[str, dict[str, float]]] = {}
    for c, per in rows.items():
        for r, vals in per.items():
            medians = np.median(np.asarray(vals), axis=0)
            targets.setdefault(c, {})[r] = {k: round(float(v), 3) for k, v in zip(keys, medians, strict=True)}
    return {"cases": len(cases), "targets": targets}


def main(data_dir: Path = DEFAULT_DATA) -> dict[str, Any]:
    cases = {name: measure_case(data_dir / name) for name in CASES}
    result = {
        "reference": REFERENCE,
        "z_definition": "intensity in standard deviations of the brain, as shipped (brain z-score)",
        "labels_2015": {str(k): v for k, v in REGIONS_2015.items()},
        "cases": cases,
        **summarise(cases),
        "brats2018_high_grade": {"reference": REFERENCE_2018, **measure_brats2018(data_dir / "brats2018")},
    }
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


if __name__ == "__main__":
    res = main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)
    print(json.dumps({"targets": res["targets"], "shape": res["shape"]}, indent=1))
