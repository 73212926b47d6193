"""The lesion library on disk: an index of real lesions and one patch file per lesion.

Layout (a folder)::

    library.json        # {"format": "longisynth-lesion-library", "version": 1, "modality": ..., ...}
    index.jsonl         # one LibraryEntry per line: query thousands of lesions without opening them
    lesions/<id>.npz    # the patch: labels (uint8, our label table), img_<contrast> (float32), affine

Patch values are normalised so that lesions from different scanners are comparable: Hounsfield
units for CT (as acquired), and z-scores of the source brain's intensities per contrast for MRI
(mean 0, sd 1 over the source brain). The affine maps patch voxels to world RAS+ mm of the source
scan; only its 3×3 part (spacing, orientation) is used when a lesion is transplanted.

A lesion's ``id`` is derived from its content hash (never from a file or patient name, which may
carry identifiers); ``source_case`` keeps the source's case name in the index only, for
patient-level hold-out splits, and is never copied into a generated study.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

LIBRARY_FORMAT = "longisynth-lesion-library"
LIBRARY_VERSION = 1
MANIFEST = "library.json"
INDEX = "index.jsonl"
LESIONS_DIR = "lesions"


class LibraryManifest(BaseModel):
    """``library.json``: what the library holds, as a whole."""

    model_config = ConfigDict(extra="forbid")

    format: str = LIBRARY_FORMAT
    version: int = LIBRARY_VERSION
    modality: str = Field(description="ct or mr: every lesion of a library has one modality")
    family: str = Field(description="lung_nodule or glioma")
    n_lesions: int
    sources: list[str] = Field(description="source datasets (layout names) the lesions came from")
    nn_median_distance: float | None = Field(
        None,
        description=(
            "median distance from a library lesion to its nearest other library lesion "
            "(longisynth.library.memorisation; HU or brain sd): the library's own scale"
        ),
    )


class LibraryEntry(BaseModel):
    """One lesion of the index (one line of ``index.jsonl``).

    Sizes are measured on the stored mask: ``size_mm`` is the family's size convention (lung:
    clinical size, the mean of the axial long and short axes on the largest axial slice; glioma:
    the whole tumour's longest 3D diameter), mm.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="stable id: the first 16 hex digits of sha256")
    family: str
    modality: str
    kind: str = Field(description="lung: solid / part_solid / ground_glass; glioma: high / low")
    shape: str = Field("smooth", description="smooth / lobulated / spiculated (lung readers' scores)")
    contrasts: list[str]
    size_mm: float
    longest_diameter_mm: float
    volume_mm3: float
    spacing_mm: list[float]
    grid: list[int]
    attributes: dict[str, Any] = Field(default_factory=dict, description="the source sheet's scores")
    reference: dict[str, float] = Field(
        default_factory=dict,
        description="tissue reference of the source around the lesion (CT: lung parenchyma HU)",
    )
    noise_sd: dict[str, float] = Field(default_factory=dict, description="source noise sd per contrast")
    nearest_other_distance: float | None = Field(
        None, description="distance to the nearest other lesion of the library (memorisation scale)"
    )
    source_dataset: str
    source_case: str = Field(description="case name in the source (index only, never in outputs)")
    licence: str
    sha256: str = Field(description="content hash of the patch arrays (content_hash)")
    file: str = Field(description="patch file, relative to the library folder")


def content_hash(arrays: Mapping[str, NDArray[Any]]) -> str:
    """sha256 of a patch's arrays (name, dtype, shape and bytes, in name order): the same lesion
    has the same hash whatever the zip container's timestamps."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
