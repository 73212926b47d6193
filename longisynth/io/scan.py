"""The in-memory scan: the stored array exactly as read, its grid and its intensity scaling."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from longisynth.geometry import Box, Geometry


@dataclass(frozen=True, eq=False)
class Scan:
    """One 3D image as stored on disk.

    The engine never rewrites ``raw``: outputs are ``raw`` with only the lesion's crop replaced, so
    every voxel outside it is bit-for-bit the input. Physical values (HU for CT) are
    ``raw * slope + inter``.

    Attributes:
        raw: the stored array (its dtype is the output dtype).
        geometry: grid and voxel→world RAS+ affine (mm).
        slope: intensity scale factor (physical = raw · slope + inter).
        inter: intensity offset, in physical units.
        name: file name only (never a path: paths may carry identifiers).
        sha256: hex digest of the input file (or of the array bytes for in-memory scans).
        xyzt_units: NIfTI units code to echo on write (mm + s when unknown).
    """

    raw: NDArray[Any]
    geometry: Geometry
    slope: float = 1.0
    inter: float = 0.0
    name: str = "scan.nii.gz"
    sha256: str = ""
    xyzt_units: int = 10

    @classmethod
    def from_array(
        cls,
        raw: NDArray[Any],
        affine: NDArray[np.float64],
        name: str = "scan.nii.gz",
        slope: float = 1.0,
        inter: float = 0.0,
    ) -> Scan:
        """Wrap an in-memory array (e.g. a phantom); ``sha256`` is computed from its bytes."""
        raw = np.asarray(raw)
        digest = hashlib.sha256(np.ascontiguousarray(raw).tobytes()).hexdigest()
        return cls(raw, Geometry(affine, raw.shape), slope, inter, name, digest)

    @property
    def is_identity_scaled(self) -> bool:
        return self.slope == 1.0 and self.inter == 0.0

    def values(self) -> NDArray[Any]:
        """Whole image in physical units; no copy when the scaling is the identity."""
        if self.is_identity_scaled:
            return self.raw
        return (self.raw.astype(np.float32) * np.float32(self.slope) + np.float32(self.inter)).astype(
            np.float32
        )

    def values_in(self, box: Box) -> NDArray[np.float32]:
        """Physical values of a crop as float32."""
        crop = self.raw[box.slices].astype(np.float32)
        if not self.is_identity_scaled:
            crop = crop * np.float32(self.slope) + np.float32(self.inter)
        return crop

    def to_raw(self, values: NDArray[np.floating]) -> NDArray[Any]:
        """Convert physical values back to the stored dtype (rounded and clipped for integers)."""
        out = (np.asarray(values, dtype=np.float64) - self.inter) / self.slope
        dtype = self.raw.dtype
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(dtype)
