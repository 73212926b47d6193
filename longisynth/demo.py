"""Embedded default scans: the procedural thorax CT phantom and the MNI152-derived brain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from longisynth.io.scan import Scan

DEMO_PROMPTS = {
    "lung": "lobulated solid nodule in the right upper lobe, 14 mm, doubling time 200 days, "
    "scans at 0, 3, 6 and 12 months",
    "glioma": "high-grade glioma in the left frontal lobe, 45 mm, 4 timepoints over 90 days",
}


@dataclass(frozen=True)
class DemoInput:
    """Scans of the embedded default plus what is known about them (so no segmentation is needed)."""

    scans: dict[str, Scan]
    brain_tissues: dict[str, NDArray[np.float32]] | None
    prompt: str


def demo_input(kind: str = "lung", seed: int = 0, size: str = "full") -> DemoInput:
    """The embedded default scan for ``kind`` ("lung" or "glioma").

    Args:
        seed: seed of the phantom's own noise texture (not of the lesion).
        size: "full" (the demo's grid: thorax 256×256×180 at 1.4×1.4×2 mm, brain 1 mm) or "small"
            (a quick grid for tests and trials: thorax 128×128×90 at 2.8×2.8×4 mm, brain 3 mm).
    """
    if size not in ("full", "small"):
        raise ValueError(f"unknown demo size {size!r}: use 'full' or 'small'")
    small = size == "small"
    if kind == "lung":
        from longisynth.phantoms.thorax import make_thorax_phantom

        if small:
            hu, affine = make_thorax_phantom(shape=(128, 128, 90), spacing_mm=(2.8, 2.8, 4.0), seed=seed)
        else:
            hu, affine = make_thorax_phantom(seed=seed)
        return DemoInput(
            {"ct": Scan.from_array(hu, affine, "thorax_phantom.nii.gz")}, None, DEMO_PROMPTS["lung"]
        )
    if kind == "glioma":
        from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

        spacing = 3.0 if small else 1.0
        images, affine = make_brain_phantom(seed=seed, spacing_mm=spacing)
        scans = {c: Scan.from_array(v, affine, f"mni152_{c}.nii.gz") for c, v in images.items()}
        return DemoInput(scans, brain_phantom_tissues(spacing), DEMO_PROMPTS["glioma"])
    raise ValueError(f"unknown demo kind {kind!r}: use 'lung' or 'glioma'")
