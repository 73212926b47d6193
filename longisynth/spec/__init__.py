"""The one schema of a study request and how a request becomes concrete.

* :mod:`.schema` — :class:`LesionSpec` and its enums (the HTTP body, the CLI ``--spec``, the
  ``spec`` block of ``metadata.json``);
* :mod:`.defaults` — the documented default of every field, with its clinical source;
* :mod:`.resolve` — :func:`merge_specs` of partial requests and :func:`resolve_spec`, which fills
  every unset field;
* :mod:`.prompt` — free text → partial spec.
"""

from longisynth.spec.defaults import (
    ATTACHMENT_FREQUENCIES,
    DEFAULT_D_WHITE_MM2_PER_DAY,
    DEFAULT_DURATION_DAYS,
    DEFAULT_N_TIMEPOINTS,
    DEFAULT_NODULE_DIAMETER_MM,
    DEFAULT_RHO_PER_DAY,
    DEFAULT_SOLID_FRACTION,
    DEFAULT_VDT_DAYS,
    GLIOMA_DIAMETER_MM,
    fleischner_schedule_days,
    sample_glioma_diameter_mm,
)
from longisynth.spec.resolve import resolve_spec
from longisynth.spec.schema import (
    TOTALSEG_LOBE_LABELS,
    Attachment,
    BrainLobe,
    Calcification,
    Contrast,
    Depth,
    Family,
    GliomaGrade,
    GrowthLaw,
    GrowthSpec,
    LesionSource,
    LesionSpec,
    Level,
    Location,
    LungLobe,
    Modality,
    NoduleType,
    Schedule,
    ShapeKind,
    Side,
    merge_specs,
)

__all__ = [
    "ATTACHMENT_FREQUENCIES",
    "DEFAULT_DURATION_DAYS",
    "DEFAULT_D_WHITE_MM2_PER_DAY",
    "DEFAULT_NODULE_DIAMETER_MM",
    "DEFAULT_N_TIMEPOINTS",
    "DEFAULT_RHO_PER_DAY",
    "DEFAULT_SOLID_FRACTION",
    "DEFAULT_VDT_DAYS",
    "GLIOMA_DIAMETER_MM",
    "TOTALSEG_LOBE_LABELS",
    "Attachment",
    "BrainLobe",
    "Calcification",
    "Contrast",
    "Depth",
    "Family",
    "GliomaGrade",
    "GrowthLaw",
    "GrowthSpec",
    "LesionSource",
    "LesionSpec",
    "Level",
    "Location",
    "LungLobe",
    "Modality",
    "NoduleType",
    "Schedule",
    "ShapeKind",
    "Side",
    "fleischner_schedule_days",
    "merge_specs",
    "resolve_spec",
    "sample_glioma_diameter_mm",
]
