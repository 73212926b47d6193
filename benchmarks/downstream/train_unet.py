"""Downstream utility: does a segmenter trained on longisynth lesions segment unseen lesions?

    .venv/bin/python benchmarks/downstream/train_unet.py                  # synthetic → synthetic
    .venv/bin/python benchmarks/downstream/train_unet.py --real-test /data/Dataset501_LIDC
    .venv/bin/python benchmarks/downstream/train_unet.py --quick          # a minute, smaller

(a) **Synthetic → held-apart synthetic.** Training lesions: solid and part-solid nodules,
smooth or lobulated, 6–20 mm, in the thorax phantom instance 0 (seeds 0…N−1). Test lesions:
*different* phantom instance (1), *different* seeds (1000…), and *different* shapes and types —
spiculated nodules and ground-glass nodules the training set never had. Every timepoint of a
study is one sample; a 32³ patch (voxels of the phantom, 1.4×1.4×2 mm) is cut around the lesion
with a random offset (the lesion is not always centred). A small MONAI 3D U-Net (channels
8-16-32-64, ≈ 0.3 M parameters; the shared harness ``common.py``) is trained with Dice +
cross-entropy on the CPU, seeded;
reported: Dice per test group, mean ± sd.

(b) **Synthetic → real.** ``--real-test DIR`` evaluates the same trained network on a labelled
real test set in nnU-Net v2 raw layout (``DIR/imagesTs/*_0000.nii.gz`` + ``DIR/labelsTs/*.nii.gz``,
or imagesTr/labelsTr): each connected lesion component gives a 32³ patch after resampling the
scan to the phantom's 1.4×1.4×2 mm grid; Dice is computed in the patch. LIDC-IDRI/LUNA16 nodules
converted to nnU-Net layout (e.g. with the nnU-Net conversion scripts) work as is. For real
lesions in the LIDC-IDRI crop or BraTS layouts, and for gliomas, use ``synthetic_vs_real.py``
(synthetic vs real vs both, tested on real lesions). Nothing is downloaded: bring the data.

Reports, never asserts. Needs ``pip install -e '.[train]'`` (torch, MONAI).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: the shared harness

from downstream.common import NetConfig, Sample, dice, predict, train

PATCH = 32
SPACING_MM = (1.4, 1.4, 2.0)
HU_WINDOW = (-1000.0, 400.0)


def _sample(image: NDArray, mask: NDArray, group: str) -> Sample:
    """A 32³ patch: HU scaled to 0…1 over HU_WINDOW (one channel), lesion (any component) = 1."""
    return Sample(_normalise(image)[None], (mask > 0).astype(np.int64), group, group)


def _normalise(hu: NDArray) -> NDArray[np.float32]:
    lo, hi = HU_WINDOW
    return np.clip((hu.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _patch_around(
    volume: NDArray, mask: NDArray, rng: np.random.Generator, jitter: int = 6
) -> tuple[NDArray, NDArray] | None:
    idx = np.argwhere(mask)
    if len(idx) == 0:
        return None
    centre = np.round(idx.mean(axis=0)).astype(int) + rng.integers(-jitter, jitter + 1, 3)
    start = np.clip(centre - PATCH // 2, 0, np.asarray(volume.shape) - PATCH)
    sl = tuple(slice(int(s), int(s) + PATCH) for s in start)
    return volume[sl], mask[sl]


def synthetic_samples(
    phantom_seed: int, seeds: range, prompts: list[tuple[str, str]], rng: np.random.Generator
) -> list[Sample]:
    """Every timepoint of a study per (seed, prompt); ``prompts`` = [(group, prompt)]."""
    import longisynth
    from longisynth.errors import LesionDoesNotFitError
    from longisynth.io.scan import Scan
    from longisynth.phantoms.thorax import make_thorax_phantom

    hu, affine = make_thorax_phantom(seed=phantom_seed)
    scan = Scan.from_array(hu, affine, "thorax.nii.gz")
    out: list[Sample] = []
    for seed in seeds:
        group, prompt = prompts[seed % len(prompts)]
        try:
            study = longisynth.generate(scan, prompt, seed=seed, refine=False)
        except LesionDoesNotFitError:
            continue
        for i in range(len(study.timepoints)):
            got = _patch_around(study.image(i), study.mask(i) > 0, rng)
            if got is not None:
                out.append(_sample(got[0], got[1], group))
    return out


def real_samples(folder: Path, rng: np.random.Generator) -> list[Sample]:
    """Lesion patches of an nnU-Net raw dataset's test (or training) cases, at the phantom spacing."""
    import nibabel as nib

    images = folder / "imagesTs" if (folder / "imagesTs").is_dir() else folder / "imagesTr"
    labels = folder / "labelsTs" if (folder / "labelsTs").is_dir() else folder / "labelsTr"
    out: list[Sample] = []
    for img_path in sorted(images.glob("*_0000.nii.gz")):
        lab_path = labels / img_path.name.replace("_0000.nii.gz", ".nii.gz")
        if not lab_path.is_file():
            continue
        img = nib.as_closest_canonical(nib.load(img_path))
        lab = nib.as_closest_canonical(nib.load(lab_path))
        zoom = np.asarray(img.header.get_zooms()[:3]) / np.asarray(SPACING_MM)
        hu = ndimage.zoom(np.asarray(img.dataobj, dtype=np.float32), zoom, order=1)
        mask = ndimage.zoom((np.asarray(lab.dataobj) > 0).astype(np.uint8), zoom, order=0)
        components, n = ndimage.label(mask)
        for k in range(1, n + 1):
            got = _patch_around(hu, components == k, rng, jitter=0)
            if got is not None and got[0].shape == (PATCH,) * 3:
                out.append(_sample(got[0], got[1], "real"))
    return out


def config(steps: int) -> NetConfig:
    """The small 3D U-Net of this benchmark (8-16-32-64 channels), batch 8, flips and quarter turns."""
    return NetConfig(
        in_channels=1, classes=2, patch=(PATCH,) * 3, channels=(8, 16, 32, 64), batch=8, steps=steps
    )


def dice_scores(net: Any, samples: list[Sample]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for s in samples:
        out.setdefault(s.group, []).append(dice(predict(net, s.image, (PATCH,) * 3) > 0, s.labels > 0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--train-studies", type=int, default=48)
    parser.add_argument("--test-studies", type=int, default=12)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-test", type=Path, help="nnU-Net raw dataset folder with labelled real cases")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_studies, args.test_studies, args.steps = 8, 4, 120
    if args.real_test is not None and not args.real_test.is_dir():
        print(f"error: --real-test {args.real_test} is not a folder", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    train_prompts = [
        ("solid smooth", "smooth solid nodule 12 mm, scans at 0, 6 and 12 months"),
        ("solid lobulated", "lobulated solid nodule 18 mm, scans at 0, 6 and 12 months"),
        ("part-solid", "part-solid nodule 15 mm, scans at 0, 6 and 12 months"),
        ("solid small", "smooth solid nodule 8 mm, scans at 0, 6 and 12 months"),
    ]
    test_prompts = [
        ("spiculated solid (unseen shape)", "spiculated solid nodule 14 mm, scans at 0, 6 and 12 months"),
        ("ground-glass (unseen type)", "ground-glass nodule 16 mm, scans at 0, 6 and 12 months"),
    ]
    train_set = synthetic_samples(0, range(args.train_studies), train_prompts, rng)
    test_set = synthetic_samples(1, range(1000, 1000 + args.test_studies), test_prompts, rng)
    t_data = time.perf_counter() - t0
    print(f"{len(train_set)} training / {len(test_set)} test patches in {t_data:.0f} s", file=sys.stderr)
    net = train(train_set, config(args.steps), args.seed, lambda m: print(m, file=sys.stderr, flush=True))
    t_train = time.perf_counter() - t0 - t_data
    scores = dice_scores(net, test_set)
    seen = dice_scores(net, train_set)
    scores["training lesions, all groups (seen)"] = [v for values in seen.values() for v in values]
    if args.real_test is not None:
        scores.update(dice_scores(net, real_samples(args.real_test, rng)))
    print(f"\n{len(train_set)} training patches, {args.steps} steps", end="")
    print(f"; data {t_data:.0f} s, training {t_train:.0f} s\n")
    print("| test group | patches | Dice mean ± sd |")
    print("|---|---|---|")
    for group, values in scores.items():
        if values:
            print(f"| {group} | {len(values)} | {np.mean(values):.3f} ± {np.std(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
