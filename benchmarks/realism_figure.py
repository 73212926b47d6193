"""Real and synthetic lesions side by side, unlabelled: the figure of the README's "How real is it?".

    .venv/bin/python benchmarks/realism_figure.py --lung out/realism/lung --glioma out/realism/glioma

Row 1: lung nodules (lung window −1000…400 HU, 25 mm field of view, largest axial slice, 0.7 mm
pixels) — real LIDC-IDRI crops and nodules from the bundles, in a seeded random order. Row 2:
gliomas (FLAIR, brain z-scores −3…5, axial slice where the tumour is largest, 1 mm) — the real
tumour of BraTS 2018 brains and the synthetic one grown in the same brains. The key (which panel
is real) is printed and written beside the PNG, so the figure can be read blind first.

The PNG shows real patients' images: it is written to ``out/`` (ignored by git), never committed —
the repository does not redistribute the shared data or anything derived from it.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FOV_PX = 36  # 25 mm at 0.7 mm: inside the smallest LIDC-IDRI crops (≈ 27 mm), so no padding shows
PER_ROW = 8  # 4 real + 4 synthetic


def _fit(thumb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or pad (with the darkest value) a 2D thumbnail to ``size`` × ``size``."""
    out = np.full((size, size), 0.0, dtype=np.float32)
    src = [slice(max(0, (n - size) // 2), max(0, (n - size) // 2) + min(n, size)) for n in thumb.shape]
    dst = [slice(max(0, (size - n) // 2), max(0, (size - n) // 2) + min(n, size)) for n in thumb.shape]
    out[dst[0], dst[1]] = thumb[src[0], src[1]]
    return out


def _pick(lesions: list, real: bool, n: int, lo_mm: float, hi_mm: float, rng: np.random.Generator) -> list:
    """``n`` lesions of one class in the size band, at most one timepoint per study."""
    pool = [x for x in lesions if x.real is real and lo_mm <= x.diameter_mm <= hi_mm]
    chosen, studies = [], set()
    for i in rng.permutation(len(pool)):
        study = pool[i].name.split(":")[0]
        if study not in studies:
            chosen.append(pool[i])
            studies.add(study)
    return chosen[:n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--lung", type=Path, required=True, help="folder of lung bundles (benchmarks/realism_sets.py)"
    )
    p.add_argument(
        "--glioma", type=Path, required=True, help="folder of glioma bundles grown in the BraTS brains"
    )
    p.add_argument("-o", "--output", type=Path, default=Path("out/realism_figure.png"))
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from longisynth.evaluate.cli import find_bundles
    from longisynth.evaluate.realism import collect_lesions

    rng = np.random.default_rng(args.seed)
    rows = []
    for family, real, bundles, band in (
        ("lung_nodule", SHARED / "lidc_nodules", args.lung, (6.0, 16.0)),
        ("glioma", SHARED / "brats2018", args.glioma, (20.0, 90.0)),
    ):
        lesions, _ = collect_lesions(family, real, find_bundles([bundles]))
        chosen = _pick(lesions, True, PER_ROW // 2, *band, rng) + _pick(
            lesions, False, PER_ROW // 2, *band, rng
        )
        rows.append([chosen[i] for i in rng.permutation(len(chosen))])
    fig, axes = plt.subplots(2, PER_ROW, figsize=(1.6 * PER_ROW, 3.6))
    key = []
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c >= len(row):
                continue
            lesion = row[c]
            thumb = _fit(lesion.thumbnail, FOV_PX) if r == 0 else lesion.thumbnail
            ax.imshow(thumb.T, cmap="gray", vmin=0, vmax=1, origin="lower", interpolation="nearest")
            label = f"{string.ascii_uppercase[r * PER_ROW + c]}"
            ax.set_title(label, fontsize=9)
            kind = "real" if lesion.real else "synthetic"
            key.append(f"{label}: {kind} ({lesion.name}, {lesion.diameter_mm:.0f} mm)")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    args.output.with_suffix(".key.txt").write_text("\n".join(key) + "\n", encoding="utf-8")
    print(f"{args.output}\n" + "\n".join(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
