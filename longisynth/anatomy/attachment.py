"""What a lung nodule touches: the pleura, a vessel, a fissure (docs/design.md §3.1).

Found on the host CT around a candidate centre, these structures let placement put a nodule
against the one structure asked for and away from the others, and let the findings (and the
tests) measure what the finished mask touches:

- **pleura**: outside the lungs (chest wall, mediastinum, diaphragm), or dense tissue within
  :data:`PLEURA_BAND_MM` of the lung surface;
- **vessel**: dense tissue (a 0.5 mm-smoothed HU above :data:`DENSE_HU`) deeper in the lung —
  pulmonary vessels of ≳ 2 mm calibre (parenchyma is ≈ −850 HU, a vessel ≈ +40 HU);
- **fissure**: another lobe of the lungs, where lobes are known exactly (a label map).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from longisynth.spec import Attachment

DENSE_HU = -300.0  # soft tissue, vessel or pleura on the smoothed CT; aerated lung is far below
DENSE_SMOOTH_MM = 0.5  # Gaussian std that removes noise before the threshold
PLEURA_BAND_MM = 3.0  # dense voxels this close to the lung surface are pleura, not a vessel
STRUCTURES = ("pleura", "vessel", "fissure")


@dataclass(frozen=True)
class HostStructures:
    """Pleura, vessels and other lobes on a crop of the host CT (boolean arrays on the crop).

    Attributes:
        pleura: outside the lungs, or dense within :data:`PLEURA_BAND_MM` of their surface.
        vessel: dense lung tissue deeper than :data:`PLEURA_BAND_MM`.
        lobes: exact lobe labels (TotalSegmentator 10–14) on the crop, or None when unknown.
        dense: the smoothed CT above :data:`DENSE_HU`.
        lungs: the lungs (vessels inside them included).
    """

    pleura: NDArray[np.bool_]
    vessel: NDArray[np.bool_]
    lobes: NDArray[np.uint8] | None
    dense: NDArray[np.bool_]
    lungs: NDArray[np.bool_]

    def fissure(self, lobe: int) -> NDArray[np.bool_]:
        """Lungs of a lobe other than ``lobe``: across the fissure (all False when lobes are unknown)."""
        if self.lobes is None or lobe == 0:
            return np.zeros(self.pleura.shape, dtype=bool)
        return (self.lobes > 0) & (self.lobes != lobe)

    def of(self, name: str, lobe: int) -> NDArray[np.bool_]:
        """One structure by name (``pleura``, ``vessel`` or ``fissure``)."""
        if name == "fissure":
            return self.fissure(lobe)
        return self.pleura if name == "pleura" else self.vessel


def host_structures(
    hu: NDArray[np.float32],
    lungs: NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    lobes: NDArray[np.integer] | None = None,
) -> HostStructures:
    """Find pleura, vessels and (with ``lobes``) fissures on a crop.

    Args:
        hu: the host CT crop, HU.
        lungs: the lungs on the crop, vessels inside them included (smooth, not just aerated).
        spacing_mm: voxel size along each array axis, mm.
        lobes: exact lobe labels on the crop (0 outside the lungs), or None.
    """
    sigma = [DENSE_SMOOTH_MM / s for s in spacing_mm]
    dense = np.asarray(ndimage.gaussian_filter(hu, sigma) > DENSE_HU)
    depth = ndimage.distance_transform_edt(lungs, sampling=spacing_mm)
    shallow = depth <= PLEURA_BAND_MM
    lobe_map = None if lobes is None else np.where(lungs, lobes, 0).astype(np.uint8)
    return HostStructures(~lungs | (dense & shallow), dense & lungs & ~shallow, lobe_map, dense, lungs)


def contacts_mm2(
    mask: NDArray[np.bool_], structures: HostStructures, lobe: int, spacing_mm: tuple[float, float, float]
) -> dict[str, float]:
    """Area (mm², approximate) of the mask's outer surface that touches each structure.

    The outer surface is the one-voxel (face-connected) shell around the mask; each shell voxel
    counts for the area of a voxel face, (voxel volume)^⅔.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return dict.fromkeys(STRUCTURES, 0.0)
    shell = ndimage.binary_dilation(mask) & ~mask
    face = float(np.prod(spacing_mm)) ** (2.0 / 3.0)
    return {
        name: round(float(np.count_nonzero(shell & structures.of(name, lobe))) * face, 3)
        for name in STRUCTURES
    }


def touched(contacts: dict[str, float], min_mm2: float) -> set[str]:
    """The structures whose contact area is at least ``min_mm2``."""
    return {name for name, area in contacts.items() if area >= min_mm2}


REQUIRED: dict[Attachment, str | None] = {
    Attachment.ISOLATED: None,
    Attachment.JUXTAPLEURAL: "pleura",
    Attachment.JUXTAVASCULAR: "vessel",
    Attachment.PERIFISSURAL: "fissure",
}


def classify(contacts: dict[str, float], min_mm2: float) -> Attachment | None:
    """The attachment a measured contact set shows, or None when it touches more than one structure."""
    hit = touched(contacts, min_mm2)
    if not hit:
        return Attachment.ISOLATED
    if len(hit) > 1:
        return None
    (name,) = hit
    return next(a for a, s in REQUIRED.items() if s == name)
