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


def demo_input(kind: str = "lung", seed: int = 0) -> DemoInput:
    """The embedded default scan for ``kind`` ("lung" or "glioma").

    Args:
        seed: seed of the phantom's own noise texture (not of the lesion).
    """
    if kind == "lung":
        from longisynth.phantoms.thorax import make_thorax_phantom

        hu, affine = make_thorax_phantom(seed=seed)
        return DemoInput(
            {"ct": Scan.from_array(hu, affine, "thorax_phantom.nii.gz")}, None, DEMO_PROMPTS["lung"]
        )
    if kind == "glioma":
        from longisynth.phantoms.brain import brain_phantom_tissues, make_brain_phantom

        images, affine = make_brain_phantom(seed=seed)
        scans = {c: Scan.from_array(v, affine, f"mni152_{c}.nii.gz") for c, v in images.items()}
        return DemoInput(scans, brain_phantom_tissues(), DEMO_PROMPTS["glioma"])
    raise ValueError(f"unknown demo kind {kind!r}: use 'lung' or 'glioma'")
