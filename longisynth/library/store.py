"""Open a lesion library, query its index, and load one lesion (checking its content hash)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from longisynth.errors import InvalidInputError
from longisynth.library.format import (
    INDEX,
    LIBRARY_FORMAT,
    LIBRARY_VERSION,
    MANIFEST,
    LibraryEntry,
    LibraryManifest,
    content_hash,
)
from longisynth.library.memorisation import Descriptors, load_descriptors

SIZE_BAND = 0.25  # a requested size matches lesions within ±25 % of it


@dataclass(frozen=True)
class LibraryLesion:
    """One loaded lesion: its index entry, images per contrast (HU or z-scores; NaN where the source
    has no tissue), labels (our table) and the patch's voxel → world affine (mm)."""

    entry: LibraryEntry
    images: dict[str, NDArray[np.float32]]
    labels: NDArray[np.uint8]
    affine: NDArray[np.float64]
    descriptors: Descriptors | None = None  # the library's, for the memorisation report
    nn_median_distance: float | None = None
    # True for a rule-based lesion rendered on the host itself (the texture of a user's mask when
    # no library lends one): its images are in the host's own units and it holds no patient data
    host_units: bool = False

    def provenance(self) -> dict[str, Any]:
        """What a generated study records about its source (no case name: it may identify)."""
        e = self.entry
        return {
            "id": e.id,
            "sha256": e.sha256,
            "licence": e.licence,
            "source_dataset": e.source_dataset,
            "kind": e.kind,
            "size_mm": e.size_mm,
        }


class Library:
    """A lesion library folder (:mod:`longisynth.library.format`)."""

    def __init__(self, root: Path, manifest: LibraryManifest, entries: list[LibraryEntry]) -> None:
        self.root = root
        self.manifest = manifest
        self.entries = entries
        self._descriptors: Descriptors | None = None

    @classmethod
    def open(cls, root: Path | str) -> Library:
        """Read ``library.json`` and the index.

        Raises:
            InvalidInputError: not a library, an unknown version, or an unreadable index line.
        """
        root = Path(root)
        try:
            raw = json.loads((root / MANIFEST).read_text())
            manifest = LibraryManifest.model_validate(raw)
        except FileNotFoundError:
            raise InvalidInputError(f"{root.name!r} is not a lesion library (no {MANIFEST})") from None
        except (OSError, ValueError, ValidationError) as exc:
            raise InvalidInputError(
                f"{root.name!r}: {MANIFEST} is unreadable ({type(exc).__name__})"
            ) from None
        if manifest.format != LIBRARY_FORMAT or manifest.version > LIBRARY_VERSION:
            raise InvalidInputError(
                f"{root.name!r} is a {manifest.format} v{manifest.version}; this longisynth reads "
                f"{LIBRARY_FORMAT} up to v{LIBRARY_VERSION}"
            )
        entries = []
        try:
            lines = (root / INDEX).read_text().splitlines()
        except OSError:
            raise InvalidInputError(f"{root.name!r}: {INDEX} is missing or unreadable") from None
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entries.append(LibraryEntry.model_validate_json(line))
            except ValidationError:
                raise InvalidInputError(f"{root.name!r}: line {n} of {INDEX} is not a lesion entry") from None
        if not entries:
            raise InvalidInputError(f"{root.name!r} holds no lesions")
        return cls(root, manifest, entries)

    def require_modality(self, modality: str) -> None:
        """Refuse a library of the other modality (a CT nodule library on a brain MRI)."""
        m = self.manifest
        if m.modality != modality:
            raise InvalidInputError(
                f"the lesion library holds {m.family} lesions ({m.modality.upper()}); "
                f"the input is {modality.upper()}"
            )

    def get(self, lesion_id: str) -> LibraryEntry:
        """The entry with this id (a unique prefix of it is enough)."""
        hits = [e for e in self.entries if e.id.startswith(lesion_id)] if lesion_id else []
        if len(hits) != 1:
            what = "no" if not hits else f"{len(hits)}"
            raise InvalidInputError(f"{what} lesion in the library has id {lesion_id!r}")
        return hits[0]

    def candidates(
        self, kind: str | None, size_mm: float | None, exclude: frozenset[str] = frozenset()
    ) -> list[LibraryEntry]:
        """Entries of ``kind`` (any if None) whose size is within :data:`SIZE_BAND` of ``size_mm``
        (any size if None; the nearest size when none is within the band), ids in ``exclude`` left out.

        Raises:
            InvalidInputError: no lesion of that kind (or none left after ``exclude``).
        """
        pool = [e for e in self.entries if kind is None or e.kind == kind]
        if not pool:
            kinds = sorted({e.kind for e in self.entries})
            raise InvalidInputError(f"the lesion library has no {kind} lesion (it has: {', '.join(kinds)})")
        pool = [e for e in pool if e.id not in exclude]
        if not pool:
            raise InvalidInputError(
                f"every {kind or ''} lesion of the library is used as often as allowed (max_lesion_reuse)"
            )
        if size_mm is None:
            return pool
        band = [e for e in pool if abs(e.size_mm - size_mm) <= SIZE_BAND * size_mm]
        if band:
            return band
        nearest = min(abs(e.size_mm - size_mm) for e in pool)
        return [e for e in pool if abs(e.size_mm - size_mm) == nearest]

    def load(self, entry: LibraryEntry) -> LibraryLesion:
        """Load a lesion's patch and check it against its content hash.

        Raises:
            InvalidInputError: a missing, corrupt or altered patch file.
        """
        path = self.root / entry.file
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise InvalidInputError(
                f"lesion {entry.id} of the library is unreadable ({type(exc).__name__}); rebuild the library"
            ) from None
        if content_hash(arrays) != entry.sha256:
            raise InvalidInputError(
                f"lesion {entry.id} of the library does not match its content hash (altered or corrupt)"
            )
        images = {k.removeprefix("img_"): v for k, v in arrays.items() if k.startswith("img_")}
        if "labels" not in arrays or "affine" not in arrays or not images:
            raise InvalidInputError(f"lesion {entry.id} of the library lacks its labels, affine or images")
        if self._descriptors is None:
            self._descriptors = load_descriptors(self.root)
        return LibraryLesion(
            entry,
            images,
            arrays["labels"].astype(np.uint8),
            arrays["affine"],
            self._descriptors,
            self.manifest.nn_median_distance,
        )
