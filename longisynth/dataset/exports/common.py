"""What every export reads: one case's bundle (images, masks, metadata) and its plan.

Exports are derived from the bundle alone, so a format can be added to a finished dataset
without simulating anything again, and NIfTI exports are the bundle's own bytes (copied, not
re-encoded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longisynth.bundle import BundleReader
from longisynth.bundle.format import MASK, ordered_contrasts
from longisynth.dataset.design import DatasetDesign
from longisynth.dataset.plan import CasePlan
from longisynth.dataset.store import Layout, atomic_write
from longisynth.io.nifti import scan_from_nifti_bytes
from longisynth.io.scan import Scan


@dataclass
class CaseSource:
    """An open bundle of one case."""

    case: CasePlan
    design: DatasetDesign
    layout: Layout
    reader: BundleReader

    @classmethod
    def open(cls, case: CasePlan, design: DatasetDesign, layout: Layout) -> CaseSource:
        return cls(case, design, layout, BundleReader(layout.root / layout.bundle(case.case_id)))

    def close(self) -> None:
        self.reader.close()

    @property
    def meta(self) -> dict[str, Any]:
        return self.reader.metadata

    @property
    def contrasts(self) -> list[str]:
        return ordered_contrasts([f["contrast"] for f in self.meta["input"]["files"]])

    @property
    def family(self) -> str:
        return str(self.meta["spec"]["family"])

    @property
    def timepoints(self) -> list[dict[str, Any]]:
        return list(self.meta["timepoints"])

    def image_bytes(self, tp: int, contrast: str) -> bytes:
        """The timepoint's image as ``.nii.gz`` bytes (exactly the bundle's)."""
        return self.reader.member_bytes(tp, contrast)

    def mask_bytes(self, tp: int) -> bytes:
        return self.reader.member_bytes(tp, MASK)

    def image(self, tp: int, contrast: str) -> Scan:
        """The timepoint's image decoded (stored dtype, scaling and RAS+ affine)."""
        return scan_from_nifti_bytes(self.image_bytes(tp, contrast), f"{contrast}.nii.gz")

    def mask(self, tp: int) -> np.ndarray:
        return self.reader.mask(tp)[0]

    def write(self, rel: str, data: bytes) -> str:
        atomic_write(self.layout.root / rel, data)
        return rel


def write_text(root: Path, rel: str, text: str) -> str:
    atomic_write(root / rel, text.encode())
    return rel


def write_json(root: Path, rel: str, data: Any) -> str:
    return write_text(root, rel, json.dumps(data, indent=2) + "\n")
