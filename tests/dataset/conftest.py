"""Tiny inputs for dataset tests: thorax phantoms at 96×96×64 voxels of 3.5×3.5×5 mm (≈ 1 s per
case) with their lobe label maps, listed in a manifest CSV with per-scan attributes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from longisynth.io import write_nifti
from longisynth.phantoms.thorax import make_thorax_phantom, thorax_phantom_labels

SHAPE = (96, 96, 64)
SPACING_MM = (3.5, 3.5, 5.0)  # lobes of 300-1200 mL: room for nodules up to ≈ 15 mm


def make_inputs(folder: Path, n_scans: int = 3, corrupt: bool = False) -> Path:
    """Write ``n_scans`` phantoms (+ labels) and ``scans.csv``; with ``corrupt`` a truncated
    NIfTI is listed last. Returns the manifest path."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = thorax_phantom_labels(SHAPE, SPACING_MM)
    lines = ["scan_id,scan,labels,sex,age_band,scanner"]
    for k in range(n_scans):
        hu, affine = make_thorax_phantom(shape=SHAPE, spacing_mm=SPACING_MM, seed=k)
        write_nifti(folder / f"p{k}.nii.gz", hu, affine)
        write_nifti(folder / f"p{k}_seg.nii.gz", labels, affine)
        lines.append(f"p{k},p{k}.nii.gz,p{k}_seg.nii.gz,{'MF'[k % 2]},{50 + 10 * k}-{59 + 10 * k},phantom-A")
    if corrupt:
        data = (folder / "p0.nii.gz").read_bytes()
        (folder / "broken.nii.gz").write_bytes(data[: len(data) // 3])
        lines.append("broken,broken.nii.gz,p0_seg.nii.gz,F,70-79,phantom-B")
    manifest = folder / "scans.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def write_design(folder: Path, manifest: Path, **overrides: object) -> Path:
    """``folder/design.yaml``: a small lung design over ``manifest`` (2–3 timepoints, 10–14 mm)."""
    design: dict[str, object] = {
        "name": "TinyNodules",
        "dataset_id": 501,
        "seed": 11,
        "inputs": {"manifest": str(manifest)},
        "cases_per_scan": 4,
        "spec": {"family": "lung_nodule"},
        "sample": {
            "nodule_type": {"choice": {"solid": 0.6, "part_solid": 0.2, "ground_glass": 0.2}},
            "diameter_mm": {"uniform": [10, 14]},  # ≥ 2 pixels of 3.5 mm at every timepoint
            "location.lung_lobe": "any",
            "n_timepoints": {"integers": [2, 3]},
            "duration_days": {"uniform": [182, 365], "round": 0},
        },
    }
    design.update(overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "design.yaml"
    path.write_text(yaml.safe_dump(design, sort_keys=False))
    return path


def glioma_mri_dataset(root: Path, columns: tuple[str, ...], formats: list[str], **output: object) -> Path:
    """Run a one-case glioma dataset on a 3 mm MNI152 phantom with the MRI ``columns`` of the
    manifest in that order (e.g. ``("flair", "t1c")``) and further ``output`` settings (e.g.
    ``authors``); returns the output folder."""
    from longisynth.dataset.design import load_design
    from longisynth.dataset.runner import run_dataset
    from longisynth.phantoms.brain import make_brain_phantom

    images, affine = make_brain_phantom(columns, seed=3, spacing_mm=3.0)
    (root / "in").mkdir(parents=True)
    for c, arr in images.items():
        write_nifti(root / "in" / f"{c}.nii.gz", arr, affine)
    files = ",".join(f"{c}.nii.gz" for c in columns)
    (root / "in" / "scans.csv").write_text(f"scan_id,{','.join(columns)}\nb0,{files}\n")
    design_path = write_design(
        root / "d",
        root / "in" / "scans.csv",
        cases_per_scan=1,
        spec={"family": "glioma", "grade": "high", "n_timepoints": 2, "duration_days": 60},
        sample={"diameter_mm": {"uniform": [25, 30]}},
        inputs={"manifest": str(root / "in" / "scans.csv"), "modality": "mr"},
        output={"formats": formats, **output},
    )
    report = run_dataset(load_design(design_path), design_path.parent, root / "out")
    assert report.n_ok == 1, report.summary
    return root / "out"


def tree_hashes(root: Path, exclude: tuple[str, ...] = ("run_log.jsonl",)) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path → digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in exclude
    }


@pytest.fixture(scope="session")
def phantom_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with three phantom scans, their label maps and ``scans.csv``."""
    folder = tmp_path_factory.mktemp("dataset_inputs")
    make_inputs(folder)
    return folder
