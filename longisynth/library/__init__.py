"""Real lesions: a library built from expert-annotated cases, and their transplant onto healthy scans.

* :func:`~longisynth.library.build.build_library` — a folder of real lesions → a library folder;
* :class:`~longisynth.library.store.Library` — open it, query the index, load a lesion;
* :func:`choose_lesion` — the lesion a request asks for (kind, size band, id), and the request
  completed with that lesion's facts;
* :class:`~longisynth.library.transplant.Transplant` — the lesion behind the family protocol.
"""

from __future__ import annotations

import numpy as np

from longisynth.errors import InvalidInputError
from longisynth.library.build import build_library, detect_layout
from longisynth.library.format import LibraryEntry, LibraryManifest
from longisynth.library.store import Library, LibraryLesion
from longisynth.spec import Family, GliomaGrade, LesionSource, LesionSpec, NoduleType, ShapeKind


def _requested_kind(spec: LesionSpec) -> str | None:
    if spec.nodule_type is not None:
        return spec.nodule_type.value
    if spec.grade is not None:
        return spec.grade.value
    return None


def choose_lesion(
    library: Library, spec: LesionSpec, modality: str, exclude: frozenset[str] = frozenset()
) -> tuple[LesionSpec, LibraryEntry]:
    """The library lesion for a merged (unresolved) request with ``source`` library, and the request
    completed with its facts: family, type or grade, margin and baseline size (the lesion *is* the
    baseline). The choice is seeded by ``spec.seed`` among the lesions of the requested kind whose
    size is within the library's size band of a requested baseline size (any size if none), leaving
    out the ids in ``exclude`` (a dataset's reuse cap). Load it with :meth:`Library.load`.

    Raises:
        InvalidInputError: a library of the other modality, no lesion of the requested kind or id,
            or a final glioma size below the lesion's.
    """
    assert spec.seed is not None
    library.require_modality(modality)
    kind = _requested_kind(spec)
    if spec.library_lesion_id:
        entry = library.get(spec.library_lesion_id)
        if kind is not None and entry.kind != kind:
            raise InvalidInputError(
                f"library lesion {entry.id} is {entry.kind}, but the request asks for {kind}"
            )
    else:
        pool = sorted(library.candidates(kind, spec.baseline_diameter_mm, exclude), key=lambda e: e.id)
        rng = np.random.default_rng([spec.seed, *b"library"])
        entry = pool[int(rng.integers(len(pool)))]
    out = spec.model_copy(deep=True)
    out.source = LesionSource.LIBRARY
    out.library_lesion_id = entry.id
    out.family = Family(entry.family)
    out.baseline_diameter_mm = entry.size_mm
    if out.family == Family.LUNG_NODULE:
        out.nodule_type = NoduleType(entry.kind)
        out.shape = ShapeKind(entry.shape)
        # The attachment (pleura, vessel, fissure, isolated) is placed like a rule-based nodule's:
        # drawn from clinical frequencies unless asked for; the host's pleura clips the copy.
        if out.solid_fraction is not None:
            out.solid_fraction = None  # the real lesion's solid part is what it is
    else:
        out.grade = GliomaGrade(entry.kind)
        if out.diameter_mm is not None and out.diameter_mm < entry.size_mm:
            raise InvalidInputError(
                f"library glioma {entry.id} is already {entry.size_mm:.0f} mm at baseline; ask for a "
                "final diameter_mm at least that large, or none"
            )
    return out, entry


__all__ = [
    "Library",
    "LibraryEntry",
    "LibraryLesion",
    "LibraryManifest",
    "build_library",
    "choose_lesion",
    "detect_layout",
]
