"""Documented defaults for every spec field a request leaves unset, with their clinical sources."""

from __future__ import annotations

from longisynth.spec.schema import Attachment, Family, GliomaGrade, NoduleType

# Mean volume-doubling times of malignant nodules (PMC5945695): solid 267 d, part-solid 598 d,
# pure ground-glass 848 d.
DEFAULT_VDT_DAYS: dict[NoduleType, float] = {
    NoduleType.SOLID: 267.0,
    NoduleType.PART_SOLID: 598.0,
    NoduleType.GROUND_GLASS: 848.0,
}
DEFAULT_NODULE_DIAMETER_MM = 12.0
DEFAULT_GLIOMA_DIAMETER_MM: dict[GliomaGrade, float] = {GliomaGrade.LOW: 35.0, GliomaGrade.HIGH: 45.0}
# Reaction–diffusion parameters (docs/design.md §3.2): rho 0.0012/day (low) to 0.012/day (high grade).
# D_white for low grade chosen so the front speed 2*sqrt(D*rho) gives ~4.1 mm/year diameter growth
# (Mandonnet et al., Ann Neurol 2003): 2*2*sqrt(0.0065*0.0012)*365 = 4.1 mm/year.
# High grade: D_white = 0.01 (inside the range 2.7e-3…2.7e-1 of docs/design.md §3.2) keeps the front thin,
# sqrt(D/rho) ≈ 0.9 mm, so a 45 mm tumour shows an enhancing rim around necrosis with a core of
# ≈ 45 % of the whole tumour as on the BraTS cases; D = 0.27 gives a front ≈ 28 mm wide with no core.
DEFAULT_RHO_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0012, GliomaGrade.HIGH: 0.012}
DEFAULT_D_WHITE_MM2_PER_DAY: dict[GliomaGrade, float] = {GliomaGrade.LOW: 0.0065, GliomaGrade.HIGH: 0.01}
DEFAULT_N_TIMEPOINTS = 4
DEFAULT_DURATION_DAYS: dict[Family, float] = {Family.LUNG_NODULE: 365.0, Family.GLIOMA: 180.0}
DEFAULT_SOLID_FRACTION = 0.5
# What a nodule touches, when the request does not say (docs/design.md §3.1). Rounded from screening
# series: about a quarter of nodules abut the pleura and a fifth a vessel in LIDC-IDRI-based CAD
# studies, and perifissural nodules are ≈ 20 % of non-calcified solid nodules in NELSON (de Hoop et
# al., Radiology 2012), ≈ 10 % of all types. Perifissural needs a lobe label map (fissures); without
# one, or where no vessel / fissure fits, the draw is renormalised over what the scan offers.
ATTACHMENT_FREQUENCIES: dict[Attachment, float] = {
    Attachment.ISOLATED: 0.45,
    Attachment.JUXTAPLEURAL: 0.25,
    Attachment.JUXTAVASCULAR: 0.20,
    Attachment.PERIFISSURAL: 0.10,
}


def fleischner_schedule_days(nodule_type: NoduleType, diameter_mm: float) -> list[float]:
    """Follow-up scan times (days) from the Fleischner 2017 guideline (MacMahon, Radiology 2017).

    Solid > 8 mm: CT at 3 months (then we continue at 6, 12 months); solid 6–8 mm: 6–12 months
    (we use 6, 18 months); ground-glass >= 6 mm: 6–12 months then every 2 years to 5 years;
    part-solid >= 6 mm: 3–6 months then yearly to 5 years. Nodules < 6 mm need no routine
    follow-up; we still give a 12-month control so the study is longitudinal.
    """
    if diameter_mm < 6:
        return [0.0, 365.0]
    if nodule_type == NoduleType.SOLID:
        return [0.0, 91.0, 182.0, 365.0] if diameter_mm > 8 else [0.0, 182.0, 548.0]
    if nodule_type == NoduleType.PART_SOLID:
        return [0.0, 137.0, 502.0, 867.0, 1232.0, 1597.0, 1962.0]
    return [0.0, 274.0, 1004.0, 1735.0]
