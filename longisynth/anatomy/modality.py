"""Is this scan a CT in Hounsfield units, or something else (MR, a windowed export, normalised)?

A CT in Hounsfield units has a cluster of air at ≈ −1000 HU (outside the body, in the lungs and
bowel) or scanner padding outside the reconstruction circle (−1024, −2048, −3024), and a large
share of soft tissue between −150 and +150 HU (fat ≈ −100, water 0, muscle/organs ≈ +40…+60).
MR intensities are arbitrary, non-negative up to noise; exports windowed to 8 bits or normalised
to 0–1 have no negative values at all. The values tested are the physical ones (stored values
with the file's slope and intercept applied); ``dtype`` (the stored type) only shapes the message.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from longisynth.errors import InvalidInputError
from longisynth.spec import Modality

AIR_HU = (-1200.0, -900.0)  # where the air cluster of a CT lies
AIR_CENTRE_HU = (-1060.0, -940.0)  # median of that cluster (air is −1000 HU; some scanners read lower)
PADDING_HU = (-1024.0, -2000.0, -2048.0, -3000.0, -3024.0)  # values outside the field of view
SOFT_TISSUE_HU = (-150.0, 150.0)
MIN_AIR_FRACTION = 0.005
MIN_SOFT_FRACTION = 0.02
MIN_HU = -3100.0  # nothing in a CT is below the deepest padding value
_MAX_SAMPLES = 2_000_000


def detect_modality(values: NDArray[np.generic], dtype: np.dtype) -> Modality:
    """CT when ``values`` look like Hounsfield units, MR otherwise."""
    return Modality.CT if _why_not_hounsfield(values, dtype) is None else Modality.MR


def require_hounsfield(values: NDArray[np.generic], dtype: np.dtype) -> None:
    """Raise :class:`InvalidInputError` with the reason when ``values`` are not Hounsfield units."""
    reason = _why_not_hounsfield(values, dtype)
    if reason is not None:
        raise InvalidInputError(f"the scan is not a CT in Hounsfield units: {reason}")


def _sample(values: NDArray[np.generic]) -> NDArray[np.float64]:
    """A deterministic, evenly strided subsample (≤ 2 M values) of the finite values."""
    a = np.asarray(values)
    if a.ndim == 3 and a.size > _MAX_SAMPLES:
        step = int(np.ceil((a.size / _MAX_SAMPLES) ** (1 / 3)))
        a = a[::step, ::step, ::step]
    flat = a.reshape(-1)
    if flat.size > _MAX_SAMPLES:
        flat = flat[:: int(np.ceil(flat.size / _MAX_SAMPLES))]
    flat = flat.astype(np.float64)
    return flat[np.isfinite(flat)]


def _why_not_hounsfield(values: NDArray[np.generic], dtype: np.dtype) -> str | None:
    """None for Hounsfield units, else a one-line reason."""
    v = _sample(values)
    if v.size == 0:
        return "it has no finite values"
    lo, hi = float(v.min()), float(v.max())
    span = f"values {lo:g}…{hi:g}"
    if lo >= 0.0:
        if hi <= 1.0:
            return f"{span}: a normalised image (0–1), not Hounsfield units"
        if np.dtype(dtype) == np.uint8 or hi <= 255.0:
            return f"{span}: an 8-bit image (a windowed export or an MR); provide the original CT in HU"
        if hi <= 4095.0:
            return (
                f"{span} with no negatives: stored values without the rescale intercept (−1024) "
                "or an MR image"
            )
        return f"{span} with no negatives: no air at −1000 HU (an MR image?)"
    if hi - lo < 50.0:
        return f"{span}: a z-scored or normalised image, not Hounsfield units"
    if lo < MIN_HU:
        return f"{span}: values below {MIN_HU:g} do not occur in CT"
    air = v[(v >= AIR_HU[0]) & (v <= AIR_HU[1])]
    padding = np.isin(v, PADDING_HU).mean()
    has_air = air.size >= MIN_AIR_FRACTION * v.size and AIR_CENTRE_HU[0] <= np.median(air) <= AIR_CENTRE_HU[1]
    has_soft = np.mean((v >= SOFT_TISSUE_HU[0]) & (v <= SOFT_TISSUE_HU[1])) >= MIN_SOFT_FRACTION
    if not (has_air or padding >= MIN_AIR_FRACTION):
        return f"{span}: no air cluster at ≈ −1000 HU (an MR image?)"
    if not has_soft:
        return f"{span}: too little soft tissue between −150 and +150 HU (an MR image?)"
    return None
